"""Per-season composites and blank-tile fractions.

Ghana's dry season, when Gallwey et al. collected their scenes, runs from November to
March; :func:`season_of` labels a date with its dry season (``"2020-21"`` for November
2020 to March 2021) and returns None for April-October. :func:`composite` reduces a
cloud-masked ``(time, band, y, x)`` cube to ``(band, y, x)`` with the median or mean of
the valid (non-NaN) observations, lazily, over all dates or one period (a dry season, a
calendar year or a date range, see :mod:`vitseg.periods`). :func:`tile_valid_fraction` gives the fraction
of valid pixels in each square tile, to drop blank/no-data tiles.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from vitseg.cloud import _check_cube  # one check of a reflectance cube for both modules
from vitseg.errors import BandError, DimensionError, NoValidDataError, ParamsError, VitsegError
from vitseg.periods import Period, parse_period, period_of

__all__ = [
    "DRY_MONTHS",
    "composite",
    "inputs_key",
    "read_composite",
    "season_of",
    "seasonal_composites",
    "tile_valid_fraction",
    "write_composite",
]

#: Months of Ghana's dry season (November-March).
DRY_MONTHS = (11, 12, 1, 2, 3)


def _label(t: pd.Timestamp) -> str | None:
    if pd.isna(t) or t.month not in DRY_MONTHS:
        return None
    start = t.year if t.month >= 11 else t.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


@overload
def season_of(
    times: str | _dt.datetime | _dt.date | np.datetime64 | pd.Timestamp,
) -> str | None: ...
@overload
def season_of(times: Sequence[Any] | np.ndarray[Any, Any] | xr.DataArray) -> list[str | None]: ...
def season_of(times: Any) -> Any:
    """Dry-season label(s) ``"YYYY-YY"`` of datetime(s); None outside November-March.

    Parameters
    ----------
    times
        A datetime-like scalar, or a sequence / array / DataArray of them.

    Returns
    -------
    str or None, or list of them
        ``"2020-21"`` for 2020-11-01 ... 2021-03-31; None for a missing date (None, NaT).

    Raises
    ------
    ParamsError
        A string that is not a date, or numbers (an integer is not read as a date).

    Examples
    --------
    >>> season_of("2020-12-15"), season_of("2021-02-01"), season_of("2021-06-01")
    ('2020-21', '2020-21', None)
    >>> season_of(["2021-11-02", "2022-03-31"])
    ['2021-22', '2021-22']
    """
    if isinstance(times, xr.DataArray):
        times = times.values
    if times is None:
        return None
    scalar = isinstance(times, (str, _dt.date, np.datetime64, pd.Timestamp))
    values = None if scalar else np.asarray(times)
    if values is not None and values.size == 0:
        return []
    if isinstance(times, (int, float, np.number)) or (
        values is not None and values.dtype.kind in "biufc"
    ):
        raise ParamsError(
            f"season_of needs dates (e.g. '2020-12-15' or datetime64); got numbers "
            f"({np.asarray(times).dtype}: {np.asarray(times).ravel()[:3].tolist()}). Give the "
            "cube a datetime 'time' coordinate, or convert: pd.to_datetime(values, unit='s')."
        )
    try:
        if scalar:
            return _label(pd.Timestamp(times))
        return [_label(t) for t in pd.to_datetime(list(np.asarray(times).ravel()))]
    except (ValueError, TypeError) as exc:
        raise ParamsError(
            f"season_of cannot read {times!r} as dates ({exc}); use ISO dates such as '2020-12-15'"
        ) from exc


def _check_min_count(min_count: Any) -> int:
    if (
        not isinstance(min_count, (int, np.integer))
        or isinstance(min_count, (bool, np.bool_))
        or min_count < 1
    ):
        raise ParamsError(
            f"'min_count' must be an integer >= 1 (valid observations a pixel needs); got "
            f"{min_count!r} ({type(min_count).__name__})"
        )
    return int(min_count)


def _nanreduce(block: np.ndarray[Any, Any], how: str, min_count: int) -> np.ndarray[Any, Any]:
    """Median/mean over the last axis ignoring NaN and inf; NaN where fewer than min_count."""
    block = np.where(np.isinf(block), np.nan, block)  # inf is invalid, not a huge value
    n = np.isfinite(block).sum(axis=-1)
    # Fill never-observed pixels before reducing: numpy warns on all-NaN slices, and a
    # warnings filter cannot silence it reliably inside dask's threads (not thread-safe).
    block = np.where((n == 0)[..., None], 0.0, block)
    out = np.nanmedian(block, axis=-1) if how == "median" else np.nanmean(block, axis=-1)
    return np.where(n >= min_count, out, np.nan).astype(block.dtype)


def composite(
    cube: xr.DataArray,
    *,
    method: Literal["median", "mean"] = "median",
    season: str | Period | None = None,
    min_count: int = 1,
) -> xr.DataArray:
    """Median or mean of the valid observations over time (optionally one period).

    Parameters
    ----------
    cube
        ``(time, band, y, x)`` cube, cloud-masked (NaN = not valid). ``SCL`` is dropped.
    method
        ``"median"`` or ``"mean"``, of non-NaN values only.
    season
        Period to composite, in any form :func:`vitseg.periods.parse_period` reads: a dry
        season ``"2020-21"`` (Nov 2020 - Mar 2021), a calendar year ``"2020"`` or a date
        range ``"2020-01-01/2021-01-01"`` (ends inclusive; dates in UTC). None uses
        every date.
    min_count
        Pixels with fewer valid observations are NaN.

    Returns
    -------
    xarray.DataArray
        ``(band, y, x)``, dtype of ``cube``, CRS kept; attrs ``season`` (the period's
        label, e.g. ``"2020-21"`` or ``"2020-01-01_2021-01-01"``; ``"all"``), ``method``,
        ``n_scenes``.

    Raises
    ------
    NoValidDataError
        The cube has no date, or no date falls in ``season`` (the message lists the cube's
        dates and seasons).
    ParamsError
        ``season`` is not a period :func:`vitseg.periods.parse_period` reads, or
        ``min_count`` is not an integer >= 1.
    DimensionError
        ``cube`` lacks a dim, has no pixels, is not floating point (e.g. uint16 digital
        numbers), or its ``time`` coordinate holds no dates while ``season`` is given.
    BandError
        A band name is repeated, or ``SCL`` is the only band.
    VitsegError
        Unknown ``method``.

    Examples
    --------
    >>> import numpy as np, xarray as xr, pandas as pd
    >>> v = np.array([0.1, np.nan, 0.3, 0.9]).reshape(4, 1, 1, 1)
    >>> t = pd.to_datetime(["2020-11-05", "2020-12-05", "2021-01-05", "2021-12-01"])
    >>> cube = xr.DataArray(v, dims=("time", "band", "y", "x"),
    ...                     coords={"time": t, "band": ["B04"]})
    >>> float(composite(cube, season="2020-21").item())
    0.2
    >>> float(composite(cube, season="2020-12-01/2021-12-31").item())
    0.6
    """
    _check_cube(cube)
    if method not in ("median", "mean"):
        raise VitsegError(f"'method' must be one of {{'median', 'mean'}}; got {method!r}")
    min_count = _check_min_count(min_count)
    if "SCL" in [str(b) for b in cube["band"].values]:
        cube = cube.drop_sel(band="SCL")
        if cube.sizes["band"] == 0:
            raise BandError("cube has only the 'SCL' band; a composite needs reflectance bands")
    if cube.sizes["time"] == 0:
        raise NoValidDataError("cube has no date (time has size 0); nothing to composite")
    label = "all"
    if season is not None:
        if "time" not in cube.coords or cube["time"].dtype.kind != "M":
            got = cube["time"].dtype if "time" in cube.coords else "no coordinate"
            raise DimensionError(
                f"composite(season=...) needs dates in the cube's 'time' coordinate; got "
                f"{got}. Build the cube with vitseg.cube.build_cube, or assign_coords(time="
                "pd.to_datetime([...]))."
            )
        period = parse_period(season)
        label = period.label
        keep = [lab is not None for lab in period_of(cube["time"], [period])]
        if not any(keep):
            have = sorted({lab for lab in season_of(cube["time"]) if lab is not None})
            dates = [str(t)[:10] for t in cube["time"].values]
            shown = dates if len(dates) <= 8 else [*dates[:4], "...", *dates[-3:]]
            raise NoValidDataError(
                f"no scene of the cube falls in {season!r} ({period.datetime}); its dry "
                f"seasons: {have}, its {len(dates)} dates: {shown}. Pick a period that "
                "holds some of them."
            )
        cube = cube.isel(time=np.flatnonzero(keep))
    if cube.chunks is not None:
        cube = cube.chunk({"time": -1})
    out = xr.apply_ufunc(
        _nanreduce,
        cube,
        input_core_dims=[["time"]],
        kwargs={"how": method, "min_count": int(min_count)},
        dask="parallelized",
        output_dtypes=[cube.dtype],
    )
    drop = [c for c in out.coords if c not in ("band", "y", "x", "spatial_ref")]
    out = out.drop_vars(drop).transpose("band", "y", "x").rename(f"{method}_composite")
    out.attrs = {
        **{k: v for k, v in cube.attrs.items() if isinstance(v, (str, int, float))},
        "season": label,
        "method": method,
        "n_scenes": int(cube.sizes["time"]),
    }
    if cube.rio.crs is not None:
        out = out.rio.write_crs(cube.rio.crs)
    return out


def seasonal_composites(
    cube: xr.DataArray,
    *,
    method: Literal["median", "mean"] = "median",
    seasons: Sequence[str] | None = None,
    min_count: int = 1,
) -> xr.DataArray:
    """Composite each dry season of ``cube``: ``(season, band, y, x)``.

    Parameters
    ----------
    cube, method, min_count
        As for :func:`composite`.
    seasons
        Seasons to make (default: every season with a date in the cube, sorted); one
        season may be given as a string.

    Raises
    ------
    ParamsError
        ``seasons`` is empty or names a season twice (and as :func:`composite`).

    Returns
    -------
    xarray.DataArray
        Stacked composites with a ``season`` coordinate and ``n_scenes`` per season.
    """
    _check_cube(cube)
    if isinstance(seasons, str):
        seasons = [seasons]  # one season, not its characters
    if seasons is not None:
        use = [str(s) for s in seasons]
        if not use:
            raise ParamsError("'seasons' is empty; pass None for every season of the cube")
        dups = sorted({s for s in use if use.count(s) > 1})
        if dups:
            raise ParamsError(f"'seasons' names {dups} more than once; list each season once")
    else:
        use = sorted({s for s in season_of(cube["time"]) if s is not None})
    if not use:
        raise NoValidDataError("the cube has no dry-season (Nov-Mar) date to composite")
    parts = [composite(cube, method=method, season=s, min_count=min_count) for s in use]
    out = xr.concat(parts, dim=pd.Index(use, name="season"), combine_attrs="drop")
    out = out.assign_coords(n_scenes=("season", [p.attrs["n_scenes"] for p in parts]))
    out.attrs = {"method": method}
    if cube.rio.crs is not None:
        out = out.rio.write_crs(cube.rio.crs)
    return out


def tile_valid_fraction(da: xr.DataArray, *, tile_px: int) -> xr.DataArray:
    """Fraction of valid pixels in each ``tile_px`` x ``tile_px`` tile (blank-tile helper).

    A pixel is valid when every band (and date) is finite (NaN and +/-inf are not valid;
    integer and boolean arrays are valid everywhere). Edge tiles that do not fill a whole
    tile are dropped, as tiling does.

    Parameters
    ----------
    da
        ``(..., y, x)`` array, e.g. a composite ``(band, y, x)``.
    tile_px
        Tile side in pixels (an integer >= 1).

    Raises
    ------
    DimensionError
        ``da`` is not a DataArray with ``y`` and ``x``, has a zero-size dim, holds no
        numbers, or is smaller than one tile.
    ParamsError
        ``tile_px`` is not an integer >= 1.

    Returns
    -------
    xarray.DataArray
        float ``(tile_y, tile_x)`` in [0, 1], with coords ``row_off``/``col_off`` (pixel
        offsets of each tile) and ``y``/``x`` (tile centres, CRS units).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = np.ones((4, 4)); a[:2, :2] = np.nan
    >>> tile_valid_fraction(xr.DataArray(a, dims=("y", "x")), tile_px=2).values
    array([[0., 1.],
           [1., 1.]])
    """
    if not isinstance(da, xr.DataArray):
        raise DimensionError(f"expected an xarray.DataArray with y/x dims; got {type(da).__name__}")
    if "y" not in da.dims or "x" not in da.dims:
        raise DimensionError(f"expected 'y' and 'x' dims; got {tuple(da.dims)}")
    if (
        not isinstance(tile_px, (int, np.integer))
        or isinstance(tile_px, (bool, np.bool_))
        or tile_px < 1
    ):
        raise ParamsError(
            f"'tile_px' must be a positive number of pixels (an integer); got {tile_px!r}"
        )
    if da.dtype.kind not in "biufc":
        raise DimensionError(
            f"tile_valid_fraction needs numbers (NaN = no data); got dtype {da.dtype}"
        )
    empty = {d: n for d, n in da.sizes.items() if n == 0}
    if empty:
        raise DimensionError(f"array has zero-size dims {empty}; there is nothing to tile")
    ny, nx = da.sizes["y"] // tile_px, da.sizes["x"] // tile_px
    if ny == 0 or nx == 0:
        raise DimensionError(
            f"array of {da.sizes['y']} x {da.sizes['x']} px is smaller than one "
            f"{tile_px}-px tile; use a smaller tile_px"
        )
    other = [d for d in da.dims if d not in ("y", "x")]
    fin = np.isfinite(da) if da.dtype.kind in "fc" else xr.ones_like(da, dtype=bool)
    ok = fin.all(other) if other else fin
    ok = ok.isel(y=slice(0, ny * tile_px), x=slice(0, nx * tile_px))
    frac = ok.coarsen(y=tile_px, x=tile_px).mean()
    frac = frac.rename({"y": "tile_y", "x": "tile_x"})
    coords: dict[str, Any] = {
        "row_off": ("tile_y", np.arange(ny) * tile_px),
        "col_off": ("tile_x", np.arange(nx) * tile_px),
    }
    if "y" in da.coords and "x" in da.coords:
        coords["y"] = ("tile_y", frac["tile_y"].values)
        coords["x"] = ("tile_x", frac["tile_x"].values)
    frac = frac.drop_vars([c for c in ("tile_y", "tile_x") if c in frac.coords])
    frac = frac.assign_coords(coords).rename("valid_fraction")
    return frac


def inputs_key(**inputs: Any) -> str:
    """Return a short hash of everything a composite depends on (items, masks, method, grid).

    Examples
    --------
    >>> inputs_key(items=["a", "b"], method="median") == inputs_key(method="median", items=["a", "b"])
    True
    """
    import hashlib
    import json

    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_composite(path: str | os.PathLike[str], *, key: str | None = None) -> xr.DataArray | None:
    """Read a composite COG written by :func:`write_composite`; None when it must be made.

    With ``key``, the file counts only when it was written with the same
    :func:`inputs_key` (a run that resumes reuses finished composites, never stale ones).

    Returns
    -------
    xarray.DataArray or None
        ``(band, y, x)`` float32 with band names, NaN as no data; None when the file is
        missing, unreadable or was made from other inputs.

    Raises
    ------
    ParamsError
        ``path`` is a folder.
    """
    import rasterio

    p = Path(path)
    if p.is_dir():
        raise ParamsError(
            f"composite path {p} is a folder; give a file such as {p / 'composite.tif'}"
        )
    if not p.is_file():
        return None
    try:
        with rasterio.open(p) as src:
            if key is not None and src.tags().get("VITSEG_INPUTS_KEY") != str(key):
                return None
            names = [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]
        da = rioxarray.open_rasterio(p, masked=True).load()
    except (OSError, rasterio.errors.RasterioError):
        return None
    da = da.assign_coords(band=names).astype("float32")
    da.attrs = {k: v for k, v in da.attrs.items() if k not in ("long_name",)}
    return da  # type: ignore[no-any-return]


def write_composite(
    da: xr.DataArray, path: str | os.PathLike[str], *, key: str | None = None
) -> Path:
    """Compute a ``(band, y, x)`` composite and write it as a float32 COG (atomically).

    Band names go into the band descriptions; NaN is the nodata value (+/-inf are
    written as NaN too).

    Parameters
    ----------
    da
        Composite from :func:`composite` (CRS required).
    path
        Destination ``.tif``.
    key
        Optional :func:`inputs_key` stored in the file's tags, for
        :func:`read_composite` to tell a finished composite from a stale one.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    NoValidDataError
        Every pixel is NaN (all no-data or clouded); no file is written.
    MissingCRSError
        ``da`` has no CRS.
    DimensionError
        ``da`` is not ``(band, y, x)``, has no band or pixel, or does not hold real numbers.
    BandError
        A band name is repeated.
    ParamsError
        ``path`` is a folder or does not end in ``.tif``/``.tiff``.
    """
    from rasterio.enums import Resampling  # noqa: F401  (COG overviews use GDAL defaults)

    from vitseg.errors import MissingCRSError
    from vitseg.io import atomic_path

    if da.rio.crs is None:
        raise MissingCRSError("composite has no CRS; call da.rio.write_crs('EPSG:32630') first")
    if da.dims != ("band", "y", "x"):
        raise DimensionError(f"write_composite expects dims ('band', 'y', 'x'); got {da.dims}")
    if da.dtype.kind not in "iuf":
        raise DimensionError(
            f"composite must hold real numbers (float reflectance); got dtype {da.dtype}"
        )
    if 0 in da.shape:
        raise DimensionError(f"composite has no band or pixel (shape {da.shape}); nothing to write")
    bands = [str(b) for b in da["band"].values]
    dups = sorted({b for b in bands if bands.count(b) > 1})
    if dups:
        raise BandError(f"composite has band(s) {dups} more than once; keep one of each")
    p = Path(path)
    if p.is_dir():
        raise ParamsError(
            f"composite path {p} is a folder; give a file such as {p / 'composite.tif'}"
        )
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise ParamsError(f"composite path must end in .tif or .tiff (a COG); got {p.name!r}")
    data = da.astype("float32").compute()
    data = data.where(np.isfinite(data))  # inf is no data, as in composite()
    if not np.isfinite(data.values).any():
        raise NoValidDataError(
            f"composite {da.name!r} has no valid pixel (every observation is no-data or "
            "cloud-masked); nothing written. Add dates (wider season, higher max_cloud_pct) "
            "or check the cloud mask threshold."
        )
    data.attrs = {k: v for k, v in data.attrs.items() if isinstance(v, (str, int, float))}
    data = data.rio.write_nodata(np.nan, encoded=False)
    names = tuple(str(b) for b in da["band"].values)
    data.attrs["long_name"] = names
    tags = {"VITSEG_INPUTS_KEY": str(key)} if key is not None else {}
    with atomic_path(path) as tmp:
        data.rio.to_raster(tmp, driver="COG", compress="DEFLATE", tags=tags)
    return Path(path)
