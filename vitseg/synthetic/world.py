"""The simulated land surface: real mine polygons, rivers, roads, towns and fields.

:func:`_make_worlds` builds one material map and one truth raster per season on a grid;
mining grows from each season to the next (new pit clusters along the rivers, some old
pits widened).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import VitsegError
from vitseg.synthetic.base import (
    _BARE,
    _BOX_GLR,
    _BUILT_EARTH,
    _FARM,
    _FOREST,
    _GRASS,
    _POND,
    _RIVER,
    _ROAD,
    _ROOF_CONCRETE,
    _ROOF_METAL,
    _ROOF_RUST,
    _SPOIL,
    _TURBID_RIVER,
    _WET_PIT,
    BOXES,
    _Grid,
    _rasterize,
    _rng,
    _smooth_noise,
)


# ----------------------------------------------------------------------------- world
def _load_mines(box: str) -> Any:
    """Load the real asm-map polygons of ``box`` (EPSG:4326)."""
    import geopandas as gpd
    import shapely

    from vitseg.io import data_path

    gdf = gpd.read_file(data_path("asm_ground_truth_ghana.geojson"))
    gdf = gdf[gdf["glr_id"] == _BOX_GLR[box]].copy()
    gdf["geometry"] = shapely.force_2d(gdf.geometry.values)
    return gdf.reset_index(drop=True)


def _line_across(rng: np.random.Generator, grid: _Grid, n_mid: int = 4) -> Any:
    """Draw a wobbly polyline from one side of the grid to the opposite side."""
    from shapely.geometry import LineString

    minx, miny, maxx, maxy = grid.bounds
    w, h = maxx - minx, maxy - miny
    if rng.random() < 0.5:
        ys = np.sort(rng.uniform(miny, maxy, 2))[:: int(rng.choice([-1, 1]))]
        pts = [(minx - 0.05 * w, ys[0]), (maxx + 0.05 * w, ys[1])]
    else:
        xs = rng.uniform(minx, maxx, 2)
        pts = [(xs[0], miny - 0.05 * h), (xs[1], maxy + 0.05 * h)]
    (ax, ay), (bx, by) = pts
    t = np.linspace(0, 1, n_mid + 2)
    jitter = rng.normal(0, 0.04 * max(w, h), n_mid + 2)
    jitter[[0, -1]] = 0
    nx, ny = -(by - ay), bx - ax
    norm = math.hypot(nx, ny) or 1.0
    xs2 = ax + t * (bx - ax) + jitter * nx / norm
    ys2 = ay + t * (by - ay) + jitter * ny / norm
    return LineString(np.column_stack([xs2, ys2]))


def _rivers(rng: np.random.Generator, grid: _Grid, mines: Any) -> tuple[Any, list[Any]]:
    """Route a main river through the mine clusters and tributaries to outlying mines."""
    from shapely.geometry import LineString

    minx, miny, maxx, maxy = grid.bounds
    extent = max(maxx - minx, maxy - miny)
    cents = np.array([(g.centroid.x, g.centroid.y) for g in mines.geometry]) if len(mines) else None
    if cents is None or len(cents) < 3:
        return _line_across(rng, grid), []
    mean = cents.mean(axis=0)
    cov = np.cov((cents - mean).T) + np.eye(2) * 1e-6
    _, vecs = np.linalg.eigh(cov)
    d, p = vecs[:, 1], vecs[:, 0]
    t, s = (cents - mean) @ d, (cents - mean) @ p
    corners = np.array([(minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy)]) - mean
    tc = corners @ d
    step = max(extent / 12.0, 30.0)
    tt = np.arange(tc.min() - step, tc.max() + 2 * step, step)
    ss = np.empty_like(tt)
    for i, ti in enumerate(tt):
        near = np.abs(t - ti) < 1.5 * step
        ss[i] = np.median(s[near]) if near.any() else np.nan
    valid = ~np.isnan(ss)
    ss = np.interp(tt, tt[valid], ss[valid])
    ss = np.convolve(np.pad(ss, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")
    phase = rng.uniform(0, 2 * math.pi)
    ss = ss + 0.01 * extent * np.sin(2 * math.pi * tt / (0.2 * extent) + phase)
    pts = mean + np.outer(tt, d) + np.outer(ss, p)
    main = LineString(pts)
    tribs: list[Any] = []
    for (cx, cy), g in zip(cents, mines.geometry, strict=True):
        if main.distance(g) < 0.015 * extent + 60:
            continue
        near = main.interpolate(main.project(g.centroid))
        vx, vy = cx - near.x, cy - near.y
        length = math.hypot(vx, vy) or 1.0
        ext = rng.uniform(0.4, 1.0) * length + 200.0
        far = (cx + vx / length * ext, cy + vy / length * ext)
        mid = (
            (cx + near.x) / 2 + rng.normal(0, 0.1 * length),
            (cy + near.y) / 2 + rng.normal(0, 0.1 * length),
        )
        trib = LineString([far, (cx, cy), mid, (near.x, near.y)])
        tribs.append(_meander(trib, rng, amp=min(60.0, 0.05 * trib.length), wavelength=700.0))
    return main, tribs


def _meander(line: Any, rng: np.random.Generator, amp: float, wavelength: float) -> Any:
    """Bend a polyline sideways (sine of random phase plus jitter), keeping its ends fixed."""
    from shapely.geometry import LineString

    n = max(int(line.length / (wavelength / 8.0)), 2)
    d = np.linspace(0.0, line.length, n + 1)
    pts = np.array([line.interpolate(v).coords[0] for v in d])
    tang = np.gradient(pts, axis=0)
    norm = np.hypot(tang[:, 0], tang[:, 1])[:, None]
    perp = np.column_stack([-tang[:, 1], tang[:, 0]]) / np.maximum(norm, 1e-9)
    off = amp * np.sin(2 * math.pi * d / wavelength + rng.uniform(0, 2 * math.pi))
    off += rng.normal(0, amp * 0.15, len(d))
    off *= np.sin(math.pi * d / max(line.length, 1e-9))  # taper to zero at both ends
    return LineString(pts + perp * off[:, None])


def _blob(rng: np.random.Generator, x: float, y: float, r: float, n: int = 20) -> Any:
    """Draw an irregular polygon of mean radius ``r`` around (x, y)."""
    from shapely.geometry import Polygon

    ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
    harm = rng.normal(0, 0.10, 3)
    ph = rng.uniform(0, 2 * math.pi, 3)
    rad = r * (1 + sum(harm[k] * np.cos((k + 2) * ang + ph[k]) for k in range(3)))
    rad = np.clip(rad, 0.4 * r, 1.8 * r)
    return Polygon(np.column_stack([x + rad * np.cos(ang), y + rad * np.sin(ang)]))


def _new_pits(
    rng: np.random.Generator, rivers: Sequence[Any], n: int, avoid: Any, *, scale: float = 1.0
) -> list[Any]:
    """``n`` clusters of pits (0.3-3 ha) within ~100 m of the rivers, outside ``avoid``."""
    from shapely.ops import unary_union

    pits: list[Any] = []
    lines = [ln for ln in rivers if ln.length > 0]
    if not lines:
        return pits
    weights = np.array([ln.length for ln in lines])
    weights /= weights.sum()
    tries = 0
    while len(pits) < n and tries < 20 * n + 20:
        tries += 1
        ln = lines[int(rng.choice(len(lines), p=weights))]
        pt = ln.interpolate(rng.uniform(0, ln.length))
        off = rng.normal(0, 50.0 * scale, 2)
        cx, cy = pt.x + off[0], pt.y + off[1]
        parts = [
            _blob(rng, cx + rng.normal(0, 35 * scale), cy + rng.normal(0, 35 * scale), r)
            for r in rng.uniform(18, 55, int(rng.integers(2, 6))) * scale
        ]
        pit = unary_union(parts)
        if avoid is not None and not avoid.is_empty:
            pit = pit.difference(avoid)
        if pit.area > 200 * scale * scale:
            pits.append(pit)
    return pits


class _World:
    """The simulated land surface of one box and season on one grid."""

    def __init__(self, grid: _Grid, mines: Any, built: Any, material: Any, truth: Any):
        self.grid = grid
        self.mines = mines  # GeoSeries (grid CRS)
        self.built = built  # GeoSeries (grid CRS)
        self.material = material  # uint8 (y, x)
        self.truth = truth  # uint8 (y, x)


def _make_worlds(
    grid: _Grid,
    mines_lonlat: Any,
    *,
    n_seasons: int,
    seed: int,
    key: str,
    inside: Any = None,
) -> list[_World]:
    """Build the land surface of each season (mining grows from season to season)."""
    import geopandas as gpd
    import shapely
    from scipy import ndimage
    from shapely.geometry import box as shp_box
    from shapely.ops import unary_union

    rng = _rng(seed, key, "world")
    h, w, res = grid.height, grid.width, grid.res
    minx, miny, maxx, maxy = grid.bounds
    extent = max(maxx - minx, maxy - miny)
    frame = shp_box(minx, miny, maxx, maxy)
    # Pits of simulated-only worlds (small fixtures) shrink with the grid, but not too much.
    scale = max(0.4, min(1.0, extent / 1500.0)) if mines_lonlat is None else 1.0

    if mines_lonlat is not None:
        mines0 = list(mines_lonlat.to_crs(grid.crs).geometry)
    else:
        mines0 = []
    seed_river, _ = _rivers(rng, grid, gpd.GeoDataFrame(geometry=[], crs=grid.crs))
    if mines0:
        main, tribs = _rivers(rng, grid, gpd.GeoDataFrame(geometry=mines0, crs=grid.crs))
    else:
        main, tribs = seed_river, []
        n0 = max(3, int(extent / 150))
        mines0 = _new_pits(rng, [main], n0, None, scale=scale)
    rivers = [main, *tribs]

    # Roads and settlements, kept away from the mines.
    # Settlement size and their distance to mines shrink for small windows, so that even a
    # 64-px fixture holds some built area.
    town_scale = min(1.0, extent / 4000.0)
    mine_union0 = unary_union(mines0).buffer(150 * town_scale)
    roads = [
        _meander(_line_across(rng, grid), rng, amp=0.01 * extent, wavelength=0.3 * extent)
        for _ in range(2 + int(extent / 8000))
    ]
    n_towns = max(1, round(extent * extent / 25e6 * 1.5))
    towns: list[Any] = []
    for _ in range(40 * n_towns):
        if len(towns) >= n_towns:
            break
        road = roads[int(rng.integers(len(roads)))]
        pt = road.interpolate(rng.uniform(0.05, 0.95) * road.length)
        r = float(rng.uniform(150, 450)) * town_scale
        town = _blob(rng, pt.x, pt.y, r, n=28).intersection(frame)
        if town.is_empty or town.area < 0.3 * math.pi * r * r * 0.3:
            continue
        if town.intersects(mine_union0) or any(town.distance(t) < 200 * town_scale for t in towns):
            continue
        towns.append(town)
    built = gpd.GeoSeries(towns, crs=grid.crs)

    # Background: forest / farmland / grass, with rectangular fields, some bare (fallow).
    veg = _smooth_noise(rng, (h, w), 900.0 / res)
    material = np.where(veg > 0.48, _FOREST, _FARM).astype(np.uint8)
    grass = _smooth_noise(rng, (h, w), 400.0 / res)
    material[(grass > 0.7) & (material == _FARM)] = _GRASS
    field_px = max(int(90.0 / res), 2)
    fh, fw = -(-h // field_px), -(-w // field_px)
    field_kind = rng.random((fh, fw))
    field_kind = np.repeat(np.repeat(field_kind, field_px, 0), field_px, 1)[:h, :w]
    bare_fields = (field_kind < 0.09) & (material != _FOREST)
    material[bare_fields] = _BARE
    material[(field_kind > 0.9) & (material == _FOREST)] = _FARM  # clearings
    material[_rasterize([r.buffer(5.0) for r in roads], grid, 1, all_touched=True) > 0] = _ROAD

    # Settlements: roofs in compacted earth with a few trees.
    town_mask = _rasterize(towns, grid, 1) > 0
    u = rng.random((h, w))
    roof_kind = rng.random((h, w))
    block = np.zeros((h, w), dtype=bool)
    cell = rng.random((-(-h // 2), -(-w // 2))) < 0.55
    block[:] = np.repeat(np.repeat(cell, 2, 0), 2, 1)[:h, :w]
    tm = town_mask
    material[tm] = _BUILT_EARTH
    material[tm & (u < 0.12)] = _FARM
    roofs = tm & block & (u >= 0.12)
    material[roofs & (roof_kind < 0.45)] = _ROOF_METAL
    material[roofs & (roof_kind >= 0.45) & (roof_kind < 0.8)] = _ROOF_RUST
    material[roofs & (roof_kind >= 0.8)] = _ROOF_CONCRETE

    base_material = material.copy()
    pond_noise = _smooth_noise(rng, (h, w), 60.0 / res)
    pit_noise = rng.random((h, w))
    river_main = _rasterize([main.buffer(15.0)], grid, 1, all_touched=True) > 0
    river_trib = _rasterize([t.buffer(6.0) for t in tribs], grid, 1, all_touched=True) > 0
    river_mask = river_main | river_trib

    worlds: list[_World] = []
    mines = list(mines0)
    for season in range(n_seasons):
        if season > 0:
            grow = _rng(seed, key, "growth", season)
            avoid = unary_union(towns).buffer(100) if towns else None
            # About a quarter more mined area per season (inside the grid): new pit clusters
            # along the rivers crossing the grid, and some old pits widened.
            total = sum(g.intersection(frame).area for g in mines)
            n_new = max(2, int(0.25 * total / (2e4 * scale * scale)))
            mines = [
                g.buffer(float(grow.uniform(10, 30)) * scale) if grow.random() < 0.4 else g
                for g in mines
            ]
            if avoid is not None:
                mines = [g.difference(avoid) for g in mines]
            local = [
                part
                for r in rivers
                for part in shapely.get_parts(r.intersection(frame.buffer(-20 * scale)))
                if part.geom_type == "LineString" and part.length > 0
            ]
            mines += _new_pits(grow, local or rivers, n_new, avoid, scale=scale)
        mine_series = gpd.GeoSeries(mines, crs=grid.crs).intersection(frame)
        mine_series = mine_series[~mine_series.is_empty]
        mine_mask = _rasterize(mine_series, grid, 1) > 0
        mat = base_material.copy()
        dist = ndimage.distance_transform_edt(~mine_mask) * res if mine_mask.any() else None
        mat[river_mask] = _RIVER
        if dist is not None:
            mat[river_mask & (dist < 2500.0)] = _TURBID_RIVER
        near_river = ndimage.binary_dilation(river_mask, iterations=max(int(80 / res), 1))
        pond = mine_mask & ((pond_noise > 0.62) | (near_river & (pond_noise > 0.45)))
        mat[mine_mask] = _SPOIL
        mat[mine_mask & (pit_noise < 0.15)] = _WET_PIT
        mat[mine_mask & (pit_noise > 0.93)] = _FARM  # remnant vegetation in the pits
        mat[pond] = _POND
        mat[mine_mask & river_mask] = _TURBID_RIVER
        truth = np.full((h, w), 2, dtype=np.uint8)
        truth[town_mask] = 1
        truth[mine_mask] = 0
        if inside is not None:
            truth[~inside] = IGNORE_INDEX
        worlds.append(_World(grid, mine_series, built, mat, truth))
    return worlds


def _mines_for(box: str) -> Any:
    if box not in BOXES:
        raise VitsegError(
            f"unknown box {box!r}; expected one of {sorted(BOXES)} (the asm-map boxes in Ghana)"
        )
    return _load_mines(box)
