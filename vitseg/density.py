"""Kernel density of new mining per km² (Gallwey et al. Fig. 9).

Gallwey et al. map the density of new mining pixels per square kilometre each year as a
heatmap; they do not state their kernel or bandwidth, so both are parameters here. Events
(new-mining pixels of a raster, or polygons reduced to points weighted by their area) are
binned onto an output grid of ``cell_size_m`` cells and convolved with a kernel of radius
``bandwidth_m`` normalised to sum to one on that grid, so the map integrates to the number
of events (or total area) up to what spills past the grid edge; by default the grid is
padded by the kernel's reach, so nothing spills.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    MissingCRSError,
    ParamsError,
    VectorError,
)
from vitseg.grid import _check_metric, _is_real, _make_valid

__all__ = ["kde_map"]

Kernel = Literal["quartic", "gaussian"]
_KERNELS = ("quartic", "gaussian")
#: Most cells of the output grid, of the kernel, and of the fine polygon grid (memory).
MAX_CELLS = 50_000_000
_VECTOR_TYPES = ("Point", "MultiPoint", "Polygon", "MultiPolygon")


def _check_size(n_cells: float, what: str, fix: str) -> None:
    if n_cells > MAX_CELLS:
        raise ParamsError(f"{what} would have {n_cells:,.0f} cells (at most {MAX_CELLS:,}); {fix}")


def _kernel(bandwidth_m: float, cell_size_m: float, kernel: str) -> np.ndarray[Any, Any]:
    reach = bandwidth_m if kernel == "quartic" else 3.0 * bandwidth_m
    r = int(np.ceil(reach / cell_size_m))
    off = np.arange(-r, r + 1) * cell_size_m
    d2 = off[None, :] ** 2 + off[:, None] ** 2
    if kernel == "quartic":
        k = np.where(d2 < bandwidth_m**2, (1.0 - d2 / bandwidth_m**2) ** 2, 0.0)
    else:
        k = np.exp(-0.5 * d2 / bandwidth_m**2)
    if k.sum() == 0:  # bandwidth far below the cell size: all mass in the centre cell
        k[r, r] = 1.0
    return np.asarray(k / k.sum())


def _raster_events(da: xr.DataArray, value: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Centres (x, y) and pixel areas (m²) of pixels equal to ``value``, chunk by chunk."""
    import dask.array

    from vitseg.change import pixel_area_m2

    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.squeeze("band", drop=True)
    if da.dims != ("y", "x"):
        raise DimensionError(f"raster must have dims ('y', 'x'); got {da.dims}")
    if da.size == 0:
        raise DimensionError(
            f"raster has no pixels (shape {da.shape}); check the window or clip that made it"
        )
    if da.dtype.kind not in "biuf":
        raise DimensionError(
            f"raster must hold integer (or boolean) event codes, e.g. new_mining's uint8; got "
            f"dtype {da.dtype}"
        )
    t = da.rio.transform()
    area = pixel_area_m2(da)
    data = da.data
    row_chunks = data.chunks[0] if isinstance(data, dask.array.Array) else (da.sizes["y"],)
    xs, ys, ws = [], [], []
    r0 = 0
    for h in row_chunks:
        block = np.asarray(da.isel(y=slice(r0, r0 + h)).values)
        rr, cc = np.nonzero(block == value)
        rr = rr + r0
        xs.append(t.c + (cc + 0.5) * t.a + (rr + 0.5) * t.b)
        ys.append(t.f + (cc + 0.5) * t.d + (rr + 0.5) * t.e)
        ws.append(area[rr])
        r0 += h
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def _polygon_cells(polys: Any, bounds: tuple[float, ...], res: float) -> tuple[Any, Any, Any]:
    """Centres and areas (ha) of fine pixels inside the union of ``polys``."""
    import rasterio.features
    from rasterio.transform import from_origin

    x0, y0, x1, y1 = bounds
    nx = max(1, int(np.ceil((x1 - x0) / res)))
    ny = max(1, int(np.ceil((y1 - y0) / res)))
    _check_size(
        float(nx) * ny, "the fine grid that spreads polygon areas",
        "use a smaller 'oversample' or larger cell_size_m, or pass tighter 'bounds'",
    )  # fmt: skip
    t = from_origin(x0, y0 + ny * res, res, res)
    inside = rasterio.features.geometry_mask(
        list(polys.make_valid()), out_shape=(ny, nx), transform=t, invert=True
    )
    rr, cc = np.nonzero(inside)
    xs = t.c + (cc + 0.5) * res
    ys = t.f - (rr + 0.5) * res
    return xs, ys, np.full(xs.shape, res * res / 1e4)


def kde_map(
    source: Any,
    *,
    bandwidth_m: float = 2000.0,
    cell_size_m: float = 500.0,
    kernel: Kernel = "quartic",
    weight: Literal["count", "area_ha"] = "count",
    value: int = 1,
    crs: Any = None,
    bounds: tuple[float, float, float, float] | None = None,
    oversample: int = 5,
) -> xr.DataArray:
    """Kernel density of events per km² on a regular grid (computes).

    Parameters
    ----------
    source
        Either a raster mask ``(y, x)`` in a projected CRS whose pixels equal to ``value``
        are events (e.g. :func:`vitseg.change.new_mining`; a boolean mask counts its True
        pixels with ``value=1``), or a GeoDataFrame of points or polygons (polygons become
        their representative points; invalid ones are repaired with ``make_valid``).
    bandwidth_m
        Kernel radius (quartic) or standard deviation (gaussian), metres.
    cell_size_m
        Output cell size, metres.
    kernel
        ``"quartic"`` (biweight, zero beyond ``bandwidth_m``; the usual GIS heatmap kernel)
        or ``"gaussian"``.
    weight
        ``"count"``: each event weighs 1 (a raster's events are its pixels, as in Gallwey
        Fig. 9); ``"area_ha"``: each event weighs its area in hectares, so the map is
        hectares per km².
    value
        Raster value that marks an event (an integer).
    crs
        Projected CRS for vector ``source`` (defaults to its own CRS when projected, else
        its estimated UTM zone). Ignored for rasters, which must already be projected.
    bounds
        ``(minx, miny, maxx, maxy)`` of the output grid in that CRS, to share one grid
        between years. Default: the events' bounds padded by the kernel's reach.
    oversample
        An integer >= 1. Polygons with ``weight="area_ha"`` are rasterised on a grid ``oversample`` times
        finer than the output (pixel centres inside the union of the polygons), so a large
        polygon spreads its area over the cells it covers instead of piling it on one point
        (overlaps are counted once). Points and ``weight="count"`` use one point per feature.

    Returns
    -------
    xarray.DataArray
        ``float64`` density, dims ``(y, x)`` (cell centres), CRS written; attrs ``units``,
        ``bandwidth_m``, ``cell_size_m``, ``kernel``, ``total`` (sum of event weights).
        ``(density * cell_km2).sum()`` equals ``total`` when no mass spills past ``bounds``.

    Raises
    ------
    ParamsError
        Bandwidth/cell size not finite numbers > 0, unknown kernel or weight, bounds that
        are not four finite numbers with max > min, ``value`` or ``oversample`` not an
        integer, or a grid or kernel of more than :data:`MAX_CELLS` cells.
    MissingCRSError, CRSMismatchError
        The source has no CRS, ``crs`` is not a valid CRS, or the CRS is geographic or
        not in metres (reproject first).
    VectorError
        Vector events that are not points or polygons, or ``weight="area_ha"`` on events
        without any polygon (points have no area).
    DimensionError
        A raster with no pixels, other dims than ``(y, x)`` or a non-numeric dtype.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = gpd.GeoDataFrame(geometry=[Point(500, 500)], crs="EPSG:32630")
    >>> d = kde_map(pts, bandwidth_m=300, cell_size_m=100)
    >>> round(float(d.sum()) * 0.01, 6)
    1.0
    """
    import geopandas as gpd
    import pyproj
    from rasterio.transform import from_origin
    from scipy.signal import fftconvolve

    if not all(_is_real(v) and np.isfinite(v) and v > 0 for v in (bandwidth_m, cell_size_m)):
        raise ParamsError(
            f"bandwidth_m and cell_size_m must be > 0; got {bandwidth_m!r}, {cell_size_m!r} "
            "(finite numbers of metres)"
        )
    if kernel not in _KERNELS:
        raise ParamsError(f"'kernel' must be one of {_KERNELS}; got {kernel!r}")
    if weight not in ("count", "area_ha"):
        raise ParamsError(f"'weight' must be 'count' or 'area_ha'; got {weight!r}")
    reach_cells = (bandwidth_m if kernel == "quartic" else 3.0 * bandwidth_m) / cell_size_m
    _check_size(
        (2 * np.ceil(reach_cells) + 1) ** 2, f"the kernel (bandwidth_m={bandwidth_m!r} over "
        f"cell_size_m={cell_size_m!r})", "use a larger cell_size_m or a smaller bandwidth_m",
    )  # fmt: skip
    for name, v in (("value", value), ("oversample", oversample)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
            raise ParamsError(f"{name!r} must be an integer; got {v!r} ({type(v).__name__})")
    if oversample < 1:
        raise ParamsError(f"'oversample' must be >= 1; got {oversample}")
    if bounds is not None:
        try:
            ok_bounds = len(bounds) == 4 and all(_is_real(b) and np.isfinite(b) for b in bounds)
        except TypeError:
            ok_bounds = False
        if not ok_bounds:
            raise ParamsError(
                f"'bounds' must be four finite numbers (minx, miny, maxx, maxy) in the output "
                f"CRS; got {bounds!r}"
            )

    if isinstance(source, xr.DataArray):
        out_crs = source.rio.crs
        if out_crs is None:
            raise MissingCRSError("raster has no CRS; set it with da.rio.write_crs('EPSG:32630').")
        if not out_crs.is_projected:
            raise CRSMismatchError(
                f"kde_map needs a projected CRS (bandwidth in metres); the raster is in "
                f"{out_crs}. Reproject it first: da.rio.reproject('EPSG:32630', "
                "resampling=Resampling.nearest)."
            )
        _check_metric(out_crs, "", "kde_map needs metres.")
        x, y, area_m2 = _raster_events(source, value)
        w = np.ones_like(x) if weight == "count" else area_m2 / 1e4
    elif isinstance(source, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if source.crs is None:
            raise MissingCRSError("vector source has no CRS; set it with gdf.set_crs(...).")
        if crs is not None:
            try:
                out_crs = pyproj.CRS.from_user_input(crs)
            except pyproj.exceptions.CRSError as exc:
                raise MissingCRSError(
                    f"crs {crs!r} is not a valid CRS; pass e.g. 'EPSG:32630'"
                ) from exc
        elif source.crs.is_projected:
            out_crs = source.crs
        else:
            out_crs = source.estimate_utm_crs()
        if not pyproj.CRS.from_user_input(out_crs).is_projected:
            raise CRSMismatchError(f"'crs' must be projected (metres); got {out_crs}")
        _check_metric(out_crs, "", "kde_map needs metres.")
        geom = source.geometry.to_crs(out_crs)
        geom = geom[~geom.is_empty & ~geom.values.isna()]  # GeoSeries.notna() warns on empties
        bad = ~geom.geom_type.isin(_VECTOR_TYPES)
        if bad.any():
            raise VectorError(
                f"kde_map takes points or polygons; {int(bad.sum())} of {len(geom)} events are "
                f"{sorted(set(geom.geom_type[bad]))}. Buffer lines into polygons or drop them."
            )
        geom = _make_valid(geom)
        if weight == "area_ha" and len(geom) and not geom.geom_type.isin(_VECTOR_TYPES[2:]).any():
            raise VectorError(
                f"weight='area_ha' needs polygons; the {len(geom)} events are "
                f"{sorted(set(geom.geom_type))}, which have no area. Use weight='count'."
            )
        pts = geom.representative_point()
        x, y = pts.x.to_numpy(), pts.y.to_numpy()
        w = np.ones_like(x) if weight == "count" else geom.area.to_numpy() / 1e4
        polys = geom[geom.geom_type.isin(["Polygon", "MultiPolygon"])]
        if weight == "area_ha" and len(polys):
            fine = cell_size_m / int(oversample)
            reach = bandwidth_m if kernel == "quartic" else 3.0 * bandwidth_m
            x0, y0, x1, y1 = polys.total_bounds if bounds is None else bounds
            if bounds is None:
                x0, y0, x1, y1 = (
                    x0 - reach - cell_size_m,
                    y0 - reach - cell_size_m,
                    x1 + reach + cell_size_m,
                    y1 + reach + cell_size_m,
                )
            x, y, w = _polygon_cells(polys, (x0, y0, x1, y1), fine)
    else:
        raise ParamsError(
            f"source must be a raster DataArray or a GeoDataFrame; got {type(source).__name__}"
        )

    k = _kernel(bandwidth_m, cell_size_m, kernel)
    r = k.shape[0] // 2
    if bounds is None:
        if len(x) == 0:
            raise ParamsError("no events and no 'bounds': cannot place an empty density grid")
        pad = (r + 0.5) * cell_size_m  # events of a single point sit on a cell centre
        bounds = (x.min() - pad, y.min() - pad, x.max() + pad, y.max() + pad)
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    if not (maxx > minx and maxy > miny):
        raise ParamsError(f"'bounds' must be (minx, miny, maxx, maxy) with max > min; got {bounds}")
    nx = max(1, int(np.ceil((maxx - minx) / cell_size_m)))
    ny = max(1, int(np.ceil((maxy - miny) / cell_size_m)))
    _check_size(
        float(nx) * ny, f"the density grid ({maxx - minx:.0f} x {maxy - miny:.0f} m)",
        "use a larger cell_size_m or tighter 'bounds'",
    )  # fmt: skip
    top = miny + ny * cell_size_m
    col = np.floor((x - minx) / cell_size_m).astype(int)
    row = np.floor((top - y) / cell_size_m).astype(int)
    ok = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    grid = np.zeros((ny, nx))
    np.add.at(grid, (row[ok], col[ok]), w[ok])
    smooth = fftconvolve(grid, k, mode="same") if len(x) else grid
    if smooth.size and smooth.max() > 0:  # FFT round-off leaves +-1e-17 where nothing is
        smooth[smooth < 1e-12 * smooth.max()] = 0.0
    cell_km2 = (cell_size_m / 1000.0) ** 2
    dens = smooth / cell_km2
    ys = top - (np.arange(ny) + 0.5) * cell_size_m
    xs = minx + (np.arange(nx) + 0.5) * cell_size_m
    out = xr.DataArray(dens, dims=("y", "x"), coords={"y": ys, "x": xs}, name="density")
    unit = "events per km²" if weight == "count" else "hectares per km²"
    out.attrs = {
        "units": unit,
        "bandwidth_m": float(bandwidth_m),
        "cell_size_m": float(cell_size_m),
        "kernel": kernel,
        "total": float(w.sum()),
        "total_in_grid": float(w[ok].sum()),
    }
    out = out.rio.write_crs(out_crs)
    return out.rio.write_transform(from_origin(minx, top, cell_size_m, cell_size_m))
