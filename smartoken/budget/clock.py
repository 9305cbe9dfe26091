"""The clock that budget windows read: the system clock, or a test clock from a file.

``SMARTOKEN_TEST_CLOCK_FILE`` names a file holding a Unix time (seconds, may be fractional).
When the variable is set, budget windows read the time from that file on every request (so a
test can move the gateway to one second before midnight and then past it); when the file is
missing or empty, the system clock is used. It is read only when set, which a production
deployment never does: the variable exists for tests and is documented as such.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from smartoken.budget.windows import Clock, system_clock

ENV = "SMARTOKEN_TEST_CLOCK_FILE"


def file_clock(path: Path) -> Clock:
    def now() -> float:
        try:
            text = path.read_text().strip()
        except OSError:
            return time.time()
        return float(text) if text else time.time()

    return now


def clock_from_env(env: Mapping[str, str]) -> Clock:
    path = env.get(ENV)
    return file_clock(Path(path)) if path else system_clock
