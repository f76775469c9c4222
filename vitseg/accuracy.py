"""Accuracy assessment: design the stratified random sample, draw it, write it for interpreters.

Follows Olofsson et al. (2014, Remote Sensing of Environment 148:42-57, "good
practices"): the map classes are the strata and a random sample of pixels is drawn in
each. Gallwey et al. sized their sample with Cochran's formula (their eq. 7,
:func:`sample_size`) and shared it 50/25/25 among the strata (:func:`allocate`).
:func:`stratified_sample` draws the points strip by strip, :func:`write_sample` writes
them with a sheet for the interpreters.

The steps after the interpretation live in their own modules, and every name of them
is importable from here too (``accuracy.<name>``): reading the interpreters' work
(:func:`read_reference`, :func:`read_sample`, :func:`sample_id`,
:func:`interpreter_agreement`, :func:`merge_interpretations`) in
:mod:`vitseg.reference`; the estimators of accuracy and area with their standard
errors (:func:`error_matrix`, :func:`overall_accuracy`, :func:`estimate_area`,
:func:`count_ratios`...) in :mod:`vitseg.estimators`.
"""

from __future__ import annotations

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
from vitseg.errors import DimensionError, MissingCRSError, ParamsError, SampleError
from vitseg.estimators import (
    Z95,
    accuracy_table,
    area_proportions,
    count_ratios,
    error_matrix,
    estimate_area,
    estimate_zone_areas,
    overall_accuracy,
    overall_count_ratio,
    producers_accuracy,
    users_accuracy,
)
from vitseg.io import atomic_path
from vitseg.reference import (
    _REF,
    _SHEET_EXTRA,
    interpreter_agreement,
    merge_interpretations,
    read_reference,
    read_sample,
    sample_id,
)

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
