"""Tables of record (SQLAlchemy Core). Money columns are integer micro-USD."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False, default="user"),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Disabled by an admin (migration 0021): its keys and console sessions stop working.
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    # Sign-up (migration 0024): the address, lower-cased, unique; when its link was followed.
    Column("email", String(320), nullable=True, unique=True),
    Column("email_verified_at", DateTime(timezone=True), nullable=True),
)

# Invite codes for the ``invite`` sign-up policy (migration 0024): single use, optional expiry;
# only the code's SHA-256 is kept (the code is shown once, when generated).
invite_codes = Table(
    "invite_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("note", String(200), nullable=False, default="", server_default=""),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("used_by", Integer, ForeignKey("accounts.id"), nullable=True),
)

wallets = Table(
    "wallets",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    # Always equal to the sum of this account's wallet_transactions.amount_micro.
    Column("balance_micro", BigInteger, nullable=False, default=0),
    # Bumped by every balance change; orders Redis counter snapshots against ledger batches.
    Column("version", BigInteger, nullable=False, default=0, server_default="0"),
)

wallet_transactions = Table(
    "wallet_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # credit | debit | refund | adjustment
    Column("amount_micro", BigInteger, nullable=False),  # signed: debits are negative
    Column("request_id", String(40), nullable=True, unique=True),
    Column("actor", String(100), nullable=False, default="system"),
    Column("reason", String(500), nullable=False, default=""),
    Column("origin", String(40), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False, default=""),
    Column("prefix", String(24), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("families", Text, nullable=True),  # JSON list of family slugs; NULL = every family
    Column("daily_budget_micro", BigInteger, nullable=True),
    Column("monthly_budget_micro", BigInteger, nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Created as an admin key (issue 12 item 5): admin authority is never implied by the
    # account's role alone, and a restricted key never has it (auth.keys.KeyContext.is_admin).
    Column("admin", Boolean, nullable=False, default=False, server_default=false()),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", String(40), primary_key=True),  # the request id
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("key_id", Integer, nullable=False),
    Column("requested_model", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("route", String(200), nullable=True),
    Column("provider", String(100), nullable=True),
    Column("upstream_model", String(200), nullable=True),
    Column("status", String(20), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("latency_ms", Integer, nullable=False, default=0),
    Column("ttft_ms", Integer, nullable=True),
    Column("cost_micro", BigInteger, nullable=False, default=0),
    Column("day", String(10), nullable=False),  # budget window the request was charged to
    Column("month", String(7), nullable=False),
    Column("attempts", Text, nullable=True),  # JSON list of {route, status, error}
    Column("error", Text, nullable=True),
    # Prompt tokens written to the vendor's cache (migration 0012), priced at cache_write.
    Column("cache_write_tokens", Integer, nullable=False, default=0, server_default="0"),
    # The client protocol the request came in by (migration 0016): chat, embeddings, messages.
    Column("protocol", String(20), nullable=False, default="chat", server_default="chat"),
)

# In-flight reservations of the database-level reserver (several workers, no Redis).
reservations = Table(
    "reservations",
    metadata,
    Column("id", String(40), primary_key=True),  # the request id
    Column("account_id", Integer, nullable=False, index=True),
    Column("key_id", Integer, nullable=False),
    Column("day", String(10), nullable=False),
    Column("month", String(7), nullable=False),
    Column("amount_micro", BigInteger, nullable=False),  # worst case, then the actual cost
    Column("settled", Boolean, nullable=False, default=False, server_default=false()),
    Column("deadline", Float, nullable=False, index=True),  # epoch seconds
    Column("holder", String(40), nullable=False),  # the AppState origin that made it
)
# Running spend of a key in a day or month window, kept by the database-level reserver: created
# from usage_records when first needed, then moved by each ledger batch in its transaction.
key_spend = Table(
    "key_spend",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("period", String(10), primary_key=True),  # "YYYY-MM-DD" or "YYYY-MM"
    Column("spent_micro", BigInteger, nullable=False),
)
Index("ix_reservations_key_day", reservations.c.key_id, reservations.c.day)
Index("ix_reservations_key_month", reservations.c.key_id, reservations.c.month)

Index("ix_usage_key_day", usage_records.c.key_id, usage_records.c.day)
Index("ix_usage_key_month", usage_records.c.key_id, usage_records.c.month)

# Files API (issue 6): metadata only; the bytes live in the blob store (smartoken.files.storage),
# content-addressed by SHA-256. ``seq`` orders the listing and serves as the paging cursor.
files = Table(
    "files",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),  # file-…
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("key_id", Integer, nullable=True),
    Column("filename", String(255), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("media_type", String(120), nullable=False),
    Column("kind", String(16), nullable=False),  # pdf, docx, pptx, xlsx, csv, html, text, jsonl
    Column("text_sha256", String(64), nullable=True, index=True),  # extracted text blob
    Column("text_chars", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("ix_files_account_purpose", files.c.account_id, files.c.purpose)

# Console (migration 0004_console): browser sessions, and small settings such as the session
# signing secret and each account's playground key id.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the session token
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

console_settings = Table(
    "console_settings",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Providers managed through the admin API (issue 8). Secrets are Fernet tokens
# (smartoken.auth.secretbox), never plaintext: the API key and the extra headers.
stored_providers = Table(
    "stored_providers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("dialect", String(40), nullable=False),
    Column("base_url", String(500), nullable=False),
    Column("api_key_enc", Text, nullable=True),
    Column("headers_enc", Text, nullable=True),
    Column("timeouts", Text, nullable=True),  # JSON {connect, first_byte, idle, total}
    Column("routes", Text, nullable=False, default="[]"),  # JSON list of route objects
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Catalog documents imported at run time (migration 0012): the newest row is laid over the
# built-in catalog by every process (smartoken/catalog/document.py); older rows are the history.
catalog_documents = Table(
    "catalog_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", Text, nullable=False),  # JSON document
    Column("actor", String(100), nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Responses API answers kept for previous_response_id and GET /v1/responses/{id} (migration
# 0017): the response object and the conversation items before its output, per account, until
# expires_at (the retention setting).
stored_responses = Table(
    "stored_responses",
    metadata,
    Column("id", String(64), primary_key=True),  # resp_…
    Column("account_id", Integer, nullable=False, index=True),
    Column("key_id", Integer, nullable=False),
    Column("body", Text, nullable=False),  # the response object, JSON
    Column("history", Text, nullable=False),  # JSON list of the input items up to this answer
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Who changed the gateway's configuration at run time, when, and from what to what (migration
# 0020): stored providers and their routes, catalog imports. ``before``/``after`` are JSON
# without secrets (a provider's public view).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_audit_log_target", "target"),
)

# Usage records the database refused even alone (migration 0013): the original record as
# ASCII-only JSON and the database's error. The request is still billed through a stand-in
# usage record with the same id (smartoken/ledger/writer.py, ``_dead_letter``).
ledger_dead_letters = Table(
    "ledger_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False, index=True),
    Column("account_id", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # the record, json.dumps(ensure_ascii=True)
    Column("error", Text, nullable=False),
    Column("origin", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Requests refused before routing (migration 0018): no usage record, listed by the console.
refused_requests = Table(
    "refused_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("account_id", Integer, nullable=True),
    Column("key_id", Integer, nullable=True),
    Column("model", String(200), nullable=True),
    Column("path", String(200), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("code", String(64), nullable=True),
    Column("message", String(500), nullable=False),
    Index("ix_refused_requests_account_created", "account_id", "created_at"),
)

# Redemption codes (migration 0022): single-use, worth ``amount_micro`` each. Only the SHA-256 of
# the normalised code is stored (the code is shown once, at creation), plus its last 4
# characters as a hint. ``redeemed_at`` is set by one conditional UPDATE in the transaction
# that credits the wallet (smartoken/store/codes.py).
redemption_codes = Table(
    "redemption_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch", String(100), nullable=False, default="", server_default=""),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("hint", String(8), nullable=False),
    Column("amount_micro", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("redeemed_at", DateTime(timezone=True), nullable=True),
    Column("redeemed_by", Integer, nullable=True),  # the account credited
    Column("transaction_id", Integer, nullable=True),  # its wallet transaction
    Index("ix_redemption_codes_batch", "batch"),
    Index("ix_redemption_codes_redeemed_by", "redeemed_by"),
)

# Failed redemptions per account (migration 0022): the guessing brake, shared by every replica.
redemption_failures = Table(
    "redemption_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_redemption_failures_account_at", "account_id", "at"),
)

# Alerts (migration 0023): each account's alert settings, and every alert that fired. An alert
# fires once per (subject, kind, threshold, period): the unique key is claimed before anything
# is sent, so several replicas noticing the same crossing send it once (smartoken/alerts/).
alert_settings = Table(
    "alert_settings",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("low_balance_micro", BigInteger, nullable=True),  # NULL: no low-balance alert
    Column("key_percents", String(40), nullable=False, default="80,100"),  # "" = none
    Column("email", String(320), nullable=True),  # NULL: the account's verified email
    Column("email_enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("webhook_url", String(2000), nullable=True),
    Column("webhook_secret", Text, nullable=True),  # "fernet:<token>" or "plain:<secret>"
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),
    Column("subject", String(40), nullable=False),  # "account:<id>" or "key:<id>"
    Column("kind", String(20), nullable=False),  # low_balance | key_daily | key_monthly
    Column("threshold", BigInteger, nullable=False),  # micro-USD, or a percent of a budget
    # The window: "YYYY-MM-DD" / "YYYY-MM" for a key budget; "open" for a low balance until
    # the balance is back at the threshold, then "closed:<id>" (the slot is free again).
    Column("period", String(40), nullable=False),
    Column("key_id", Integer, nullable=True),
    Column("value_micro", BigInteger, nullable=False),  # the balance, or the spend
    Column("limit_micro", BigInteger, nullable=False),  # the threshold, or the budget
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("email_to", String(320), nullable=True),
    Column("email_state", String(10), nullable=False),  # none | pending | sent | failed
    Column("webhook_url", String(2000), nullable=True),
    Column("webhook_state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("done", Boolean, nullable=False, default=False),
    Column("next_at", Float, nullable=False),  # epoch seconds: next attempt, or lease end
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("subject", "kind", "threshold", "period", name="uq_alert_events_once"),
    Index("ix_alert_events_account_created", "account_id", "created_at"),
    Index("ix_alert_events_due", "done", "next_at"),
)
