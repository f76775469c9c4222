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
from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    ParamsError,
)
from vitseg.predict import classify

__all__ = ["ensemble", "mosaic"]

_ = rioxarray

#: Slack on the [0, 1] range of probabilities (float32 softmax round-off).
_PROB_TOL = 1e-3


def _check_nodata(nodata: Any, n_classes: int | None = None) -> int:
    """``nodata`` as an int in 0..255 that is not a class code ``0..n_classes-1``."""
    if (
        not isinstance(nodata, (int, np.integer))
        or isinstance(nodata, (bool, np.bool_))
        or not 0 <= nodata <= 255
    ):
        raise ParamsError(
            f"nodata must be an integer in 0..255 (class maps are uint8); got {nodata!r}"
        )
    if n_classes is not None and nodata < n_classes:
        raise ParamsError(
            f"nodata={nodata} is also the code of class {nodata} (codes 0..{n_classes - 1}); "
            f"never-observed pixels would read as that class. Use e.g. nodata=255"
        )
    return int(nodata)


def _check_probs_block(block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Refuse finite values outside [0, 1] (logits, percentages); pass the block through."""
    fin = block[np.isfinite(block)]
    if fin.size and (fin.min() < -_PROB_TOL or fin.max() > 1 + _PROB_TOL):
        raise DimensionError(
            f"probs must hold probabilities in [0, 1] (NaN = no data); got values from "
            f"{float(fin.min()):.3g} to {float(fin.max()):.3g}. Logits? Apply a softmax over "
            "'class' first; percentages? Divide by 100."
        )
    return block


def _check_class_dim(probs: xr.DataArray, name: str) -> None:
    n = probs.sizes["class"]
    if not 1 <= n <= 255:
        raise DimensionError(
            f"{name} has {n} classes along 'class'; a class map (uint8, 255 = no data) holds "
            "1..255 classes"
        )


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
        If ``probs`` is not a float DataArray with ``dim`` and 1..255 ``class`` entries,
        holds values outside [0, 1] (at once for numpy, at compute for dask), or
        ``valid`` is not a boolean DataArray of the same shape without ``class``.
    ParamsError
        ``nodata`` is not an integer in 0..255, or is a class code.

    Notes
    -----
    +/-inf in ``probs`` is no data, like NaN.

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
    import dask.array

    if not isinstance(probs, xr.DataArray):
        raise DimensionError(
            f"probs must be an xarray.DataArray ({dim!r}, 'class', 'y', 'x'); got "
            f"{type(probs).__name__}"
        )
    if dim not in probs.dims or "class" not in probs.dims:
        raise DimensionError(
            f"probs must have dims ({dim!r}, 'class', 'y', 'x'); got {tuple(probs.dims)}"
        )
    if probs.dtype.kind != "f":
        raise DimensionError(
            f"probs must hold float probabilities (NaN = no data); got dtype {probs.dtype}. "
            "Class codes? Ensemble the probabilities of vitseg.predict.predict_cube instead."
        )
    _check_class_dim(probs, "probs")
    nodata = _check_nodata(nodata, probs.sizes["class"])
    if isinstance(probs.data, dask.array.Array):  # checked when computed: no eager compute
        probs = probs.copy(data=probs.data.map_blocks(_check_probs_block, dtype=probs.dtype))
    else:
        _check_probs_block(np.asarray(probs.values))
    ok = np.isfinite(probs).all("class")  # NaN and inf are no data
    if valid is not None:
        if not isinstance(valid, xr.DataArray):
            raise DimensionError(
                f"valid must be a boolean xarray.DataArray {tuple(ok.dims)}; got "
                f"{type(valid).__name__}"
            )
        if set(valid.dims) != set(ok.dims):
            raise DimensionError(
                f"valid must have dims {tuple(ok.dims)} (no 'class'); got {tuple(valid.dims)}"
            )
        if valid.dtype != bool:
            raise DimensionError(f"valid must be boolean (True = observed); got {valid.dtype}")
        wrong = {d: (valid.sizes[d], ok.sizes[d]) for d in ok.dims if valid.sizes[d] != ok.sizes[d]}
        if wrong:
            raise DimensionError(
                f"valid and probs differ in size along {wrong} (valid, probs); make valid "
                "from the same cube, e.g. ~cloud_mask(cube)"
            )
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
    for name, c in (("x", x), ("y", y)):
        step = np.diff(c)
        if not np.isfinite(c).all() or step[0] == 0 or not np.allclose(step, step[0], rtol=1e-6):
            raise GridMismatchError(
                f"a map's {name} coordinates are not a regular grid (finite, evenly spaced, "
                f"no repeats): {c[:4].tolist()}...; resample it with rio.reproject(...) first"
            )
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
        If pixel sizes differ, grids are not aligned (resample with
        ``rio.reproject_match`` first) or coordinates are not evenly spaced.
    MissingCRSError
        If a map has no CRS.
    DimensionError
        If ``maps`` is not a list of DataArrays, or dims or dtypes do not suit ``method``
        (class codes must be integer or float, probabilities float).
    LabelError
        A float class map holds non-integer values (at once for numpy, at compute for dask).
    ParamsError
        ``nodata`` is not an integer in 0..255.

    Notes
    -----
    Class codes that are NaN, +/-inf, ``nodata`` or outside ``0..255`` (they would wrap in
    ``uint8``) are no data; for ``"mean_prob"`` +/-inf is no data like NaN.

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
    if isinstance(maps, xr.DataArray) or not isinstance(maps, Sequence):
        raise DimensionError(
            f"maps must be a list of DataArrays; got a {type(maps).__name__}. For one map "
            "write mosaic([m])."
        )
    if len(maps) == 0:
        raise DimensionError("mosaic needs at least one map; got an empty list")
    if method not in {"max_class", "mean_prob"}:
        raise DimensionError(f"method must be one of {{'max_class', 'mean_prob'}}; got {method!r}")
    nodata = _check_nodata(nodata)
    for i, m in enumerate(maps):
        if not isinstance(m, xr.DataArray):
            raise DimensionError(f"map {i} must be an xarray.DataArray; got {type(m).__name__}")
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
                if m.dtype.kind != "f":
                    raise DimensionError(f"map {i} has a 'class' dim but dtype {m.dtype}; "
                                         "probabilities are float")  # fmt: skip
                _check_class_dim(m, f"map {i}")
                m = classify(m, nodata=nodata)[0]
            if m.dims != ("y", "x"):
                raise DimensionError(f"map {i} must be (y, x) class codes; got {tuple(m.dims)}")
            m = _class_codes(m, nodata, f"map {i}")
        else:
            if tuple(m.dims) != ("class", "y", "x"):
                raise DimensionError(
                    f"'mean_prob' needs (class, y, x) probabilities; map {i} has {tuple(m.dims)}"
                )
            if m.dtype.kind != "f":
                raise DimensionError(
                    f"'mean_prob' needs float probabilities; map {i} has dtype {m.dtype}"
                )
            m = m.where(np.isfinite(m))  # inf is no data, like NaN
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
        fill: Any = -1 if method == "max_class" else np.nan  # -1: no data (codes are int16)
        m2 = m.drop_vars([c for c in m.coords if c not in m.dims])
        padded = m2.pad(
            {"y": (r0, height - r0 - h), "x": (c0, width - c0 - w)}, constant_values=fill
        )
        placed.append(padded.assign_coords(y=ys, x=xs))
    stack = xr.concat(placed, dim="map", join="override")
    if method == "max_class":
        codes = stack.max("map")
        out = codes.where(codes >= 0, nodata).astype("uint8")
        out.attrs = {"long_name": "class", "mosaic": "maximum class code in overlaps"}
    else:
        out = stack.mean("map", skipna=True).astype("float32")
        out.attrs = {"long_name": "mean probability", "mosaic": "probability average"}
    return out.rio.write_crs(crs)


def _codes_block(arr: np.ndarray[Any, Any], *, nodata: int, name: str) -> np.ndarray[Any, Any]:
    """int16 class codes 0..255 of a block, -1 where no data; refuses fractions."""
    if arr.dtype.kind == "f":
        valid = np.isfinite(arr)
        frac = valid & (arr != np.floor(np.where(valid, arr, 0)))
        if frac.any():
            raise LabelError(
                f"{name} holds {int(frac.sum())} non-integer class values, e.g. "
                f"{np.unique(arr[frac])[:5].tolist()}; a class map holds integer codes (NaN = "
                "no data). Probabilities? Pass them with their 'class' dim; never round codes."
            )
    else:
        valid = np.ones(arr.shape, dtype=bool)
    valid &= (arr >= 0) & (arr <= 255) & (arr != nodata)  # compared in the input dtype
    out = np.full(arr.shape, -1, dtype="int16")
    out[valid] = arr[valid]
    return out


def _class_codes(m: xr.DataArray, nodata: int, name: str) -> xr.DataArray:
    """Class codes of ``m`` as int16 (-1 = no data), lazily for dask."""
    import functools

    import dask.array

    if m.dtype.kind not in "iuf":
        raise DimensionError(
            f"{name} must hold integer class codes ({nodata} = no data); got dtype {m.dtype}."
            + (
                " A boolean mask is not a class map: convert it, e.g. "
                f"xr.where(mask, 0, {nodata}).astype('uint8')."
                if m.dtype == bool
                else ""
            )
        )
    func = functools.partial(_codes_block, nodata=nodata, name=name)
    data = m.data
    codes: Any = (
        data.map_blocks(func, dtype="int16")
        if isinstance(data, dask.array.Array)
        else func(np.asarray(data))
    )
    return m.copy(data=codes)
