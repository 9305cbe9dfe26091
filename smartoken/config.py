"""Typed settings, read once at start-up: CLI options, environment, and an optional YAML file.

Nothing here runs at import time. ``load_settings`` returns a frozen picture of the gateway's
configuration; errors name the file, the key and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from smartoken.catalog.builtin import DEMO_MODEL_ID, builtin_document
from smartoken.catalog.document import CatalogError, build, overlay
from smartoken.catalog.model import CAPABILITIES, Catalog, ModelSpec, Source
from smartoken.money import MoneyError, Price, parse_usd
from smartoken.notify.mail import DEFAULT_FROM, SmtpTarget, format_sender, parse_smtp_url
from smartoken.payments import settings as payment_settings
from smartoken.providers.egress import ENV as EGRESS_ENV
from smartoken.providers.egress import KEY as EGRESS_KEY
from smartoken.providers.egress import EgressPolicy
from smartoken.providers.presets import PRESETS, base_url_env
from smartoken.routing.health import BreakerPolicy

DIALECTS = {
    "openai", "demo", "moonshot", "deepseek", "qwen", "glm", "ernie", "hunyuan", "minimax",
    "doubao", "stepfun", "baichuan", "spark", "yi", "sensenova", "pangu", "zhinao", "internlm",
    "longcat", "anthropic",
}


class ConfigError(ValueError):
    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 60.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    dialect: str
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    timeouts: Timeouts = Timeouts()
    headers: tuple[tuple[str, str], ...] = ()
    # A key pool (``api_keys:``): every key with its weight; empty means just ``api_key``.
    key_pool: tuple[tuple[str, int], ...] = field(default=(), repr=False)
    # The most an answer (a unary body, or one event of a stream) may hold, decompressed: an
    # upstream that sends more (a bug, an attack) gets a 502, not the gateway's memory.
    max_answer_bytes: int = 256 * 1024 * 1024

    @property
    def is_demo(self) -> bool:
        return self.dialect == "demo"

    def keys(self) -> tuple[tuple[str, int], ...]:
        """The vendor keys to draw from, with weights (``api_key`` alone when no pool)."""
        if self.key_pool:
            return self.key_pool
        return ((self.api_key, 1),) if self.api_key else ()


@dataclass(frozen=True, slots=True)
class RouteConfig:
    model: str
    provider: str
    upstream_model: str
    priority: int = 0
    weight: int = 1
    enabled: bool = True

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Per-account limits of the Files API (``files:`` in the YAML file)."""

    max_files: int = 1000
    max_file_bytes: int = 100 * 1024 * 1024
    max_total_bytes: int = 10 * 1024 * 1024 * 1024
    max_text_chars: int = 4_000_000  # text a single file may yield
    extract_workers: int = 1
    extract_timeout: float = 120.0


SIGNUP_POLICIES = ("closed", "invite", "open")


@dataclass(frozen=True, slots=True)
class SignupSettings:
    """``signup:`` in the YAML file (docs/accounts.md). The policy and the trial credit are
    defaults: an admin can change both at run time (console, stored in console_settings)."""

    policy: str = "closed"  # closed | invite | open
    trial_credit: int = 0  # micro-USD credited once when an account's email is verified
    verify_hours: int = 48  # a verification link works this long
    reset_minutes: int = 60  # a password-reset link works this long
    # Sign-up, resend and reset requests per 15 minutes: per address typed, per client.
    per_email: int = 3
    per_client: int = 20


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str | None = None
    timezone: str = "UTC"
    log_level: str = "info"
    max_body_bytes: int = 32 * 1024 * 1024
    initial_admin_credit: int = 100_000_000  # $100 of demo credit on first start
    admin_name: str = "admin"
    master_key: str | None = field(default=None, repr=False)
    # Operations (issue 8): edge limits, CORS, shutdown, secrets at rest.
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()
    max_header_bytes: int = 64 * 1024
    auth_failures_per_minute: int = 20
    shutdown_grace_s: float = 30.0
    shutdown_delay_s: float = 0.0
    ledger_flush_s: float = 0.25  # how often the batched ledger writer commits
    # Stored Responses API answers (previous_response_id) are kept this many days; 0 stores none.
    responses_retention_days: int = 30
    # Private addresses allowed as upstreams (providers/egress.py); none by default.
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # Outgoing mail (notify/mail.py): the SMTP server (None: mails are logged, not sent), the
    # From address, and the gateway's public URL that links in mails start with ("" : the
    # request's own base URL).
    smtp: SmtpTarget | None = field(default=None, repr=False)
    mail_from: str = DEFAULT_FROM
    public_url: str = ""
    signup: SignupSettings = SignupSettings()
    # Online top-up (smartoken/payments): providers from the environment, amounts.
    payments: payment_settings.PaymentSettings = field(
        default_factory=payment_settings.PaymentSettings)
    config_path: Path | None = None
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    catalog: Catalog = field(default_factory=Catalog)
    files: FileLimits = FileLimits()
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    # What the catalog and the routes are composed from (``with_catalog``): the built-in
    # document or none, the file's ``models:`` entries, the presets enabled by a key variable,
    # the ``demo`` switch.
    use_builtin_catalog: bool = True
    model_overrides: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    presets: tuple[str, ...] = ()
    demo: bool | str = "auto"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'smartoken.db').resolve()}"


DEMO_PROVIDER = ProviderConfig("demo", "demo")


def _section(data: Any, source: str, key: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, key, "must be a mapping")
    return data


def _usd(value: Any, source: str, key: str) -> int:
    try:
        return parse_usd(value if not isinstance(value, float) else str(value))
    except MoneyError as exc:
        raise ConfigError(source, key, str(exc)) from None


def _int(value: Any, source: str, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(source, key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _provider(name: str, raw: Any, source: str, env: Mapping[str, str]) -> ProviderConfig:
    key = f"providers.{name}"
    raw = _section(raw, source, key)
    known = {"base_url", "api_key", "api_key_env", "api_keys", "dialect", "timeouts", "headers",
             "max_answer_mb"}
    for extra in set(raw) - known:
        raise ConfigError(source, f"{key}.{extra}", "unknown option")
    dialect = raw.get("dialect", "openai")
    if dialect not in DIALECTS:
        raise ConfigError(source, f"{key}.dialect", f"unknown dialect {dialect!r}")
    base_url = raw.get("base_url", "")
    if dialect != "demo" and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(source, f"{key}.base_url", "must be an http(s) URL")
    api_key = raw.get("api_key")
    if "api_key_env" in raw:
        api_key = env.get(str(raw["api_key_env"]))
    pool = _key_pool(raw.get("api_keys"), source, f"{key}.api_keys", env)
    if pool:
        if api_key is not None:
            raise ConfigError(source, f"{key}.api_keys", "use either api_key(_env) or api_keys")
        api_key = pool[0][0]
    t = _section(raw.get("timeouts"), source, f"{key}.timeouts")
    try:
        timeouts = Timeouts(**{k: float(v) for k, v in t.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, f"{key}.timeouts", str(exc)) from None
    headers = _section(raw.get("headers"), source, f"{key}.headers")
    answer_mb = _int(raw.get("max_answer_mb", 256), source, f"{key}.max_answer_mb", 1)
    return ProviderConfig(
        name, dialect, base_url.rstrip("/"), api_key, timeouts,
        tuple((str(k), str(v)) for k, v in headers.items()), pool,
        max_answer_bytes=answer_mb * 1024 * 1024,
    )


def _key_pool(raw: Any, source: str, key: str, env: Mapping[str, str]
              ) -> tuple[tuple[str, int], ...]:
    """``api_keys:`` entries: a key string, or ``{key | key_env, weight}``. A ``key_env``
    naming an unset variable is skipped (so a pool can list optional keys)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(source, key, "must be a non-empty list")
    out: list[tuple[str, int]] = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"key": item}
        item = _section(item, source, where)
        for extra in set(item) - {"key", "key_env", "weight"}:
            raise ConfigError(source, f"{where}.{extra}", "unknown option")
        value = env.get(str(item["key_env"])) if "key_env" in item else item.get("key")
        if "key_env" not in item and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(source, f"{where}.key", "must be a non-empty string")
        weight = _int(item.get("weight", 1), source, f"{where}.weight", 1)
        if value:
            out.append((value.strip(), weight))
    return tuple(out)


def _model(model_id: str, raw: Any, source: str, base: ModelSpec | None) -> ModelSpec:
    """A ``models:`` entry of the file, over the catalog's entry of the same id. Setting a
    price here replaces the catalog's price and its time-of-day windows."""
    key = f"models.{model_id}"
    raw = _section(raw, source, key)
    prices = ("input_price", "output_price", "cached_input_price", "cache_write_price")
    known = {"family", "context_window", "max_output", *prices, "fallbacks", "routes",
             "description", "kind", "auto_variants", "context_fallbacks", "upstream_id",
             "capabilities"}
    for extra in set(raw) - known:
        raise ConfigError(source, f"{key}.{extra}", "unknown option")
    if base is None:
        for required in ("family", "context_window", "input_price", "output_price"):
            if required not in raw:
                raise ConfigError(source, f"{key}.{required}", "is required for a new model")
    price = base.price if base else Price(0, 0)

    def usd(name: str, current: int | None) -> int | None:
        value = raw.get(name)
        return current if value is None else _usd(value, source, f"{key}.{name}")

    repriced = any(raw.get(p) is not None for p in prices)
    if repriced:
        price = Price(usd("input_price", price.input) or 0, usd("output_price", price.output) or 0,
                      usd("cached_input_price", price.cached_input),
                      usd("cache_write_price", price.cache_write))
    context = _int(raw.get("context_window", base.context_window if base else 0), source,
                   f"{key}.context_window", 1)
    max_output = _int(raw.get("max_output", base.max_output if base else min(8192, context)),
                      source, f"{key}.max_output", 0)
    spec = base or ModelSpec(model_id, "", context, max_output, price)
    return replace(
        spec,
        id=model_id,
        family=str(raw.get("family", spec.family)),
        context_window=context,
        max_output=max_output,
        price=price,
        windows=() if repriced else spec.windows,
        price_source=Source(source, note="configuration file") if repriced
        else spec.price_source,
        context_source=Source(source, note="configuration file") if "context_window" in raw
        else spec.context_source,
        description=str(raw.get("description", spec.description)),
        auto_variants=tuple(raw.get("auto_variants", spec.auto_variants)),
        fallbacks=tuple(raw.get("fallbacks", spec.fallbacks)),
        context_fallbacks=tuple(raw.get("context_fallbacks", spec.context_fallbacks)),
        kind=str(raw.get("kind", spec.kind)),
        upstream_id=str(raw.get("upstream_id", spec.upstream_id)),
        capabilities=_capabilities(raw["capabilities"], source, f"{key}.capabilities")
        if "capabilities" in raw else spec.capabilities,
    )


def _capabilities(value: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or any(c not in CAPABILITIES for c in value):
        raise ConfigError(source, key, f"must be a list of {', '.join(CAPABILITIES)}")
    return tuple(dict.fromkeys(value))


def _routes(model_id: str, raw: Any, source: str) -> list[RouteConfig]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(source, f"models.{model_id}.routes", "must be a list")
    out = []
    for i, r in enumerate(raw):
        key = f"models.{model_id}.routes[{i}]"
        r = _section(r, source, key)
        for extra in set(r) - {"provider", "upstream_model", "priority", "weight", "enabled"}:
            raise ConfigError(source, f"{key}.{extra}", "unknown option")
        if "provider" not in r:
            raise ConfigError(source, f"{key}.provider", "is required")
        out.append(
            RouteConfig(
                model_id, str(r["provider"]), str(r.get("upstream_model", model_id)),
                _int(r.get("priority", 0), source, f"{key}.priority"),
                _int(r.get("weight", 1), source, f"{key}.weight", 1),
                bool(r.get("enabled", True)),
            )
        )
    return out


def _files(raw: Any, source: str) -> FileLimits:
    raw = _section(raw, source, "files")
    mb = {"max_file_mb": "max_file_bytes", "max_total_mb": "max_total_bytes"}
    known = {"max_files", "max_text_chars", "extract_workers", "extract_timeout", *mb}
    for extra in set(raw) - known:
        raise ConfigError(source, f"files.{extra}", "unknown option")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in mb:
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ConfigError(source, f"files.{k}", f"must be a number > 0, got {v!r}")
            out[mb[k]] = int(v * 1024 * 1024)
        elif k == "extract_timeout":
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ConfigError(source, f"files.{k}", f"must be a number > 0, got {v!r}")
            out[k] = float(v)
        else:
            out[k] = _int(v, source, f"files.{k}", 1)
    return FileLimits(**out)


MAIL_KEYS = ("smtp_url", "mail_from", "public_url")
OPS_KEYS = ("cors_origins", "max_header_kb", "auth_failures_per_minute", "shutdown_grace_s",
            "shutdown_delay_s", "ledger_flush_ms")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _seconds(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ConfigError(source, key, f"must be a number of seconds in 0..3600, got {value!r}")
    return float(value)


def _flush_ms(value: Any, source: str) -> int:
    if _int(value, source, "ledger_flush_ms", 10) > 60_000:
        raise ConfigError(source, "ledger_flush_ms", f"must be at most 60000, got {value!r}")
    return int(value)


def _egress(data: dict[str, Any], source: str, env: Mapping[str, str]) -> EgressPolicy:
    raw = data.get(EGRESS_KEY, env.get(EGRESS_ENV, "").split(","))
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
        raise ConfigError(source, EGRESS_KEY, "must be a list of networks (10.0.0.0/8) or host "
                                              "names")
    try:
        return EgressPolicy.parse(raw)
    except ValueError as exc:
        raise ConfigError(source, EGRESS_KEY, str(exc)) from None


def _ops(data: dict[str, Any], source: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The operations settings: edge limits, CORS, shutdown timing, the secrets-at-rest keys."""
    origins = data.get("cors_origins", [])
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, list) or not all(
            isinstance(o, str) and (o == "*" or o.startswith(("http://", "https://")))
            for o in origins):
        raise ConfigError(source, "cors_origins",
                          "must be a list of origins like https://app.example.com (or '*')")
    level = str(data.get("log_level", env.get("SMARTOKEN_LOG_LEVEL", "info"))).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(source, "log_level", f"must be one of {', '.join(LOG_LEVELS)}, "
                                               f"got {level!r}")
    raw_keys = env.get("SMARTOKEN_SECRET_KEY", "")
    return {
        "cors_origins": tuple(origins),
        "max_header_bytes": _int(data.get("max_header_kb", 64), source, "max_header_kb", 1) * 1024,
        "auth_failures_per_minute": _int(data.get("auth_failures_per_minute", 20), source,
                                         "auth_failures_per_minute", 1),
        "shutdown_grace_s": _seconds(data.get("shutdown_grace_s", 30), source,
                                     "shutdown_grace_s"),
        "shutdown_delay_s": _seconds(data.get("shutdown_delay_s", 0), source,
                                     "shutdown_delay_s"),
        "ledger_flush_s": _flush_ms(data.get("ledger_flush_ms", 250), source) / 1000,
        "secret_keys": tuple(k.strip() for k in raw_keys.split(",") if k.strip()),
    }


def _mail(data: dict[str, Any], source: str, env: Mapping[str, str]) -> dict[str, Any]:
    """``smtp_url``, ``mail_from``, ``public_url`` (file) or their SMARTOKEN_ variables."""
    out: dict[str, Any] = {}
    url = data.get("smtp_url", env.get("SMARTOKEN_SMTP_URL", ""))
    if not isinstance(url, str):
        raise ConfigError(source, "smtp_url", "must be a string like smtp://user:pass@host:587")
    if url.strip():
        try:
            out["smtp"] = parse_smtp_url(url)
        except ValueError as exc:  # the message never repeats the password
            raise ConfigError(source, "smtp_url", str(exc)) from None
    sender = data.get("mail_from", env.get("SMARTOKEN_MAIL_FROM", ""))
    if sender:
        try:
            out["mail_from"] = format_sender(str(sender))
        except ValueError as exc:
            raise ConfigError(source, "mail_from", str(exc)) from None
    public = data.get("public_url", env.get("SMARTOKEN_PUBLIC_URL", ""))
    if public:
        public = str(public).strip().rstrip("/")
        if not public.startswith(("http://", "https://")) or any(
                c in public for c in " \r\n\0?#"):
            raise ConfigError(source, "public_url",
                              "must be an http(s) URL like https://gateway.example.com")
        out["public_url"] = public
    return out
def _payments(data: dict[str, Any], source: str,
              env: Mapping[str, str]) -> payment_settings.PaymentSettings:
    try:
        return payment_settings.load(_section(data.get("payments"), source, "payments"), env)
    except payment_settings.PaymentConfigError as exc:
        raise ConfigError(source, exc.key, exc.problem) from None


def _signup(raw: Any, source: str, env: Mapping[str, str]) -> SignupSettings:
    raw = _section(raw, source, "signup")
    known = {"policy", "trial_credit_usd", "verify_link_hours", "reset_link_minutes",
             "throttle_per_email", "throttle_per_client"}
    for extra in set(raw) - known:
        raise ConfigError(source, f"signup.{extra}", "unknown option")
    policy = str(raw.get("policy", env.get("SMARTOKEN_SIGNUP_POLICY", "closed"))).lower()
    if policy not in SIGNUP_POLICIES:
        raise ConfigError(source, "signup.policy", f"must be one of {', '.join(SIGNUP_POLICIES)}")
    trial = _usd(raw.get("trial_credit_usd", env.get("SMARTOKEN_TRIAL_CREDIT_USD", "0")),
                 source, "signup.trial_credit_usd")
    if trial < 0 or trial > 1_000_000 * 1_000_000:
        raise ConfigError(source, "signup.trial_credit_usd", "must be in 0..1000000")
    hours = _int(raw.get("verify_link_hours", 48), source, "signup.verify_link_hours", 1)
    minutes = _int(raw.get("reset_link_minutes", 60), source, "signup.reset_link_minutes", 5)
    if hours > 24 * 30 or minutes > 24 * 60:
        raise ConfigError(source, "signup", "links live at most 720 hours (verify) and 1440 "
                                            "minutes (reset)")
    return SignupSettings(
        policy, trial, hours, minutes,
        _int(raw.get("throttle_per_email", 3), source, "signup.throttle_per_email", 1),
        _int(raw.get("throttle_per_client", 20), source, "signup.throttle_per_client", 1))


def _breaker(raw: Any, source: str) -> BreakerPolicy:
    """``breaker:`` tunes the per-route circuit breaker (routing/health.py)."""
    raw = _section(raw, source, "breaker")
    fields = set(BreakerPolicy.__dataclass_fields__)
    for extra in set(raw) - fields:
        raise ConfigError(source, f"breaker.{extra}", "unknown option")
    try:
        return BreakerPolicy(**{k: type(getattr(BreakerPolicy(), k))(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, "breaker", str(exc)) from None


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    **cli: Any,
) -> Settings:
    """Build the settings from the YAML file (optional), the environment and CLI overrides."""
    env = os.environ if env is None else env
    source = str(config_path) if config_path else "<defaults>"
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, "<file>", f"cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(source, "<file>", f"invalid YAML: {exc}") from None
        data = _section(loaded, source, "<top level>")
    known = {"host", "port", "workers", "data_dir", "database_url", "redis_url", "timezone",
             "log_level", "max_body_mb", "initial_admin_credit", "builtin_catalog",
             "builtin_presets", "demo", "providers", "models", "files", "breaker",
             "responses_retention_days", "signup", "payments", EGRESS_KEY, *OPS_KEYS,
             *MAIL_KEYS}
    for extra in set(data) - known:
        raise ConfigError(source, extra, "unknown option")

    providers: dict[str, ProviderConfig] = {}
    presets: list[str] = []
    if data.get("builtin_presets", True):
        for preset in PRESETS:
            key = env.get(preset.key_env)
            if not key:
                continue
            url = env.get(base_url_env(preset), preset.base_url).rstrip("/")
            providers[preset.provider] = ProviderConfig(preset.provider, preset.provider, url, key)
            presets.append(preset.provider)

    for name, raw in _section(data.get("providers"), source, "providers").items():
        providers[str(name)] = _provider(str(name), raw, source, env)

    overrides = tuple((str(k), _section(v, source, f"models.{k}"))
                      for k, v in _section(data.get("models"), source, "models").items())
    demo = data.get("demo", "auto")
    if demo not in ("auto", True, False):
        raise ConfigError(source, "demo", "must be auto, true or false")
    if demo is not False:
        providers.setdefault("demo", DEMO_PROVIDER)

    egress = _egress(data, source, env)
    for name, p in providers.items():
        refusal = egress.url_refusal(p.base_url) if p.base_url else None
        if refusal:
            raise ConfigError(source, f"providers.{name}.base_url", refusal)

    tz = str(data.get("timezone", env.get("SMARTOKEN_TIMEZONE", "UTC")))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(source, "timezone", f"unknown time zone {tz!r}") from None

    settings = Settings(
        host=str(data.get("host", "127.0.0.1")),
        port=_int(data.get("port", 8000), source, "port", 0),
        workers=_int(data.get("workers", 1), source, "workers", 1),
        data_dir=Path(data.get("data_dir", env.get("SMARTOKEN_DATA_DIR", "data"))),
        database_url=str(data.get("database_url", env.get("SMARTOKEN_DATABASE_URL", ""))),
        redis_url=data.get("redis_url", env.get("SMARTOKEN_REDIS_URL")) or None,
        timezone=tz,
        log_level=str(data.get("log_level", env.get("SMARTOKEN_LOG_LEVEL", "info"))),
        max_body_bytes=_int(data.get("max_body_mb", 32), source, "max_body_mb", 1) * 1024 * 1024,
        initial_admin_credit=_usd(data.get("initial_admin_credit", "100"), source,
                                  "initial_admin_credit"),
        master_key=env.get("SMARTOKEN_MASTER_KEY") or None,
        responses_retention_days=_int(data.get("responses_retention_days", 30), source,
                                      "responses_retention_days", 0),
        **_ops(data, source, env),
        **_mail(data, source, env),
        signup=_signup(data.get("signup"), source, env),
        egress=egress,
        payments=_payments(data, source, env),
        config_path=config_path,
        providers=providers,
        files=_files(data.get("files"), source),
        breaker=_breaker(data.get("breaker"), source),
        use_builtin_catalog=bool(data.get("builtin_catalog", True)),
        model_overrides=overrides,
        presets=tuple(presets),
        demo=demo,
    )
    settings = with_catalog(settings, None)
    clean = {k: v for k, v in cli.items() if v is not None}
    if "data_dir" in clean:
        clean["data_dir"] = Path(clean["data_dir"])
    return replace(settings, **clean)


DEMO_FAMILY = {"demo": {"name": "SmarToken demo", "vendor": "SmarToken", "reasoning": 1,
                        "coding": 1, "best_for": "demo"}}


def catalog_document(settings: Settings, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalog document in force: the built-in one (unless switched off) with the stored
    import laid over it. The file's ``models:`` entries apply on top (``with_catalog``)."""
    doc = builtin_document() if settings.use_builtin_catalog else {"families": DEMO_FAMILY}
    return overlay(doc, stored) if stored is not None else doc


def with_catalog(settings: Settings, stored: Mapping[str, Any] | None,
                 stored_source: str = "<stored catalog>") -> Settings:
    """``settings`` with the catalog and routes composed again: the catalog document
    (``catalog_document``), then the file's ``models:`` entries (the file wins), then routes:
    each enabled preset serves its family's models, a file route list replaces a model's
    routes, the demo provider serves what nothing else does. Raises ``ConfigError``."""
    source = str(settings.config_path) if settings.config_path else "<defaults>"
    try:
        catalog = build(catalog_document(settings, stored),
                        stored_source if stored is not None else "smartoken/catalog/builtin.yaml")
    except CatalogError as exc:
        raise ConfigError(exc.source, exc.key, exc.problem) from None
    routes: list[RouteConfig] = []
    for preset in PRESETS:
        if preset.provider not in settings.presets:
            continue
        for spec in catalog.models.values():
            if spec.family == preset.family and not spec.auto_variants:
                routes.append(RouteConfig(spec.id, preset.provider, spec.upstream_id or spec.id,
                                          priority=10))
    for model_id, raw in settings.model_overrides:
        catalog.add_model(_model(model_id, raw, source, catalog.get(model_id)))
        model_routes = _routes(model_id, raw.get("routes"), source)
        if model_routes:
            routes = [r for r in routes if r.model != model_id] + model_routes
    providers = settings.providers
    for r in routes:
        if r.provider not in providers and r.provider != "demo":
            raise ConfigError(source, f"models.{r.model}.routes",
                              f"unknown provider {r.provider!r}")
    for spec in catalog.models.values():
        for fb in (*spec.fallbacks, *spec.context_fallbacks):
            if fb not in catalog.models:
                raise ConfigError(source, f"models.{spec.id}.fallbacks", f"unknown model {fb!r}")
        for v in spec.auto_variants:
            if v not in catalog.models:
                raise ConfigError(source, f"models.{spec.id}.auto_variants", f"unknown model {v!r}")
    if settings.demo is not False:
        routed = {r.model for r in routes}
        for spec in catalog.models.values():
            if not spec.auto_variants and spec.id not in routed:
                routes.append(RouteConfig(spec.id, "demo", spec.id, priority=0))
    elif DEMO_MODEL_ID in catalog.models:
        del catalog.models[DEMO_MODEL_ID]
    return replace(settings, catalog=catalog, routes=tuple(routes))
