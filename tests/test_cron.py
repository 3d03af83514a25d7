"""The five-field cron grammar: pure tests on explicit datetimes, no database."""

import datetime

import pytest

from engine.errors import InvalidInput
from engine.schedule import cron

T = datetime.datetime


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "0 0 1 1 0",
        "59 23 31 12 7",
        "0,15,30,45 */2 1-15 1-12/3 1-5",
        "5/20 8-18/5 * * *",
        "  0\t0  * * *  ",
    ],
)
def test_accepts_the_grammar(expr):
    assert isinstance(cron.parse(expr), cron.Schedule)


@pytest.mark.parametrize(
    "expr, info",
    [
        ("0 25 * * *", "cron: hour field '25' is out of range 0-23"),
        ("60 * * * *", "cron: minute field '60' is out of range 0-59"),
        ("0 0 0 * *", "cron: day field '0' is out of range 1-31"),
        ("0 0 * 13 *", "cron: month field '13' is out of range 1-12"),
        ("0 0 * * 8", "cron: weekday field '8' is out of range 0-7"),
        ("0 0 * * 1-9", "cron: weekday field '1-9' is out of range 0-7"),
        ("5-3 * * * *", "cron: minute field '5-3' has a range whose start is not below its end"),
        ("0 4-4 * * *", "cron: hour field '4-4' has a range whose start is not below its end"),
        ("*/0 * * * *", "cron: minute field '*/0' has a step outside 1-59"),
        ("0 */24 * * *", "cron: hour field '*/24' has a step outside 1-23"),
        ("0 0 * JAN *", "cron: month field 'JAN' must be a comma list"),
        ("0 0 * * MON", "cron: weekday field 'MON' must be a comma list"),
        ("0 0 ? * *", "cron: day field '?' must be a comma list"),
        ("0 0 L * *", "cron: day field 'L' must be a comma list"),
        ("0 0 * * 1#2", "cron: weekday field '1#2' must be a comma list"),
        ("1,,2 * * * *", "cron: minute field '1,,2' must be a comma list"),
        ("-1 * * * *", "cron: minute field '-1' must be a comma list"),
        ("\u0663 * * * *", "cron: minute field '\u0663' must be a comma list"),
        ("@daily", "cron: needs exactly 5 fields (minute hour day month weekday), got 1"),
        ("0 0 0 * * *", "cron: needs exactly 5 fields"),
        ("* * * *", "cron: needs exactly 5 fields"),
        ("", "cron: needs exactly 5 fields"),
        ("0\n0 * * *", "cron: fields must be separated by spaces or tabs"),
        ("* " * 60, "cron: longer than 100 characters"),
        (5, "cron: must be a string"),
        (["* * * * *"], "cron: must be a string"),
    ],
)
def test_rejects_with_the_field_named(expr, info):
    with pytest.raises(InvalidInput) as e:
        cron.parse(expr)
    assert e.value.info.startswith(info)


def test_values_of_each_element_form():
    s = cron.parse("5/20 8-18/5 1,15 */5 1-5")
    assert s.minutes == (5, 25, 45)
    assert s.hours == (8, 13, 18)
    assert s.days == {1, 15}
    assert s.months == {1, 6, 11}
    assert s.weekdays == {1, 2, 3, 4, 5}


def test_weekday_seven_is_sunday():
    assert cron.parse("0 0 * * 7").weekdays == {0}
    sunday = T(2024, 3, 3, 0, 0)
    assert cron.matches("0 0 * * 7", sunday) and cron.matches("0 0 * * 0", sunday)
    assert not cron.matches("0 0 * * 7", sunday + datetime.timedelta(days=1))


def test_matches_minute_hour_and_month():
    assert cron.matches("30 9 * * *", T(2024, 5, 6, 9, 30, 59))
    assert not cron.matches("30 9 * * *", T(2024, 5, 6, 9, 31))
    assert not cron.matches("30 9 * * *", T(2024, 5, 6, 10, 30))
    assert cron.matches("0 0 * 5 *", T(2024, 5, 1))
    assert not cron.matches("0 0 * 5 *", T(2024, 6, 1))


def test_restricted_day_and_weekday_fire_on_either():
    expr = "0 12 13 * 5"  # the 13th, and every Friday
    assert cron.matches(expr, T(2024, 3, 13, 12, 0))  # a Wednesday, the 13th
    assert cron.matches(expr, T(2024, 3, 8, 12, 0))  # a Friday, the 8th
    assert not cron.matches(expr, T(2024, 3, 12, 12, 0))  # a Tuesday, the 12th


def test_a_star_day_field_narrows_instead():
    # '*/2' starts with '*', so it does not restrict; both fields must then hold.
    expr = "0 0 */2 * 1"
    assert cron.matches(expr, T(2024, 3, 11))  # Monday the 11th (odd)
    assert not cron.matches(expr, T(2024, 3, 18))  # Monday the 18th (even)
    assert not cron.matches(expr, T(2024, 3, 13))  # Wednesday the 13th (odd)
    assert cron.matches("0 0 1 * *", T(2024, 3, 1))
    assert not cron.matches("0 0 1 * *", T(2024, 3, 2))


def test_next_times_are_strictly_after_and_in_order():
    after = T(2024, 1, 1, 10, 15, 0)
    assert cron.next_times("*/15 * * * *", after) == [
        T(2024, 1, 1, 10, 30),
        T(2024, 1, 1, 10, 45),
        T(2024, 1, 1, 11, 0),
        T(2024, 1, 1, 11, 15),
        T(2024, 1, 1, 11, 30),
    ]
    assert cron.next_times("*/15 * * * *", T(2024, 1, 1, 10, 14, 59), count=1) == [
        T(2024, 1, 1, 10, 15)
    ]


def test_next_times_cross_days_months_and_years():
    assert cron.next_times("30 2 * * *", T(2024, 12, 30, 3, 0), count=3) == [
        T(2024, 12, 31, 2, 30),
        T(2025, 1, 1, 2, 30),
        T(2025, 1, 2, 2, 30),
    ]
    assert cron.next_times("0 0 31 * *", T(2024, 1, 31, 0, 0), count=3) == [
        T(2024, 3, 31),
        T(2024, 5, 31),
        T(2024, 7, 31),
    ]
    assert cron.next_times("0 12 13 * 5", T(2024, 3, 1), count=4) == [
        T(2024, 3, 1, 12),
        T(2024, 3, 8, 12),
        T(2024, 3, 13, 12),
        T(2024, 3, 15, 12),
    ]
    assert cron.next_times("0 8 * * 1-5", T(2024, 3, 8, 9), count=2) == [  # Friday after 8:00
        T(2024, 3, 11, 8),
        T(2024, 3, 12, 8),
    ]


def test_next_times_of_rare_and_impossible_dates():
    assert cron.next_times("0 0 29 2 *", T(2024, 3, 1), count=3) == [
        T(2028, 2, 29),
        T(2032, 2, 29),
        T(2036, 2, 29),
    ]
    assert cron.next_times("0 0 31 2 *", T(2024, 3, 1)) == []
    # no 30 February ever, but the weekday (Monday only) widens it
    assert cron.next_times("0 0 30 2 1-5/7", T(2024, 3, 1), count=1) == [T(2025, 2, 3)]


def test_next_times_keep_the_time_zone():
    tz = datetime.timezone(datetime.timedelta(hours=8))
    (t,) = cron.next_times("0 * * * *", T(2024, 1, 1, 10, 5, tzinfo=tz), count=1)
    assert t == T(2024, 1, 1, 11, 0, tzinfo=tz) and t.tzinfo is tz


def test_next_times_skip_days_that_cannot_fire(monkeypatch):
    checked = []
    original = cron.Schedule.fires_on

    def counting(self, date):
        checked.append(date)
        return original(self, date)

    monkeypatch.setattr(cron.Schedule, "fires_on", counting)
    assert len(cron.next_times("0 0 1 1 *", T(2024, 1, 2))) == 5
    assert len(checked) < 5 * 32  # only January days are looked at, never minutes
    checked.clear()
    assert cron.next_times("0 0 31 2 *", T(2024, 1, 2)) == []
    assert len(checked) < cron.HORIZON_YEARS * 30
