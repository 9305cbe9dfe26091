from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests import running, sslcache
from tests.fakes.paypal_api import FakePayPal
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway
from tests.inproc import InProcessGateway

sslcache.install()  # one TLS context for the tests' HTTP clients: ~55 ms of CPU each (sslcache.py)

# PostgreSQL and Redis fixtures (pg_url, pg_migrated_url, redis_prefix, private_redis) for
# every test module, including those that ask for them by name (getfixturevalue).
pytest_plugins = ("tests.services",)
G = TypeVar("G", bound=Gateway)

# Hypothesis keeps its example database outside the checkout (a test run leaves the checkout
# unchanged), one per checkout, kept between runs so that a failing example is tried first.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _ROOT = Path(__file__).resolve().parent.parent
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "smartoken-hypothesis"
                            / hashlib.sha256(str(_ROOT).encode()).hexdigest()[:16])


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


def _gateways(tmp_path: Path, kind: type[G], folder: str) -> Iterator[Callable[..., G]]:
    """A factory of started gateways of ``kind``, each in its own folder, stopped after the
    test (and before a database or Redis fixture goes: tests/running.py)."""
    made: list[G] = []

    def make(config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
             **kw: Any) -> G:
        sub = tmp_path / f"{folder}{len(made)}"
        sub.mkdir()
        gw = kind(sub, config, env, **kw)
        gw.start()
        made.append(gw)
        running.RUNNING.append(gw.stop)
        return gw

    yield make
    for gw in made:
        gw.stop()
    running.RUNNING.clear()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    yield from _gateways(tmp_path, Gateway, "gw")


@pytest.fixture
def make_inproc(tmp_path: Path) -> Iterator[Callable[..., InProcessGateway]]:
    """Like ``make_gateway``, served from this test process (tests/inproc.py): prefer it
    unless the test is about the process (signals, SIGKILL, workers, start-up output)."""
    yield from _gateways(tmp_path, InProcessGateway, "ip")


@pytest.fixture
def stripe_fake() -> Iterator[FakeStripe]:
    """The Stripe API's stand-in over real HTTP (tests/fakes/stripe_api.py)."""
    f = FakeStripe()
    f.start()
    yield f
    f.stop()


@pytest.fixture
def paypal_fake() -> Iterator[FakePayPal]:
    """PayPal's Orders API stand-in over real HTTP (tests/fakes/paypal_api.py)."""
    f = FakePayPal()
    f.start()
    yield f
    f.stop()
