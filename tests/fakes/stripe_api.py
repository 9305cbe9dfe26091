"""A stand-in for Stripe over real HTTP: enough of the API for the ``stripe`` library's
Checkout Session create/retrieve, a checkout page with a Pay button, and webhook events signed
with Stripe's documented scheme (``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<body>")>``), written here independently of the library the gateway verifies with."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from typing import Any

import httpx
from aiohttp import web

from tests.fakes.threaded import ThreadedServer

SECRET_KEY = "sk_test_fake_" + "0123456789abcdef"
WEBHOOK_SECRET = "whsec_fake_" + "fedcba9876543210"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, t: int | None = None) -> str:
    ts = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


class FakeStripe(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.by_idempotency: dict[str, str] = {}
        self.webhook_url = ""  # the gateway's /webhooks/stripe, set by the test
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"SMARTOKEN_STRIPE_SECRET_KEY": SECRET_KEY,
                "SMARTOKEN_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "SMARTOKEN_STRIPE_API_BASE": self.base}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self.create)
        app.router.add_get("/v1/checkout/sessions/{sid}", self.retrieve)
        app.router.add_get("/pay/{sid}", self.page)
        app.router.add_post("/pay/{sid}", self.pay)
        return app

    # ------------------------------------------------------------------ API

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {SECRET_KEY}"

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": {"type": "invalid_request_error",
                                            "message": message}}, status=status)

    async def create(self, request: web.Request) -> web.Response:
        self.calls.append(("POST", "/v1/checkout/sessions"))
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        form = await request.post()
        key = request.headers.get("idempotency-key", "")
        with self.lock:
            if key and key in self.by_idempotency:
                return web.json_response(self.sessions[self.by_idempotency[key]])
            try:
                cents = int(str(form["line_items[0][price_data][unit_amount]"]))
                qty = int(str(form.get("line_items[0][quantity]", "1")))
            except (KeyError, ValueError):
                return self._error(400, "line_items[0][price_data][unit_amount] is required")
            sid = "cs_test_" + secrets.token_hex(12)
            meta = {k[len("metadata["):-1]: str(v) for k, v in form.items()
                    if k.startswith("metadata[")}
            session = {
                "id": sid, "object": "checkout.session", "mode": str(form.get("mode")),
                "amount_total": cents * qty,
                "currency": str(form.get("line_items[0][price_data][currency]")),
                "payment_status": "unpaid", "status": "open",
                "client_reference_id": form.get("client_reference_id"),
                "metadata": meta, "payment_intent": "pi_" + secrets.token_hex(12),
                "success_url": str(form.get("success_url")),
                "cancel_url": str(form.get("cancel_url")),
                "url": f"{self.base}/pay/{sid}",
            }
            self.sessions[sid] = session
            if key:
                self.by_idempotency[key] = sid
        return web.json_response(session)

    async def retrieve(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        session = self.sessions.get(request.match_info["sid"])
        return web.json_response(session) if session else self._error(404, "No such session")

    # ------------------------------------------------------------------ checkout page

    async def page(self, request: web.Request) -> web.Response:
        s = self.sessions.get(request.match_info["sid"])
        if s is None:
            return web.Response(status=404, text="no such session")
        body = (f"<!doctype html><title>Fake Checkout</title><h1>Pay "
                f"${s['amount_total'] / 100:.2f}</h1><form method=post>"
                f"<button id=pay type=submit>Pay</button></form>"
                f"<a id=cancel href=\"{html.escape(s['cancel_url'])}\">Cancel</a>")
        return web.Response(text=body, content_type="text/html")

    async def pay(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        s = self.sessions.get(sid)
        if s is None:
            return web.Response(status=404, text="no such session")
        s.update(payment_status="paid", status="complete")
        payload = self.event("checkout.session.completed", s)
        async with httpx.AsyncClient(timeout=30) as client:
            await client.post(self.webhook_url, content=payload,
                              headers={"stripe-signature": sign(payload),
                                       "content-type": "application/json"})
        raise web.HTTPSeeOther(s["success_url"])

    # ------------------------------------------------------------------ events

    @staticmethod
    def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
        return json.dumps({"id": event_id or "evt_" + secrets.token_hex(12), "object": "event",
                           "type": kind, "created": int(time.time()), "livemode": False,
                           "api_version": "2025-01-27", "data": {"object": obj}}).encode()

    def completed(self, sid: str, **changes: Any) -> bytes:
        s = dict(self.sessions[sid], payment_status="paid", status="complete")
        s.update(changes)
        return self.event("checkout.session.completed", s)

    def expired(self, sid: str) -> bytes:
        """The session ended unpaid (Stripe expires an open session after 24 h by default)."""
        s = dict(self.sessions[sid], payment_status="unpaid", status="expired")
        return self.event("checkout.session.expired", s)

    def refunded(self, sid: str, amount_refunded: int, **changes: Any) -> bytes:
        s = self.sessions[sid]
        charge = {"id": "ch_" + secrets.token_hex(8), "object": "charge",
                  "amount": s["amount_total"], "amount_refunded": amount_refunded,
                  "currency": s["currency"], "payment_intent": s["payment_intent"],
                  "refunded": amount_refunded == s["amount_total"], "metadata": {}}
        charge.update(changes)
        return self.event("charge.refunded", charge)

    def dispute(self, sid: str, dispute_id: str, amount: int, closed: str | None = None
                ) -> bytes:
        s = self.sessions[sid]
        obj = {"id": dispute_id, "object": "dispute", "amount": amount,
               "currency": s["currency"], "payment_intent": s["payment_intent"],
               "charge": "ch_x", "status": closed or "needs_response"}
        return self.event("charge.dispute.closed" if closed else "charge.dispute.created", obj)

    def deliver(self, payload: bytes, header: str | None = None) -> httpx.Response:
        return httpx.post(self.webhook_url, content=payload, timeout=30,
                          headers={"stripe-signature": header or sign(payload),
                                   "content-type": "application/json"})
