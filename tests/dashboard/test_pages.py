"""Small rules of the pages' callbacks."""

from __future__ import annotations

from datetime import UTC, date, datetime

from dashboard.pages import _day


def test_a_report_without_a_date_is_for_today_on_the_sites_calendar() -> None:
    evening_utc = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # already the 22nd in Shenyang
    assert _day(None, evening_utc, "Asia/Shanghai") == date(2026, 11, 22)
    assert _day(None, evening_utc, "Europe/Berlin") == date(2026, 11, 21)
    assert _day("2026-03-05T00:00:00", evening_utc, "Asia/Shanghai") == date(2026, 3, 5)
    assert _day("not a date", evening_utc, "Asia/Shanghai") == date(2026, 11, 22)  # a bad value: today
