from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway
from tests.inproc import InProcessGateway


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    f = FakeUpstream().start()
    yield f
    f.stop()


@pytest.fixture
def make_fake() -> Iterator[Callable[..., FakeUpstream]]:
    made: list[FakeUpstream] = []

    def make(**scenario: Any) -> FakeUpstream:
        f = FakeUpstream(**scenario).start()
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
             **kw: Any) -> Gateway:
        sub = tmp_path / f"gw{len(made)}"
        sub.mkdir()
        gw = Gateway(sub, config, env, **kw).start()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


@pytest.fixture
def make_inproc(tmp_path: Path) -> Iterator[Callable[..., InProcessGateway]]:
    """Like ``make_gateway``, served from this test process (tests/inproc.py): prefer it
    unless the test is about the process (signals, SIGKILL, workers, start-up output)."""
    made: list[InProcessGateway] = []

    def make(config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
             **kw: Any) -> InProcessGateway:
        sub = tmp_path / f"ip{len(made)}"
        sub.mkdir()
        gw = InProcessGateway(sub, config, env, **kw).start()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()
