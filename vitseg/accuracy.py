"""Accuracy assessment and area estimation from a stratified random sample.

Follows Olofsson et al. (2014, Remote Sensing of Environment 148:42-57, "good
practices"): the map classes are the strata; a random sample of pixels is drawn in
each; interpreters label each point; the error matrix of sample counts is turned
into estimated area proportions ``p_ij = W_i n_ij / n_i.`` with the stratum weights
``W_i`` (mapped area shares), from which overall, user's and producer's accuracy
and the area of each class follow, each with a standard error and a 95% confidence
interval. Gallwey et al. sized their sample with Cochran's formula (their eq. 7) and
reported the plain count ratios of the sample; both are here (:func:`count_ratios`).

Conventions: error matrices have map classes in rows and reference classes in
columns (Olofsson et al.); ``mapped_area`` is in pixels unless said otherwise.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import (
    DimensionError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    SampleError,
)
from vitseg.io import atomic_path

__all__ = [
    "Z95",
    "accuracy_table",
    "allocate",
    "area_proportions",
    "count_ratios",
    "error_matrix",
    "estimate_area",
    "estimate_zone_areas",
    "interpreter_agreement",
    "map_class_counts",
    "merge_interpretations",
    "overall_accuracy",
    "overall_count_ratio",
    "pixel_area_m2",
    "producers_accuracy",
    "read_reference",
    "read_sample",
    "sample_id",
    "sample_size",
    "stratified_sample",
    "users_accuracy",
    "write_sample",
]

Array = np.ndarray[Any, Any]
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.96
_M2_PER_HA = 10_000.0
#: Column interpreters fill with the reference class of each point (older sheets: ``reference``).
_REF = "reference_class"
#: Blank columns of the interpreter sheet after ``reference_class``.
_SHEET_EXTRA = ("interpreter", "labelled_at", "map_revealed")


# --------------------------------------------------------------------------- design
def sample_size(
    weights: Sequence[float] | Mapping[str, float] | pd.Series,
    users_accuracy: Sequence[float] | Mapping[str, float] | pd.Series,
    *,
    target_se: float = 0.01,
    population: int | None = None,
) -> int:
    """Total sample size for a target standard error of overall accuracy (Cochran).

    ``n = (sum W_i S_i)^2 / (S(O)^2 + (1/N) sum W_i S_i^2)`` with
    ``S_i = sqrt(U_i (1 - U_i))`` (Cochran 1977; Olofsson et al. 2014; Gallwey et al.
    eq. 7). Without ``population`` the large-population form
    ``(sum W_i S_i / S(O))^2`` is used.

    Parameters
    ----------
    weights
        Mapped area proportions ``W_i`` of the strata (normalised to sum to 1).
    users_accuracy
        Expected user's accuracy ``U_i`` of each stratum, in ``[0, 1]``.
    target_se
        Target standard error ``S(O)`` of the overall accuracy.
    population
        Number of pixels ``N`` (the finite-population form).

    Returns
    -------
    int
        Sample size, rounded up.

    Raises
    ------
    ParamsError
        Unequal lengths, negative weights, accuracies outside [0, 1], or a
        non-positive target.

    Examples
    --------
    >>> sample_size([0.5, 0.5], [0.9, 0.9], target_se=0.03)  # 0.09 / 0.0009
    100
    >>> sample_size([0.5, 0.5], [0.9, 0.9], target_se=0.03, population=100)
    50
    """
    w = _as_array(weights, "weights")
    u = _as_array(users_accuracy, "users_accuracy")
    if w.shape != u.shape:
        raise ParamsError(
            f"'weights' and 'users_accuracy' need one value per stratum; got {w.size} and {u.size}"
        )
    if np.any(w < 0) or w.sum() <= 0:
        raise ParamsError(f"'weights' must be >= 0 and not all 0; got {w.tolist()}")
    if np.any((u < 0) | (u > 1)):
        raise ParamsError(f"'users_accuracy' must lie in [0, 1]; got {u.tolist()}")
    if target_se <= 0:
        raise ParamsError(f"'target_se' must be > 0; got {target_se!r}")
    w = w / w.sum()
    s = np.sqrt(u * (1 - u))
    num = float(np.sum(w * s)) ** 2
    den = target_se**2
    if population is not None:
        if population <= 0:
            raise ParamsError(f"'population' must be a positive pixel count; got {population}")
        den += float(np.sum(w * s**2)) / population
    # round() first so that 100.00000000000001 does not become 101
    return math.ceil(round(num / den, 9))


def allocate(
    n_total: int,
    weights: Sequence[float] | Mapping[str, float] | pd.Series,
    *,
    method: Literal["proportional", "equal", "gallwey"] = "proportional",
    largest_share: float = 0.5,
    min_per_stratum: int = 0,
    oversample: float = 1.0,
    round_up_to: int = 1,
) -> pd.Series:
    """Share a total sample among strata.

    ``"proportional"`` gives ``n W_i``; ``"equal"`` gives ``n / k``; ``"gallwey"``
    gives ``largest_share`` of ``n`` to the stratum of largest weight and shares the
    rest equally among the others (Gallwey et al.: 50/25/25). Shares are rounded down
    (Gallwey: 509 -> 254/127/127), then raised to ``min_per_stratum``, then multiplied
    by ``oversample`` (points expected to be lost to masks or unreadable imagery) and
    rounded up to a multiple of ``round_up_to`` (Gallwey: 300/150/150).

    Parameters
    ----------
    n_total
        Total sample size, e.g. from :func:`sample_size`.
    weights
        Stratum weights (names kept from a mapping or Series).
    method
        Allocation rule.
    largest_share
        Fraction for the largest stratum (``"gallwey"`` only).
    min_per_stratum
        Least number of points per stratum.
    oversample
        Factor >= 1 applied after the minimum.
    round_up_to
        Round each stratum up to a multiple of this.

    Returns
    -------
    pandas.Series
        Points per stratum (int).

    Examples
    --------
    >>> allocate(509, {"mines": 0.02, "built": 0.03, "vegetation": 0.95}, method="gallwey").tolist()
    [127, 127, 254]
    >>> allocate(509, [0.02, 0.03, 0.95], method="gallwey", oversample=1.18, round_up_to=50).tolist()
    [150, 150, 300]
    """
    index = _index_of(weights)
    w = _as_array(weights, "weights")
    k = w.size
    if n_total < 0 or k == 0:
        raise ParamsError(f"need n_total >= 0 and at least one stratum; got {n_total}, {k}")
    if oversample < 1 or round_up_to < 1 or min_per_stratum < 0:
        raise ParamsError(
            "'oversample' must be >= 1, 'round_up_to' >= 1 and 'min_per_stratum' >= 0; got "
            f"{oversample}, {round_up_to}, {min_per_stratum}"
        )
    if method == "proportional":
        base = np.floor(n_total * w / w.sum())
    elif method == "equal":
        base = np.full(k, np.floor(n_total / k))
    elif method == "gallwey":
        if not 0 < largest_share <= 1:
            raise ParamsError(f"'largest_share' must be in (0, 1]; got {largest_share}")
        rest = np.floor(n_total * (1 - largest_share) / (k - 1)) if k > 1 else 0.0
        base = np.full(k, rest)
        base[int(np.argmax(w))] = np.floor(n_total * largest_share)
    else:
        raise ParamsError(
            f"'method' must be one of {{'proportional', 'equal', 'gallwey'}}; got {method!r}"
        )
    base = np.maximum(base, min_per_stratum)
    out = np.ceil(np.round(base * oversample / round_up_to, 9)) * round_up_to
    return pd.Series(out.astype(np.int64), index=index, name="n_points")


# --------------------------------------------------------------------- class maps
def _open_class_map(class_map: xr.DataArray | str | os.PathLike[str]) -> xr.DataArray:
    if isinstance(class_map, (str, os.PathLike)):
        da = rioxarray.open_rasterio(class_map)
        if not isinstance(da, xr.DataArray):
            raise DimensionError(f"{class_map} holds several variables; give one class raster")
        class_map = da
    if "band" in class_map.dims:
        if class_map.sizes["band"] != 1:
            raise DimensionError(
                f"class map must have one band; got {class_map.sizes['band']}. "
                "Select the class layer with .isel(band=0)."
            )
        class_map = class_map.isel(band=0, drop=True)
    if class_map.dims != ("y", "x"):
        raise DimensionError(f"class map must have dims ('y', 'x'); got {class_map.dims}")
    if class_map.rio.crs is None:
        raise MissingCRSError(
            "class map has no CRS; set it with class_map.rio.write_crs('EPSG:32630')"
        )
    return class_map


def _strips(da: xr.DataArray, strip_rows: int) -> Iterator[tuple[int, Array]]:
    for r0 in range(0, da.sizes["y"], strip_rows):
        yield r0, np.asarray(da.isel(y=slice(r0, r0 + strip_rows)).values)


def map_class_counts(
    class_map: xr.DataArray | str | os.PathLike[str],
    *,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
    strip_rows: int = 1024,
) -> pd.Series:
    """Pixels of each class in a class raster, read strip by strip (bounded memory).

    Parameters
    ----------
    class_map
        ``(y, x)`` class codes (DataArray, numpy- or dask-backed, or a GeoTIFF/COG path).
    classes
        Class names whose index is the code.
    nodata
        Code not counted.
    strip_rows
        Rows read at a time.

    Returns
    -------
    pandas.Series
        Pixel counts indexed by class name (the ``mapped_area`` of the estimators).

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray
    >>> m = xr.DataArray(np.array([[0, 2], [2, 255]], "uint8"), dims=("y", "x"))
    >>> map_class_counts(m.rio.write_crs("EPSG:32630")).tolist()
    [1, 0, 2]
    """
    da = _open_class_map(class_map)
    counts = np.zeros(256 if nodata < 256 else nodata + 1, dtype=np.int64)
    for _, block in _strips(da, strip_rows):
        vals = block.ravel()
        counts += np.bincount(vals[vals != nodata].astype(np.int64), minlength=counts.size)[
            : counts.size
        ]
    return pd.Series(counts[: len(classes)], index=pd.Index(list(classes)), name="pixels")


def pixel_area_m2(class_map: xr.DataArray | str | os.PathLike[str]) -> float:
    """Area of one pixel in square metres (projected CRS only).

    Raises
    ------
    ParamsError
        The CRS is geographic (pixel areas vary with latitude); reproject the map to
        UTM first.
    """
    da = _open_class_map(class_map)
    if da.rio.crs.is_geographic:
        raise ParamsError(
            f"class map is in geographic CRS {da.rio.crs}; pixel areas vary with latitude. "
            "Reproject it to a UTM zone (e.g. EPSG:32630) before estimating areas."
        )
    rx, ry = da.rio.resolution()
    return float(abs(rx * ry))


def _requested(
    n_per_class: int | Mapping[str, int] | Sequence[int], classes: Sequence[str]
) -> Array:
    if isinstance(n_per_class, (int, np.integer)):
        return np.full(len(classes), int(n_per_class), dtype=np.int64)
    if isinstance(n_per_class, Mapping):
        unknown = sorted(set(n_per_class) - set(classes))
        if unknown:
            raise ParamsError(
                f"'n_per_class' names unknown classes {unknown}; known {list(classes)}"
            )
        return np.array([int(n_per_class.get(c, 0)) for c in classes], dtype=np.int64)
    arr = np.asarray(list(n_per_class), dtype=np.int64)
    if arr.size != len(classes):
        raise ParamsError(
            f"'n_per_class' needs {len(classes)} values (one per class); got {arr.size}"
        )
    return arr


def stratified_sample(
    class_map: xr.DataArray | str | os.PathLike[str],
    *,
    n_per_class: int | Mapping[str, int] | Sequence[int],
    seed: int | None = None,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
    zones: gpd.GeoDataFrame | None = None,
    zone_col: str = "zone",
    strip_rows: int = 1024,
) -> gpd.GeoDataFrame:
    """Draw a stratified random sample of pixel centres, the map classes being strata.

    Two passes over the raster, strip by strip: count each class's pixels, draw the
    ranks of the chosen pixels in row-major order, then find them. Memory stays bounded
    and the sample depends only on the raster and the seed (not on chunking).

    Parameters
    ----------
    class_map
        ``(y, x)`` class codes with a CRS (DataArray or GeoTIFF/COG path).
    n_per_class
        Points per class: one int for all, one per class, or ``{name: n}``.
    seed
        Seed of the draw; the same seed gives the same sample.
    classes
        Class names whose index is the code.
    nodata
        Code never sampled.
    zones
        Optional polygons (e.g. districts); each point gets the ``zone_col`` value of
        the polygon it falls in (NaN outside all).
    zone_col
        Column of ``zones`` to carry.
    strip_rows
        Rows read at a time.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per point, in the map's CRS: ``point_id`` (1..n), ``map_class`` (name),
        ``map_code``, ``row``, ``col``, ``x``, ``y``, ``reference_class`` (blank, for
        the interpreters), optionally ``zone_col``, and ``geometry`` (pixel centre).

    Raises
    ------
    MissingCRSError
        The map has no CRS.
    SampleError
        Points are requested from a class that has no pixel.

    Warns
    -----
    UserWarning
        A class has fewer pixels than requested: all are taken.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray
    >>> m = xr.DataArray(np.array([[0, 0, 2], [1, 2, 255]], "uint8"), dims=("y", "x"),
    ...                  coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
    >>> s = stratified_sample(m.rio.write_crs("EPSG:32630"), n_per_class=1, seed=0)
    >>> s["map_class"].tolist()
    ['mines', 'built', 'vegetation']
    """
    da = _open_class_map(class_map)
    want = _requested(n_per_class, classes)
    if np.any(want < 0):
        raise ParamsError(f"'n_per_class' must be >= 0; got {want.tolist()}")
    codes = np.arange(len(classes))
    width = da.sizes["x"]
    strip_counts = []
    for _, block in _strips(da, strip_rows):
        strip_counts.append([int(np.count_nonzero(block == c)) for c in codes])
    counts = np.asarray(strip_counts, dtype=np.int64).reshape(-1, len(classes))
    totals = counts.sum(axis=0)
    rng = np.random.default_rng(seed)
    chosen: list[Array] = []
    for c, name in enumerate(classes):
        n = int(want[c])
        if n > 0 and totals[c] == 0:
            raise SampleError(
                f"class {name!r} (code {c}) has no pixel in the map but {n} points were "
                "requested; set its count to 0 or check the class codes"
            )
        if n > totals[c]:
            warnings.warn(
                f"class {name!r} has only {totals[c]} pixels; all are taken instead of {n}",
                UserWarning,
                stacklevel=2,
            )
            n = int(totals[c])
        chosen.append(np.sort(rng.choice(int(totals[c]), size=n, replace=False)))
    starts = np.vstack([np.zeros(len(classes), np.int64), np.cumsum(counts, axis=0)])
    rows: list[tuple[int, int, int]] = []  # (class, row, col)
    for s, (r0, block) in enumerate(_strips(da, strip_rows)):
        flat = block.ravel()
        for c in range(len(classes)):
            lo, hi = starts[s, c], starts[s + 1, c]
            ranks = chosen[c][(chosen[c] >= lo) & (chosen[c] < hi)] - lo
            if ranks.size == 0:
                continue
            pos = np.flatnonzero(flat == c)[ranks]
            rows.extend((int(c), int(r0 + p // width), int(p % width)) for p in pos)
    rows.sort()
    cls = np.array([r[0] for r in rows], dtype=np.int64)
    rr = np.array([r[1] for r in rows], dtype=np.int64)
    cc = np.array([r[2] for r in rows], dtype=np.int64)
    xs = np.asarray(da["x"].values)[cc] if rows else np.array([], float)
    ys = np.asarray(da["y"].values)[rr] if rows else np.array([], float)
    gdf = gpd.GeoDataFrame(
        {
            "point_id": np.arange(1, len(rows) + 1),
            "map_class": [classes[c] for c in cls],
            "map_code": cls.astype(np.uint8),
            "row": rr,
            "col": cc,
            "x": xs.astype(float),
            "y": ys.astype(float),
            _REF: pd.Series([""] * len(rows), dtype=object),
        },
        geometry=gpd.points_from_xy(xs, ys),
        crs=da.rio.crs,
    )
    if zones is not None:
        if zone_col not in zones.columns:
            raise ParamsError(f"'zones' lacks column {zone_col!r}; it has {list(zones.columns)}")
        if zones.crs is None:
            raise MissingCRSError("'zones' has no CRS; set it with zones.set_crs(...)")
        joined = gpd.sjoin(
            gdf[["geometry"]], zones[[zone_col, "geometry"]].to_crs(gdf.crs), how="left"
        )
        joined = joined[~joined.index.duplicated(keep="first")]
        gdf.insert(gdf.columns.get_loc(_REF) + 1, zone_col, joined[zone_col].values)
    return gdf


def write_sample(sample: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the sample as a GeoPackage and, beside it, a CSV sheet for interpreters.

    The CSV (same name, ``.csv``) has ``point_id``, ``map_class``, ``x``, ``y``,
    ``lon``, ``lat`` (WGS84, for any viewer), any zone column, then the blank columns
    interpreters fill in: ``reference_class`` (a class name; blank or ``cannot tell``
    where the imagery is unreadable), ``interpreter``, ``labelled_at`` (ISO time) and
    ``map_revealed`` (whether the interpreter saw the map class). Read the filled file
    back with :func:`read_reference`. Both files are written atomically.

    Parameters
    ----------
    sample
        Output of :func:`stratified_sample`.
    path
        GeoPackage path (``.gpkg``).

    Returns
    -------
    pathlib.Path
        The GeoPackage path.

    Raises
    ------
    ParamsError
        ``path`` does not end in ``.gpkg``.
    MissingCRSError
        The sample has no CRS.
    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise ParamsError(f"sample path must end in .gpkg; got {path.name!r}")
    if sample.crs is None:
        raise MissingCRSError("sample has no CRS; set it with sample.set_crs(...)")
    out = sample.copy()
    if _REF not in out.columns and "reference" in out.columns:  # a sample of an older vitseg
        out = out.rename(columns={"reference": _REF})
    if _REF not in out.columns:
        out[_REF] = ""
    out[_REF] = out[_REF].fillna("").astype(str)
    with atomic_path(path) as tmp:
        out.to_file(tmp, driver="GPKG", layer="sample")
    lonlat = out.geometry.to_crs("EPSG:4326")
    sheet = pd.DataFrame(out.drop(columns="geometry"))
    sheet = sheet.drop(columns=[c for c in ("map_code", "row", "col") if c in sheet])
    sheet.insert(sheet.columns.get_loc("y") + 1, "lon", lonlat.x.round(7).values)
    sheet.insert(sheet.columns.get_loc("lon") + 1, "lat", lonlat.y.round(7).values)
    for col in _SHEET_EXTRA:
        if col not in sheet.columns:
            sheet[col] = ""
    tail = [_REF, *_SHEET_EXTRA]
    sheet = sheet[[c for c in sheet.columns if c not in tail] + tail]
    with atomic_path(path.with_suffix(".csv")) as tmp:
        sheet.to_csv(tmp, index=False)
    return path


def _shown(ids: Sequence[Any], limit: int = 10) -> str:
    """Format point ids for a message: at most ``limit``, then ``...``."""
    items = [str(i) for i in list(ids)[:limit]]
    return "[" + ", ".join(items) + (", ..." if len(ids) > limit else "") + "]"


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
        CSV or GeoPackage written by :func:`write_sample` and filled in, or a
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
    SampleError
        A column is missing, a reference label is blank, or a label is not a class.
    """
    if isinstance(path, pd.DataFrame):
        table = path.copy()
        source = "sample"
    else:
        p = Path(path)
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
        ``map_revealed``): the sheet :func:`write_sample` wrote, filled in, or the
        export of a browser interpretation page. Its other columns are ignored.
    sample
        The sample the points were drawn in (keyed by ``point_id``, with
        ``map_class``): the GeoDataFrame of :func:`stratified_sample`, or the path of
        the GeoPackage (or CSV) :func:`write_sample` wrote.
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
        :func:`error_matrix`. ``attrs["n_cannot_tell"]`` counts the dropped points,
        ``attrs["cannot_tell_ids"]`` lists their ids.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    SampleError
        A column is missing; or (all reported together, naming the point ids) point
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
    >>> int(error_matrix(ref).loc["mines", "built"])
    1
    """
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
    :func:`stratified_sample`, or the GeoPackage or CSV sheet of :func:`write_sample`)
    or on coordinate differences under a centimetre. A sample that carries a
    ``sample_id`` column (one value throughout) gives that value.

    Parameters
    ----------
    sample
        Table with ``point_id`` and the ``x``, ``y`` columns of
        :func:`stratified_sample` (else its point geometry; else the ids alone).

    Returns
    -------
    str
        Twelve hexadecimal digits.

    Raises
    ------
    SampleError
        No ``point_id`` column, or several values in a ``sample_id`` column.

    Examples
    --------
    >>> s = pd.DataFrame({"point_id": ["a-1", "a-2"], "x": [5.0, 15.0], "y": [5.0, 5.0]})
    >>> sample_id(s) == sample_id(s.iloc[::-1]), len(sample_id(s))
    (True, 12)
    >>> sample_id(s) == sample_id(s.assign(x=[5.0, 25.0]))
    False
    """
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
        xs = pd.to_numeric(sample["x"]).to_numpy(np.float64)
        ys = pd.to_numeric(sample["y"]).to_numpy(np.float64)
    elif isinstance(sample, gpd.GeoDataFrame) and len(sample):
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
    lacking = [c for c in ("point_id", _REF) if c not in table.columns]
    if lacking:
        raise SampleError(
            f"interpretation {what} lacks columns {lacking}; it has {list(table.columns)}. "
            "Pass what read_reference returned for each interpreter."
        )
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
    SampleError
        A column is missing, a point is labelled twice, a label is not a class, or no
        point was labelled by both.

    Examples
    --------
    >>> a = pd.DataFrame({"point_id": [1, 2, 3, 4], "reference_class": ["mines"] * 2 + ["built"] * 2})
    >>> b = a.assign(reference_class=["mines", "built", "built", "built"])
    >>> r = interpreter_agreement(a, b)
    >>> r["n_common"], r["percent_agreement"], r["disagreeing_ids"], round(r["kappa"], 3)
    (4, 75.0, [2], 0.5)
    """
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
        differently. Ready for :func:`error_matrix`.

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


# ---------------------------------------------------------------------- estimators
def error_matrix(
    sample: pd.DataFrame,
    *,
    classes: Sequence[str] = CLASSES,
    map_col: str = "map_class",
    ref_col: str = _REF,
) -> pd.DataFrame:
    """Error matrix of sample counts: rows map classes, columns reference classes.

    Parameters
    ----------
    sample
        Table with the map and reference label of each point (names or codes).
    classes
        Class names, in the order of rows and columns.
    map_col, ref_col
        Label columns.

    Returns
    -------
    pandas.DataFrame
        ``int64`` counts, index named ``"map"``, columns named ``"reference"``.

    Raises
    ------
    SampleError
        Missing or unknown labels.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"map_class": ["mines", "mines", "built"],
    ...                   "reference_class": ["mines", "built", "built"]})
    >>> error_matrix(s).to_numpy().tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    """
    checked = read_sample(sample, classes=classes, map_col=map_col, ref_col=ref_col)
    m = pd.Categorical(checked[map_col], categories=list(classes))
    r = pd.Categorical(checked[ref_col], categories=list(classes))
    table = pd.crosstab(m, r, dropna=False).reindex(
        index=list(classes), columns=list(classes), fill_value=0
    )
    table.index.name = "map"
    table.columns.name = "reference"
    return table.astype(np.int64)


def _check_matrix(
    matrix: pd.DataFrame | Array, mapped_area: Any
) -> tuple[pd.DataFrame, Array, Array]:
    """Return (counts DataFrame, n (k,k) float, N_i mapped pixels (k,))."""
    if not isinstance(matrix, pd.DataFrame):
        arr = np.asarray(matrix)
        if arr.ndim != 2:
            raise DimensionError(
                f"error matrix must be 2-D (map classes x reference classes); got shape {arr.shape}"
            )
        matrix = pd.DataFrame(
            arr, index=list(range(arr.shape[0])), columns=list(range(arr.shape[-1]))
        )
    if matrix.shape[0] != matrix.shape[1] or list(matrix.index) != list(matrix.columns):
        raise DimensionError(
            f"error matrix must be square with the same classes in rows (map) and columns "
            f"(reference); got index {list(matrix.index)} and columns {list(matrix.columns)}"
        )
    if matrix.shape[0] == 0:
        raise DimensionError("error matrix is empty (0 classes); build it with error_matrix")
    try:
        n = matrix.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SampleError(f"error matrix must hold numeric counts; {err}") from err
    # NaN fails every comparison, so test for the good values, never for the bad ones
    bad = ~(np.isfinite(n) & (n >= 0))
    if bad.any():
        where = [
            f"map {matrix.index[i]!r} / reference {matrix.columns[j]!r}: {n[i, j]}"
            for i, j in zip(*np.nonzero(bad), strict=True)
        ]
        raise SampleError(
            f"error matrix counts must be finite and >= 0; got {', '.join(where[:5])}. A NaN "
            "count would drop its whole stratum; fill missing cells with 0 (e.g. "
            "matrix.fillna(0)) or rebuild the matrix with error_matrix."
        )
    if isinstance(mapped_area, (Mapping, pd.Series)):
        missing = [c for c in matrix.index if c not in mapped_area]
        if missing:
            raise SampleError(
                f"'mapped_area' lacks classes {missing}; give the mapped pixels of every class"
            )
        try:
            area = np.array([float(mapped_area[c]) for c in matrix.index])
        except (TypeError, ValueError) as err:
            raise SampleError(f"'mapped_area' must hold numbers; {err}") from err
    else:
        try:
            area = np.asarray(mapped_area, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise SampleError(f"'mapped_area' must hold numbers; {err}") from err
        if area.size != matrix.shape[0]:
            raise SampleError(
                f"'mapped_area' needs {matrix.shape[0]} values (one per map class); got {area.size}"
            )
    bad_area = [
        f"{c!r}: {a}" for c, a in zip(matrix.index, area, strict=True) if not (0 <= a < np.inf)
    ]
    if bad_area:
        raise SampleError(
            f"'mapped_area' must be finite and >= 0 for every map class; got "
            f"{', '.join(bad_area)}. Give the mapped pixels of each class (map_class_counts), "
            "0 for a class absent from the map."
        )
    if area.sum() <= 0:
        raise SampleError(f"'mapped_area' must be >= 0 and not all 0; got {area.tolist()}")
    n_i = n.sum(axis=1)
    empty = [str(c) for c, a, k in zip(matrix.index, area, n_i, strict=True) if a > 0 and k == 0]
    if empty:
        raise SampleError(
            f"map classes {empty} have mapped area but no sample point; every stratum needs "
            "points (at least 2 for standard errors)"
        )
    single = [str(c) for c, a, k in zip(matrix.index, area, n_i, strict=True) if a > 0 and k == 1]
    if single:
        warnings.warn(
            f"strata {single} have a single sample point; their standard errors are NaN",
            UserWarning,
            stacklevel=3,
        )
    return matrix, n, area


def _check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0 (``z``, ``pixel_area_m2``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not 0 < v < math.inf:
        raise ParamsError(
            f"{name!r} must be a finite number > 0; got {value!r}"
            + (" (z = 1.96 gives a 95% interval)" if name == "z" else "")
        )
    return v


def _row_props(n: Array) -> tuple[Array, Array]:
    n_i = n.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        props = np.where(n_i[:, None] > 0, n / np.where(n_i > 0, n_i, 1)[:, None], 0.0)
        denom = np.where(n_i > 1, n_i - 1, np.nan)
    return props, denom


def _frame(index: Any, est: Array, se: Array, z: float) -> pd.DataFrame:
    z = _check_positive(z, "z")
    return pd.DataFrame(
        {"estimate": est, "se": se, "ci95": z * se, "lower": est - z * se, "upper": est + z * se},
        index=pd.Index(index, name="class"),
    )


def area_proportions(matrix: pd.DataFrame | Array, mapped_area: Any) -> pd.DataFrame:
    """Estimated area proportions ``p_ij = W_i n_ij / n_i.`` (Olofsson et al. 2014, eq. 4).

    Parameters
    ----------
    matrix
        Error matrix of counts, rows map, columns reference.
    mapped_area
        Mapped pixels (or hectares) of each map class: mapping, Series or sequence.

    Returns
    -------
    pandas.DataFrame
        Same layout as ``matrix``; sums to 1.

    Examples
    --------
    >>> area_proportions([[8, 2], [0, 10]], [25, 75]).to_numpy().round(3).tolist()
    [[0.2, 0.05], [0.0, 0.75]]
    """
    m, n, area = _check_matrix(matrix, mapped_area)
    w = area / area.sum()
    props, _ = _row_props(n)
    return pd.DataFrame(w[:, None] * props, index=m.index, columns=m.columns)


def overall_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.Series:
    """Overall accuracy ``sum_i W_i n_ii / n_i.`` with its standard error and interval.

    ``V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)`` (Olofsson et al. 2014, eq. 5).

    Returns
    -------
    pandas.Series
        ``estimate``, ``se``, ``ci95`` (half-width ``z * se``), ``lower``, ``upper``.

    Examples
    --------
    >>> oa = overall_accuracy([[8, 2], [0, 10]], [25, 75])
    >>> round(float(oa["estimate"]), 3)
    0.95
    """
    z = _check_positive(z, "z")
    _, n, area = _check_matrix(matrix, mapped_area)
    w = area / area.sum()
    props, denom = _row_props(n)
    u = np.diag(props)
    est = float(np.sum(w * u))
    var = float(np.nansum(np.where(w > 0, w**2 * u * (1 - u) / denom, 0.0)))
    if np.any((w > 0) & np.isnan(denom)):
        var = np.nan
    return _frame(["overall"], np.array([est]), np.array([math.sqrt(var)]), z).iloc[0]


def users_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any = None, *, z: float = Z95
) -> pd.DataFrame:
    """User's accuracy ``n_ii / n_i.`` of each map class with ``V = U(1 - U)/(n_i. - 1)``.

    The stratum weights cancel (each map class is a stratum), so ``mapped_area`` is
    only checked when given.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``estimate``, ``se``, ``ci95``, ``lower``, ``upper``.
    """
    if mapped_area is None:
        arr = matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else np.asarray(matrix)
        mapped_area = np.maximum(arr.sum(axis=1), 0) + 1.0
    m, n, _ = _check_matrix(matrix, mapped_area)
    props, denom = _row_props(n)
    u = np.diag(props)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(u * (1 - u) / denom)
    u = np.where(n.sum(axis=1) > 0, u, np.nan)
    return _frame(m.index, u, se, z)


def producers_accuracy(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.DataFrame:
    """Estimate the producer's accuracy ``p_jj / p_.j`` of each reference class.

    The variance follows Olofsson et al. (2014) eq. 7 (Card 1982), with
    ``N_j.`` the mapped pixels of class j and ``N_.j`` the estimated reference total.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``estimate``, ``se``, ``ci95``, ``lower``, ``upper`` (NaN for a
        class absent from the reference).
    """
    m, n, area = _check_matrix(matrix, mapped_area)
    props, denom = _row_props(n)
    k = n.shape[0]
    n_ref = np.sum(area[:, None] * props, axis=0)  # estimated N_.j
    u = np.diag(props)
    est = np.full(k, np.nan)
    se = np.full(k, np.nan)
    for j in range(k):
        if n_ref[j] <= 0:
            continue
        p = area[j] * props[j, j] / n_ref[j]
        est[j] = p
        term1 = area[j] ** 2 * (1 - p) ** 2 * u[j] * (1 - u[j]) / denom[j] if area[j] > 0 else 0.0
        others = [
            area[i] ** 2 * props[i, j] * (1 - props[i, j]) / denom[i]
            for i in range(k)
            if i != j and area[i] > 0
        ]
        term2 = p**2 * float(np.sum(others))
        se[j] = math.sqrt((term1 + term2) / n_ref[j] ** 2)
    return _frame(m.index, est, se, z)


def accuracy_table(
    matrix: pd.DataFrame | Array, mapped_area: Any, *, z: float = Z95
) -> pd.DataFrame:
    """User's/producer's accuracy, commission/omission error, each with a 95% interval.

    Commission error is ``1 - user's``, omission error ``1 - producer's``; their
    interval half-widths are those of the accuracies.

    Returns
    -------
    pandas.DataFrame
        Index classes; columns ``n_points``, ``weight``, ``users_accuracy``,
        ``users_ci95``, ``producers_accuracy``, ``producers_ci95``,
        ``commission_error``, ``commission_ci95``, ``omission_error``,
        ``omission_ci95``.
    """
    z = _check_positive(z, "z")
    m, n, area = _check_matrix(matrix, mapped_area)
    ua = users_accuracy(m, area, z=z)
    pa = producers_accuracy(m, area, z=z)
    out = pd.DataFrame(
        {
            "n_points": n.sum(axis=1).astype(np.int64),
            "weight": area / area.sum(),
            "users_accuracy": ua["estimate"].to_numpy(),
            "users_ci95": ua["ci95"].to_numpy(),
            "producers_accuracy": pa["estimate"].to_numpy(),
            "producers_ci95": pa["ci95"].to_numpy(),
            "commission_error": 1 - ua["estimate"].to_numpy(),
            "commission_ci95": ua["ci95"].to_numpy(),
            "omission_error": 1 - pa["estimate"].to_numpy(),
            "omission_ci95": pa["ci95"].to_numpy(),
        },
        index=pd.Index(m.index, name="class"),
    )
    return out


def estimate_area(
    matrix: pd.DataFrame | Array,
    mapped_area: Any,
    *,
    pixel_area_m2: float = 100.0,
    z: float = Z95,
) -> pd.DataFrame:
    """Stratified (error-adjusted) area of each reference class with SE and 95% interval.

    ``p_.k = sum_i W_i n_ik / n_i.``; ``S(p_.k) = sqrt(sum_i W_i^2 (n_ik/n_i.)(1 -
    n_ik/n_i.) / (n_i. - 1))``; area = ``p_.k * N`` (Olofsson et al. 2014, eqs 9-11).

    Parameters
    ----------
    matrix
        Error matrix of counts, rows map, columns reference.
    mapped_area
        Mapped pixels of each map class.
    pixel_area_m2
        Area of a pixel (Sentinel-2 10 m: 100 m^2; see :func:`pixel_area_m2`).
    z
        Normal quantile of the interval.

    Returns
    -------
    pandas.DataFrame
        Index classes; ``mapped_px``, ``mapped_ha``, ``proportion``,
        ``proportion_se``, ``area_px``, ``area_px_se``, ``area_ha``, ``area_ha_se``,
        ``area_ha_ci95``, ``area_ha_lower``, ``area_ha_upper``.

    Raises
    ------
    SampleError
        NaN, infinite or negative counts or mapped areas (naming the class), a mapped
        class without sample points.
    ParamsError
        ``pixel_area_m2`` or ``z`` not a finite number > 0.

    Examples
    --------
    >>> a = estimate_area([[8, 2], [0, 10]], [25, 75], pixel_area_m2=10_000)
    >>> a["area_ha"].tolist()
    [20.0, 80.0]
    """
    z = _check_positive(z, "z")
    pixel_area_m2 = _check_positive(pixel_area_m2, "pixel_area_m2")
    m, n, area = _check_matrix(matrix, mapped_area)
    total = area.sum()
    w = area / total
    props, denom = _row_props(n)
    prop = np.sum(w[:, None] * props, axis=0)
    terms = np.where(w[:, None] > 0, (w**2)[:, None] * props * (1 - props) / denom[:, None], 0.0)
    se = np.sqrt(np.sum(terms, axis=0))
    ha = pixel_area_m2 / _M2_PER_HA
    out = pd.DataFrame(
        {
            "mapped_px": area,
            "mapped_ha": area * ha,
            "proportion": prop,
            "proportion_se": se,
            "area_px": prop * total,
            "area_px_se": se * total,
            "area_ha": prop * total * ha,
            "area_ha_se": se * total * ha,
        },
        index=pd.Index(m.index, name="class"),
    )
    out["area_ha_ci95"] = z * out["area_ha_se"]
    out["area_ha_lower"] = out["area_ha"] - out["area_ha_ci95"]
    out["area_ha_upper"] = out["area_ha"] + out["area_ha_ci95"]
    return out


def estimate_zone_areas(
    sample: pd.DataFrame,
    mapped_area: Any,
    *,
    zone_col: str = "zone",
    classes: Sequence[str] = CLASSES,
    map_col: str = "map_class",
    ref_col: str = _REF,
    pixel_area_m2: float = 100.0,
    z: float = Z95,
) -> pd.DataFrame:
    """Area of each reference class within each zone (e.g. district), with intervals.

    A domain estimator under the same stratified design (Stehman 2014): for zone ``d``
    and class ``k`` let ``y_u = 1`` when point ``u`` is of reference class ``k`` and
    lies in ``d``; the total is ``sum_h N_h ybar_h`` and its variance
    ``sum_h N_h^2 s_h^2 / n_h`` over strata ``h``. With a single zone covering the map
    this equals :func:`estimate_area`, and the zones' areas add up to it.

    Parameters
    ----------
    sample
        Interpreted sample with ``map_col``, ``ref_col`` and ``zone_col``.
    mapped_area
        Mapped pixels of each map class over the whole map (the strata sizes).
    zone_col
        Column naming each point's zone (NaN: outside all zones).
    classes, map_col, ref_col
        As in :func:`error_matrix`.
    pixel_area_m2, z
        As in :func:`estimate_area`.

    Returns
    -------
    pandas.DataFrame
        Columns ``zone``, ``class``, ``n_points``, ``area_px``, ``area_px_se``,
        ``area_ha``, ``area_ha_se``, ``area_ha_ci95``, ``area_ha_lower``,
        ``area_ha_upper``.

    Raises
    ------
    SampleError
        No ``zone_col`` column, or label problems as in :func:`read_sample`.
    """
    if zone_col not in sample.columns:
        raise SampleError(
            f"sample has no zone column {zone_col!r}; columns are {list(sample.columns)}. "
            "Pass zones= to stratified_sample or add the column."
        )
    z = _check_positive(z, "z")
    pixel_area_m2 = _check_positive(pixel_area_m2, "pixel_area_m2")
    checked = read_sample(sample, classes=classes, map_col=map_col, ref_col=ref_col)
    matrix = error_matrix(checked, classes=classes, map_col=map_col, ref_col=ref_col)
    _, n, area = _check_matrix(matrix, mapped_area)
    n_h = n.sum(axis=1)
    strata = checked[map_col].map({c: i for i, c in enumerate(classes)}).to_numpy()
    ha = pixel_area_m2 / _M2_PER_HA
    rows = []
    for zone in pd.unique(checked[zone_col].dropna()):
        in_zone = (checked[zone_col] == zone).to_numpy()
        for name in classes:
            y = (in_zone & (checked[ref_col] == name).to_numpy()).astype(np.float64)
            total = 0.0
            var = 0.0
            for h in range(len(classes)):
                if area[h] == 0 or n_h[h] == 0:
                    continue
                yh = y[strata == h]
                total += area[h] * yh.mean()
                var += area[h] ** 2 * (yh.var(ddof=1) if yh.size > 1 else np.nan) / yh.size
            se = math.sqrt(var)
            rows.append(
                {
                    "zone": zone,
                    "class": name,
                    "n_points": int(y.sum()),
                    "area_px": total,
                    "area_px_se": se,
                    "area_ha": total * ha,
                    "area_ha_se": se * ha,
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["area_ha_ci95"] = z * out["area_ha_se"]
    out["area_ha_lower"] = out["area_ha"] - out["area_ha_ci95"]
    out["area_ha_upper"] = out["area_ha"] + out["area_ha_ci95"]
    return out


def count_ratios(matrix: pd.DataFrame | Array) -> pd.DataFrame:
    """Plain sample-count ratios per class, as Gallwey et al. Table 3 reports them.

    User's ``n_ii / n_i.``, producer's ``n_jj / n_.j``, commission ``1 - user's``,
    omission ``1 - producer's``, ignoring the strata weights (so biased when strata
    are not sampled in proportion to their area).

    Returns
    -------
    pandas.DataFrame
        Index classes; ``users_accuracy``, ``producers_accuracy``,
        ``commission_error``, ``omission_error``.

    Examples
    --------
    >>> count_ratios([[8, 2], [0, 10]])["producers_accuracy"].round(3).tolist()
    [1.0, 0.833]
    """
    m = matrix if isinstance(matrix, pd.DataFrame) else pd.DataFrame(np.asarray(matrix))
    n = m.to_numpy(dtype=np.float64)
    d = np.diag(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ua = d / n.sum(axis=1)
        pa = d / n.sum(axis=0)
    return pd.DataFrame(
        {
            "users_accuracy": ua,
            "producers_accuracy": pa,
            "commission_error": 1 - ua,
            "omission_error": 1 - pa,
        },
        index=pd.Index(m.index, name="class"),
    )


def overall_count_ratio(matrix: pd.DataFrame | Array) -> float:
    """Plain overall accuracy of the sample: ``sum_i n_ii / n``.

    Examples
    --------
    >>> overall_count_ratio([[8, 2], [0, 10]])
    0.9
    """
    n = np.asarray(matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else matrix, float)
    return float(np.trace(n) / n.sum())


# ------------------------------------------------------------------------- helpers
def _index_of(values: Any) -> pd.Index:
    if isinstance(values, pd.Series):
        return values.index
    if isinstance(values, Mapping):
        return pd.Index(list(values.keys()))
    return pd.RangeIndex(len(list(values)))


def _as_array(values: Any, name: str) -> Array:
    if isinstance(values, Mapping):
        values = list(values.values())
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ParamsError(f"{name!r} must be finite numbers; got {arr.tolist()}")
    return arr
