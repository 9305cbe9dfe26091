"""Every console page, message and error in Simplified Chinese (issue 17): each page is rendered
in zh-CN in-process, as an admin and as a user, with data in every table and through the
flash and error paths, and its visible text (text nodes and the title, placeholder, aria-label
and alt attributes; code and scripts excepted) may hold no English word outside an allow-list
of brand names, units and technical terms. The zh_CN catalog has no fuzzy or empty entry."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from smartoken.auth.secretbox import generate_key
from smartoken.catalog.builtin import builtin_catalog
from smartoken.i18n.catalog import LOCALE_DIR
from tests.console.conftest import add_user, csrf_of, http_session

PW = "pw-zh-pages-123456"
# Not English to translate: brands and product names, protocols and formats, units, the
# metavariables of the providers form's line syntax. Matched whole-word, case-sensitive.
ALLOWED = frozenset((
    "SmarToken", "OpenAI", "Anthropic", "Claude", "Codex", "DeepSeek", "Kimi", "Moonshot",
    "Qwen", "GLM", "MiniMax", "StepFun", "Doubao", "ERNIE", "Hunyuan", "Spark", "SenseNova",
    "Pangu", "Zhinao", "Yi", "InternLM", "LongCat", "Baichuan", "Seed", "API", "SDK", "SDKs",
    "URL", "JSON", "CSV", "SSE", "TTFT", "USD", "CNY", "UTC", "HTTP", "HTTPS", "ID", "IDs",
    "CSRF", "FIM", "NLP", "NUL", "AI", "PR", "SMTP", "Webhook", "POST", "PayPal", "Stripe",
    "Token", "token", "PDF", "DOCX", "TXT", "HTML", "Markdown", "cURL", "TypeScript", "Python",
    "LangChain", "K", "M", "ms", "s", "B", "KB", "MB", "GB", "KEY", "WEIGHT", "MODEL",
    "PRIORITY", "off", "sk",
))
# Names of APIs and of the console's own playground key, kept as written in Chinese text.
PHRASES = ("Chat Completions", "Files API", "Console playground", "Anthropic SDK",
           "Claude Code")
SKIP_TAGS = frozenset({"script", "style", "code", "pre", "textarea", "svg"})
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "wbr", "col"})
ATTRS = ("title", "placeholder", "aria-label", "alt")
WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
# Identifiers, not words: anything with a digit, _, /, ., :, @, = or … in it (model ids such as
# kimi-k2.6, request ids, file names, URLs, e-mail addresses, a code's last characters
# …XQZA), and hyphenated lower-case ids
# (deepseek-chat, file-extract) or formats (YYYY-MM-DD).
IDENT = re.compile(r"\S*[0-9_/.:@=…]\S*|\b(?:[a-z]+(?:-[a-z]+)+|[A-Z]+(?:-[A-Z]+)+)\b")


class _Visible(HTMLParser):
    """The text a reader sees: text nodes and labelling attributes, except code, scripts and
    what the page marks as not to translate (``translate="no"``: names, ids) or as English
    on purpose (``lang="en"``: an upstream's error detail)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    @property
    def skipping(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        skip = tag in SKIP_TAGS or a.get("translate") == "no" or \
            (a.get("lang") or "").startswith("en")
        if not skip and not self.skipping:
            self.parts.extend(v for k, v in attrs if k in ATTRS and v)
        if tag not in VOID:
            self.stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.parts.append(data.strip())


def english(html: str, also_allowed: Iterable[str] = (),
            phrases: Iterable[str] = ()) -> list[str]:
    """The visible text fragments of a page that hold an English word."""
    parser = _Visible()
    parser.feed(html)
    allowed = ALLOWED | set(also_allowed)
    found = []
    for part in parser.parts:
        text = part
        for phrase in (*PHRASES, *phrases):
            text = text.replace(phrase, " ")
        words = [w.strip("'’") for w in WORD.findall(IDENT.sub(" ", text))]
        if any(len(w) > 1 and w not in allowed for w in words):
            found.append(part)
    return found


def test_the_detector_catches_english_and_skips_what_is_allowed() -> None:
    page = ('<html><head><title>控制台</title></head><body><h1>Usage</h1><p title="Copy it">'
            '复制</p><code>client = OpenAI(base_url=x)</code><script>var a = "hello";</script>'
            '<p>kimi-k2.6 · 128K · 12 ms · DeepSeek · req_ab12 · notes.md</p>'
            '<p>每百万 tokens</p><p translate="no">Bob Smith<br>k1</p><p>错误：<span lang="en">'
            'upstream said no</span></p><p title="Hi"><span lang="en">ok</span> done</p>'
            '</body></html>')
    assert english(page) == ["Usage", "Copy it", "每百万 tokens", "Hi", "done"]
    assert english(page, ["Usage", "Copy", "it", "tokens", "Hi", "done"]) == []


@pytest.mark.parametrize("po", sorted((LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")),
                         ids=lambda p: p.name)
def test_the_zh_cn_catalog_has_no_fuzzy_or_empty_entries(po: Path) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    empty = [m.id for m in catalog if m.id and not (
        m.string if isinstance(m.string, str) else all(m.string))]
    obsolete = list(catalog.obsolete)
    assert not fuzzy and not empty and not obsolete, (fuzzy, empty, obsolete)
    # A translation keeps the placeholders of its English original.
    for m in catalog:
        if m.id and isinstance(m.id, str) and isinstance(m.string, str):
            assert sorted(re.findall(r"%\(\w+\)s", m.id)) == sorted(
                re.findall(r"%\(\w+\)s", m.string)), m.id


def _get(client: httpx.Client, path: str, status: int = 200) -> str:
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    return r.text


def test_every_console_page_and_message_in_chinese(make_inproc: Any) -> None:
    gw = make_inproc(env={"SMARTOKEN_SECRET_KEY": generate_key()})
    add_user(gw, "root1", PW, role="admin", credit="100")
    uid = add_user(gw, "user1", PW, credit="0.000001")
    zh = {"accept-language": "zh-CN,zh;q=0.9"}
    pages: dict[str, str] = {}

    # Signed out: the sign-in page and its three errors.
    anon = httpx.Client(base_url=gw.base_url, timeout=30, headers=zh)
    login = _get(anon, "/console/login")
    pages["login"] = login
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    pages["login: wrong password"] = anon.post("/console/login", data={
        "csrf_token": token.group(1), "name": "root1", "password": "wrong-password"}).text
    pages["login: stale form"] = anon.post("/console/login", data={
        "csrf_token": "stale", "name": "root1", "password": PW}).text
    for _ in range(12):
        r = anon.post("/console/login", data={"csrf_token": token.group(1), "name": "nobody1",
                                              "password": "wrong-password"})
    assert r.status_code == 429
    pages["login: throttled"] = r.text
    r = anon.post("/console/keys", data={"name": "k1"})
    pages["error 401"] = r.text

    admin, csrf = http_session(gw, "root1", PW)
    admin.headers.update(zh)
    # Flash and form-error paths of the keys page.
    r = admin.post("/console/keys", data={"csrf_token": csrf, "name": "k1",
                                          "daily_budget": "-1"})
    assert r.status_code == 400
    pages["keys: bad budget"] = r.text
    for bad in ({"name": ""}, {"name": "k1", "expires": "2001-01-01"},
                {"name": "k1", "monthly_budget": "lots"}, {"name": "k1", "expires": "x"},
                {"name": "k1", "families": "nofamily1"}):
        r = admin.post("/console/keys", data={"csrf_token": csrf, **bad})
        assert r.status_code == 400, bad
        pages[f"keys: {bad}"] = r.text
    r = admin.post("/console/keys", data={"csrf_token": csrf, "name": "k1",
                                          "families": ["kimi", "deepseek"],
                                          "daily_budget": "5", "monthly_budget": "50"})
    assert r.status_code == 303
    pages["keys: created"] = _get(admin, "/console/keys")
    key_id = re.findall(r"/console/keys/(\d+)/revoke", pages["keys: created"])[0]
    admin.post("/console/keys", data={"csrf_token": csrf, "name": "k2"})
    revoked = admin.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": csrf})
    pages["keys: revoked"] = _get(admin, revoked.headers["location"])

    # Traffic: answered, refused and failed requests for the usage pages and charts.
    key = gw.key(account="root1", name="k3")
    client = gw.client(key)
    for model in ("kimi-k2", "deepseek-flash", "qwen-plus"):
        client.chat.completions.create(model=model, max_tokens=8,
                                       messages=[{"role": "user", "content": "你好"}])
    poor = gw.key(account="user1", name="k4")
    refused = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={
        "authorization": f"Bearer {poor}"}, json={"model": "kimi-k2", "max_tokens": 8,
                                                  "messages": [{"role": "user", "content": "x"}]})
    assert refused.status_code == 402
    records = gw.wait_usage(3)
    upload = admin.post("/console/api/files", headers={"x-csrf-token": csrf},
                        files={"file": ("notes1.md", b"# Notes\n\n7741", "text/markdown")})
    assert upload.status_code == 200, upload.text
    fid = upload.json()["id"]

    # Admin forms: accounts, credits, one account's role, password and keys.
    for data in ({"name": "bad name!"}, {"name": "good1", "password": "short"}):
        r = admin.post("/console/admin/accounts", data={"csrf_token": csrf, **data})
        pages[f"accounts: {data}"] = r.text
    pages["accounts: created"] = admin.post("/console/admin/accounts", data={
        "csrf_token": csrf, "name": "made1"}).text
    pages["accounts: duplicate"] = admin.post("/console/admin/accounts", data={
        "csrf_token": csrf, "name": "made1"}).text
    for data in ({"account_id": str(uid), "amount": "x"},
                 {"account_id": str(uid), "amount": "-1"},
                 {"account_id": str(uid), "amount": "-1000", "kind": "adjustment"},
                 {"account_id": "999999", "amount": "1"},
                 {"account_id": str(uid), "amount": "1e30"}):
        pages[f"credit: {data}"] = admin.post("/console/admin/credit", data={
            "csrf_token": csrf, **data}).text
    r = admin.post("/console/admin/credit", data={"csrf_token": csrf, "account_id": str(uid),
                                                  "amount": "2.5"})
    assert r.status_code == 303
    pages["accounts: credited"] = _get(admin, r.headers["location"])
    acct = f"/console/admin/accounts/{uid}"
    for path, data in (("/role", {"role": "owner"}), ("/password", {"password": "short"}),
                       ("/disable", {"disabled": "1"}), ("/role", {"role": "user"})):
        r = admin.post(acct + path, data={"csrf_token": csrf, **data})
        pages[f"account {path} {data}"] = _get(admin, r.headers["location"]) \
            if r.status_code == 303 else r.text
    pages["account: password reset"] = admin.post(acct + "/password",
                                                  data={"csrf_token": csrf}).text
    own = f"/console/admin/accounts/{records[0]['account_id']}"
    for data in ({"role": "user"}, {"disabled": "1"}):
        pages[f"own account {data}"] = admin.post(
            own + ("/role" if "role" in data else "/disable"),
            data={"csrf_token": csrf, **data}).text
    user_key = re.findall(r"/keys/(\d+)\"", _get(admin, acct))[0]
    for data in ({"rpm": "x"}, {"expires": "x"}, {"daily_budget": "-5"}, {"name": "k5"}):
        r = admin.post(f"{acct}/keys/{user_key}", data={"csrf_token": csrf, **data})
        pages[f"account key {data}"] = _get(admin, r.headers["location"]) \
            if r.status_code == 303 else r.text

    # Providers: a stored provider, its failing test call, bad forms.
    pages["providers: saved"] = admin.post("/console/admin/providers", data={
        "csrf_token": csrf, "name": "moon1", "dialect": "openai",
        "base_url": "http://127.0.0.1:9", "api_keys": "vendor-key-0001",
        "routes": "kimi-k2 up-a 100 1"}, follow_redirects=True).text
    pages["providers: tested"] = admin.post("/console/admin/providers/moon1/test", data={
        "csrf_token": csrf}, follow_redirects=True).text
    pages["providers: bad"] = admin.post("/console/admin/providers", data={
        "csrf_token": csrf, "name": "", "dialect": "nope"}, follow_redirects=True).text
    pages["prices: bad"] = admin.post("/console/admin/prices", data={
        "csrf_token": csrf, "model": "kimi-k2", "input": "x"}, follow_redirects=True).text
    pages["models: bad"] = admin.post("/console/admin/models", data={
        "csrf_token": csrf, "id": ""}, follow_redirects=True).text

    # Redemption codes and statements (issue 15): the codes page and its form errors, a code
    # redeemed on the wallet page (and a wrong one), the monthly statements.
    for data in ({"count": "x", "amount": "1"}, {"count": "1", "amount": "lots"},
                 {"count": "1", "amount": "1", "days": "0"}):
        pages[f"codes: {data}"] = admin.post("/console/admin/codes", data={
            "csrf_token": csrf, **data}).text
    made = admin.post("/console/admin/codes", data={"csrf_token": csrf, "count": "2",
                                                    "amount": "1.5", "batch": "b1"})
    pages["codes: created"] = made.text if made.status_code != 303 else \
        _get(admin, made.headers["location"])
    shown = re.search(r'<pre id="made-codes"[^>]*>(.*?)</pre>', pages["codes: created"], re.S)
    codes = shown.group(1).split() if shown else []
    assert codes
    pages["redeem: wrong"] = admin.post("/console/wallet/redeem", data={
        "csrf_token": csrf, "code": "NOPE-NOPE-NOPE"}).text
    r = admin.post("/console/wallet/redeem", data={"csrf_token": csrf, "code": codes[0]})
    assert r.status_code == 303, r.text[:300]
    pages["redeem: done"] = _get(admin, r.headers["location"])
    month = records[0]["created_at"][:7] if isinstance(records[0]["created_at"], str) \
        else records[0]["created_at"].strftime("%Y-%m")
    for path in ("/console/wallet/statements", f"/console/wallet/statements/{month}",
                 "/console/admin/codes", f"{acct}/statements", f"{acct}/statements/{month}"):
        pages[path] = _get(admin, path)

    # Sign-up (issue 15): the admin's policy and invites, then a visitor's pages and errors.
    pages["signup policy: bad"] = admin.post("/console/admin/signup", data={
        "csrf_token": csrf, "policy": "open", "trial_credit": "lots"}).text
    pages["invites: bad"] = admin.post("/console/admin/invites", data={
        "csrf_token": csrf, "count": "x"}).text
    pages["invites: made"] = admin.post("/console/admin/invites", data={
        "csrf_token": csrf, "count": "2", "expires_days": "7"}).text
    r = admin.post("/console/admin/signup", data={"csrf_token": csrf, "policy": "open",
                                                  "trial_credit": "1"})
    pages["signup policy: saved"] = _get(admin, r.headers["location"]) \
        if r.status_code == 303 else r.text
    visitor = httpx.Client(base_url=gw.base_url, timeout=30, headers=zh)

    def form(path: str, name: str, **data: str) -> None:
        page = visitor.get(path)
        pages[name] = page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        r = visitor.post(path, data={"csrf_token": token.group(1) if token else "", **data})
        pages[f"{name}: posted"] = _get(visitor, r.headers["location"]) \
            if r.status_code == 303 else r.text

    form("/console/signup", "signup", email="not-an-address", password="short")
    form("/console/signup", "signup ok", email="new1@example.com", password=PW)
    form("/console/forgot", "forgot", email="not-an-address")
    form("/console/forgot", "forgot ok", email="new1@example.com")
    form("/console/reset?token=nope", "reset", token="nope", password=PW, confirm=PW + "x")
    for path in ("/console/check-mail", "/console/check-mail?for=reset",
                 "/console/verify?token=nope", "/console/login?reset=1"):
        pages[path] = visitor.get(path).text

    # Alerts and top-up (issue 15): the settings form and its errors; the top-up page with no
    # payment provider configured, its return pages, a receipt that does not exist.
    for data in ({"low_balance": "lots"}, {"percents": "abc"},
                 {"webhook_url": "ftp://example.com/x"}, {"email": "not-an-address"},
                 {"low_balance": "5", "percents": "50, 90", "email_enabled": "on"}):
        r = admin.post("/console/alerts", data={"csrf_token": csrf, **data})
        pages[f"alerts: {data}"] = _get(admin, r.headers["location"]) \
            if r.status_code == 303 else r.text
    r = admin.post("/console/alerts/rotate", data={"csrf_token": csrf})
    pages["alerts: rotated"] = _get(admin, r.headers["location"]) \
        if r.status_code == 303 else r.text
    r = admin.post("/console/wallet/topup", data={"csrf_token": csrf, "amount": "lots"})
    pages["topup: bad"] = r.text
    for path in ("/console/alerts", "/console/wallet/topup", "/console/wallet/topup/done",
                 "/console/wallet/topup/cancelled"):
        pages[path] = admin.get(path).text
    pages["receipt: none"] = admin.get("/console/wallet/receipts/999999").text

    # Every page, the admin's view.
    for path in ("/console/", "/console/keys", "/console/usage", "/console/wallet",
                 "/console/playground", "/console/models", "/console/files",
                 f"/console/files/{fid}", "/console/admin/routes", "/console/admin/accounts",
                 "/console/admin/platform", "/console/admin/providers", acct,
                 "/console/admin/signup",
                 "/console/usage?status=rejected", "/console/usage?account=all&page=2"):
        pages[path] = _get(admin, path)
    for rec in records:
        pages[f"usage {rec['model']}"] = _get(admin, f"/console/usage/{rec['id']}")
    model_ids = re.findall(r'<tr data-model="([^"]+)"', pages["/console/models"])
    assert len(model_ids) > 20
    for model_id in model_ids:
        pages[f"/console/models/{model_id}"] = _get(admin, f"/console/models/{model_id}")
    # Error pages.
    for path, status in (("/console/models/no-such-model", 404),
                         ("/console/usage/req_nothing", 404), ("/console/files/file-none", 404),
                         ("/console/usage?from=yesterday", 400), ("/console/usage?key=x", 400)):
        pages[f"error {path}"] = _get(admin, path, status)
    pages["error csrf"] = admin.post("/console/keys", data={"csrf_token": "forged",
                                                            "name": "k6"}).text
    pages["error NUL"] = admin.post("/console/keys", data={"csrf_token": csrf,
                                                           "name": "a\x00b"}).text
    pages["error revoke"] = admin.post("/console/keys/999999/revoke",
                                       data={"csrf_token": csrf}).text

    # A user's view, and the admin pages it may not open.
    admin.post(acct + "/disable", data={"csrf_token": csrf, "disabled": "0"})
    admin.post(acct + "/password", data={"csrf_token": csrf, "password": PW})
    user, _ = http_session(gw, "user1", PW)
    user.headers.update(zh)
    for path in ("/console/", "/console/keys", "/console/usage", "/console/wallet",
                 "/console/playground", "/console/files"):
        pages[f"user {path}"] = _get(user, path)
    pages["user: admin page"] = _get(user, "/console/admin/routes", 403)

    catalog = builtin_catalog()  # model ids and family slugs are identifiers
    names = {"root1", "user1", "made1", "good1", "moon1", "k1", "k2", "k3", "k4", "k5",
             *catalog.models, *catalog.families}
    data = ("test credit",)  # the harness's reason for a credit: an admin's words, shown as is
    found = {name: bad for name, page in pages.items() if (bad := english(page, names, data))}
    report = "\n".join(f"{name}: {bad}" for name, bad in found.items())
    assert not found, f"English on {len(found)} of {len(pages)} pages:\n{report}"
    for name, page in pages.items():
        assert '<html lang="zh-CN"' in page, name
    assert all(csrf_of(p) for p in (pages["/console/keys"], pages["user /console/keys"]))


def test_the_detector_reads_the_templates_it_guards() -> None:
    """The pages above come from these templates: a new template must be visited too."""
    templates = {p.stem for p in (Path(__file__).resolve().parents[2] / "smartoken" /
                                  "console" / "templates").glob("*.html")}
    visited = {"_macros", "base", "admin_account", "admin_accounts", "admin_platform",
               "admin_providers", "admin_routes", "dashboard", "error", "file", "files",
               "keys", "login", "model", "models", "playground", "usage", "usage_detail",
               "wallet", "_wallet_codes", "admin_codes", "statement", "statements",
               "signup", "check_mail", "forgot", "reset", "verified", "admin_signup",
               "alerts", "_alerts", "topup", "topup_done", "receipt", "_receipts"}
    assert templates <= visited, sorted(templates - visited)


def test_console_json_errors_follow_the_chosen_language(make_inproc: Any) -> None:
    """A user who switched the console to Chinese (its cookie) gets the console's JSON errors
    in Chinese too, whatever the browser's Accept-Language; without the choice the header
    decides, as for API clients."""
    gw = make_inproc()
    add_user(gw, "zh-json", PW)
    client, csrf = http_session(gw, "zh-json", PW)

    def error() -> str:
        r = client.post("/console/api/playground", json={"model": "kimi-k2", "messages": []},
                        headers={"x-csrf-token": csrf, "accept-language": "en-US,en"})
        assert r.status_code == 400, r.text
        return str(r.json()["error"]["message"])

    with contextlib.closing(client):
        english = error()
        client.cookies.set("st_lang", "zh_CN")  # what the console's language switch sets
        chinese = error()
    assert "Write a message first." in english and not re.search(r"[\u4e00-\u9fff]", english)
    assert "Write a message first." in chinese and re.search(r"[\u4e00-\u9fff]", chinese)
