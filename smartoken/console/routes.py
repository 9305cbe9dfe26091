"""The console's URL map, mounted by ``smartoken.app`` under ``/console``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from smartoken.console import (
    admin,
    admin_account,
    admin_providers,
    admin_signup,
    billing,
    files,
    keys,
    language,
    models,
    pages,
    platform,
    playground,
    signin,
    signup,
    topup,
)
from smartoken.console.http import endpoint

STATIC = Path(__file__).parent / "static"


async def to_console(request: Request) -> Response:
    return RedirectResponse("/console/", 307)


def console_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/", endpoint(pages.dashboard)),
        Route("/login", signin.login_form, methods=["GET"]),
        Route("/login", signin.login, methods=["POST"]),
        Route("/lang", language.switch_language, methods=["GET"]),
        Route("/signup", signup.signup_form, methods=["GET"]),
        Route("/signup", signup.signup, methods=["POST"]),
        Route("/signup/resend", signup.resend, methods=["POST"]),
        Route("/check-mail", signup.check_mail, methods=["GET"]),
        Route("/verify", signup.verify, methods=["GET"]),
        Route("/forgot", signup.forgot_form, methods=["GET"]),
        Route("/forgot", signup.forgot, methods=["POST"]),
        Route("/reset", signup.reset_form, methods=["GET"]),
        Route("/reset", signup.reset, methods=["POST"]),
        Route("/admin/signup", endpoint(admin_signup.signup_get, admin=True), methods=["GET"]),
        Route("/admin/signup", endpoint(admin_signup.save_policy, admin=True),
              methods=["POST"]),
        Route("/admin/invites", endpoint(admin_signup.create_invites, admin=True),
              methods=["POST"]),
        Route("/admin/invites/{invite_id:int}/revoke",
              endpoint(admin_signup.revoke_invite, admin=True), methods=["POST"]),
        Route("/logout", endpoint(signin.logout), methods=["POST"]),
        Route("/keys", endpoint(keys.keys_page), methods=["GET"]),
        Route("/keys", endpoint(keys.create_key), methods=["POST"]),
        Route("/keys/{key_id:int}/revoke", endpoint(keys.revoke_key), methods=["POST"]),
        Route("/usage", endpoint(pages.usage)),
        Route("/usage.csv", endpoint(pages.usage_csv)),
        Route("/usage/{request_id}", endpoint(pages.usage_detail)),
        Route("/files", endpoint(files.files_page)),
        Route("/files/{file_id}", endpoint(files.preview)),
        Route("/files/{file_id}/delete", endpoint(files.delete), methods=["POST"]),
        Route("/api/files", endpoint(files.upload, api=True), methods=["POST"]),
        Route("/wallet", endpoint(pages.wallet)),
        Route("/wallet/redeem", endpoint(billing.redeem), methods=["POST"]),
        Route("/wallet/statements", endpoint(billing.statements_page)),
        Route("/wallet/statements/{month}.csv", endpoint(billing.statement_csv)),
        Route("/wallet/statements/{month}", endpoint(billing.statement_page)),
        Route("/admin/codes", endpoint(billing.codes_get, admin=True), methods=["GET"]),
        Route("/admin/codes", endpoint(billing.create_codes, admin=True), methods=["POST"]),
        Route("/admin/codes/revoke-batch", endpoint(billing.revoke_batch, admin=True),
              methods=["POST"]),
        Route("/admin/codes/{code_id:int}/revoke", endpoint(billing.revoke_code, admin=True),
              methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/statements",
              endpoint(billing.admin_statements_page, admin=True)),
        Route("/admin/accounts/{account_id:int}/statements/{month}.csv",
              endpoint(billing.admin_statement_csv, admin=True)),
        Route("/admin/accounts/{account_id:int}/statements/{month}",
              endpoint(billing.admin_statement_page, admin=True)),
        Route("/wallet/topup", endpoint(topup.topup_page), methods=["GET"]),
        Route("/wallet/topup", endpoint(topup.start_topup), methods=["POST"]),
        Route("/wallet/topup/done", endpoint(topup.topup_done)),
        Route("/wallet/topup/cancelled", endpoint(topup.topup_cancelled)),
        Route("/wallet/receipts/{number:int}", endpoint(topup.receipt_page)),
        Route("/playground", endpoint(playground.playground_page)),
        Route("/models", endpoint(models.models_page)),
        Route("/models/{model_id:path}", endpoint(models.model_page)),
        Route("/admin/routes", endpoint(admin.routes_page, admin=True)),
        Route("/admin/platform", endpoint(platform.platform_page, admin=True)),
        Route("/admin/accounts", endpoint(admin.accounts_get, admin=True), methods=["GET"]),
        Route("/admin/accounts", endpoint(admin.create_account, admin=True), methods=["POST"]),
        Route("/admin/credit", endpoint(admin.credit, admin=True), methods=["POST"]),
        Route("/admin/accounts/{account_id:int}",
              endpoint(admin_account.account_get, admin=True), methods=["GET"]),
        Route("/admin/accounts/{account_id:int}/role",
              endpoint(admin_account.set_role, admin=True), methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/disable",
              endpoint(admin_account.set_disabled, admin=True), methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/password",
              endpoint(admin_account.reset_password, admin=True), methods=["POST"]),
        Route("/admin/accounts/{account_id:int}/keys/{key_id:int}",
              endpoint(admin_account.edit_key, admin=True), methods=["POST"]),
        Route("/admin/providers", endpoint(admin_providers.providers_page, admin=True),
              methods=["GET"]),
        Route("/admin/providers", endpoint(admin_providers.save_provider, admin=True),
              methods=["POST"]),
        Route("/admin/providers/{name}/test",
              endpoint(admin_providers.test_provider, admin=True), methods=["POST"]),
        Route("/admin/providers/{name}/delete",
              endpoint(admin_providers.delete_provider, admin=True), methods=["POST"]),
        Route("/admin/prices", endpoint(admin_providers.save_price, admin=True),
              methods=["POST"]),
        Route("/admin/models", endpoint(admin_providers.add_model, admin=True),
              methods=["POST"]),
        Route("/api/playground", endpoint(playground.playground_chat, api=True),
              methods=["POST"]),
        Route("/api/samples", endpoint(playground.playground_samples, api=True),
              methods=["POST"]),
        Route("/api/usage/{request_id}", endpoint(pages.usage_record, api=True)),
        Route("/api/health", endpoint(admin.health_json, admin=True, api=True)),
        Mount("/static", app=StaticFiles(directory=STATIC), name="console-static"),
    ]
    return [Route("/", to_console), Route("/console", to_console),
            Mount("/console", routes=routes)]
