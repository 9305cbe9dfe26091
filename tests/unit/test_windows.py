from datetime import datetime
from zoneinfo import ZoneInfo

from smartoken.budget.windows import Windows


def test_windows_follow_the_configured_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    w = Windows(shanghai)
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=shanghai).timestamp()
    assert w.at(before) == ("2026-11-30", "2026-11")
    assert w.at(before + 1) == ("2026-12-01", "2026-12")
    utc = Windows(ZoneInfo("UTC"))
    assert utc.at(before + 1) == ("2026-11-30", "2026-11")  # 16:00 UTC the same instant
