import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projecthaystack.codecs import parse_datetime, parse_range
from projecthaystack.kinds import DecodeError, InvalidValueError, tz_from_name

NY = tz_from_name("New_York")
NOON_UTC = dt.datetime(2026, 3, 2, 17, tzinfo=dt.UTC)


def _iso(span: tuple[dt.datetime, dt.datetime | None]) -> tuple[str, str | None]:
    start, end = span
    return start.isoformat(), None if end is None else end.isoformat()


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", "2026-03-02T00:00:00-05:00", "2026-03-03T00:00:00-05:00"),
        ("yesterday", "2026-03-01T00:00:00-05:00", "2026-03-02T00:00:00-05:00"),
        ("2026-03-01", "2026-03-01T00:00:00-05:00", "2026-03-02T00:00:00-05:00"),
        (" 2026-03-01 , 2026-03-09 ", "2026-03-01T00:00:00-05:00", "2026-03-10T00:00:00-04:00"),
        (
            "2026-03-02T11:00:00Z UTC,2026-03-02T12:00:00Z UTC",
            "2026-03-02T06:00:00-05:00",
            "2026-03-02T07:00:00-05:00",
        ),
        ("2026-03-02T23:00:00-05:00 New_York", "2026-03-02T23:00:00-05:00", None),
        ('"2026-03-01"', "2026-03-01T00:00:00-05:00", "2026-03-02T00:00:00-05:00"),
        ('"today"', "2026-03-02T00:00:00-05:00", "2026-03-03T00:00:00-05:00"),
    ],
)
def test_every_range_form(text, start, end):
    assert _iso(parse_range(text, "New_York", NOON_UTC)) == (start, end)
    # A zone object reads the same as its name.
    assert _iso(parse_range(text, NY, NOON_UTC)) == (start, end)


def test_today_is_the_day_in_the_asked_zone():
    late = dt.datetime(2026, 3, 3, 2, tzinfo=dt.UTC)  # still March 2nd in New York
    assert parse_range("today", "New_York", late)[0].date() == dt.date(2026, 3, 2)
    assert parse_range("today", "Tokyo", late)[0].date() == dt.date(2026, 3, 3)


def test_now_defaults_to_the_clock():
    start, end = parse_range("today", "UTC")
    assert start <= dt.datetime.now(dt.UTC) < end


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lastMonth", "invalid range 'lastMonth': not a Zinc date or dateTime"),
        ("", "invalid range ''"),
        ("2026-03-05,2026-03-01", "the end is not after the start"),
        ("2026-03-01,2026-03-02T00:00:00Z UTC", "not a mix"),
        ("1,2,3", "invalid range"),
        ("5", "invalid range"),
        ('"lastMonth"', "invalid range"),
        ('"2026-03-01', "invalid range"),
        ('"\\"2026-03-01\\""', "invalid range"),
        ("2026-03-01T10:00:00", "invalid range"),  # a dateTime needs its offset
        ("[2026-03-01]", "invalid range"),
        ("x" * 129, "longer than 128 characters"),
    ],
)
def test_bad_ranges_are_decode_errors(text, message):
    with pytest.raises(DecodeError, match=message.replace("(", r"\(")):
        parse_range(text, "New_York", NOON_UTC)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("9999-12-31", "New_York"),
        ("9999-12-30,9999-12-31", "UTC"),
        ("0001-01-01", "Tokyo"),  # midnight in Tokyo is still year 0 in UTC
        ("0001-01-01T00:00:00Z UTC", "Los_Angeles"),
        ("9999-12-31T23:00:00Z UTC", "Tokyo"),
        ("9999-12-31T23:00:00Z Tokyo", "UTC"),
    ],
)
def test_ranges_at_the_calendar_edges_are_clear_errors(text, zone):
    with pytest.raises(DecodeError, match="outside the years 1 to 9999"):
        parse_range(text, zone, NOON_UTC)


def test_ranges_just_inside_the_calendar_edges():
    start, end = parse_range("9999-12-30", "UTC", NOON_UTC)
    assert end == dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    start, end = parse_range("0001-01-01", "New_York", NOON_UTC)
    assert start.year == 1 and end is not None and end.day == 2


@given(
    day=st.dates(),
    zone=st.sampled_from(["UTC", "Tokyo", "Kiritimati", "Pago_Pago", "New_York", "GMT+12"]),
    days=st.integers(0, 3),
)
def test_any_date_range_is_a_span_or_a_decode_error(day, zone, days):
    try:
        last = day + dt.timedelta(days=days)
    except OverflowError:
        last = dt.date.max
    text = f"{day.isoformat()},{last.isoformat()}"
    try:
        span = parse_range(text, zone, NOON_UTC)
    except DecodeError as exc:
        span, refused = None, str(exc)
    if span is None:
        assert refused == f"invalid range {text!r}: it reaches outside the years 1 to 9999"
    else:
        start, end = span
        assert end is not None and start < end
        assert start.astimezone(dt.UTC) < end.astimezone(dt.UTC)


def test_unknown_zone_and_bad_arguments():
    with pytest.raises(InvalidValueError, match="unknown timezone"):
        parse_range("today", "Nowhere", NOON_UTC)
    with pytest.raises(ValueError, match="aware"):
        parse_range("today", "UTC", dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        parse_range(b"today", "UTC")  # type: ignore[arg-type]


def test_parse_datetime_builds_the_instant_in_the_zone():
    when = parse_datetime("2020-07-17T16:55:42.977-04:00", "New_York")
    assert when == dt.datetime(2020, 7, 17, 20, 55, 42, 977000, tzinfo=dt.UTC)
    assert when.tzinfo is NY
    assert parse_datetime("2020-07-17T20:55:42Z").tzinfo.key == "Etc/UTC"
    assert (
        parse_datetime("2020-07-17T20:55:42Z", "GMT+5").isoformat() == "2020-07-17T15:55:42-05:00"
    )


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        ("2020-07-17T20:55:42", "New_York", "expected ISO 8601 with an offset"),
        ("2020-07-17 20:55:42Z", "New_York", "expected ISO 8601 with an offset"),
        ("20200717T205542Z", None, "expected ISO 8601 with an offset"),
        ("2020-07-17T20:55:42Z", "Nowhere", "unknown timezone"),
        ("9999-12-31T23:00:00Z", "Tokyo", "outside the years 1 to 9999"),
    ],
)
def test_parse_datetime_errors(text, zone, message):
    with pytest.raises(DecodeError, match=message):
        parse_datetime(text, zone)
