"""Named time periods of a run: dry seasons, calendar years and date ranges.

A run's YAML names its periods as text, and every notebook turns them into
:class:`Period` objects with :func:`parse_period` / :func:`parse_periods`. Three forms
are accepted:

* a dry season ``"2020-21"``: 1 November 2020 to 31 March 2021 (Ghana's dry season, when
  Gallwey et al. collected their scenes; label ``"2020-21"``);
* a calendar year ``"2020"``: 1 January to 31 December (label ``"2020"``);
* a date range ``"2020-01-01/2021-01-01"``, both ends inclusive, as VitSegh24 give theirs
  (label ``"2020-01-01_2021-01-01"``, safe in file names).

:func:`period_of` labels datetimes with the period that holds their (UTC) date, and
:func:`change_periods` pairs consecutive periods for change maps.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Number
from typing import TYPE_CHECKING, Any, TypeAlias, overload

import numpy as np
import pandas as pd

from vitseg.errors import ParamsError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Period", "change_periods", "parse_period", "parse_periods", "period_of"]

_FORMS = (
    "a dry season 'YYYY-YY' (e.g. '2020-21': Nov 2020 - Mar 2021), a calendar year 'YYYY' "
    "(e.g. '2020') or a date range 'YYYY-MM-DD/YYYY-MM-DD' (e.g. '2020-01-01/2021-01-01', "
    "both ends inclusive)"
)
_SEASON = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

_Scalar: TypeAlias = str | _dt.date | np.datetime64 | pd.Timestamp


@dataclass(frozen=True)
class Period:
    """A labelled span of whole days, both ends inclusive.

    Parameters
    ----------
    label
        Short name, safe in file names (``"2020-21"``, ``"2020"``,
        ``"2020-01-01_2021-01-01"``): letters, digits, ``_``, ``.`` and ``-``, not
        starting with ``.``, ``_`` or ``-`` (no ``/``: a label never leaves its folder).
    start, end
        First and last day (inclusive).

    Examples
    --------
    >>> p = parse_period("2020-21")
    >>> p
    Period(label='2020-21', start=datetime.date(2020, 11, 1), end=datetime.date(2021, 3, 31))
    >>> p.datetime
    '2020-11-01/2021-03-31'
    >>> p.contains("2021-03-31T23:59"), p.contains("2021-04-01")
    (True, False)
    """

    label: str
    start: _dt.date
    end: _dt.date

    def __post_init__(self) -> None:
        """Check the label and that ``start <= end``."""
        if not isinstance(self.label, str) or not self.label:
            raise ParamsError(f"a period needs a non-empty str label; got {self.label!r}")
        if not _LABEL.match(self.label):
            raise ParamsError(
                f"period label {self.label!r} is not safe in file names; use letters, digits, "
                "'_', '.' and '-' only, starting with a letter or digit (e.g. '2020-21')"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, _dt.datetime):  # keep the day only
                object.__setattr__(self, name, value.date())
            elif not isinstance(value, _dt.date):
                raise ParamsError(
                    f"period {self.label!r}: {name} must be a datetime.date; got {value!r}"
                )
        if self.end < self.start:
            raise ParamsError(
                f"period {self.label!r} ends ({self.end}) before it starts ({self.start}); "
                "swap the two dates"
            )

    @property
    def datetime(self) -> str:
        """STAC ``datetime`` interval ``"YYYY-MM-DD/YYYY-MM-DD"`` of the period."""
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def contains(self, t: _Scalar) -> bool:
        """Whether the (UTC) date of datetime-like ``t`` lies in the period.

        Parameters
        ----------
        t
            str, date, datetime, ``numpy.datetime64`` or ``pandas.Timestamp``; a time
            zone aware value is converted to UTC first, a naive one is taken as UTC.

        Returns
        -------
        bool
            False for NaT.
        """
        day = _to_day(t)
        return bool(not np.isnat(day) and self._lo <= day <= self._hi)

    @property
    def _lo(self) -> np.datetime64:
        return np.datetime64(self.start.isoformat(), "D")

    @property
    def _hi(self) -> np.datetime64:
        return np.datetime64(self.end.isoformat(), "D")


def _to_day(t: Any) -> np.datetime64:
    """Return the UTC calendar day of one datetime-like value (NaT for missing)."""
    if t is None:
        return np.datetime64("NaT", "D")
    if isinstance(t, (Number, np.number, np.bool_)):
        if isinstance(t, (float, np.floating)) and math.isnan(t):
            return np.datetime64("NaT", "D")
        raise ParamsError(
            f"{t!r} is a number, not a date (pandas would read it as nanoseconds after "
            "1970-01-01); pass text such as '2021-01-15', a datetime or a numpy.datetime64"
        )
    if isinstance(t, str):
        t = str(t)  # pandas refuses numpy.str_
    try:
        ts = pd.Timestamp(t)
    except (TypeError, ValueError) as exc:
        raise ParamsError(
            f"{t!r} is not a date or datetime; pass e.g. '2021-01-15' or a numpy.datetime64"
        ) from exc
    if pd.isna(ts):
        return np.datetime64("NaT", "D")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.date().isoformat(), "D")


def _date(text: str, whole: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ParamsError(f"period {whole!r}: {text!r} is not a valid date ({exc})") from exc


def parse_period(text: str | int | Period) -> Period:
    """Parse a period given as text (a dry season, a calendar year or a date range).

    Parameters
    ----------
    text
        ``"2020-21"`` (dry season, 1 Nov 2020 - 31 Mar 2021; the second year must follow
        the first), ``"2020"`` (calendar year; an int, as YAML reads ``2020``, works too)
        or ``"2020-01-01/2021-01-01"`` (date range, both ends inclusive). A
        :class:`Period` is returned as it is.

    Returns
    -------
    Period
        Labels ``"2020-21"``, ``"2020"`` and ``"2020-01-01_2021-01-01"``.

    Raises
    ------
    ParamsError
        Any other text, a dry season whose years do not follow each other, an invalid
        date, or a range that ends before it starts.

    Examples
    --------
    >>> parse_period("2020").datetime
    '2020-01-01/2020-12-31'
    >>> parse_period("2020-01-01/2021-01-01").label
    '2020-01-01_2021-01-01'
    """
    if isinstance(text, Period):
        return text
    if isinstance(text, Integral) and not isinstance(text, bool):
        if not 1 <= int(text) <= 9999:
            raise ParamsError(f"year {int(text)} is not a year in 1..9999; write e.g. 2020")
        text = f"{int(text):04d}"
    if not isinstance(text, str):
        raise ParamsError(
            f"a period must be text; got {text!r} ({type(text).__name__}). Use {_FORMS}."
        )
    s = text.strip()
    if m := _SEASON.match(s):
        first, second = int(m.group(1)), int(m.group(2))
        if second != (first + 1) % 100:
            month_hint = (
                f" For a month use a date range, e.g. '{first}-{m.group(2)}-01/{first}-{m.group(2)}-28'."
                if 1 <= second <= 12
                else ""
            )
            raise ParamsError(
                f"dry season {text!r}: the second year must follow the first, as in "
                f"'{first}-{(first + 1) % 100:02d}' (Nov {first} - Mar {first + 1}); got "
                f"{m.group(2)!r}.{month_hint}"
            )
        if first < 1 or first >= 9999:
            raise ParamsError(
                f"dry season {text!r}: the season must start in a year 1..9998 (it ends in "
                "the next year)"
            )
        return Period(s, _dt.date(first, 11, 1), _dt.date(first + 1, 3, 31))
    if m := _YEAR.match(s):
        year = int(m.group(1))
        if year < 1:
            raise ParamsError(f"year {text!r}: year 0 is not a valid year")
        return Period(s, _dt.date(year, 1, 1), _dt.date(year, 12, 31))
    if m := _RANGE.match(s):
        start, end = _date(m.group(1), text), _date(m.group(2), text)
        if end < start:
            raise ParamsError(
                f"date range {text!r} ends ({end}) before it starts ({start}); swap them: "
                f"'{end}/{start}'"
            )
        return Period(f"{start}_{end}", start, end)
    raise ParamsError(f"cannot read period {text!r}; use {_FORMS}")


def parse_periods(seq: Sequence[str | int | Period]) -> list[Period]:
    """Parse a list of periods, check their labels are unique and they do not overlap.

    Parameters
    ----------
    seq
        List of period texts (see :func:`parse_period`), at least one.

    Returns
    -------
    list of Period
        In chronological order (by start date).

    Raises
    ------
    ParamsError
        Not a list, an empty list, a period :func:`parse_period` rejects, a label given
        twice, or two periods sharing a day (both are named).

    Examples
    --------
    >>> [p.label for p in parse_periods(["2021-22", "2020-21"])]
    ['2020-21', '2021-22']
    """
    if isinstance(seq, (str, int, Period)) or not isinstance(seq, Sequence):
        raise ParamsError(
            f"periods must be a list of period texts; got {seq!r} ({type(seq).__name__}). "
            f"Write e.g. [{seq!r}]."
        )
    if len(seq) == 0:
        raise ParamsError(f"periods is an empty list; give at least one: {_FORMS}")
    periods = [parse_period(s) for s in seq]
    seen: dict[str, Period] = {}
    for p in periods:
        if p.label in seen:
            raise ParamsError(f"period {p.label!r} is given twice in {list(seq)!r}; drop one")
        seen[p.label] = p
    periods.sort(key=lambda p: (p.start, p.end))
    for a, b in itertools.pairwise(periods):
        if b.start <= a.end:
            raise ParamsError(
                f"periods {a.label!r} ({a.datetime}) and {b.label!r} ({b.datetime}) overlap; "
                "each date must belong to one period at most"
            )
    return periods


@overload
def period_of(times: _Scalar, periods: Sequence[str | int | Period]) -> str | None: ...
@overload
def period_of(
    times: Sequence[Any] | np.ndarray[Any, Any] | pd.Index | pd.Series | xr.DataArray,
    periods: Sequence[str | int | Period],
) -> list[str | None]: ...
def period_of(times: Any, periods: Sequence[str | int | Period]) -> Any:
    """Label of the period holding each time's (UTC) date; None outside every period.

    Parameters
    ----------
    times
        A datetime-like scalar, or a sequence / array / Index / DataArray of them. Naive
        datetimes are taken as UTC; aware ones are converted to UTC.
    periods
        :class:`Period` objects or texts :func:`parse_period` accepts. Where periods
        overlap, the first in the list wins.

    Returns
    -------
    str or None, or list of them
        A str (or None) for a scalar, else a flat list in the order of ``times``.

    Raises
    ------
    ParamsError
        A period that cannot be parsed, no period at all, or a time that is not
        datetime-like (a number is refused: pandas would read it as nanoseconds since
        1970; NaN and None are missing and give None).

    Examples
    --------
    >>> period_of("2021-02-01", ["2020-21", "2021"])
    '2020-21'
    >>> period_of(["2021-06-01", "2019-06-01", "2021-12-01"], ["2020-21", "2021"])
    ['2021', None, '2021']
    """
    if isinstance(periods, (str, int, Period)):
        periods = [periods]
    parsed = [parse_period(p) for p in periods]
    if not parsed:
        raise ParamsError(f"periods is empty; give at least one: {_FORMS}")
    if times is None or isinstance(times, (str, _dt.date, np.datetime64)):
        day = _to_day(times)
        return next((p.label for p in parsed if p._lo <= day <= p._hi), None)
    if isinstance(times, (dict, set)):
        raise ParamsError(
            f"times must be a datetime-like value or a sequence of them; got a "
            f"{type(times).__name__} ({times!r})"
        )
    arr = np.asarray(times)
    if arr.ndim == 0:
        day = _to_day(arr.item() if arr.dtype == object else arr[()])
        return next((p.label for p in parsed if p._lo <= day <= p._hi), None)
    arr = arr.ravel()
    if np.issubdtype(arr.dtype, np.datetime64):
        days = arr.astype("datetime64[D]")
    else:
        days = np.array([_to_day(t) for t in arr], dtype="datetime64[D]")
    out: list[str | None] = [None] * len(days)
    for p in reversed(parsed):  # the first period listed wins
        for i in np.flatnonzero((days >= p._lo) & (days <= p._hi)):
            out[i] = p.label
    return out


def change_periods(periods: Sequence[str | int | Period]) -> list[tuple[str, str]]:
    """Pairs ``(before, after)`` of consecutive periods, for change maps.

    Parameters
    ----------
    periods
        Period texts or :class:`Period` objects, checked as by :func:`parse_periods`
        (put in chronological order).

    Returns
    -------
    list of (str, str)
        Labels of each period and the next; empty for a single period.

    Examples
    --------
    >>> change_periods(["2015-16", "2016-17", "2017-18"])
    [('2015-16', '2016-17'), ('2016-17', '2017-18')]
    """
    parsed = parse_periods(periods)
    return [(a.label, b.label) for a, b in itertools.pairwise(parsed)]
