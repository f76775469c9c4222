"""Tiny hand-made class rasters shared by the change, zonal and density tests."""

from __future__ import annotations

from typing import Any

import dask.array
import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

X0, Y0, RES = 600000.0, 700000.0, 10.0


def class_grid(
    arr: Any,
    *,
    crs: str = "EPSG:32630",
    res: float = RES,
    x0: float = X0,
    y0: float = Y0,
    chunks: Any = None,
) -> xr.DataArray:
    """A uint8 ``(y, x)`` raster whose top-left corner is ``(x0, y0)``, pixel centres as coords."""
    arr = np.asarray(arr, dtype="uint8")
    ny, nx = arr.shape
    data = dask.array.from_array(arr, chunks=chunks) if chunks else arr
    da = xr.DataArray(
        data,
        dims=("y", "x"),
        coords={"y": y0 - (np.arange(ny) + 0.5) * res, "x": x0 + (np.arange(nx) + 0.5) * res},
    )
    return da.rio.write_crs(crs)
