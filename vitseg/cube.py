"""Dask-backed ``(time, band, y, x)`` Sentinel-2 reflectance cubes with stackstac.

:func:`build_cube` turns STAC items (Earth Search v1 or v0, :mod:`vitseg.synthetic`,
or a hand-made L1C item from :func:`l1c_item`) into one lazy float32 cube on an
explicit metric grid:

* band coordinate: Sentinel-2 names ``"B02"`` ... ``"B12"`` (and ``"SCL"``), whatever
  the asset keys (``"blue"``, ``"nir08"``, ``"B04"``; see
  :func:`vitseg.stac.asset_band_map`);
* 20 m (and 60 m) bands resampled to the 10 m grid bicubically (Gallwey et al. §2.2);
  ``SCL`` is categorical and always resampled with nearest neighbour;
* reflectance = DN x scale + offset **per item**, harmonised across the processing
  baseline 04.00 change (25 Jan 2022, BOA_ADD_OFFSET = -1000 DN), see
  :func:`reflectance_scaling`; no-data (DN 0) becomes NaN;
* items in other UTM zones are reprojected to ``crs`` (Ghana spans 30N and 31N);
* same-pass scenes of neighbouring tiles (same collection and solar day) are mosaicked
  into one time step (``group_by="solar_day"``, the default), see :func:`build_cube`.

Nothing is read until the cube is computed. A file that cannot be opened or decoded
raises :class:`~vitseg.errors.CorruptRasterError` at compute time, naming the file.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import re
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pystac
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import S2_BANDS_10, S2_BANDS_ALL
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    EmptySearchError,
    MissingAssetError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VitsegError,
)
from vitseg.stac import _epsg_from_code, asset_band_map

__all__ = [
    "BASELINE_04_DATE",
    "build_cube",
    "l1c_item",
    "read_l1c_scene",
    "reflectance_scaling",
]

#: First day of processing baseline 04.00 (BOA/RADIO_ADD_OFFSET = -1000 DN).
BASELINE_04_DATE = _dt.datetime(2022, 1, 25, tzinfo=_dt.UTC)
_KNOWN_BANDS = (*S2_BANDS_ALL, "SCL")
_CATEGORICAL = frozenset({"SCL"})
_GDAL_RESAMPLING = {
    "bicubic": "cubic", "bilinear": "bilinear", "nearest": "nearest", "average": "average",
    "cubic_spline": "cubic_spline", "lanczos": "lanczos",
}  # fmt: skip
_RESAMPLING = Literal["bicubic", "bilinear", "nearest", "average", "cubic_spline", "lanczos"]
_GROUP_BY = ("solar_day", None)

try:  # stackstac's reader, wrapped so that read failures become CorruptRasterError
    from stackstac.rio_reader import AutoParallelRioReader as _BaseReader
except ImportError:  # pragma: no cover - stackstac is a hard dependency
    _BaseReader = object


class _CheckedReader(_BaseReader):  # type: ignore[misc,valid-type]
    """stackstac reader that re-raises open/read failures as CorruptRasterError."""

    def read(self, window: Any, **kwargs: Any) -> Any:
        try:
            return super().read(window, **kwargs)
        except VitsegError:
            raise
        except Exception as err:
            raise CorruptRasterError(
                f"cannot read raster {self.url!r}: {err}. The file is truncated, corrupt or "
                "not a GeoTIFF/JPEG2000; re-download it (or regenerate the synthetic "
                "catalog) and rebuild the cube."
            ) from err


def _baseline(item: dict[str, Any]) -> tuple[int, int] | None:
    props = item.get("properties", {})
    value = props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline")
    if value is None:
        return None
    m = re.match(r"^\s*(\d+)\.(\d+)", str(value))
    return (int(m.group(1)), int(m.group(2))) if m else None


def reflectance_scaling(
    item: pystac.Item | dict[str, Any], band: str, *, trust_offset_metadata: bool = False
) -> tuple[float, float, float | None]:
    """Return ``(scale, offset, nodata)`` turning the item's DN of ``band`` into reflectance.

    The rule, in order:

    1. ``SCL`` (classes): scale 1, offset 0, nodata 0.
    2. ``earthsearch:boa_offset_applied`` (or ``sentinel:boa_offset_applied``) is true:
       Earth Search already subtracted the 04.00 offset from the DN, so the offset is
       0, whatever ``raster:bands`` says (its ``offset: -0.1`` is a known metadata
       error for these items, Element84/earth-search issues 66 and 71). With
       ``trust_offset_metadata=True`` this step is skipped (for catalogs whose DN keep
       the offset although they set the flag).
    3. ``raster:bands`` of the asset gives ``scale``/``offset``: use them.
    4. Otherwise scale 1e-4 and offset -0.1 if ``s2:processing_baseline`` >= 04.00
       (or, without a baseline, if sensed on/after 2022-01-25), else offset 0.

    Either way the result is the same surface reflectance on both sides of 04.00.

    Parameters
    ----------
    item
        A STAC item (pystac or dict).
    band
        Band name, e.g. ``"B04"``.
    trust_offset_metadata
        Use ``raster:bands`` offsets even where the item says the offset was applied.

    Returns
    -------
    tuple
        ``(scale, offset, nodata)``; nodata is the DN that marks no data (or None).

    Raises
    ------
    BandError
        ``band`` is not a Sentinel-2 band name.
    MissingAssetError
        The item has no asset for ``band``.
    VitsegError
        The asset's ``raster:bands`` scale, offset or nodata is not a finite number.

    Examples
    --------
    >>> item = {"properties": {"s2:processing_baseline": "04.00"},
    ...         "assets": {"B04": {"href": "B04.tif"}}}
    >>> reflectance_scaling(item, "B04")
    (0.0001, -0.1, 0.0)
    >>> item["properties"]["s2:processing_baseline"] = "03.01"
    >>> reflectance_scaling(item, "B04")
    (0.0001, 0.0, 0.0)
    """
    d = _plain_item(item) if isinstance(item, pystac.Item) else item
    if band not in _KNOWN_BANDS:
        raise BandError(
            f"unknown band {band!r}; expected a Sentinel-2 name from {list(_KNOWN_BANDS)} "
            "(e.g. 'B04', not 'red')"
        )
    keys = asset_band_map(d)
    if band not in keys:
        raise MissingAssetError(
            f"item {d.get('id')!r} has no asset for band {band!r} (its bands: {sorted(keys)}); "
            "its scaling would be a guess"
        )
    asset = d["assets"][keys[band]]
    rb = (asset.get("raster:bands") or [{}])[0]
    where = f"item {d.get('id')!r}, band {band}"
    nodata = rb.get("nodata", 0)
    nodata_f = None if nodata is None else _finite(nodata, "nodata", where, nan_ok=True)
    if band in _CATEGORICAL:
        return 1.0, 0.0, nodata_f
    props = d.get("properties", {})
    applied = props.get("earthsearch:boa_offset_applied", props.get("sentinel:boa_offset_applied"))
    scale = _finite(rb.get("scale", 1e-4), "scale", where)
    if applied is True and not trust_offset_metadata:
        return scale, 0.0, nodata_f
    if "offset" in rb:
        return scale, _finite(rb["offset"], "offset", where), nodata_f
    baseline = _baseline(d)
    if baseline is not None:
        new = baseline >= (4, 0)
    else:
        text = str(props.get("datetime") or props.get("start_datetime") or "")
        try:
            when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        new = when is not None and when >= BASELINE_04_DATE
    return scale, (-0.1 if new else 0.0), nodata_f


def _finite(value: Any, name: str, where: str, *, nan_ok: bool = False) -> float:
    """``value`` of an item's ``raster:bands`` as a float, refusing text, NaN and inf."""
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        out = math.inf
    if not (math.isfinite(out) or (nan_ok and math.isnan(out))):
        raise VitsegError(
            f"{where}: raster:bands {name} is {value!r}, not a finite number; a bad {name} "
            "would scale every pixel wrongly. Fix the item's metadata."
        )
    return out


def _check_grid_options(resolution_m: Any, chunks: Any) -> None:
    """Refuse a pixel size or chunk size that is not a positive number."""
    if isinstance(resolution_m, bool) or not isinstance(resolution_m, Real):
        raise ParamsError(f"resolution_m must be a number of metres, e.g. 10; got {resolution_m!r}")
    if not (math.isfinite(float(resolution_m)) and float(resolution_m) > 0):
        raise ParamsError(
            f"resolution_m must be a finite number > 0 (metres); got {resolution_m!r}"
        )
    if isinstance(chunks, tuple):
        return
    if (
        isinstance(chunks, bool)
        or not isinstance(chunks, Integral)
        or not (int(chunks) >= 1 or int(chunks) == -1)
    ):
        raise ParamsError(
            f"chunks must be a whole number of pixels >= 1 (or -1: one chunk), or a stackstac "
            f"chunks tuple; got {chunks!r}"
        )


def _check_bands(bands: Any) -> tuple[str, ...]:
    if isinstance(bands, str):
        raise BandError(
            f"bands must be a list of band names; got the text {bands!r}. Write bands=[{bands!r}]."
        )
    out = tuple(bands)
    unknown = [b for b in out if b not in _KNOWN_BANDS]
    if unknown or not out:
        raise BandError(
            f"unknown band(s) {unknown or list(out)}; expected Sentinel-2 names from "
            f"{list(_KNOWN_BANDS)} (e.g. 'B04', not 'red')"
        )
    if len(set(out)) != len(out):
        raise BandError(f"bands must be unique; got {list(out)}")
    return out


def _check_crs(crs: Any) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if crs is None:
        raise MissingCRSError(
            "build_cube needs an explicit output crs; got None. Pass e.g. crs='EPSG:32630' "
            "(UTM 30N, western Ghana) or crs='EPSG:32631' (31N, eastern Ghana); "
            "vitseg.grid.utm_crs_for(bbox) picks the zone of an AOI."
        )
    try:
        out = CRS.from_user_input(crs)
    except CRSError as err:
        raise MissingCRSError(f"cannot parse crs {crs!r} ({err}); pass 'EPSG:32630'") from err
    if not out.is_projected or out.to_epsg() is None:
        raise MissingCRSError(
            f"crs must be a projected CRS in metres with an EPSG code (resolution_m is in "
            f"metres); got {crs!r}. Use the AOI's UTM zone, e.g. 'EPSG:32630'."
        )
    return out


def _plain_item(item: pystac.Item | dict[str, Any]) -> dict[str, Any]:
    d = item.to_dict(transform_hrefs=False) if isinstance(item, pystac.Item) else item
    d = copy.deepcopy(d)
    _epsg_from_code(d.setdefault("properties", {}))
    for asset in d.get("assets", {}).values():
        _epsg_from_code(asset)
    return d


def _bounds_in(
    bbox: Sequence[float], bbox_crs: Any, crs: Any, resolution_m: float
) -> tuple[float, float, float, float]:
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds

    numbers = not isinstance(bbox, str) and all(
        isinstance(v, Real) and not isinstance(v, bool) for v in bbox
    )
    if not numbers or not all(math.isfinite(float(v)) for v in bbox):
        raise ParamsError(
            f"bbox must be 4 finite numbers (minx, miny, maxx, maxy) in bbox_crs; got {bbox!r}"
        )
    if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        raise VitsegError(f"bbox must be (minx, miny, maxx, maxy) with min < max; got {bbox!r}")
    if bbox_crs is None:
        raise MissingCRSError(
            "bbox_crs is None; say what CRS the bbox is in: 'EPSG:4326' (lon/lat, the default) "
            "or the output crs for a bbox in metres"
        )
    try:
        b = transform_bounds(bbox_crs, crs, *bbox, densify_pts=21)
    except CRSError as err:
        raise MissingCRSError(
            f"cannot parse bbox_crs {bbox_crs!r} ({err}); pass 'EPSG:4326'"
        ) from err
    r = float(resolution_m)
    return (
        float(np.floor(b[0] / r) * r),
        float(np.floor(b[1] / r) * r),
        float(np.ceil(b[2] / r) * r),
        float(np.ceil(b[3] / r) * r),
    )


def _footprint_hits(item: dict[str, Any], bbox_lonlat: Sequence[float]) -> bool:
    import shapely.geometry

    box = shapely.geometry.box(*bbox_lonlat)
    if item.get("geometry"):
        return bool(shapely.geometry.shape(item["geometry"]).intersects(box))
    b = item.get("bbox")
    if b:
        x0, y0, x1, y1 = (b[0], b[1], b[3], b[4]) if len(b) == 6 else tuple(b[:4])
        return bool(shapely.geometry.box(x0, y0, x1, y1).intersects(box))
    return True


def _item_lon(item: dict[str, Any]) -> float | None:
    """Longitude of the centroid of the item's footprint (geometry, else bbox), or None."""
    import shapely.geometry

    if item.get("geometry"):
        return float(shapely.geometry.shape(item["geometry"]).centroid.x)
    b = item.get("bbox")
    if b and len(b) in (4, 6):
        x0, x1 = (b[0], b[3]) if len(b) == 6 else (b[0], b[2])
        return (float(x0) + float(x1)) / 2.0
    return None


def _solar_day(item: dict[str, Any]) -> _dt.date:
    """Local solar day of an item: UTC ``datetime`` + centroid longitude / 15 hours.

    As odc-stac's ``group_by="solar_day"``; an item without geometry or bbox is taken at
    longitude 0 (its UTC date).
    """
    props = item.get("properties", {})
    text = str(props.get("datetime") or props.get("start_datetime") or "")
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise VitsegError(
            f"item {item.get('id')!r} has no valid 'datetime' (got {text!r}); expected an ISO "
            "8601 time such as '2022-12-01T10:30:00Z'. Fix the item, or pass group_by=None."
        ) from err
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC).replace(tzinfo=None)
    lon = _item_lon(item) or 0.0
    return (when + _dt.timedelta(hours=lon / 15.0)).date()


def _cloud_key(props: dict[str, Any]) -> float:
    value = props.get("eo:cloud_cover")
    try:
        out = float(value) if value is not None else np.inf
    except (TypeError, ValueError):
        return np.inf
    return out if np.isfinite(out) else np.inf


def _groups(
    items: Sequence[dict[str, Any]], group_by: Literal["solar_day"] | None
) -> list[list[int]]:
    """Positions of the items of each time step, in cube order, each in mosaic order.

    Steps are ordered by their first item in ``items`` (which is sorted by time); within a
    step the least cloudy item comes first, ties broken by id.
    """
    if group_by is None:
        return [[i] for i in range(len(items))]
    keys: dict[tuple[str, _dt.date], list[int]] = {}
    for i, d in enumerate(items):
        keys.setdefault((str(d.get("collection") or ""), _solar_day(d)), []).append(i)
    return [
        sorted(pos, key=lambda i: (_cloud_key(items[i]["properties"]), str(items[i]["id"])))
        for pos in keys.values()  # dicts keep insertion order: by first item
    ]


def _joined(values: Sequence[str]) -> str:
    uniq = sorted({v for v in values if v})
    return "+".join(uniq)


def build_cube(
    items: Sequence[pystac.Item | dict[str, Any]] | pystac.ItemCollection,
    *,
    bbox: Sequence[float],
    crs: Any,
    resolution_m: float = 10,
    bands: Sequence[str] = S2_BANDS_10,
    chunks: int | tuple[int, ...] = 512,
    bbox_crs: Any = "EPSG:4326",
    resampling: _RESAMPLING = "bicubic",
    trust_offset_metadata: bool = False,
    group_by: Literal["solar_day"] | None = "solar_day",
) -> xr.DataArray:
    """Build a lazy ``(time, band, y, x)`` float32 surface-reflectance cube.

    With ``group_by="solar_day"`` the scenes of one satellite pass over several tiles
    (neighbouring MGRS tiles, possibly in two UTM zones) become one time step, so an
    AOI larger than a tile gets one observation per day, not several half-empty ones.

    Parameters
    ----------
    items
        STAC items (e.g. from :func:`vitseg.stac.search_items`), in any UTM zone.
    bbox
        Area of interest ``(minx, miny, maxx, maxy)`` in ``bbox_crs``: lon/lat degrees by
        default (as for :func:`vitseg.stac.search_items`); pass ``bbox_crs=crs`` for a
        bbox in the output CRS. The bbox is reprojected and snapped outwards to
        multiples of ``resolution_m`` (so the grid aligns with Sentinel-2 tiles).
    crs
        Output CRS, projected in metres (e.g. ``"EPSG:32630"``); required.
    resolution_m
        Pixel size in metres.
    bands
        Band names in cube order (default: Gallwey et al.'s ten bands); add ``"SCL"``
        for the scene classification layer (nearest resampling, classes as floats).
    chunks
        Spatial dask chunk size in pixels (or a stackstac chunks tuple).
    bbox_crs
        CRS of ``bbox``.
    resampling
        Resampling of reflectance bands onto the grid (SCL is always nearest).
    trust_offset_metadata
        See :func:`reflectance_scaling`; False (default) follows Earth Search's
        ``earthsearch:boa_offset_applied`` flag.
    group_by
        ``"solar_day"`` (default): items of the same collection whose local solar day
        is the same (UTC ``datetime`` + longitude of the footprint centroid / 15 h, as
        in odc-stac) are mosaicked into one time step. Each item is scaled to
        reflectance first (its own offset, see :func:`reflectance_scaling`); then,
        **per band and per pixel**, the first non-NaN value is taken, trying the items
        from least to most cloudy (``eo:cloud_cover`` ascending, missing last; ties by
        id). So the bands (SCL included) of one pixel may come from different items
        where one item has no data in some band only. Items of different collections
        (e.g. ``sentinel-2-l2a`` and its ``-c1-`` twin) stay separate time steps.
        ``None``: one time step per item.

    Returns
    -------
    xarray.DataArray
        Dims ``(time, band, y, x)``, float32 reflectance (unitless), NaN for no data;
        coords ``time`` (UTC, sorted), ``band``, ``y``/``x`` (pixel centres, metres),
        and per-time ``id``, ``processing_baseline``, ``cloud_cover_pct``,
        ``source_epsg``, ``n_items`` (int, items mosaicked into the step); CRS written
        with ``rio.write_crs``. A step of several items has ``time`` = the earliest
        item time, ``id`` = the sorted item ids joined with ``"+"`` (``"A+B"``),
        ``cloud_cover_pct`` = the mean over the items that report it, and
        ``processing_baseline`` = the distinct non-empty baselines joined with ``"+"``.
        ``source_epsg`` is an int (-1 if unknown) while every step has a single source
        EPSG; otherwise it is a string per step (``"32630+32631"``; ``"32630"``).

    Raises
    ------
    ParamsError
        ``group_by`` is not ``"solar_day"`` or None; ``resolution_m`` or ``chunks`` is
        not a positive number; ``bbox`` holds NaN, inf or text; ``items`` is one item.
    MissingCRSError
        ``crs`` is missing or not a metric projected CRS, or ``bbox_crs`` is None.
    BandError
        A band name is unknown.
    MissingAssetError
        An item has no asset for a requested band.
    EmptySearchError
        No item is given, or none overlaps ``bbox``.
    CorruptRasterError
        At compute time, when a file cannot be read.

    Examples
    --------
    >>> build_cube([], bbox=(0, 0, 1, 1), crs="EPSG:32630")
    Traceback (most recent call last):
    ...
    vitseg.errors.EmptySearchError: build_cube got no items; ...
    """
    import stackstac
    from rasterio.enums import Resampling

    if group_by not in _GROUP_BY:
        raise ParamsError(
            f"'group_by' must be one of {list(_GROUP_BY)}; got {group_by!r}. Use "
            "'solar_day' to merge same-pass tiles, None for one time step per item."
        )
    if resampling not in _GDAL_RESAMPLING:
        raise VitsegError(
            f"'resampling' must be one of {sorted(_GDAL_RESAMPLING)}; got {resampling!r}"
        )
    out_crs = _check_crs(crs)
    epsg = int(out_crs.to_epsg())
    bands = _check_bands(bands)
    _check_grid_options(resolution_m, chunks)
    if isinstance(items, (pystac.Item, Mapping, str)):
        raise ParamsError(
            f"items must be a list of STAC items (or an ItemCollection); got one "
            f"{type(items).__name__}. Write [item]."
        )
    bad = [type(i).__name__ for i in items if not isinstance(i, (pystac.Item, Mapping))]
    if bad:
        raise ParamsError(f"items must be pystac Items or item dicts; got {bad[:3]}")
    plain = [_plain_item(i) for i in items]
    if not plain:
        raise EmptySearchError(
            "build_cube got no items; search some first with vitseg.stac.search_items(...)"
        )
    bounds = _bounds_in(bbox, bbox_crs, out_crs, resolution_m)
    from rasterio.warp import transform_bounds

    bbox_ll = transform_bounds(out_crs, "EPSG:4326", *bounds, densify_pts=21)
    prepared: list[dict[str, Any]] = []
    for d in plain:
        keys = asset_band_map(d)
        missing = [b for b in bands if b not in keys]
        if missing:
            raise MissingAssetError(
                f"item {d.get('id')!r} has no asset for band(s) {missing} (its bands: "
                f"{sorted(keys)}); drop the item (search_items(..., bands=...) does that) "
                "or request fewer bands"
            )
        if not _footprint_hits(d, bbox_ll):
            continue
        new = {k: v for k, v in d.items() if k != "assets"}
        new["assets"] = {b: copy.deepcopy(d["assets"][keys[b]]) for b in bands}
        for a in new["assets"].values():
            if not str(a.get("href", "")).startswith(("http://", "https://", "s3://", "/vsi")):
                a["href"] = str(Path(a["href"]).resolve())
        prepared.append(new)
    if not prepared:
        raise EmptySearchError(
            f"none of the {len(plain)} items overlaps bbox {tuple(bbox)} (in {bbox_crs}); "
            f"the AOI lies outside their footprints (lon/lat {tuple(round(v, 4) for v in bbox_ll)})"
        )
    ids = [str(d["id"]) for d in prepared]
    if len(set(ids)) != len(ids):
        raise VitsegError(f"duplicate item ids in {ids}; deduplicate the items first")
    scaling = {
        (str(d["id"]), b): reflectance_scaling(d, b, trust_offset_metadata=trust_offset_metadata)
        for d in prepared
        for b in bands
    }

    def _stack(sub: Sequence[str], method: Resampling) -> xr.DataArray:
        return stackstac.stack(
            prepared,
            assets=list(sub),
            epsg=epsg,
            resolution=float(resolution_m),
            bounds=bounds,
            snap_bounds=True,
            resampling=method,
            chunksize=chunks,
            dtype=np.dtype("float32"),
            fill_value=np.float32(np.nan),
            rescale=False,
            sortby_date="asc",
            xy_coords="center",
            properties=False,
            band_coords=False,
            reader=_CheckedReader,
        )

    parts = []
    refl = [b for b in bands if b not in _CATEGORICAL]
    cat = [b for b in bands if b in _CATEGORICAL]
    if refl:
        parts.append(_stack(refl, Resampling[_GDAL_RESAMPLING[resampling]]))
    if cat:
        parts.append(_stack(cat, Resampling.nearest))
    raw = xr.concat(parts, dim="band") if len(parts) > 1 else parts[0]
    raw = raw.sel(band=list(bands))
    ids_t = [str(v) for v in raw["id"].values]
    shape = (len(ids_t), len(bands), 1, 1)
    scale = np.array([scaling[(i, b)][0] for i in ids_t for b in bands], "float32").reshape(shape)
    offset = np.array([scaling[(i, b)][1] for i in ids_t for b in bands], "float32").reshape(shape)
    nod = np.array(
        [
            np.nan if scaling[(i, b)][2] is None else scaling[(i, b)][2]
            for i in ids_t
            for b in bands
        ],
        "float32",
    ).reshape(shape)
    data = raw.data
    data = (data * scale + offset).astype("float32")
    masked = raw.data == nod
    import dask.array as da

    data = da.where(masked, np.float32(np.nan), data)
    by_id = {str(d["id"]): d for d in prepared}
    props = [by_id[i]["properties"] for i in ids_t]
    baselines = [
        str(p.get("s2:processing_baseline") or p.get("sentinel:processing_baseline") or "")
        for p in props
    ]
    times = raw["time"].values
    clouds = np.array([float(p.get("eo:cloud_cover", np.nan)) for p in props], "float64")
    epsgs = np.array([int(p.get("proj:epsg") or -1) for p in props])
    groups = _groups([by_id[i] for i in ids_t], group_by)
    if any(len(g) > 1 for g in groups):
        data = da.stack([_mosaic(data, g) for g in groups], axis=0)
        times = np.array([times[g].min() for g in groups])
        ids_t = ["+".join(sorted(ids_t[i] for i in g)) for g in groups]
        baselines = [_joined([baselines[i] for i in g]) for g in groups]
        clouds = np.array([_finite_mean(clouds[g]) for g in groups], "float64")
        if all(len(set(epsgs[g])) == 1 for g in groups):
            epsgs = np.array([epsgs[g[0]] for g in groups])
        else:
            epsgs = np.array(["+".join(str(e) for e in sorted(set(epsgs[g]))) for g in groups])
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": times,
            "band": list(bands),
            "y": raw["y"].values,
            "x": raw["x"].values,
            "id": ("time", ids_t),
            "processing_baseline": ("time", baselines),
            "cloud_cover_pct": ("time", clouds),
            "source_epsg": ("time", epsgs),
            "n_items": ("time", np.array([len(g) for g in groups], "int64")),
        },
        name="reflectance",
        attrs={
            "long_name": "Sentinel-2 surface reflectance (SCL: scene classes)",
            "units": "1",
            "resolution_m": float(resolution_m),
            "resampling": resampling,
        },
    )
    return cube.rio.write_crs(out_crs.to_string())


def _finite_mean(values: np.ndarray) -> float:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else float("nan")


def _mosaic(data: Any, order: Sequence[int]) -> Any:
    """Lazy first-valid mosaic of ``data[order]`` (time steps of a dask array), per band."""
    import dask.array as da

    out = data[order[0]]
    for i in order[1:]:
        out = da.where(da.isnan(out), data[i], out)
    return out


def l1c_item(folder: str | os.PathLike[str], *, bands: Sequence[str] = S2_BANDS_ALL) -> pystac.Item:
    """Describe a folder of Sentinel-2 L1C JPEG2000 band files as a STAC item.

    Files are matched by ``*_<BAND>.jp2`` (e.g. ``T33UUU_20170216T102101_B04.jp2``); the
    tile and sensing time come from the file name, grids from the files themselves.

    Parameters
    ----------
    folder
        Folder holding the band files (e.g. a SAFE granule's ``IMG_DATA``).
    bands
        Bands that must be present.

    Returns
    -------
    pystac.Item
        One asset per band (keyed by band name) with ``proj:epsg``, ``proj:shape``,
        ``proj:transform`` and ``raster:bands`` (scale 1e-4, nodata 0).

    Raises
    ------
    MissingFileError
        ``folder`` does not exist or is a file.
    BandError
        ``bands`` is empty, one text, or holds a name that is not a Sentinel-2 band.
    MissingAssetError
        A band file is missing.
    CorruptRasterError
        A band file cannot be opened.
    """
    import rasterio
    import shapely.geometry
    from rasterio.warp import transform_bounds

    root = Path(folder)
    if not root.is_dir():
        state = "is a file" if root.exists() else "does not exist"
        raise MissingFileError(
            f"L1C folder {str(root)!r} {state}; pass the folder holding the *_B01.jp2 ... "
            "*_B12.jp2 files (a SAFE granule's IMG_DATA)"
        )
    bands = _check_bands(bands)
    files = {}
    for b in bands:
        hits = sorted(root.glob(f"*_{b}.jp2"))
        if not hits:
            raise MissingAssetError(
                f"no *_{b}.jp2 in {str(root)!r} (found {sorted(p.name for p in root.glob('*.jp2'))})"
            )
        files[b] = hits[0]
    m = re.match(r"^(T\d{2}[A-Z]{3})_(\d{8}T\d{6})_", next(iter(files.values())).name)
    tile, stamp = (m.group(1), m.group(2)) if m else ("unknown", "19700101T000000")
    when = _dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=_dt.UTC)
    assets: dict[str, pystac.Asset] = {}
    epsg = None
    bounds = None
    for b, path in files.items():
        try:
            with rasterio.open(path) as ds:
                epsg = int(ds.crs.to_epsg())
                shape = [ds.height, ds.width]
                transform = list(ds.transform)[:6]
                bounds = bounds or tuple(ds.bounds)
        except rasterio.errors.RasterioError as err:
            raise CorruptRasterError(f"cannot open {str(path)!r}: {err}") from err
        assets[b] = pystac.Asset(
            href=str(path.resolve()),
            media_type="image/jp2",
            roles=["data"],
            extra_fields={
                "proj:epsg": epsg,
                "proj:shape": shape,
                "proj:transform": transform,
                "eo:bands": [{"name": b}],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 1e-4}],
            },
        )
    assert bounds is not None and epsg is not None  # at least one band by construction
    ll = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", *bounds, densify_pts=21)
    item = pystac.Item(
        id=f"S2_L1C_{tile}_{stamp}",
        geometry=shapely.geometry.mapping(shapely.geometry.box(*ll)),
        bbox=list(ll),
        datetime=when,
        properties={"proj:epsg": epsg, "s2:product_type": "S2MSI1C", "s2:mgrs_tile": tile[1:]},
    )
    for b, a in assets.items():
        item.add_asset(b, a)
    return item


def read_l1c_scene(
    folder: str | os.PathLike[str],
    *,
    bands: Sequence[str] = S2_BANDS_ALL,
    resolution_m: float = 10,
    chunks: int | tuple[int, ...] = 512,
    resampling: _RESAMPLING = "bicubic",
) -> xr.DataArray:
    """Read a Sentinel-2 L1C scene (13 JPEG2000 bands) onto one grid, lazily.

    The grid is the scene's own extent and UTM CRS at ``resolution_m``; 20 m and 60 m
    bands are resampled (bicubic by default). Values are top-of-atmosphere reflectance
    (DN x 1e-4; the 04.00 offset is applied for scenes sensed from 2022-01-25 on).

    Parameters
    ----------
    folder
        Folder with ``*_B01.jp2`` ... ``*_B12.jp2``.
    bands, resolution_m, chunks, resampling
        As for :func:`build_cube`.

    Returns
    -------
    xarray.DataArray
        ``(time=1, band, y, x)`` float32, CRS of the scene.
    """
    item = l1c_item(folder, bands=bands)
    epsg = item.properties["proj:epsg"]
    ref = item.assets[bands[0]].extra_fields
    t = ref["proj:transform"]
    h, w = ref["proj:shape"]
    bbox = (t[2], t[5] + t[4] * h, t[2] + t[0] * w, t[5])
    return build_cube(
        [item],
        bbox=bbox,
        bbox_crs=f"EPSG:{epsg}",
        crs=f"EPSG:{epsg}",
        resolution_m=resolution_m,
        bands=bands,
        chunks=chunks,
        resampling=resampling,
    )
