"""Square grids over an area of interest, and the cells that hold labelled polygons.

VitSegh24 (§3.2) lays a regular grid over Ghana and keeps only the cells that intersect
mining polygons; those cells define where imagery is fetched and tiled. This module does
that in a metric CRS chosen explicitly (Ghana straddles UTM zones 30N and 31N).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vitseg.errors import CRSMismatchError, MissingCRSError, VectorError, VitsegError

__all__ = ["make_grid", "select_cells", "utm_crs_for"]


def utm_crs_for(bounds: Any) -> str:
    """Return the WGS 84 / UTM CRS of the zone holding the centre of lon/lat ``bounds``.

    The zone comes from :meth:`geopandas.GeoSeries.estimate_utm_crs` (as in
    :mod:`vitseg.density`).

    Parameters
    ----------
    bounds
        ``(west, south, east, north)`` in degrees, or a GeoDataFrame/GeoSeries (its total
        bounds in EPSG:4326 are used).

    Returns
    -------
    str
        ``"EPSG:326zz"`` (north) or ``"EPSG:327zz"`` (south).

    Raises
    ------
    MissingCRSError
        A GeoDataFrame without a CRS.
    VitsegError
        Bounds outside longitude -180..180 / latitude -90..90, or a centre outside UTM's
        latitudes (80S-84N).

    Examples
    --------
    >>> utm_crs_for((-1.82, 6.14, -1.69, 6.27))   # Obuasi: zone 30N
    'EPSG:32630'
    >>> utm_crs_for((0.5, 9.0, 0.6, 9.1))         # eastern Ghana: zone 31N
    'EPSG:32631'
    """
    if hasattr(bounds, "total_bounds"):
        if bounds.crs is None:
            raise MissingCRSError(
                "the AOI has no CRS; set it with gdf.set_crs('EPSG:4326') (or its real CRS)"
            )
        bounds = tuple(bounds.to_crs("EPSG:4326").total_bounds)
    west, south, east, north = (float(v) for v in bounds)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise VitsegError(
            f"bounds must be (west, south, east, north) in degrees; got {tuple(bounds)}"
        )
    import geopandas as gpd
    from shapely.geometry import box

    try:  # geopandas asks PROJ's database for the zone holding the box's centre
        crs = gpd.GeoSeries([box(west, south, east, north)], crs="EPSG:4326").estimate_utm_crs()
    except RuntimeError as exc:  # no UTM zone there (beyond 84N / 80S)
        raise VitsegError(
            f"no WGS 84 / UTM zone holds the centre of {tuple(bounds)}; UTM covers latitudes "
            "80S-84N: pass a projected crs for polar AOIs"
        ) from exc
    return f"EPSG:{crs.to_epsg()}"


def _check_metric(crs: Any) -> Any:
    from pyproj import CRS

    if crs is None:
        raise MissingCRSError("make_grid needs crs=..., a metric CRS such as 'EPSG:32630'")
    try:
        out = CRS.from_user_input(crs)
    except Exception as exc:
        raise MissingCRSError(f"crs {crs!r} is not a valid CRS; pass e.g. 'EPSG:32630'") from exc
    if out.is_geographic:
        raise CRSMismatchError(
            f"crs {crs!r} is geographic (degrees); square cells need a metric CRS. "
            "Use a UTM zone, e.g. vitseg.grid.utm_crs_for(aoi) -> 'EPSG:32630' for Ghana west "
            "of 0° E."
        )
    unit = out.axis_info[0].unit_name if out.axis_info else "metre"
    if unit not in ("metre", "meter", "m"):
        raise CRSMismatchError(f"crs {crs!r} has axis unit {unit!r}; expected metres")
    return out


def make_grid(aoi: Any, cell_size_m: float, *, crs: Any, clip: bool = False) -> Any:
    """Cover an AOI with square cells of ``cell_size_m`` in a metric CRS.

    Cells are aligned to multiples of ``cell_size_m`` in ``crs`` (so grids of neighbouring
    AOIs line up) and only cells that intersect the AOI are kept.

    Parameters
    ----------
    aoi
        GeoDataFrame or GeoSeries with a CRS (any CRS; it is reprojected to ``crs``).
    cell_size_m
        Cell side in metres (> 0).
    crs
        Metric CRS of the grid, e.g. ``"EPSG:32630"`` (see :func:`utm_crs_for`).
    clip
        Clip the cells to the AOI outline (default: keep full squares).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cell in ``crs`` with columns ``cell_id`` (``"r{row}_c{col}"``, row 0 at
        the north), ``row``, ``col``, ``geometry``.

    Raises
    ------
    MissingCRSError
        ``aoi`` has no CRS, or ``crs`` is missing/invalid.
    CRSMismatchError
        ``crs`` is geographic (degrees).
    VectorError
        ``aoi`` is empty or ``cell_size_m`` is not positive.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> aoi = gpd.GeoDataFrame(geometry=[box(0, 0, 2500, 1000)], crs="EPSG:32630")
    >>> len(make_grid(aoi, 1000, crs="EPSG:32630"))   # 3 columns x 1 row
    3
    """
    import geopandas as gpd

    target = _check_metric(crs)
    if not cell_size_m or cell_size_m <= 0 or not math.isfinite(cell_size_m):
        raise VectorError(f"cell_size_m must be a positive number of metres; got {cell_size_m!r}")
    if getattr(aoi, "crs", None) is None:
        raise MissingCRSError(
            "the AOI has no CRS; set it with aoi.set_crs('EPSG:4326') (or its real CRS)"
        )
    geoms = aoi.to_crs(target).geometry if hasattr(aoi, "geometry") else aoi.to_crs(target)
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    if len(geoms) == 0:
        raise VectorError("the AOI has no geometry; pass a GeoDataFrame with polygons")
    union = geoms.union_all()
    minx, miny, maxx, maxy = union.bounds
    s = float(cell_size_m)
    c0, c1 = math.floor(minx / s), math.ceil(maxx / s)
    r0, r1 = math.floor(miny / s), math.ceil(maxy / s)
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    import shapely

    xs = np.arange(c0, c1) * s
    ys = np.arange(r1 - 1, r0 - 1, -1) * s  # north first
    xx, yy = np.meshgrid(xs, ys)
    cells = shapely.box(xx.ravel(), yy.ravel(), xx.ravel() + s, yy.ravel() + s)
    rows = np.repeat(np.arange(len(ys)), len(xs))
    cols = np.tile(np.arange(len(xs)), len(ys))
    shapely.prepare(union)
    # Interiors must meet: cells that only touch the AOI's edge are not kept.
    keep = shapely.intersects(union, cells) & ~shapely.touches(union, cells)
    grid = gpd.GeoDataFrame(
        {"row": rows[keep], "col": cols[keep]}, geometry=cells[keep], crs=target
    )
    if clip:
        grid["geometry"] = grid.geometry.intersection(union)
    grid.insert(0, "cell_id", [f"r{r}_c{c}" for r, c in zip(grid["row"], grid["col"], strict=True)])
    return grid.reset_index(drop=True)


def select_cells(grid: Any, labels: Any, *, min_area_m2: float = 0.0) -> Any:
    """Keep the grid cells that intersect label polygons, with the labelled area per cell.

    Parameters
    ----------
    grid
        Output of :func:`make_grid` (metric CRS).
    labels
        GeoDataFrame/GeoSeries of label polygons with a CRS (reprojected to the grid's).
        Overlapping polygons are dissolved first, so no area is counted twice.
    min_area_m2
        Drop cells with less labelled area than this.

    Returns
    -------
    geopandas.GeoDataFrame
        The selected cells (same columns as ``grid``) plus ``n_polygons`` (label polygons
        touching the cell's interior), ``label_area_m2`` and ``label_frac`` (area / cell
        area), in the grid's CRS.

    Raises
    ------
    MissingCRSError
        ``grid`` or ``labels`` has no CRS.
    VectorError
        ``labels`` is empty.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> aoi = gpd.GeoDataFrame(geometry=[box(0, 0, 3000, 1000)], crs="EPSG:32630")
    >>> grid = make_grid(aoi, 1000, crs="EPSG:32630")
    >>> labels = gpd.GeoDataFrame(geometry=[box(900, 0, 1100, 100)], crs="EPSG:32630")
    >>> select_cells(grid, labels)[["cell_id", "label_area_m2"]].values.tolist()
    [['r0_c0', 10000.0], ['r0_c1', 10000.0]]
    """
    import geopandas as gpd

    if getattr(grid, "crs", None) is None:
        raise MissingCRSError("the grid has no CRS; build it with vitseg.grid.make_grid")
    if getattr(labels, "crs", None) is None:
        raise MissingCRSError(
            "the label polygons have no CRS; set it with labels.set_crs('EPSG:4326')"
        )
    geoms = labels.to_crs(grid.crs).geometry if hasattr(labels, "geometry") else labels
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    if len(geoms) == 0:
        raise VectorError("no label polygons to select cells with")
    dissolved = gpd.GeoDataFrame(geometry=[geoms.union_all()], crs=grid.crs)
    polys = gpd.GeoDataFrame(geometry=list(geoms), crs=grid.crs)
    pairs = gpd.sjoin(grid[["geometry"]], polys, predicate="intersects", how="inner")
    counts = pairs.groupby(level=0).size()
    out = grid.loc[sorted(set(pairs.index))].copy()  # candidates only: cheap on big grids
    if out.empty:
        return out.assign(n_polygons=0, label_area_m2=0.0, label_frac=0.0).reset_index(drop=True)
    inter = gpd.overlay(
        out[["cell_id", "geometry"]], dissolved, how="intersection", keep_geom_type=True
    )
    area = inter.assign(a=inter.area).groupby("cell_id")["a"].sum()
    out["n_polygons"] = counts.reindex(out.index).fillna(0).astype(int).to_numpy()
    out["label_area_m2"] = out["cell_id"].map(area).fillna(0.0).astype(float)
    out["label_frac"] = out["label_area_m2"] / out.area
    keep = (out["label_area_m2"] > 0) & (out["label_area_m2"] >= min_area_m2)
    return out[keep].reset_index(drop=True)
