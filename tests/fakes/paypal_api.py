"""A stand-in for PayPal's REST API over real HTTP: OAuth2 client credentials, Orders v2
(create, approve page, capture, get) and ``verify-webhook-signature``, which checks a
signature this fake computes over the transmission headers, the webhook id and the event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from aiohttp import web

from tests.fakes.threaded import ThreadedServer

CLIENT_ID = "paypal-client-id-fake"
CLIENT_SECRET = "paypal-client-secret-" + "0123456789"
WEBHOOK_ID = "WH-FAKE-0001"
SIGNING_KEY = b"fake-paypal-signing-key"


def signature(transmission_id: str, at: str, webhook_id: str, event: Any) -> str:
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    msg = f"{transmission_id}|{at}|{webhook_id}|".encode() + hashlib.sha256(body).digest()
    return base64.b64encode(hmac.new(SIGNING_KEY, msg, hashlib.sha256).digest()).decode()


class FakePayPal(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.webhook_url = ""
        self.verifications = 0
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"SMARTOKEN_PAYPAL_CLIENT_ID": CLIENT_ID,
                "SMARTOKEN_PAYPAL_CLIENT_SECRET": CLIENT_SECRET,
                "SMARTOKEN_PAYPAL_WEBHOOK_ID": WEBHOOK_ID,
                "SMARTOKEN_PAYPAL_API_BASE": self.base}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/oauth2/token", self.token)
        app.router.add_post("/v2/checkout/orders", self.create)
        app.router.add_get("/v2/checkout/orders/{oid}", self.get_order)
        app.router.add_post("/v2/checkout/orders/{oid}/capture", self.capture)
        app.router.add_post("/v1/notifications/verify-webhook-signature", self.verify)
        app.router.add_get("/approve/{oid}", self.approve_page)
        app.router.add_post("/approve/{oid}", self.approve)
        return app

    def _bearer(self, request: web.Request) -> bool:
        return request.headers.get("authorization", "").removeprefix("Bearer ") in self.tokens

    async def token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = "A21AA" + secrets.token_hex(16)
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": 32400})

    async def create(self, request: web.Request) -> web.Response:
        if not self._bearer(request):
            return web.json_response({"name": "AUTHENTICATION_FAILURE"}, status=401)
        body = await request.json()
        rid = request.headers.get("paypal-request-id", "")
        with self.lock:
            if rid in self.by_request_id:
                return web.json_response(self._public(self.orders[self.by_request_id[rid]]))
            oid = secrets.token_hex(8).upper()
            unit = body["purchase_units"][0]
            ctx = body["payment_source"]["paypal"]["experience_context"]
            self.orders[oid] = {"id": oid, "status": "CREATED", "intent": body["intent"],
                                "amount": unit["amount"], "custom_id": unit.get("custom_id"),
                                "return_url": ctx["return_url"],
                                "cancel_url": ctx["cancel_url"], "captures": []}
            if rid:
                self.by_request_id[rid] = oid
        return web.json_response(self._public(self.orders[oid]), status=201)

    def _public(self, order: dict[str, Any]) -> dict[str, Any]:
        return {"id": order["id"], "status": order["status"], "intent": order["intent"],
                "purchase_units": [{"custom_id": order["custom_id"], "amount": order["amount"],
                                    "payments": {"captures": order["captures"]}}],
                "links": [{"rel": "payer-action", "method": "GET",
                           "href": f"{self.base}/approve/{order['id']}"}]}

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["oid"])
        if not self._bearer(request) or order is None:
            return web.json_response({"name": "RESOURCE_NOT_FOUND"}, status=404)
        return web.json_response(self._public(order))

    async def capture(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["oid"])
        if not self._bearer(request) or order is None:
            return web.json_response({"name": "RESOURCE_NOT_FOUND"}, status=404)
        with self.lock:
            if order["status"] != "APPROVED":
                return web.json_response({"name": "UNPROCESSABLE_ENTITY", "details": [
                    {"issue": "ORDER_ALREADY_CAPTURED" if order["status"] == "COMPLETED"
                     else "ORDER_NOT_APPROVED"}]}, status=422)
            order["status"] = "COMPLETED"
            order["captures"] = [{"id": "CAP" + secrets.token_hex(6).upper(),
                                  "status": "COMPLETED", "amount": order["amount"],
                                  "custom_id": order["custom_id"]}]
        return web.json_response(self._public(order), status=201)

    async def verify(self, request: web.Request) -> web.Response:
        if not self._bearer(request):
            return web.json_response({"name": "AUTHENTICATION_FAILURE"}, status=401)
        self.verifications += 1
        b = await request.json()
        ok = b.get("webhook_id") == WEBHOOK_ID and hmac.compare_digest(
            str(b.get("transmission_sig")), signature(
                str(b.get("transmission_id")), str(b.get("transmission_time")),
                WEBHOOK_ID, b.get("webhook_event")))
        return web.json_response({"verification_status": "SUCCESS" if ok else "FAILURE"})

    async def approve_page(self, request: web.Request) -> web.Response:
        oid = request.match_info["oid"]
        return web.Response(text=f"<!doctype html><title>Fake PayPal</title><form method=post>"
                                 f"<button id=approve>Approve {oid}</button></form>",
                            content_type="text/html")

    async def approve(self, request: web.Request) -> web.Response:
        order = self.orders[request.match_info["oid"]]
        order["status"] = "APPROVED"
        sep = "&" if "?" in order["return_url"] else "?"
        raise web.HTTPSeeOther(f"{order['return_url']}{sep}token={quote(order['id'])}"
                               f"&PayerID=PAYERFAKE")

    # ------------------------------------------------------------------ events

    def event(self, kind: str, resource: dict[str, Any], *, at: datetime | None = None,
              webhook_id: str = WEBHOOK_ID) -> tuple[bytes, dict[str, str]]:
        event = {"id": "WH-" + secrets.token_hex(8).upper(), "event_type": kind,
                 "resource_type": "capture", "resource": resource,
                 "create_time": datetime.now(UTC).isoformat()}
        when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tid = secrets.token_hex(8)
        headers = {"paypal-transmission-id": tid, "paypal-transmission-time": when,
                   "paypal-cert-url": f"{self.base}/certs/fake.pem",
                   "paypal-auth-algo": "SHA256withRSA",
                   "paypal-transmission-sig": signature(tid, when, webhook_id, event),
                   "content-type": "application/json"}
        return json.dumps(event).encode(), headers

    def capture_completed(self, oid: str, **changes: Any) -> tuple[bytes, dict[str, str]]:
        order = self.orders[oid]
        cap = dict(order["captures"][0]) if order["captures"] else {
            "id": "CAPX", "status": "COMPLETED", "amount": order["amount"],
            "custom_id": order["custom_id"]}
        cap["supplementary_data"] = {"related_ids": {"order_id": oid}}
        cap.update(changes)
        return self.event("PAYMENT.CAPTURE.COMPLETED", cap)

    def refunded(self, oid: str, value: str, refund_id: str) -> tuple[bytes, dict[str, str]]:
        cap = self.orders[oid]["captures"][0]
        return self.event("PAYMENT.CAPTURE.REFUNDED", {
            "id": refund_id, "status": "COMPLETED",
            "amount": {"currency_code": "USD", "value": value},
            "links": [{"rel": "up", "method": "GET",
                       "href": f"{self.base}/v2/payments/captures/{cap['id']}"}]})

    def deliver(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=30)
