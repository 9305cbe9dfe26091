from decimal import Decimal

import pytest

from smartoken.money import MoneyError, Price, format_usd, parse_usd


def test_parse_usd_is_exact() -> None:
    assert parse_usd("0.60") == 600_000
    assert parse_usd(5) == 5_000_000
    assert parse_usd(Decimal("1.000001")) == 1_000_001
    assert parse_usd("-2.5") == -2_500_000


@pytest.mark.parametrize("bad", ["0.0000001", "abc", "NaN", "Infinity", 0.1, True, "1e3", "1E3",
                                 "1e-3", "1_000", "0x10", "1 000", "--1", "1.2.3", "", ".",
                                 "١٢"])
def test_parse_usd_refuses_what_it_cannot_hold(bad: object) -> None:
    with pytest.raises(MoneyError):
        parse_usd(bad)  # type: ignore[arg-type]


def test_format_usd() -> None:
    assert format_usd(1_234_567) == "1.234567"
    assert format_usd(-5) == "-0.000005"
    assert format_usd(0) == "0.000000"


def test_cost_rounds_once_half_up() -> None:
    price = Price(600_000, 2_500_000)  # $0.60 / $2.50 per 1M
    assert price.cost(1200, 345) == 1583  # 720 + 862.5 = 1582.5 -> 1583
    assert price.cost(1, 0) == 1  # 0.6 -> 1
    assert price.cost(0, 0) == 0
    # Rounding once, not per part: 3 x 0.5 micro = 1.5 -> 2 (per-part rounding would give 3).
    assert Price(500_000, 0).cost(3, 0) == 2


def test_cached_tokens_use_the_cached_price() -> None:
    price = Price(1_000_000, 2_000_000, cached_input=100_000)
    assert price.cost(1000, 0, cached_tokens=400) == 600 + 40
    assert Price(1_000_000, 0).cost(1000, 0, cached_tokens=400) == 1000  # no cached price
    assert price.cost(10, 0, cached_tokens=50) == 1  # cached capped at prompt


def test_cost_is_monotonic_so_a_reservation_covers_the_actual() -> None:
    price = Price(1_200_000, 4_800_000)
    worst = price.cost(5000, 800)
    for p in range(0, 5001, 250):
        for c in range(0, 801, 40):
            assert price.cost(p, c) <= worst
