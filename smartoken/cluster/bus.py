"""Cross-replica change notices over Redis pub/sub.

A replica that changes configuration (a key revoked or edited, a route or price changed through
the admin API or the CLI) calls ``announce``; every replica subscribed with ``listen`` clears its
key cache at once (and runs any other registered callback). Pub/sub is fire-and-forget: the
database change poller (state.py, every second) stays the fallback, so a change takes effect on
every replica within about one second even when a notice is lost or Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis

log = logging.getLogger("smartoken.cluster")


def channel(prefix: str) -> str:
    return f"{prefix}changes"


async def announce(redis: Redis, prefix: str, what: str = "keys") -> None:
    """Tell every replica that ``what`` changed. Never raises: the poller is the fallback."""
    try:
        await redis.publish(channel(prefix), what)
    except Exception:
        log.warning("could not announce a %s change over Redis", what, exc_info=True)


async def listen(redis: Redis, prefix: str, on_change: Callable[[str], None],
                 retry: float = 1.0) -> None:
    """Run until cancelled: call ``on_change(what)`` for every notice, and once more after
    each reconnection (notices sent while disconnected are lost)."""
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel(prefix))
            on_change("reconnected")
            while True:
                msg = await pubsub.get_message(timeout=5.0)
                if msg is not None and msg.get("type") == "message":
                    data = msg.get("data")
                    on_change(data.decode() if isinstance(data, bytes) else str(data))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("change listener disconnected; retrying", exc_info=True)
            await asyncio.sleep(retry)
        finally:
            try:
                await pubsub.aclose()
            except Exception:
                log.debug("pubsub close failed", exc_info=True)
