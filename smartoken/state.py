"""AppState: every resource the gateway holds, built by one async context manager.

Resources are entered in order and closed in reverse: the database engine, the HTTP session to
upstreams, the ledger writer (drained last, so every usage record is written), and the
background pollers that pick up changes made by other processes (CLI, other workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken import telemetry, tokens
from smartoken.admission import BodyGate
from smartoken.alerts.watcher import AlertOptions, Watcher
from smartoken.api.edge import AuthFailures
from smartoken.auth.keys import KeyCache
from smartoken.auth.secretbox import SecretBox
from smartoken.budget.clock import clock_from_env
from smartoken.budget.contract import Reserver
from smartoken.budget.ratelimit import RateLimiter
from smartoken.budget.reserver import RESERVATION_TTL, MemoryReserver
from smartoken.budget.windows import Windows
from smartoken.catalog.model import Catalog
from smartoken.cluster.setup import Cluster, scaleout
from smartoken.cluster.shared_limits import SharedAuthFailures, SharedRateLimiter
from smartoken.config import ConfigError, Settings
from smartoken.files.service import Files
from smartoken.invocation import cli_command
from smartoken.ledger.journal import Journal
from smartoken.ledger.writer import LedgerWriter
from smartoken.live_providers import catalog_base
from smartoken.live_providers import follow as follow_stored
from smartoken.malloc import release_large_blocks
from smartoken.metrics import Metrics
from smartoken.notify.mail import LogMailer, Mailer, mailer_for
from smartoken.providers.base import Provider
from smartoken.providers.demo import DemoProvider
from smartoken.providers.egress import EgressConnector
from smartoken.providers.factory import make_provider
from smartoken.routing.router import Router
from smartoken.store import catalog_docs, repo
from smartoken.store.db import check_schema, make_engine, migrate
from smartoken.store.first_start import first_start_lock
from smartoken.store.providers import with_stored_providers
from smartoken.telemetry import Tracer

if TYPE_CHECKING:  # imported with redis-py only when Redis is configured (cluster/setup.py)
    from smartoken.budget.redis_reserver import RedisReserver

log = logging.getLogger("smartoken")
POLL_INTERVAL = 1.0
JOURNAL_SCAN = 1.0  # seconds between looks for the journals of dead processes


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    keys: KeyCache
    windows: Windows
    reserver: Reserver
    ledger: LedgerWriter
    router: Router
    providers: dict[str, Provider]
    origin: str
    # rpm/tpm, failed authentications per address: in Redis when configured (issue 12 item 17)
    limiter: SharedRateLimiter = field(default_factory=SharedRateLimiter)
    auth_failures: SharedAuthFailures | None = None
    ready: bool = True
    files: Files | None = None  # the Files API runtime (issue 6)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics.from_env)
    session: aiohttp.ClientSession | None = None
    cluster: Cluster | None = None  # reserver mode, Redis, shared breakers (cluster/setup.py)
    # The configuration file's settings, before the imported catalog and the stored providers
    # were composed in (live_providers); ``wake`` ends the follower's wait (a change notice).
    config: Settings | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tracer: Tracer | None = None  # OpenTelemetry spans (telemetry.py); None when off
    bodies: BodyGate = field(default_factory=BodyGate)  # large request bodies (issue 12)
    # Outgoing mail (notify/mail.py): SMTP when configured, else a logging no-op.
    mailer: Mailer = field(default_factory=LogMailer)
    alerts: Watcher | None = None  # low-balance and key-budget alerts (alerts/watcher.py)


def build_providers(settings: Settings, session: aiohttp.ClientSession,
                    env: Mapping[str, str] | None = None) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    env = os.environ if env is None else env
    delay = float(env.get("SMARTOKEN_DEMO_DELAY_MS", "20")) / 1000
    for name, cfg in settings.providers.items():
        if cfg.is_demo:
            out[name] = DemoProvider(delay)
        else:
            out[name] = make_provider(cfg, session)
    return out


def reservation_ttl(settings: Settings) -> float:
    """Longer than any request may run: the longest upstream total timeout, plus margin."""
    longest = max((p.timeouts.total for p in settings.providers.values()), default=600.0)
    return max(RESERVATION_TTL, longest + 300.0)


def open_journal(folder: Path, origin: str) -> Journal | None:
    try:
        return Journal(folder, origin)
    except OSError as exc:  # a read-only data folder: serve, without the crash journal
        log.warning("ledger journal unavailable in %s (%s); a killed process loses up to one "
                    "flush interval of usage records", folder, exc)
        return None


async def _poll_changes(state: AppState) -> None:
    """Pick up key changes and wallet credits written by other processes (CLI, workers)."""
    changed = await repo.keys_changed_at(state.engine)
    _, seen = await repo.wallet_snapshot(state.engine, 0)
    while True:
        await asyncio.sleep(POLL_INTERVAL)
        try:
            now_changed = await repo.keys_changed_at(state.engine)
            if now_changed != changed:
                changed = now_changed
                state.keys.clear()
            seen, txns = await repo.transactions_since(state.engine, seen, state.origin)
            if txns:
                await state.reserver.apply_external(txns)
        except Exception:  # the database may be briefly unavailable; try again next tick
            log.warning("change poller: database unavailable", exc_info=True)


async def _recover_orphans(ledger: LedgerWriter, folder: Path,
                           reserver: object) -> None:
    """Write the journals of processes that die while this one serves (a worker killed by
    the OOM killer, a replica sharing this data folder): their lock is free at once."""
    while True:
        await asyncio.sleep(JOURNAL_SCAN)
        try:
            await ledger.recover(folder, 2.0, getattr(reserver, "release_holder", None))
        except Exception:
            log.warning("journal recovery failed; retrying", exc_info=True)


async def bootstrap_admin(engine: AsyncEngine, settings: Settings) -> str | None:
    """On first start create the admin account; return its one-time password."""
    from smartoken.auth.passwords import hash_password

    async with first_start_lock(engine):  # N workers start at once: one creates it
        if await repo.list_accounts(engine):
            return None
        password = secrets.token_urlsafe(12)
        try:
            account_id = await repo.create_account(engine, settings.admin_name, "admin",
                                                   hash_password(password))
        except repo.Conflict:
            return None
        if settings.initial_admin_credit:
            await repo.credit_wallet(engine, account_id, settings.initial_admin_credit,
                                     actor="system", reason="first-start credit")
        return password


@contextlib.asynccontextmanager
async def app_state(settings: Settings, *, run_migrations: bool = True,
                    env: Mapping[str, str] | None = None) -> AsyncIterator[AppState]:
    """``env`` holds the process-level switches (test clock, demo pace, scale-out options,
    metrics directory); the process environment by default."""
    env = os.environ if env is None else env
    engine = make_engine(settings.db_url)
    try:
        if run_migrations:
            await migrate(engine)
        else:
            await check_schema(engine)
        release_large_blocks()
        await asyncio.to_thread(tokens.encoding)
        config = settings
        doc_id, doc = await catalog_docs.latest(engine)
        if doc is not None:
            try:
                settings = catalog_base(config, doc, doc_id)
            except ConfigError as exc:  # an import the file no longer agrees with
                log.error("imported catalog #%s not applied: %s", doc_id, exc)
        settings = await with_stored_providers(engine, settings)
        password = await bootstrap_admin(engine, settings)
        if password is not None:
            print(
                f"\nSmarToken first start: admin account '{settings.admin_name}' created "
                f"(console password: {password}).\n"
                f"Create your first API key with:\n"
                f"  {cli_command()} keys create --account {settings.admin_name} --name first-key"
                " --admin\n",
                flush=True,
            )
        tracer = telemetry.from_env(env)
        connector = EgressConnector(settings.egress, limit=0, limit_per_host=0,
                                    ttl_dns_cache=300, enable_cleanup_closed=True)
        origin = f"gw-{os.getpid()}-{secrets.token_hex(4)}"
        windows = Windows(settings.tz, clock_from_env(env))
        async with scaleout(settings, engine, windows, origin,
                            reservation_ttl(settings), env) as cluster, \
                aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                      cookie_jar=aiohttp.DummyCookieJar()) as session:
            health = cluster.health
            # The crash journal, in every mode: a record is appended before its response is
            # sent; the journals of processes that are gone are written by the next process
            # that looks (at start, then every JOURNAL_SCAN seconds), whatever the reserver.
            journal_dir = settings.data_dir / "journal"
            metrics = Metrics.from_env(env)
            # With Redis each record is also kept in the replica's journal hash, drained by
            # any live replica if this one dies (another host never sees the files).
            mirror = cast("RedisReserver", cluster.reserver) if cluster.mode == "redis" else None
            ledger = LedgerWriter(engine, origin, interval=settings.ledger_flush_s,
                                  hooks=cluster.hooks, journal=open_journal(journal_dir, origin),
                                  on_dead_letter=metrics.dead_letters.inc, mirror=mirror)
            if mirror is not None:
                mirror.attach_ledger(ledger)
            # Several processes may be starting: leave young journals to the periodic scan.
            await ledger.recover(journal_dir, 0.0 if cluster.mode == "memory" else 2.0)
            state = AppState(
                settings=settings,
                engine=engine,
                catalog=settings.catalog,
                keys=KeyCache(engine),
                windows=windows,
                reserver=cluster.reserver,
                ledger=ledger,
                router=Router(settings.routes, health),
                providers=build_providers(settings, session, env),
                metrics=metrics,
                origin=origin,
                files=Files.from_settings(settings),
                session=session,
                cluster=cluster,
                tracer=tracer,
                mailer=mailer_for(settings.smtp, settings.mail_from),
            )
            ledger.start()
            state.config = config
            if cluster.redis is not None:
                opt = cluster.options
                state.limiter = SharedRateLimiter(RateLimiter(), cluster.redis, opt.prefix,
                                                  opt.fail_open)
                state.auth_failures = SharedAuthFailures(
                    AuthFailures(settings.auth_failures_per_minute), cluster.redis, opt.prefix,
                    opt.fail_open)

            def on_change(what: str) -> None:
                state.keys.clear()
                if what in ("catalog", "providers", "reconnected"):
                    state.wake.set()

            cluster.start(on_change)
            state.tasks.append(asyncio.create_task(_poll_changes(state), name="poller"))
            if isinstance(state.reserver, MemoryReserver):
                state.tasks.append(asyncio.create_task(state.reserver.run_expiry(),
                                                       name="reservation-expiry"))
            state.tasks.extend(state.metrics.start(state))
            if not isinstance(state.reserver, MemoryReserver):  # other processes may die
                state.tasks.append(asyncio.create_task(
                    _recover_orphans(ledger, journal_dir, state.reserver),
                    name="journal-orphans"))
            state.tasks.append(asyncio.create_task(follow_stored(state, config), name="stored"))
            # No SMTP server: alerts record no mail channel rather than claim one was sent.
            state.alerts = Watcher(engine, state.reserver, session,
                                   None if isinstance(state.mailer, LogMailer) else state.mailer,
                                   SecretBox(settings.secret_keys) if settings.secret_keys
                                   else None, AlertOptions.from_env(env))
            ledger.on_written = state.alerts.note_batch
            state.tasks.extend(state.alerts.start())
            try:
                yield state
            finally:
                state.ready = False
                for task in state.tasks:
                    task.cancel()
                await asyncio.gather(*state.tasks, return_exceptions=True)
                await ledger.close()
                if state.files is not None:
                    state.files.close()
                for provider in state.providers.values():
                    await provider.aclose()
                state.metrics.close()
                if tracer is not None:
                    await asyncio.to_thread(tracer.shutdown)
    finally:
        await engine.dispose()
