"""Small simulated scenes and cubes: fixtures for tests and doctests.

:func:`make_scene` (one date, ``(band, y, x)``) and :func:`make_cube`
(``(time, band, y, x)``) in any CRS, from a self-contained simulated world or a window of
one of the real boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from vitseg.constants import S2_BANDS_10
from vitseg.errors import MissingCRSError, VitsegError
from vitseg.synthetic.base import _box_grid, _Grid, _is_geographic, _rng
from vitseg.synthetic.render import _render, _scl
from vitseg.synthetic.world import _make_worlds, _mines_for, _World


# ----------------------------------------------------------------------------- fixtures
def _small_grid(size: int, crs: str, res: float | None) -> _Grid:
    if _is_geographic(crs):
        r = res if res is not None else 1e-4
        return _Grid(-1.78, 6.22, r, size, size, crs)
    r = res if res is not None else 10.0
    return _Grid(630000.0, 690000.0, r, size, size, crs)


def make_scene(
    *,
    size: int = 64,
    bands: Sequence[str] = S2_BANDS_10,
    crs: str = "EPSG:32630",
    seed: int = 0,
    cloud_frac: float = 0.0,
    haze: float = 0.0,
    nodata_frac: float = 0.0,
    box: str | None = None,
    resolution_m: float | None = None,
) -> xr.DataArray:
    """Make one simulated single-date scene (a small fixture for tests and doctests).

    Parameters
    ----------
    size
        Height and width in pixels.
    bands
        Band names from :data:`vitseg.constants.S2_BANDS_10`.
    crs
        Any CRS; geographic ones get a 1e-4 degree grid near Obuasi, projected ones a
        10 m grid in UTM 30N coordinates.
    seed
        Deterministic from it.
    cloud_frac, haze, nodata_frac
        Fraction of cloudy pixels, haze strength (0-1), fraction of no-data pixels (NaN).
    box
        ``None``: simulated pits along a simulated river. A name in :data:`BOXES`: the real
        polygons of that box, a window of ``size`` pixels centred on its densest mining
        (projected ``crs`` only).
    resolution_m
        Pixel size in CRS units (default 10 m, or 1e-4 degree).

    Returns
    -------
    xarray.DataArray
        ``(band, y, x)`` float32 surface reflectance with ``rio.crs``/transform, and
        coordinates ``truth`` (``(y, x)`` uint8: 0 mines, 1 built, 2 vegetation) and ``scl``
        (``(y, x)`` uint8, SCL codes sampled at 10 m). Drop them with
        ``scene.drop_vars(["truth", "scl"])`` before writing.

    Examples
    --------
    >>> scene = make_scene(size=32, bands=("B04", "B08"))
    >>> scene.dims, scene.shape, str(scene.rio.crs)
    (('band', 'y', 'x'), (2, 32, 32), 'EPSG:32630')
    """
    import rioxarray  # noqa: F401

    bands = list(bands)
    unknown = [b for b in bands if b not in S2_BANDS_10]
    if unknown:
        raise VitsegError(f"unknown bands {unknown}; expected names from {list(S2_BANDS_10)}")
    if crs is None:
        raise MissingCRSError("make_scene needs a crs, e.g. crs='EPSG:32630'")
    size = int(size)
    if box is not None:
        if _is_geographic(crs):
            raise VitsegError(f"box scenes need a projected crs; got {crs!r}")
        mines_ll = _mines_for(box)
        grid = _box_grid(box, crs, size, mines_ll)
        world = _make_worlds(grid, mines_ll, n_seasons=1, seed=seed, key=f"scene-{box}")[0]
    else:
        grid = _small_grid(size, crs, resolution_m)
        world = _world_small(grid, seed)
    rng = _rng(seed, "scene", cloud_frac, haze, nodata_frac)
    rend = _render(world, rng, cloud_frac=cloud_frac, haze=haze, nodata_frac=nodata_frac)
    scl = _scl(_World(grid, None, None, _upsample_even(world.material), world.truth), rend, rng)
    scl10 = np.repeat(np.repeat(scl, 2, 0), 2, 1)[: grid.height, : grid.width]
    idx = [S2_BANDS_10.index(b) for b in bands]
    data = rend["refl"][idx]
    data[:, ~rend["valid"]] = np.nan
    ys, xs = grid.coords()
    da = xr.DataArray(
        data.astype(np.float32),
        dims=("band", "y", "x"),
        coords={
            "band": bands,
            "y": ys,
            "x": xs,
            "truth": (("y", "x"), world.truth),
            "scl": (("y", "x"), scl10),
        },
        name="reflectance",
        attrs={"units": "1", "long_name": "surface reflectance (simulated)", "simulated": 1},
    )
    da = da.rio.write_crs(crs).rio.write_transform(grid.transform)
    return da


def _upsample_even(mat: Any) -> Any:
    """Pad a material map to even size (for the 20 m SCL) by edge replication."""
    h, w = mat.shape
    return np.pad(mat, ((0, h % 2), (0, w % 2)), mode="edge")


def _world_small(grid: _Grid, seed: int) -> _World:
    """Build a self-contained small world (no real polygons) in any CRS."""
    if _is_geographic(grid.crs):
        # Build in metres and reuse the arrays on the geographic grid (a fixture only).
        metric = _Grid(630000.0, 690000.0, 10.0, grid.height, grid.width, "EPSG:32630")
        w = _make_worlds(metric, None, n_seasons=1, seed=seed, key="small")[0]
        return _World(grid, w.mines, w.built, w.material, w.truth)
    return _make_worlds(grid, None, n_seasons=1, seed=seed, key="small")[0]


def make_cube(
    n_time: int = 3,
    n_band: int = 4,
    size: int = 32,
    crs: str = "EPSG:32630",
    seed: int = 0,
    dask: bool = False,
) -> xr.DataArray:
    """Make a small simulated ``(time, band, y, x)`` reflectance cube for tests.

    Parameters
    ----------
    n_time
        Number of dates (every 10 days from 2021-12-01).
    n_band
        4 (B02, B03, B04, B08) or any other count up to 10 (the first ``n_band`` of
        :data:`vitseg.constants.S2_BANDS_10`).
    size
        Height and width in pixels.
    crs
        Projected (10 m pixels) or geographic (1e-4 degree pixels).
    seed
        Deterministic from it; each date has its own clouds and radiometry.
    dask
        Return a dask-backed array (one chunk per date).

    Returns
    -------
    xarray.DataArray
        float32 reflectance with coords ``time``, ``band``, ``y``, ``x``, ``rio.crs`` and
        transform, and a ``truth`` coordinate ``(y, x)``.

    Examples
    --------
    >>> cube = make_cube(n_time=2, n_band=4, size=16)
    >>> cube.dims, cube.shape
    (('time', 'band', 'y', 'x'), (2, 4, 16, 16))
    """
    import rioxarray  # noqa: F401

    if n_band == 4:
        bands: tuple[str, ...] = ("B02", "B03", "B04", "B08")
    elif 1 <= n_band <= 10:
        bands = S2_BANDS_10[:n_band]
    else:
        raise VitsegError(f"n_band must be between 1 and 10; got {n_band}")
    if n_time < 1:
        raise VitsegError(f"n_time must be >= 1; got {n_time}")
    grid = _small_grid(size, crs, None)
    world = _world_small(grid, seed)
    layers = []
    for t in range(n_time):
        rng = _rng(seed, "cube", t)
        rend = _render(
            world, rng, cloud_frac=0.1 if t % 2 else 0.0, haze=0.2 * (t % 3), nodata_frac=0.0
        )
        layers.append(rend["refl"][[S2_BANDS_10.index(b) for b in bands]])
    data = np.stack(layers).astype(np.float32)
    ys, xs = grid.coords()
    times = np.array(
        [np.datetime64("2021-12-01T10:30:00") + np.timedelta64(10 * t, "D") for t in range(n_time)]
    ).astype("datetime64[ns]")
    da = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": times,
            "band": list(bands),
            "y": ys,
            "x": xs,
            "truth": (("y", "x"), world.truth),
        },
        name="reflectance",
        attrs={"units": "1", "simulated": 1},
    )
    da = da.rio.write_crs(crs).rio.write_transform(grid.transform)
    if dask:
        da = da.chunk({"time": 1, "band": -1, "y": -1, "x": -1})
    return da
