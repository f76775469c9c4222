"""Temporal ensembling of per-scene probabilities and mosaicking of overlapping maps.

Gallwey et al. §2.6 (their equations 1-3) combine the class probabilities that the
network gives for every image of a season: for each pixel and class, the probabilities
of the images where the pixel was seen (not cloud, not no-data) are summed and divided
by the number of such images (eqs 2-3); the pixel's class is the one with the highest
mean probability (eq 1). Pixels never seen stay no-data. Then the ensembled tiles are
mosaicked with the *maximum class code* where they overlap, which with the class
order mines (0) < built (1) < vegetation (2) favours vegetation and so suppresses
residual cloud false positives (clouds tend to look like mines or built areas).
:func:`mosaic` implements that rule and, as an option, probability averaging.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import rioxarray  # registers the .rio accessor
import xarray as xr

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import CRSMismatchError, DimensionError, GridMismatchError, MissingCRSError
from vitseg.predict import classify

__all__ = ["ensemble", "mosaic"]

_ = rioxarray


def ensemble(
    probs: xr.DataArray,
    valid: xr.DataArray | None = None,
    *,
    dim: str = "time",
    nodata: int = IGNORE_INDEX,
) -> xr.Dataset:
    """Average class probabilities over the valid observations of a season (Gallwey eqs 1-3).

    Parameters
    ----------
    probs
        Per-scene probabilities ``(time, class, y, x)`` (numpy or dask); NaN = no data.
    valid
        Optional boolean ``(time, y, x)``: True where the scene saw the ground (e.g. not
        cloud-masked). Combined with "probabilities are finite". Default: finite only.
    dim
        The dimension to ensemble over.
    nodata
        Class value of pixels never observed.

    Returns
    -------
    xarray.Dataset
        ``probs`` (float32 ``(class, y, x)``, the per-class mean over valid
        observations, eq 2; NaN where never observed), ``class_map`` (uint8 argmax of the
        means, eq 1; ``nodata`` where never observed), ``confidence`` (float32, the
        highest mean probability) and ``valid_count`` (uint16, the number of valid
        observations, eq 3). CRS kept.

    Raises
    ------
    DimensionError
        If ``probs`` lacks ``dim`` or ``class``, or ``valid`` does not match.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = xr.DataArray(np.array([[0.9, 0.1], [np.nan, np.nan], [0.3, 0.7]])[..., None, None],
    ...     dims=("time", "class", "y", "x"))
    >>> out = ensemble(p)
    >>> out["probs"].values.ravel().astype(float).round(2).tolist()
    [0.6, 0.4]
    >>> out["class_map"].values.ravel().tolist(), out["valid_count"].values.ravel().tolist()
    ([0], [2])
    """
    if dim not in probs.dims or "class" not in probs.dims:
        raise DimensionError(
            f"probs must have dims ({dim!r}, 'class', 'y', 'x'); got {tuple(probs.dims)}"
        )
    ok = probs.notnull().all("class")
    if valid is not None:
        if set(valid.dims) != set(ok.dims):
            raise DimensionError(
                f"valid must have dims {tuple(ok.dims)} (no 'class'); got {tuple(valid.dims)}"
            )
        if valid.dtype != bool:
            raise DimensionError(f"valid must be boolean (True = observed); got {valid.dtype}")
        ok = ok & valid
    count = ok.sum(dim)  # eq 3
    total = probs.where(ok).sum(dim, skipna=True)  # numerator of eq 2
    mean = (total / count.where(count > 0)).astype("float32")  # eq 2; NaN if never seen
    mean.attrs = {"long_name": "ensemble mean probability", "units": "probability"}
    cls, conf = classify(mean, nodata=nodata)  # eq 1 (argmax of the means)
    out = xr.Dataset(
        {
            "probs": mean,
            "class_map": cls,
            "confidence": conf,
            "valid_count": count.astype("uint16"),
        }
    )
    out["valid_count"].attrs = {"long_name": "number of valid observations"}
    if probs.rio.crs is not None:
        out = out.rio.write_crs(probs.rio.crs)
    return out


def _grid(arr: xr.DataArray) -> tuple[float, float, float, float, int, int]:
    x, y = np.asarray(arr["x"].values, float), np.asarray(arr["y"].values, float)
    if x.size < 2 or y.size < 2:
        raise GridMismatchError(f"maps need at least 2x2 pixels to define a grid; got {arr.shape}")
    return float(x[0]), float(x[1] - x[0]), float(y[0]), float(y[1] - y[0]), y.size, x.size


def mosaic(
    maps: Sequence[xr.DataArray],
    *,
    method: Literal["max_class", "mean_prob"] = "max_class",
    nodata: int = IGNORE_INDEX,
) -> xr.DataArray:
    """Mosaic overlapping maps on one grid covering them all.

    Parameters
    ----------
    maps
        Maps in the same CRS with the same pixel size and aligned grids (origins differ
        by whole pixels). For ``"max_class"``: class rasters ``(y, x)`` (integer codes,
        ``nodata`` = no data) or probabilities ``(class, y, x)`` (classified first). For
        ``"mean_prob"``: probabilities ``(class, y, x)``, NaN = no data.
    method
        ``"max_class"`` (Gallwey et al.: where maps overlap, keep the highest class code,
        i.e. vegetation over built over mines) or ``"mean_prob"`` (average the
        probabilities of the maps that have data).
    nodata
        Class no-data value (``"max_class"``).

    Returns
    -------
    xarray.DataArray
        ``"max_class"``: uint8 ``(y, x)``; ``"mean_prob"``: float32 ``(class, y, x)``;
        lazily when the inputs are dask-backed, on the union grid, with the CRS.

    Raises
    ------
    CRSMismatchError
        If the maps' CRSs differ.
    GridMismatchError
        If pixel sizes differ or grids are not aligned (resample with
        ``rio.reproject_match`` first).
    MissingCRSError
        If a map has no CRS.
    DimensionError
        If the dims do not suit ``method``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> def grid(x0, v):
    ...     return xr.DataArray(np.array(v, "uint8"), dims=("y", "x"), coords={
    ...         "y": [15.0, 5.0], "x": [x0, x0 + 10]}).rio.write_crs("EPSG:32630")
    >>> m = mosaic([grid(5.0, [[0, 2], [1, 255]]), grid(15.0, [[1, 0], [0, 0]])])
    >>> m.values.tolist()
    [[0, 2, 0], [1, 0, 0]]
    """
    if len(maps) == 0:
        raise DimensionError("mosaic needs at least one map; got an empty list")
    if method not in {"max_class", "mean_prob"}:
        raise DimensionError(f"method must be one of {{'max_class', 'mean_prob'}}; got {method!r}")
    crs = maps[0].rio.crs
    for i, m in enumerate(maps):
        if m.rio.crs is None:
            raise MissingCRSError(f"map {i} has no CRS; set it with .rio.write_crs(...)")
        if m.rio.crs != crs:
            raise CRSMismatchError(
                f"map {i} is in {m.rio.crs} but map 0 is in {crs}; reproject with "
                "rio.reproject(...) so that all maps share one CRS"
            )
    prepared: list[xr.DataArray] = []
    for i, m in enumerate(maps):
        if method == "max_class":
            if "class" in m.dims:
                m = classify(m, nodata=nodata)[0]
            if m.dims != ("y", "x"):
                raise DimensionError(f"map {i} must be (y, x) class codes; got {tuple(m.dims)}")
        elif tuple(m.dims) != ("class", "y", "x"):
            raise DimensionError(
                f"'mean_prob' needs (class, y, x) probabilities; map {i} has {tuple(m.dims)}"
            )
        prepared.append(m)
    x0, dx, y0, dy, _, _ = _grid(prepared[0])
    grids = [_grid(m) for m in prepared]
    for i, (gx, gdx, gy, gdy, _, _) in enumerate(grids):
        if not (np.isclose(gdx, dx) and np.isclose(gdy, dy)):
            raise GridMismatchError(
                f"map {i} has pixel size ({gdx}, {gdy}) but map 0 has ({dx}, {dy}); resample "
                "with rio.reproject_match(...) first"
            )
        for off, step, name in (((gx - x0) / dx, dx, "x"), ((gy - y0) / dy, dy, "y")):
            if abs(off - round(off)) > 1e-6:
                raise GridMismatchError(
                    f"map {i}'s {name} grid is shifted by {off % 1:.3f} pixel ({step} m pixels) "
                    "from map 0's; align it with rio.reproject_match(...) first"
                )
    left = min(g[0] for g in grids)
    right = max(g[0] + (g[5] - 1) * dx for g in grids)
    top = max(g[2] for g in grids) if dy < 0 else min(g[2] for g in grids)
    bottom = min(g[2] + (g[4] - 1) * dy for g in grids) if dy < 0 else max(
        g[2] + (g[4] - 1) * dy for g in grids
    )  # fmt: skip
    width = round((right - left) / dx) + 1
    height = round((bottom - top) / dy) + 1
    xs = left + dx * np.arange(width)
    ys = top + dy * np.arange(height)
    placed = []
    for m, (gx, _, gy, _, h, w) in zip(prepared, grids, strict=True):
        c0, r0 = round((gx - left) / dx), round((gy - top) / dy)
        fill: Any = nodata if method == "max_class" else np.nan
        m2 = m.drop_vars([c for c in m.coords if c not in m.dims])
        padded = m2.pad(
            {"y": (r0, height - r0 - h), "x": (c0, width - c0 - w)}, constant_values=fill
        )
        placed.append(padded.assign_coords(y=ys, x=xs))
    stack = xr.concat(placed, dim="map", join="override")
    if method == "max_class":
        codes = stack.astype("int16").where(stack != nodata, -1).max("map")
        out = codes.where(codes >= 0, nodata).astype("uint8")
        out.attrs = {"long_name": "class", "mosaic": "maximum class code in overlaps"}
    else:
        out = stack.mean("map", skipna=True).astype("float32")
        out.attrs = {"long_name": "mean probability", "mosaic": "probability average"}
    return out.rio.write_crs(crs)
