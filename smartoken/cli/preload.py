"""``serve --workers N``: workers forked from a supervisor that loaded the tokenizer first.

uvicorn starts its workers with multiprocessing's *spawn*: each is a fresh interpreter that
imports the whole program and builds the o200k tokenizer again (~40 MiB of Rust heap, ~110 MiB
of imports). Forked instead, the workers share those pages with the supervisor copy-on-write:
the tokenizer's tables are never written after they are built, so they stay shared for the
life of the process, and ``gc.freeze()`` keeps the collector from touching (and so copying)
the imported objects. Every worker still runs its own ``app_from_env``: no event loop, thread,
connection or socket of the supervisor is inherited (the supervisor has none at this point).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable
from types import FrameType

from smartoken import tokens

_Handler = Callable[[int, FrameType | None], object] | signal.Handlers

# The supervisor's signal handlers only queue signals for its own loop; a worker starts with the
# defaults (as a spawned one would) and uvicorn installs its SIGINT/SIGTERM handlers.
_RESET: dict[str, _Handler] = {
    "SIGINT": signal.default_int_handler, "SIGTERM": signal.SIG_DFL,
    "SIGHUP": signal.SIG_DFL, "SIGTTIN": signal.SIG_DFL, "SIGTTOU": signal.SIG_DFL}


def _reset_signals() -> None:
    for name, handler in _RESET.items():
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, handler)


def fork_workers() -> bool:
    """Load what workers share, then make uvicorn fork them. False (spawn kept) where fork is
    unavailable or uvicorn's seam moved."""
    from prometheus_client import values
    from uvicorn import _subprocess

    if "fork" not in multiprocessing.get_all_start_methods() or not hasattr(_subprocess, "spawn"):
        return False
    tokens.encoding()
    # prometheus-client picks its value class (multiprocess files or memory) from the
    # environment when imported, which here was before ``serve`` set PROMETHEUS_MULTIPROC_DIR;
    # a spawned worker imports it afresh, a forked one must be told.
    values.ValueClass = values.get_value_class()
    # uvicorn types its seam as the spawn context; the fork one has the same Process API
    _subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
    os.register_at_fork(after_in_child=_reset_signals)
    gc.collect()
    gc.freeze()
    return True
