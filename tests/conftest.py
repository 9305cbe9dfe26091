from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway


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
