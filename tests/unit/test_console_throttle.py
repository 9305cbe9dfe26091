"""The sign-in throttle: limits per account name and per address, over a sliding window."""

from __future__ import annotations

from smartoken.console.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_per_name_limit_slides_and_success_resets() -> None:
    clock = Clock()
    t = LoginThrottle(per_name=3, per_address=100, window=60, clock=clock)
    for _ in range(3):
        assert t.retry_after("Admin", "1.2.3.4") is None
        t.failed("Admin", "1.2.3.4")
        clock.t += 10
    wait = t.retry_after("admin", "5.6.7.8")  # same name, any address, any case
    assert wait is not None and abs(wait - 30) < 1e-9  # first failure at 1000, now 1030
    assert t.retry_after("bob", "1.2.3.4") is None
    clock.t += 30
    assert t.retry_after("admin", "1.2.3.4") is None  # the oldest failure left the window
    t.failed("admin", "1.2.3.4")
    assert t.retry_after("admin", "1.2.3.4") is not None
    t.succeeded("admin")
    assert t.retry_after("admin", "1.2.3.4") is None


def test_per_address_limit_covers_many_names() -> None:
    clock = Clock()
    t = LoginThrottle(per_name=100, per_address=4, window=60, clock=clock)
    for i in range(4):
        t.failed(f"user{i}", "9.9.9.9")
    assert t.retry_after("someone-else", "9.9.9.9") is not None
    assert t.retry_after("someone-else", "8.8.8.8") is None
