"""Cloud masks and valid-observation counts for ``(time, band, y, x)`` cubes.

Two masks, usable alone or together:

* ``"scl"``: the Sentinel-2 L2A scene classification. Masked classes default to
  :data:`SCL_MASK_CLASSES` = 0 no data, 1 saturated/defective, 3 cloud shadow, 8/9
  cloud medium/high probability, 10 thin cirrus. Needs an ``"SCL"`` band in the cube
  (``build_cube(..., bands=(*S2_BANDS_10, "SCL"))``).
* ``"bright"``: Gallwey et al. (§2.3) found that sen2cor's cloud mask also removes
  turbid mining ponds, and masked instead pixels brighter than a threshold in *all three*
  visible bands (B02, B03, B04): ponds are bright in green/red but not in blue, clouds are
  bright and white. The paper does not state its threshold; ours defaults to 0.2
  surface reflectance (:data:`BRIGHT_THRESHOLD`), a parameter of notebook 02.

Masks are boolean DataArrays ``(time, y, x)``, True where a pixel is cloud or otherwise
unusable. Everything is lazy on dask-backed cubes and keeps coords, attrs and CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.errors import BandError, DimensionError, ParamsError, VitsegError

__all__ = [
    "BRIGHT_THRESHOLD",
    "SCL_MASK_CLASSES",
    "cloud_mask",
    "mask_clouds",
    "valid_count",
]

#: SCL classes masked by default (no data, defective, shadow, clouds, cirrus).
SCL_MASK_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
#: Default bright-cloud threshold on B02, B03 and B04 (surface reflectance).
BRIGHT_THRESHOLD = 0.2
_VISIBLE = ("B02", "B03", "B04")
Method = Literal["scl", "bright", "both"]


def _check_cube(cube: xr.DataArray) -> None:
    if not isinstance(cube, xr.DataArray):
        raise DimensionError(f"expected an xarray.DataArray cube; got {type(cube).__name__}")
    missing = [d for d in ("time", "band", "y", "x") if d not in cube.dims]
    if missing:
        raise DimensionError(
            f"cube must have dims ('time', 'band', 'y', 'x'); got {tuple(cube.dims)} "
            f"(missing {missing}). Build it with vitseg.cube.build_cube, or expand_dims('time')."
        )
    if not np.issubdtype(cube.dtype, np.floating):
        raise DimensionError(
            f"cube must hold float reflectance (0-1, NaN = no data); got dtype {cube.dtype}. "
            "Digital numbers? Build the cube with vitseg.cube.build_cube, or scale it: "
            "cube.astype('float32') * 1e-4."
        )
    if cube.sizes["y"] == 0 or cube.sizes["x"] == 0:
        raise DimensionError(
            f"cube has no pixels (y: {cube.sizes['y']}, x: {cube.sizes['x']}); check the bbox, "
            "window or clip that made it"
        )
    bands = [str(b) for b in cube["band"].values]
    dups = sorted({b for b in bands if bands.count(b) > 1})
    if dups:
        raise BandError(
            f"cube has band(s) {dups} more than once (bands {bands}); keep one of each, e.g. "
            "cube.drop_duplicates('band')"
        )


def _check_options(threshold: object, scl_classes: object) -> list[int]:
    real = isinstance(threshold, (int, float, np.integer, np.floating))
    if not real or isinstance(threshold, (bool, np.bool_)):
        raise ParamsError(
            f"'threshold' must be a number (surface reflectance 0-1, e.g. 0.2); got "
            f"{threshold!r} ({type(threshold).__name__})"
        )
    if isinstance(scl_classes, (str, bytes)) or not isinstance(scl_classes, (Sequence, np.ndarray)):
        raise ParamsError(
            f"'scl_classes' must be a list of SCL class codes 0-11, e.g. [3, 8, 9, 10]; got "
            f"{scl_classes!r}"
        )
    bad = [
        c
        for c in scl_classes
        if not isinstance(c, (int, np.integer))
        or isinstance(c, (bool, np.bool_))
        or not 0 <= c <= 11
    ]
    if bad:
        raise ParamsError(
            f"'scl_classes' must hold SCL class codes, integers 0-11; got {bad} in "
            f"{list(scl_classes)}. See vitseg.cloud.SCL_MASK_CLASSES for the default."
        )
    return [int(c) for c in scl_classes]


def _band(cube: xr.DataArray, name: str, why: str) -> xr.DataArray:
    bands = [str(b) for b in cube["band"].values]
    if name not in bands:
        raise BandError(f"{why} needs band {name!r}; the cube has {bands}")
    return cube.sel(band=name, drop=True)


def cloud_mask(
    cube: xr.DataArray,
    *,
    method: Method = "both",
    threshold: float = BRIGHT_THRESHOLD,
    scl_classes: Sequence[int] = SCL_MASK_CLASSES,
) -> xr.DataArray:
    """Return a boolean ``(time, y, x)`` mask, True where a pixel is cloud/unusable.

    Parameters
    ----------
    cube
        ``(time, band, y, x)`` reflectance cube (with ``"SCL"`` for ``"scl"``/``"both"``).
    method
        ``"scl"`` (scene classes), ``"bright"`` (B02, B03 and B04 all above
        ``threshold``) or ``"both"`` (either).
    threshold
        Bright-cloud threshold in surface reflectance (0-1).
    scl_classes
        SCL classes to mask (integers 0-11); a missing (NaN) SCL value is masked too, so an
        empty list masks only missing SCL.

    Returns
    -------
    xarray.DataArray
        bool, dims ``(time, y, x)``, coords and CRS of ``cube``.

    Raises
    ------
    DimensionError
        ``cube`` lacks a ``(time, band, y, x)`` dim, has no pixels or is not floating
        point (e.g. DN).
    BandError
        A band the method needs is missing, or a band name is repeated.
    ParamsError
        ``threshold`` is not a number, or ``scl_classes`` is not a list of codes 0-11.
    VitsegError
        Unknown ``method`` or a threshold outside (0, 2).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> refl = np.array([0.3, 0.3, 0.3, 4]).reshape(1, 4, 1, 1)  # white and bright: cloud
    >>> cube = xr.DataArray(refl, dims=("time", "band", "y", "x"),
    ...                     coords={"band": ["B02", "B03", "B04", "SCL"]})
    >>> bool(cloud_mask(cube, method="bright").item()), bool(cloud_mask(cube, method="scl").item())
    (True, False)
    """
    _check_cube(cube)
    if method not in ("scl", "bright", "both"):
        raise VitsegError(f"'method' must be one of {{'scl', 'bright', 'both'}}; got {method!r}")
    scl_classes = _check_options(threshold, scl_classes)
    if not 0 < float(threshold) < 2:
        raise VitsegError(
            f"'threshold' is a surface reflectance (0-1), e.g. 0.2; got {threshold!r}"
        )
    parts = []
    if method in ("scl", "both"):
        scl = _band(cube, "SCL", f"method={method!r}")
        parts.append(scl.isin(list(scl_classes)) | scl.isnull())
    if method in ("bright", "both"):
        vis = [_band(cube, b, f"method={method!r}") > threshold for b in _VISIBLE]
        parts.append(vis[0] & vis[1] & vis[2])
    mask = parts[0] if len(parts) == 1 else parts[0] | parts[1]
    mask = mask.transpose("time", "y", "x").rename("cloud_mask")
    mask.attrs = {"long_name": f"cloud mask ({method})", "threshold": float(threshold)}
    if cube.rio.crs is not None:
        mask = mask.rio.write_crs(cube.rio.crs)
    return mask


def mask_clouds(
    cube: xr.DataArray,
    *,
    method: Method = "scl",
    threshold: float = BRIGHT_THRESHOLD,
    scl_classes: Sequence[int] = SCL_MASK_CLASSES,
    return_mask: bool = False,
) -> xr.DataArray:
    """Set cloudy pixels of every reflectance band to NaN (``SCL`` is kept as is).

    Parameters
    ----------
    cube
        ``(time, band, y, x)`` cube.
    method, threshold, scl_classes
        As for :func:`cloud_mask`.
    return_mask
        Return the boolean ``(time, y, x)`` mask instead of the masked cube (a bool).

    Returns
    -------
    xarray.DataArray
        The masked cube (same dims, dtype, coords and CRS), or the mask.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> refl = np.array([0.3, 0.3, 0.3, 0.05, 0.1, 0.3]).reshape(2, 3, 1, 1)
    >>> cube = xr.DataArray(refl, dims=("time", "band", "y", "x"),
    ...                     coords={"band": ["B02", "B03", "B04"]})
    >>> mask_clouds(cube, method="bright").sel(band="B04").values.ravel()
    array([nan, 0.3])
    """
    if not isinstance(return_mask, (bool, np.bool_)):
        raise ParamsError(f"'return_mask' must be True or False; got {return_mask!r}")
    mask = cloud_mask(cube, method=method, threshold=threshold, scl_classes=scl_classes)
    if return_mask:
        return mask
    is_refl = xr.DataArray(
        [str(b) != "SCL" for b in cube["band"].values], dims="band", coords={"band": cube["band"]}
    )
    out = cube.where(~(mask & is_refl)).transpose(*cube.dims).astype(cube.dtype)
    out.attrs = {**cube.attrs, "cloud_mask": method}
    if cube.rio.crs is not None:
        out = out.rio.write_crs(cube.rio.crs)
    return out


def valid_count(cube: xr.DataArray, *, bands: Sequence[str] | None = None) -> xr.DataArray:
    """Count, per pixel, the dates with a valid (finite) value in every reflectance band.

    Parameters
    ----------
    cube
        ``(time, band, y, x)`` cube, usually after :func:`mask_clouds`.
    bands
        Bands that must be valid (default: all except ``SCL``); one name may be given as a
        string.

    Returns
    -------
    xarray.DataArray
        int16 ``(y, x)`` counts, CRS of ``cube``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> refl = np.array([np.nan, 0.1, 0.2, 0.3]).reshape(4, 1, 1, 1)
    >>> valid_count(xr.DataArray(refl, dims=("time", "band", "y", "x"),
    ...                          coords={"band": ["B04"]})).values
    array([[3]], dtype=int16)
    """
    _check_cube(cube)
    names = [str(b) for b in cube["band"].values]
    if isinstance(bands, str):
        bands = [bands]  # one band, not its letters
    use = list(bands) if bands is not None else [b for b in names if b != "SCL"]
    unknown = [b for b in use if b not in names]
    if unknown or not use:
        raise BandError(f"valid_count: bands {unknown or use} not usable; the cube has {names}")
    ok = np.isfinite(cube.sel(band=use)).all("band")  # NaN and inf are not valid
    count = ok.sum("time").astype(np.int16).rename("valid_count")
    count.attrs = {"long_name": "valid observations", "units": "count"}
    if cube.rio.crs is not None:
        count = count.rio.write_crs(cube.rio.crs)
    return count
