"""Read the interpreters' work on an accuracy sample: the filled sheet, agreement, merging.

The sample drawn by :func:`vitseg.accuracy.stratified_sample` goes to interpreters as
the sheet :func:`vitseg.accuracy.write_sample` writes (or as the browser page of
:mod:`vitseg.interpret`). This module reads what comes back: :func:`read_reference`
joins a filled file onto the sample, checking every point id; :func:`read_sample`
checks the labels of an interpreted table; :func:`sample_id` fingerprints a sample so
that a file filled for another sample is refused; :func:`interpreter_agreement`
(Cohen's kappa) and :func:`merge_interpretations` combine two interpreters' labels.
The result feeds the estimators of :mod:`vitseg.estimators`.

Every name here is also importable from :mod:`vitseg.accuracy`.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from vitseg.constants import CLASSES
from vitseg.errors import MissingFileError, ParamsError, SampleError

__all__ = [
    "interpreter_agreement",
    "merge_interpretations",
    "read_reference",
    "read_sample",
    "sample_id",
]

#: Column interpreters fill with the reference class of each point (older sheets: ``reference``).
_REF = "reference_class"
#: Blank columns of the interpreter sheet after ``reference_class``.
_SHEET_EXTRA = ("interpreter", "labelled_at", "map_revealed")


# ---------------------------------------------------------------- the filled sheet
def _shown(ids: Sequence[Any], limit: int = 10) -> str:
    """Format point ids for a message: at most ``limit``, then ``...``."""
    items = [str(i) for i in list(ids)[:limit]]
    return "[" + ", ".join(items) + (", ..." if len(ids) > limit else "") + "]"


def _check_classes(classes: Any) -> list[str]:
    """Return ``classes`` as a list, refusing text, an empty list, blanks and repeats."""
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ParamsError(
            f"classes must be a non-empty list of class names, e.g. {list(CLASSES)}; got "
            f"{classes!r}"
        )
    names = list(classes)
    if not all(isinstance(c, str) and c.strip() for c in names):
        raise ParamsError(f"classes must be non-blank strings; got {names!r}")
    lower = [c.strip().lower() for c in names]
    if len(set(lower)) != len(lower):
        raise ParamsError(f"classes must be unique (ignoring case); got {names!r}")
    return names


def _check_table(table: Any, what: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise SampleError(
            f"{what} must be a DataFrame (what read_reference or stratified_sample returned); "
            f"got {type(table).__name__}"
        )
    return table


def _blank_ids(table: pd.DataFrame, source: str) -> None:
    """Refuse rows whose ``point_id`` is blank: they cannot be joined to any point."""
    blank = table["point_id"].map(_id_key) == ""
    if blank.any():
        rows = [int(i) for i in np.flatnonzero(blank.to_numpy())[:10]]
        raise SampleError(
            f"{int(blank.sum())} row(s) of {source} have no point_id (rows {rows}, counting "
            "from 0); fill in the id of each point, or delete empty rows"
        )


def _blank_map(table: pd.DataFrame, map_col: str, source: str) -> None:
    """Refuse points without a map class: the estimators would drop them silently."""
    values = table[map_col].astype(object)
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if blank.any():
        ids = table.loc[blank, "point_id"] if "point_id" in table else table.index[blank]
        raise SampleError(
            f"{int(blank.sum())} of {len(table)} points in {source} have no {map_col!r} "
            f"(point_id {_shown(list(ids))}); every sample point has a map class: use the "
            "sample of stratified_sample, not an edited copy"
        )


def _normalise_labels(
    values: pd.Series, classes: Sequence[str], what: str, ids: pd.Series | None = None
) -> pd.Series:
    lower = {c.lower(): c for c in classes}
    raw = values.astype(object)
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    text = raw.astype(str).str.strip()

    def _one(v: str) -> Any:
        if v.lower() in lower:
            return lower[v.lower()]
        if v.lstrip("-").isdigit() and 0 <= int(v) < len(classes):
            return classes[int(v)]
        return None

    mapped = text.map(_one).where(~blank)
    bad = (~blank) & mapped.isna()
    unknown = sorted(set(text[bad]))
    if unknown:
        where = f" (point_id {_shown(list(ids[bad.to_numpy()]))})" if ids is not None else ""
        raise SampleError(
            f"{what} labels {unknown}{where} are not classes; use one of {list(classes)} "
            f"(or their codes 0-{len(classes) - 1})"
        )
    return mapped


def _legacy_reference(table: pd.DataFrame, ref_col: str) -> pd.DataFrame:
    """Use an older sheet's ``reference`` column as ``ref_col`` when that one is absent or blank."""
    if ref_col == "reference" or "reference" not in table.columns:
        return table
    if ref_col in table.columns:
        filled = table[ref_col].astype(object)
        if (filled.notna() & (filled.astype(str).str.strip() != "")).any():
            return table
        table = table.drop(columns=ref_col)
    return table.rename(columns={"reference": ref_col})


def read_sample(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    classes: Sequence[str] = CLASSES,
    map_col: str = "map_class",
    ref_col: str = _REF,
) -> pd.DataFrame:
    """Read an interpreted sample (CSV sheet or GeoPackage) and check its labels.

    Labels may be class names (any case) or codes; they come back as names. A sheet
    of an older vitseg whose labels are in a ``reference`` column still reads: that
    column becomes ``ref_col`` (when ``ref_col`` is absent or blank). To join a filled
    file onto the sample and drop unreadable points, use :func:`read_reference`.

    Parameters
    ----------
    path
        CSV or GeoPackage written by :func:`~vitseg.accuracy.write_sample` and filled in, or a
        DataFrame.
    classes
        Allowed class names.
    map_col, ref_col
        Columns of the map and reference labels.

    Returns
    -------
    pandas.DataFrame
        The table (a GeoDataFrame for a GeoPackage), labels normalised.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    ParamsError
        ``classes`` is not a non-empty list of unique names.
    SampleError
        A column is missing, a reference or map label is blank, or a label is not a class.
    """
    classes = _check_classes(classes)
    if isinstance(path, pd.DataFrame):
        table = path.copy()
        source = "sample"
    else:
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(
                f"sample {str(p)!r} {'is a folder' if p.is_dir() else 'does not exist'}; "
                "give the filled CSV or GeoPackage file"
            )
        if p.suffix.lower() == ".csv":
            table = pd.read_csv(p, dtype={ref_col: object, map_col: object, "reference": object})
        else:
            table = gpd.read_file(p)
        source = p.name
    table = _legacy_reference(table, ref_col)
    missing_cols = [c for c in (map_col, ref_col) if c not in table.columns]
    if missing_cols:
        raise SampleError(
            f"{source} lacks columns {missing_cols}; it has {list(table.columns)}. "
            f"Interpreters fill the {_REF!r} column of the sheet write_sample wrote."
        )
    ref = table[ref_col].astype(object)
    blank = ref.isna() | (ref.astype(str).str.strip() == "")
    if blank.any():
        ids = table.loc[blank, "point_id"] if "point_id" in table else table.index[blank]
        shown = list(ids[:10])
        raise SampleError(
            f"{int(blank.sum())} of {len(table)} points in {source} have no reference label "
            f"(point_id {shown}{' ...' if blank.sum() > 10 else ''}); fill them in or drop "
            "the rows of points that could not be interpreted"
        )
    ids = table["point_id"] if "point_id" in table.columns else None
    _blank_map(table, map_col, source)
    table[map_col] = _normalise_labels(table[map_col], classes, "map", ids)
    table[ref_col] = _normalise_labels(table[ref_col], classes, "reference", ids)
    return table


def _id_key(value: Any) -> str:
    """Return a point id as a string key: 7, 7.0, "7" and " 7 " all give "7"."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _as_bool(values: pd.Series) -> pd.Series:
    """Parse yes/no text (true/false, 1/0, yes/no; blank = NA) as booleans, else return as is."""
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    keys = values.map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
    if not keys.isin([*words, ""]).all():
        return values
    return keys.map(lambda k: words.get(k, pd.NA)).astype("boolean")


def _read_table(
    path: str | os.PathLike[str], what: str, *, as_text: bool
) -> tuple[pd.DataFrame, str]:
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            f"{what} {str(p)!r} {'is a folder' if p.is_dir() else 'does not exist'}; "
            "give the CSV or GeoPackage file"
        )
    if p.suffix.lower() == ".csv":
        if as_text:  # labels such as "NA" or "?" stay text; only empty cells are missing
            return pd.read_csv(p, dtype=object, keep_default_na=False, na_values=[""]), p.name
        return pd.read_csv(p), p.name
    return gpd.read_file(p), p.name


def read_reference(
    path: str | os.PathLike[str],
    sample: pd.DataFrame | str | os.PathLike[str],
    *,
    classes: Sequence[str] = CLASSES,
    cannot_tell: Sequence[str] = ("cannot tell", "unknown", "?"),
) -> pd.DataFrame:
    r"""Join interpreters' reference labels onto the sample, checking every point.

    Parameters
    ----------
    path
        Filled file, CSV or GeoPackage, with at least ``point_id`` and
        ``reference_class`` (optional ``interpreter``, ``labelled_at``,
        ``map_revealed``): the sheet :func:`~vitseg.accuracy.write_sample` wrote, filled in, or the
        export of a browser interpretation page. Its other columns are ignored.
    sample
        The sample the points were drawn in (keyed by ``point_id``, with
        ``map_class``): the GeoDataFrame of :func:`~vitseg.accuracy.stratified_sample`, or the path of
        the GeoPackage (or CSV) :func:`~vitseg.accuracy.write_sample` wrote.
    classes
        Allowed class names (labels may be names in any case, or codes).
    cannot_tell
        Labels (any case) of points the interpreter could not read; they and blank
        labels are dropped, as Gallwey et al. dropped unreadable points.

    Returns
    -------
    pandas.DataFrame
        The sample's rows (a GeoDataFrame when ``sample`` is one), in its order, less
        the dropped points, with ``map_class`` and ``reference_class`` as class names
        and the file's ``interpreter``, ``labelled_at``, ``map_revealed`` (a
        nullable boolean when it reads as yes/no) and ``notes`` where present. Ready for
        :func:`~vitseg.estimators.error_matrix`. ``attrs["n_cannot_tell"]`` counts the dropped points,
        ``attrs["cannot_tell_ids"]`` lists their ids.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    ParamsError
        ``classes`` is not a non-empty list of unique names, or ``cannot_tell`` is one
        text or names a class (those points would be dropped).
    SampleError
        A row of the file without ``point_id``, a sample point without ``map_class``;
        a column is missing; or (all reported together, naming the point ids) point
        ids of the file not in the sample, sample points missing from the file,
        duplicate point ids, reference labels that are not classes, or (an
        interpretation page's export) a ``sample_id`` column that is not
        :func:`sample_id` of ``sample``.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> sample = pd.DataFrame({"point_id": [1, 2, 3], "map_class": ["mines", "built", "mines"]})
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "filled.csv"
    >>> _ = f.write_text("point_id,reference_class\n1,mines\n2,cannot tell\n3,built\n")
    >>> ref = read_reference(f, sample)
    >>> ref["reference_class"].tolist(), ref.attrs["n_cannot_tell"]
    (['mines', 'built'], 1)
    >>> from vitseg.estimators import error_matrix
    >>> int(error_matrix(ref).loc["mines", "built"])
    1
    """
    classes = _check_classes(classes)
    if isinstance(cannot_tell, str) or not isinstance(cannot_tell, Sequence):
        raise ParamsError(
            f"cannot_tell must be a list of labels; got {cannot_tell!r}. Write [{cannot_tell!r}]."
        )
    clash = sorted({str(c).strip().lower() for c in cannot_tell} & {c.lower() for c in classes})
    if clash:
        raise ParamsError(
            f"cannot_tell labels {clash} are class names; their points would be dropped as "
            "unreadable. Remove them from cannot_tell."
        )
    filled, source = _read_table(path, "reference file", as_text=True)
    filled = pd.DataFrame(filled.drop(columns="geometry", errors="ignore"))
    filled = _legacy_reference(filled, _REF)
    missing_cols = [c for c in ("point_id", _REF) if c not in filled.columns]
    if missing_cols:
        raise SampleError(
            f"{source} lacks columns {missing_cols}; it has {list(filled.columns)}. A filled "
            f"file needs 'point_id' and {_REF!r} (one row per sample point)."
        )
    if isinstance(sample, pd.DataFrame):
        table, sample_name = sample.copy(), "the sample"
    else:
        table, sample_name = _read_table(sample, "sample file", as_text=False)
    lacking = [c for c in ("point_id", "map_class") if c not in table.columns]
    if lacking:
        raise SampleError(
            f"{sample_name} lacks columns {lacking}; it has {list(table.columns)}. Pass the "
            "sample of stratified_sample (or the GeoPackage write_sample wrote)."
        )
    _blank_ids(filled, source)
    _blank_ids(table, sample_name)
    _blank_map(table, "map_class", sample_name)
    file_keys = filled["point_id"].map(_id_key)
    sample_keys = table["point_id"].map(_id_key)
    problems = []
    dup_sample = pd.unique(sample_keys[sample_keys.duplicated()])
    if dup_sample.size:
        problems.append(f"the sample repeats point ids {_shown(list(dup_sample))}")
    dup = pd.unique(file_keys[file_keys.duplicated()])
    if dup.size:
        problems.append(
            f"point ids {_shown(list(dup))} appear more than once in {source}; keep one "
            "label per point"
        )
    known = set(sample_keys)
    foreign = pd.unique(file_keys[~file_keys.isin(known)])
    if foreign.size:
        problems.append(
            f"point ids {_shown(list(foreign))} of {source} are not in the sample "
            f"({len(known)} points); is this the sample of another run?"
        )
    absent = pd.unique(sample_keys[~sample_keys.isin(set(file_keys))])
    if absent.size:
        problems.append(
            f"sample points {_shown(list(absent))} ({absent.size} of {len(known)}) are "
            f"missing from {source}; label them (blank or 'cannot tell' if unreadable)"
        )
    if "sample_id" in filled.columns:  # the export of an interpretation page
        stamped = sorted({str(v).strip() for v in filled["sample_id"].dropna()} - {""})
        expected = sample_id(table)
        if stamped and stamped != [expected]:
            problems.insert(
                0,
                f"{source} was exported for sample_id {', '.join(stamped)} but this sample's "
                f"id is {expected} (accuracy.sample_id); it labels another sample: is it "
                "from another run?",
            )
    raw = filled[_REF].astype(object)
    text = raw.map(lambda v: "" if pd.isna(v) else str(v).strip())
    unreadable = text.str.lower().isin([c.strip().lower() for c in cannot_tell]) | (text == "")
    try:
        labels = _normalise_labels(text.where(~unreadable, ""), classes, "reference", file_keys)
    except SampleError as err:
        problems.append(f"{source}: {err}")
        labels = text
    if problems:
        raise SampleError(f"{source} does not match the sample:\n- " + "\n- ".join(problems))
    by_id = filled.assign(**{_REF: labels}).set_index(file_keys)
    taken = [_REF, *(c for c in (*_SHEET_EXTRA, "notes") if c in filled.columns)]
    out = table.drop(columns=[c for c in taken if c in table.columns])
    for col in taken:
        values = sample_keys.map(by_id[col])
        out[col] = _as_bool(values).to_numpy() if col == "map_revealed" else values.to_numpy()
    drop = out[_REF].isna().to_numpy()
    dropped_ids = list(out.loc[drop, "point_id"])
    out = out[~drop].reset_index(drop=True)
    ids = out["point_id"]
    out["map_class"] = _normalise_labels(out["map_class"], classes, "map", ids)
    out.attrs["n_cannot_tell"] = len(dropped_ids)
    out.attrs["cannot_tell_ids"] = dropped_ids
    return out


# ------------------------------------------------------------- interpreters' work
def sample_id(sample: pd.DataFrame) -> str:
    """Short fingerprint of a sample: a hash of its point ids and coordinates.

    The browser interpretation page (:func:`vitseg.interpret.write_interpretation_page`)
    keys its saved work by it and writes it into every exported row;
    :func:`read_reference` refuses an export whose ``sample_id`` differs. The hash does
    not depend on the row order, on the container (the GeoDataFrame of
    :func:`~vitseg.accuracy.stratified_sample`, or the GeoPackage or CSV sheet of :func:`~vitseg.accuracy.write_sample`)
    or on coordinate differences under a centimetre. A sample that carries a
    ``sample_id`` column (one value throughout) gives that value.

    Parameters
    ----------
    sample
        Table with ``point_id`` and the ``x``, ``y`` columns of
        :func:`~vitseg.accuracy.stratified_sample` (else its point geometry; else the ids alone).

    Returns
    -------
    str
        Twelve hexadecimal digits.

    Raises
    ------
    SampleError
        Not a DataFrame, no ``point_id`` column, several values in a ``sample_id``
        column, non-numeric ``x``/``y``, or geometries that are not points.

    Examples
    --------
    >>> s = pd.DataFrame({"point_id": ["a-1", "a-2"], "x": [5.0, 15.0], "y": [5.0, 5.0]})
    >>> sample_id(s) == sample_id(s.iloc[::-1]), len(sample_id(s))
    (True, 12)
    >>> sample_id(s) == sample_id(s.assign(x=[5.0, 25.0]))
    False
    """
    _check_table(sample, "sample")
    if "point_id" not in sample.columns:
        raise SampleError(
            f"sample lacks a 'point_id' column; it has {list(sample.columns)}. Pass the "
            "sample of stratified_sample (or the file write_sample wrote)."
        )
    if "sample_id" in sample.columns:
        given = sorted({str(v).strip() for v in sample["sample_id"].dropna()} - {""})
        if len(given) > 1:
            raise SampleError(
                f"the sample's 'sample_id' column holds several ids {given}; one sample has "
                "one id (drop the column to use the hash of its points)"
            )
        if given:
            return given[0]
    keys = sample["point_id"].map(_id_key).tolist()
    if {"x", "y"} <= set(sample.columns):
        try:
            xs = pd.to_numeric(sample["x"]).to_numpy(np.float64)
            ys = pd.to_numeric(sample["y"]).to_numpy(np.float64)
        except (TypeError, ValueError) as err:
            raise SampleError(
                f"the sample's 'x'/'y' columns must hold numbers (metres); {err}. Use the "
                "sample of stratified_sample unedited."
            ) from err
    elif isinstance(sample, gpd.GeoDataFrame) and len(sample):
        kinds = sorted(set(sample.geometry.geom_type.dropna()) - {"Point"})
        if kinds or sample.geometry.isna().any():
            raise SampleError(
                f"sample points must be Point geometries; got {kinds or ['missing']}. Give "
                "the sample of stratified_sample (or x/y columns)."
            )
        xs, ys = sample.geometry.x.to_numpy(), sample.geometry.y.to_numpy()
    else:
        xs = ys = np.full(len(keys), np.nan)
    lines = sorted(
        f"{k}\t{round(float(x), 2) + 0.0:.2f}\t{round(float(y), 2) + 0.0:.2f}"
        for k, x, y in zip(keys, xs, ys, strict=True)
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def _labels_by_id(table: pd.DataFrame, what: str, classes: Sequence[str]) -> pd.DataFrame:
    """Index a read_reference result by point-id key: columns ``point_id`` and ``label``."""
    _check_table(table, f"interpretation {what}")
    lacking = [c for c in ("point_id", _REF) if c not in table.columns]
    if lacking:
        raise SampleError(
            f"interpretation {what} lacks columns {lacking}; it has {list(table.columns)}. "
            "Pass what read_reference returned for each interpreter."
        )
    _blank_ids(table, f"interpretation {what}")
    keys = table["point_id"].map(_id_key)
    dup = pd.unique(keys[keys.duplicated()])
    if dup.size:
        raise SampleError(
            f"interpretation {what} labels points {_shown(list(dup))} more than once; keep "
            "one label per point"
        )
    labels = _normalise_labels(table[_REF], classes, f"interpretation {what}", table["point_id"])
    out = pd.DataFrame(
        {"point_id": table["point_id"].to_numpy(), "label": labels.to_numpy()},
        index=pd.Index(keys.to_numpy(), name="key"),
    )
    return out[out["label"].notna()]


def interpreter_agreement(
    a: pd.DataFrame, b: pd.DataFrame, *, classes: Sequence[str] = CLASSES
) -> dict[str, Any]:
    """Agreement of two interpreters on the points both labelled (Cohen's kappa).

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of common points given
    the same class and ``p_e = sum_k a_k b_k / n^2`` the share expected by chance from
    the two interpreters' class counts ``a_k``, ``b_k`` (Cohen 1960).

    Parameters
    ----------
    a, b
        Two interpreters' labels of one sample: what :func:`read_reference` returned
        for each (``point_id`` and ``reference_class``; points either could not tell
        are absent and not compared).
    classes
        Allowed class names.

    Returns
    -------
    dict
        ``kappa`` (NaN when chance agreement is 1: both gave one class throughout),
        ``n_common`` (points both labelled), ``percent_agreement`` (0-100),
        ``disagreeing_ids`` (point ids, in ``a``'s order), ``n_only_a``, ``n_only_b``
        (points only one labelled) and ``confusion`` (counts, ``a`` in rows and ``b``
        in columns).

    Raises
    ------
    ParamsError
        ``classes`` is not a non-empty list of unique names.
    SampleError
        ``a`` or ``b`` is not a DataFrame, a column is missing, a point id is blank, a
        point is labelled twice, a label is not a class, or no point was labelled by both.

    Examples
    --------
    >>> a = pd.DataFrame({"point_id": [1, 2, 3, 4], "reference_class": ["mines"] * 2 + ["built"] * 2})
    >>> b = a.assign(reference_class=["mines", "built", "built", "built"])
    >>> r = interpreter_agreement(a, b)
    >>> r["n_common"], r["percent_agreement"], r["disagreeing_ids"], round(r["kappa"], 3)
    (4, 75.0, [2], 0.5)
    """
    classes = _check_classes(classes)
    la, lb = _labels_by_id(a, "a", classes), _labels_by_id(b, "b", classes)
    common = la.index[la.index.isin(lb.index)]
    if common.empty:
        raise SampleError(
            f"the two interpretations share no labelled point (a: {len(la)} points, b: "
            f"{len(lb)}); are they of the same sample?"
        )
    ya = la.loc[common, "label"].to_numpy()
    yb = lb.loc[common, "label"].to_numpy()
    names = list(classes)
    confusion = (
        pd.crosstab(pd.Categorical(ya, categories=names), pd.Categorical(yb, categories=names))
        .reindex(index=names, columns=names, fill_value=0)
        .astype(np.int64)
    )
    confusion.index.name, confusion.columns.name = "a", "b"
    n = len(common)
    counts = confusion.to_numpy(np.float64)
    p_o = float(np.trace(counts)) / n
    p_e = float(np.sum(counts.sum(axis=1) * counts.sum(axis=0))) / n**2
    kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else math.nan
    differ = ya != yb
    return {
        "kappa": kappa,
        "n_common": n,
        "percent_agreement": 100.0 * p_o,
        "disagreeing_ids": list(la.loc[common, "point_id"][differ]),
        "n_only_a": int((~la.index.isin(lb.index)).sum()),
        "n_only_b": int((~lb.index.isin(la.index)).sum()),
        "confusion": confusion,
    }


def _id_order(key: str) -> tuple[int, float, str]:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


def merge_interpretations(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    how: Literal["first", "agreed"] = "first",
    classes: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """Merge two interpreters' labels of one sample into one reference table.

    Parameters
    ----------
    a, b
        What :func:`read_reference` returned for each interpreter.
    how
        ``"first"``: ``a``'s label wherever ``a`` labelled the point, ``b``'s for the
        points only ``b`` could tell. ``"agreed"``: only the points both labelled,
        and labelled the same (a cautious reference set).
    classes
        Allowed class names.

    Returns
    -------
    pandas.DataFrame
        ``a``'s rows (and for ``"first"`` ``b``'s rows of points ``a`` lacks), ordered
        by point id, with a ``labelled_by`` column: ``"both"`` (same label),
        ``"first"`` or ``"second"`` (whose label was taken). A GeoDataFrame when ``a``
        is one. ``attrs["disagreeing_ids"]`` lists the points the two labelled
        differently. Ready for :func:`~vitseg.estimators.error_matrix`.

    Raises
    ------
    ParamsError
        ``how`` is not ``"first"`` or ``"agreed"``.
    SampleError
        As in :func:`interpreter_agreement`.

    Examples
    --------
    >>> a = pd.DataFrame({"point_id": [1, 2], "map_class": "mines", "reference_class": ["mines", "built"]})
    >>> b = pd.DataFrame({"point_id": [1, 2, 3], "map_class": "mines", "reference_class": "mines"})
    >>> merge_interpretations(a, b)[["point_id", "reference_class", "labelled_by"]].values.tolist()
    [[1, 'mines', 'both'], [2, 'built', 'first'], [3, 'mines', 'second']]
    >>> merge_interpretations(a, b, how="agreed")["point_id"].tolist()
    [1]
    """
    if how not in ("first", "agreed"):
        raise ParamsError(f"'how' must be one of {{'first', 'agreed'}}; got {how!r}")
    classes = _check_classes(classes)
    la, lb = _labels_by_id(a, "a", classes), _labels_by_id(b, "b", classes)
    keys_a = a["point_id"].map(_id_key)
    keys_b = b["point_id"].map(_id_key)
    label_a = keys_a.map(la["label"])
    label_b = keys_a.map(lb["label"])
    same = (label_a == label_b).fillna(False).to_numpy(bool)
    differ = (label_a.notna() & label_b.notna() & (label_a != label_b)).to_numpy(bool)
    if how == "agreed":
        out = a[same].copy()
        out[_REF] = label_a[same].to_numpy()
        out["labelled_by"] = "both"
    else:
        mine = a[label_a.notna().to_numpy(bool)].copy()
        mine[_REF] = label_a.dropna().to_numpy()
        mine["labelled_by"] = np.where(same[label_a.notna().to_numpy(bool)], "both", "first")
        only_b = (~keys_b.isin(set(la.index)) & keys_b.isin(set(lb.index))).to_numpy(bool)
        theirs = b[only_b].copy()
        theirs[_REF] = keys_b[only_b].map(lb["label"]).to_numpy()
        theirs["labelled_by"] = "second"
        out = pd.concat([mine, theirs]) if len(theirs) else mine
    order = sorted(range(len(out)), key=lambda i: _id_order(_id_key(out["point_id"].iloc[i])))
    out = out.iloc[order].reset_index(drop=True)
    out.attrs["disagreeing_ids"] = list(a.loc[differ, "point_id"])
    return out
