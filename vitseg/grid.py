"""Square grids over an area of interest, and the cells that hold labelled polygons.

VitSegh24 (§3.2) lays a regular grid over Ghana and keeps only the cells that intersect
mining polygons; those cells define where imagery is fetched and tiled. This module does
that in a metric CRS chosen explicitly (Ghana straddles UTM zones 30N and 31N).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vitseg.errors import (
    CRSMismatchError,
    MissingCRSError,
    ParamsError,
    VectorError,
    VitsegError,
)

__all__ = ["make_grid", "select_cells", "utm_crs_for"]

#: Most cells :func:`make_grid` builds (beyond this the boxes alone need gigabytes).
MAX_CELLS = 10_000_000
_POLYGONAL = ("Polygon", "MultiPolygon")


def _is_real(value: Any) -> bool:
    """Tell whether ``value`` is an int/float/numpy number (not a bool, str or else)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _polygons(geoms: Any, what: str) -> Any:
    """Non-empty geometries of ``geoms`` (a GeoSeries), repaired; refuses non-polygons."""
    geoms = geoms[~(geoms.isna() | geoms.is_empty)]
    bad = ~geoms.geom_type.isin(_POLYGONAL)
    if bad.any():
        types = sorted(set(geoms.geom_type[bad]))
        raise VectorError(
            f"{what} must hold polygons; {int(bad.sum())} of {len(geoms)} geometries are "
            f"{types}. Buffer points or lines into polygons (gdf.buffer(metres)) or drop them."
        )
    if not np.isfinite(geoms.bounds.to_numpy()).all():
        raise VectorError(
            f"found NaN or infinite coordinates in {what} (after reprojection); check the layer's "
            "CRS (lon/lat tagged as UTM, or the reverse) and its geometries"
        )
    return _make_valid(geoms)


def _make_valid(geoms: Any) -> Any:
    """Repair invalid geometries, keeping only the polygonal parts of repaired polygons."""
    import shapely

    invalid = ~geoms.is_valid
    if not invalid.any():
        return geoms
    fixed = []  # a self-intersecting ring has a wrong area and unreliable predicates
    for old, new in zip(geoms[invalid], shapely.make_valid(geoms[invalid].to_numpy()), strict=True):
        if old.geom_type in _POLYGONAL and new.geom_type == "GeometryCollection":
            parts = [p for p in shapely.get_parts(new) if p.geom_type in _POLYGONAL]
            new = shapely.union_all(parts) if parts else old  # drop slivers' lines and points
        fixed.append(new)
    values = geoms.to_numpy()
    values[invalid.to_numpy()] = fixed
    return geoms.__class__(values, index=geoms.index, crs=geoms.crs, name=geoms.name)


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
    VectorError
        A GeoDataFrame without any geometry.
    ParamsError
        ``bounds`` that are not four numbers.
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
        geoms = bounds.geometry if hasattr(bounds, "geometry") else bounds
        if bool((geoms.isna() | geoms.is_empty).all()):
            raise VectorError(
                f"the AOI has no geometry ({len(geoms)} features, all empty); pass a layer "
                "with polygons"
            )
        bounds = tuple(bounds.to_crs("EPSG:4326").total_bounds)
    try:
        values = [float(v) for v in bounds]
        if len(values) != 4 or any(isinstance(v, (str, bytes)) for v in bounds):
            raise TypeError
    except (TypeError, ValueError) as exc:
        raise ParamsError(
            f"bounds must be four numbers (west, south, east, north) in degrees, or a "
            f"GeoDataFrame; got {bounds!r}"
        ) from exc
    west, south, east, north = values
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


def _check_metric(
    crs: Any,
    what: str = "make_grid needs crs=...",
    why: str = "square cells need a metric CRS. Use a UTM zone, e.g. "
    "vitseg.grid.utm_crs_for(aoi) -> 'EPSG:32630' for Ghana west of 0° E.",
) -> Any:
    from pyproj import CRS

    if crs is None:
        raise MissingCRSError(f"{what}, a metric CRS such as 'EPSG:32630'")
    try:
        out = CRS.from_user_input(crs)
    except Exception as exc:
        raise MissingCRSError(f"crs {crs!r} is not a valid CRS; pass e.g. 'EPSG:32630'") from exc
    if not isinstance(crs, (str, int)):
        crs = out.to_string()  # a CRS object's repr spans many lines
    if out.is_geographic:
        raise CRSMismatchError(f"crs {crs!r} is geographic (degrees); {why}")
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
        ``crs`` is geographic (degrees) or not in metres.
    VectorError
        ``aoi`` is not a GeoDataFrame/GeoSeries, is empty or holds points or lines;
        ``cell_size_m`` is not a finite positive number, or would make more than
        :data:`MAX_CELLS` cells.

    Notes
    -----
    Invalid (self-intersecting) AOI polygons are repaired with ``make_valid`` first.

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
    if not _is_real(cell_size_m) or not math.isfinite(cell_size_m) or cell_size_m <= 0:
        raise VectorError(f"cell_size_m must be a positive number of metres; got {cell_size_m!r}")
    if not isinstance(aoi, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise VectorError(
            f"aoi must be a GeoDataFrame or GeoSeries; got {type(aoi).__name__}. Wrap shapes "
            "with gpd.GeoDataFrame(geometry=[...], crs='EPSG:4326')."
        )
    if aoi.crs is None:
        raise MissingCRSError(
            "the AOI has no CRS; set it with aoi.set_crs('EPSG:4326') (or its real CRS)"
        )
    geoms = aoi.to_crs(target).geometry
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    if len(geoms) == 0:
        raise VectorError("the AOI has no geometry; pass a GeoDataFrame with polygons")
    union = _polygons(geoms, "the AOI").union_all()
    minx, miny, maxx, maxy = union.bounds
    s = float(cell_size_m)
    c0, c1 = math.floor(minx / s), math.ceil(maxx / s)
    r0, r1 = math.floor(miny / s), math.ceil(maxy / s)
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    if (c1 - c0) * (r1 - r0) > MAX_CELLS:
        raise VectorError(
            f"cell_size_m={cell_size_m!r} over an AOI of {maxx - minx:.0f} x {maxy - miny:.0f} m "
            f"would make {(c1 - c0) * (r1 - r0):,} cells (at most {MAX_CELLS:,}); use a larger "
            "cell_size_m or a smaller AOI"
        )
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
    CRSMismatchError
        ``grid`` is not in a metric CRS (areas would be in square degrees).
    VectorError
        ``grid`` is not a :func:`make_grid` layer; ``labels`` is empty or holds points or
        lines.
    ParamsError
        ``min_area_m2`` is not a finite number >= 0.

    Notes
    -----
    Invalid (self-intersecting) label polygons are repaired with ``make_valid`` first.

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

    if not isinstance(grid, gpd.GeoDataFrame) or "cell_id" not in grid.columns:
        got = list(grid.columns) if isinstance(grid, gpd.GeoDataFrame) else type(grid).__name__
        raise VectorError(
            f"grid must be a GeoDataFrame with a 'cell_id' column, as made by "
            f"vitseg.grid.make_grid; got {got}"
        )
    if grid.crs is None:
        raise MissingCRSError("the grid has no CRS; build it with vitseg.grid.make_grid")
    _check_metric(
        grid.crs,
        "select_cells needs a grid in a metric CRS",
        "label areas would be in square degrees. Build the grid with vitseg.grid.make_grid.",
    )
    if not isinstance(labels, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise VectorError(
            f"labels must be a GeoDataFrame or GeoSeries; got {type(labels).__name__}"
        )
    if labels.crs is None:
        raise MissingCRSError(
            "the label polygons have no CRS; set it with labels.set_crs('EPSG:4326')"
        )
    if not _is_real(min_area_m2) or not math.isfinite(min_area_m2) or min_area_m2 < 0:
        raise ParamsError(
            f"min_area_m2 must be a finite number of square metres >= 0 (0 keeps every "
            f"labelled cell); got {min_area_m2!r}"
        )
    geoms = labels.to_crs(grid.crs).geometry
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    if len(geoms) == 0:
        raise VectorError("no label polygons to select cells with")
    geoms = _polygons(geoms, "labels")
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
