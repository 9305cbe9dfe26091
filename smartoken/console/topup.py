"""Top-up in the console (wallet page): pick a preset or an amount and a provider, go to the
provider's checkout, come back to a page that says the credit is pending until the provider
confirms the payment (the redirect never credits: only a verified webhook, or PayPal's capture
answer, does). Receipts: one printable page per payment event (top-up, refund, dispute)."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from smartoken.api.payments import payments_of
from smartoken.console.http import SECURITY_HEADERS, Ctx
from smartoken.errors import InvalidRequest, NotFound
from smartoken.money import MoneyError, format_usd, parse_usd
from smartoken.payments import ledger
from smartoken.payments.service import Payments

CSP = SECURITY_HEADERS["content-security-policy"]


def _form_action(payments: Payments) -> str:
    """The page's CSP with the providers' checkout origins allowed as form targets (the
    console's POST answers with a redirect there, which form-action governs)."""
    origins = sorted({o for p in payments.providers.values() for o in p.checkout_origins})
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))


async def topup_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    payments = payments_of(ctx.request)
    s = payments.settings
    providers = [(p.name, p.label) for p in payments.providers.values()]
    recent = await ledger.account_payments(ctx.state.engine, ctx.user.id, 10)
    presets = [(format_usd(p), p) for p in s.presets]
    response = ctx.render("topup.html", status, providers=providers, presets=presets,
                          min_micro=s.min_micro, max_micro=s.max_micro, recent=recent, **extra)
    response.headers["content-security-policy"] = _form_action(payments)
    return response


async def start_topup(ctx: Ctx) -> Response:
    payments = payments_of(ctx.request)
    form = await ctx.request.form()
    raw = str(form.get("amount") or form.get("preset") or "").strip().lstrip("$")
    try:
        micro = parse_usd(raw)
    except MoneyError:
        raise InvalidRequest("The amount must be a USD amount such as 10 or 12.50.",
                             param="amount", code="invalid_amount") from None
    provider = str(form.get("provider", ""))
    url = await payments.start(ctx.state, ctx.user.id, provider, micro,
                               str(ctx.request.base_url))
    return RedirectResponse(url, 303)


async def _own_payment(ctx: Ctx) -> dict[str, Any]:
    pid = ctx.request.query_params.get("payment", "")
    payment = await ledger.get_payment(ctx.state.engine, pid[:40]) if pid else None
    if payment is None or payment["account_id"] != ctx.user.id:
        raise NotFound("No such payment.", code="payment_not_found")
    return payment


async def topup_done(ctx: Ctx) -> Response:
    """Back from the checkout. PayPal's order is captured here (a server call whose answer is
    verified and applied once); Stripe's payment is credited by its webhook. Until then the
    page says pending and refreshes itself."""
    payment = await _own_payment(ctx)
    if payment["status"] == ledger.PENDING:
        await payments_of(ctx.request).complete(ctx.state, payment)
        payment = await _own_payment(ctx)
    return ctx.render("topup_done.html", payment=payment, cancelled=False)


async def topup_cancelled(ctx: Ctx) -> Response:
    return ctx.render("topup_done.html", payment=await _own_payment(ctx), cancelled=True)


async def receipt_page(ctx: Ctx) -> Response:
    number = int(ctx.request.path_params["number"])
    row = await ledger.receipt(ctx.state.engine, ctx.user.id, number)
    if row is None:
        raise NotFound("No such receipt.", code="receipt_not_found")
    return ctx.render("receipt.html", r=row)
