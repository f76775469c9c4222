"""Shared helpers of the prediction tests: a tiny deterministic net and small cubes."""

from __future__ import annotations

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import torch
import xarray as xr

BANDS = ["B02", "B03", "B04", "B08"]
CRSS = {"EPSG:32630": (600_000.0, 700_000.0, 10.0), "EPSG:4326": (-1.8, 6.25, 0.0001)}


def tiny_net(n_bands: int = 4, n_classes: int = 3, seed: int = 0) -> torch.nn.Module:
    """Three 3x3 convolutions: receptive radius 3 px, translation-invariant, deterministic."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(n_bands, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, n_classes, 3, padding=1),
    ).eval()


def make_cube(
    values: np.ndarray, crs: str = "EPSG:32630", *, dask_chunks: int | None = None
) -> xr.DataArray:
    x0, y0, res = CRSS[crs]
    _, nb, h, w = values.shape
    data = (
        da.from_array(values, chunks=(1, -1, dask_chunks, dask_chunks)) if dask_chunks else values
    )
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(["2021-01-05", "2021-02-10"][: values.shape[0]], "datetime64[ns]"),
            "band": BANDS[:nb],
            "y": y0 - res * (np.arange(h) + 0.5),
            "x": x0 + res * (np.arange(w) + 0.5),
        },
    )
    return cube.rio.write_crs(crs)


def whole(net: torch.nn.Module, values: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = torch.softmax(net(torch.from_numpy(values)), dim=1)
    return out.numpy()


def grid_da(arr: np.ndarray, crs: str = "EPSG:32630") -> xr.DataArray:
    """A (y, x) map or (class, y, x) probabilities on a small grid of ``crs``."""
    x0, y0, res = CRSS[crs]
    h, w = arr.shape[-2:]
    dims = ("y", "x") if arr.ndim == 2 else ("class", "y", "x")
    coords = {"y": y0 - res * (np.arange(h) + 0.5), "x": x0 + res * (np.arange(w) + 0.5)}
    if arr.ndim == 3:
        coords["class"] = ["mines", "built", "vegetation"][: arr.shape[0]]
    return xr.DataArray(arr, dims=dims, coords=coords).rio.write_crs(crs)
