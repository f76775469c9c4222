"""Tests for vitseg.periods: dry seasons, years, date ranges, labelling and change pairs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vitseg.errors import ParamsError, VitsegError
from vitseg.periods import Period, change_periods, parse_period, parse_periods, period_of


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2020-21", "2020-21", dt.date(2020, 11, 1), dt.date(2021, 3, 31)),
        ("1999-00", "1999-00", dt.date(1999, 11, 1), dt.date(2000, 3, 31)),
        (" 2020-21 ", "2020-21", dt.date(2020, 11, 1), dt.date(2021, 3, 31)),
        ("2020", "2020", dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
        (2020, "2020", dt.date(2020, 1, 1), dt.date(2020, 12, 31)),  # YAML reads 2020 as int
        ("2020-01-01/2021-01-01", "2020-01-01_2021-01-01", dt.date(2020, 1, 1),
         dt.date(2021, 1, 1)),  # VitSegh24
        ("2021-05-04/2021-05-04", "2021-05-04_2021-05-04", dt.date(2021, 5, 4),
         dt.date(2021, 5, 4)),
    ],
)  # fmt: skip
def test_parse_period(text: str, label: str, start: dt.date, end: dt.date) -> None:
    p = parse_period(text)
    assert p == Period(label, start, end)
    assert p.datetime == f"{start.isoformat()}/{end.isoformat()}"
    assert parse_period(p) is p


def test_vitsegh24_range() -> None:
    p = parse_period("2020-01-01/2021-01-01")
    assert p.datetime == "2020-01-01/2021-01-01"
    assert p.contains("2021-01-01T23:59:59") and not p.contains("2021-01-02")
    assert p.contains("2020-01-01") and not p.contains("2019-12-31T23:59")


@pytest.mark.parametrize(
    ("t", "inside"),
    [
        ("2020-11-01", True), ("2020-10-31T23:59:59", False), ("2021-03-31T23:59", True),
        ("2021-04-01", False), (dt.date(2021, 1, 1), True), (dt.datetime(2020, 12, 5, 10), True),
        (np.datetime64("2021-03-31T12:00"), True), (np.datetime64("2021-04-01"), False),
        (pd.Timestamp("2021-02-01"), True), (pd.NaT, False), (np.datetime64("NaT"), False),
        # aware times count by their UTC date
        ("2021-03-31T23:30-02:00", False),  # = 2021-04-01T01:30Z
        ("2020-11-01T00:30+02:00", False),  # = 2020-10-31T22:30Z
        (pd.Timestamp("2021-04-01T00:30", tz="Africa/Lagos"), True),  # = 2021-03-31T23:30Z
    ],
)  # fmt: skip
def test_contains_dry_season(t: object, inside: bool) -> None:
    assert parse_period("2020-21").contains(t) is inside  # type: ignore[arg-type]


def test_period_of_scalars_and_arrays() -> None:
    periods = parse_periods(["2020-21", "2021-06-01/2021-06-30"])
    assert period_of("2021-02-01", periods) == "2020-21"
    assert period_of(np.datetime64("2021-06-30T23:00"), periods) == "2021-06-01_2021-06-30"
    assert period_of(pd.Timestamp("2021-07-01"), periods) is None
    times = pd.to_datetime(["2020-11-10", "2021-04-15", "2021-06-02", "2021-07-01"])
    want = ["2020-21", None, "2021-06-01_2021-06-30", None]
    assert period_of(times, periods) == want
    assert period_of(xr.DataArray(times, dims="time"), periods) == want
    assert period_of(list(times.strftime("%Y-%m-%d")), periods) == want
    assert period_of(times.values.reshape(2, 2), periods) == want  # flattened
    assert period_of(times.tz_localize("UTC").tz_convert("Etc/GMT+3"), periods) == want
    assert period_of([], periods) == []
    assert period_of(["2021-02-01", None], ["2020-21"]) == ["2020-21", None]


def test_period_of_first_listed_wins() -> None:
    assert period_of("2021-02-01", ["2021", "2020-21"]) == "2021"
    assert period_of(["2021-02-01"], ["2020-21", "2021"]) == ["2020-21"]
    assert period_of("2021-02-01", "2020-21") == "2020-21"  # one period


def test_parse_periods_sorts_and_checks() -> None:
    got = parse_periods(["2021-22", "2019", "2020-21"])
    assert [p.label for p in got] == ["2019", "2020-21", "2021-22"]
    # 2020 ends on 31 Dec, 2020-21 starts on 1 Nov: overlap
    with pytest.raises(ParamsError, match=r"'2020' .*'2020-21'.* overlap"):
        parse_periods(["2020-21", "2020"])
    assert [p.label for p in parse_periods(["2019", "2020-01-01/2020-10-31", "2020-21"])] == [
        "2019", "2020-01-01_2020-10-31", "2020-21"]  # fmt: skip


def test_change_periods_gallwey() -> None:
    seasons = ["2015-16", "2016-17", "2017-18", "2018-19"]
    assert change_periods(seasons) == [
        ("2015-16", "2016-17"), ("2016-17", "2017-18"), ("2017-18", "2018-19")]  # fmt: skip
    assert change_periods(seasons[::-1]) == change_periods(seasons)  # chronological
    assert change_periods(["2020"]) == []
    assert change_periods(["2019", "2020-01-01/2021-01-01"]) == [
        ("2019", "2020-01-01_2021-01-01")]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("2020-22", r"'2020-22'.*second year must follow.*'2020-21'"),
        ("2020-01", r"'2020-01'.*second year.*date range"),
        ("2021-01-01/2020-01-01", r"ends \(2020-01-01\) before it starts \(2021-01-01\).*swap"),
        ("2020-02-30/2020-03-01", r"'2020-02-30' is not a valid date"),
        ("20-21", r"cannot read period '20-21'.*dry season.*calendar year.*date range"),
        ("2020/2021", r"cannot read period '2020/2021'"),
        ("", r"cannot read period ''"),
        ("0000", r"year 0"),
        (dt.date(2020, 1, 1), r"must be text; got datetime.date\(2020, 1, 1\)"),
        (None, r"must be text; got None"),
        (True, r"must be text; got True"),
    ],
)  # fmt: skip
def test_parse_period_errors(text: object, match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        parse_period(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seq", "match"),
    [
        ("2020-21", r"must be a list of period texts; got '2020-21' \(str\).*\['2020-21'\]"),
        ([], "empty list"),
        (["2020-21", "2020-21"], r"'2020-21' is given twice"),
        (["2020", "2020-06-01/2021-01-31"], r"'2020' \(2020-01-01/2020-12-31\) and "
         r"'2020-06-01_2021-01-31' \(2020-06-01/2021-01-31\) overlap"),
        (["2020-21", "2021-03-31/2021-04-30"], r"'2020-21'.*'2021-03-31_2021-04-30'.*overlap"),
        (["2020-21", "spring"], "cannot read period 'spring'"),
    ],
)  # fmt: skip
def test_parse_periods_errors(seq: object, match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        parse_periods(seq)  # type: ignore[arg-type]


def test_period_checks_and_errors() -> None:
    assert issubclass(ParamsError, VitsegError) and issubclass(ParamsError, ValueError)
    with pytest.raises(ParamsError, match=r"ends .*before it starts"):
        Period("x", dt.date(2021, 1, 2), dt.date(2021, 1, 1))
    with pytest.raises(ParamsError, match="non-empty str label"):
        Period("", dt.date(2021, 1, 1), dt.date(2021, 1, 1))
    with pytest.raises(ParamsError, match=r"must be a datetime\.date"):
        Period("x", "2021-01-01", dt.date(2021, 1, 1))  # type: ignore[arg-type]
    assert Period("x", dt.datetime(2021, 1, 1, 5), dt.date(2021, 1, 2)).start == dt.date(2021, 1, 1)
    with pytest.raises(ParamsError, match="'someday' is not a date"):
        period_of(["someday"], ["2020"])
    with pytest.raises(ParamsError, match="'someday' is not a date"):
        parse_period("2020").contains("someday")
