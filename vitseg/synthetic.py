"""Simulated Sentinel-2 L2A scenes and a local static STAC catalog (the offline demo).

No real Sentinel-2 imagery of Ghana's mining areas can be downloaded offline, so the demo
and the tests run the real code path on *simulated* scenes written here. The vector side
is real: the mining class of each box is the 135 hand-drawn artisanal-mine polygons of the
asm-map project (``vitseg/data/asm_ground_truth_ghana.geojson``); everything else
(rivers, roads, settlements, fields, clouds) is simulated around them.

What is written (:func:`write_catalog`)
---------------------------------------
``root/catalog.json`` -> ``root/sentinel-2-l2a/collection.json`` -> one item per box and
date, ``root/sentinel-2-l2a/<id>/<id>.json``, with Earth Search v1 asset keys (``blue``,
``green``, ``red``, ``rededge1..3``, ``nir``, ``nir08``, ``swir16``, ``swir22``, ``scl``),
``eo:bands`` (``name`` = ``B02``...), ``raster:bands`` (scale 1e-4, offset -0.1 from
processing baseline 04.00 and 0 before, nodata 0, uint16), ``proj:epsg`` *and*
``proj:code``, ``proj:transform``/``proj:shape`` per asset, ``s2:processing_baseline``,
``eo:cloud_cover``, MGRS properties. 10 m bands are written at 10 m and 20 m bands (and SCL)
at 20 m, as uint16 (SCL uint8) COGs. Asset hrefs are absolute local paths, so stackstac and
rasterio open them directly. Also ``root/items.json`` (an ItemCollection of all items),
``root/truth/<box>_<season>.tif`` (uint8 class codes on the box's 10 m grid: 0 mines,
1 built, 2 vegetation/other, 255 outside the box) and ``root/labels/<box>_<season>.gpkg``
(polygons, column ``class`` in {"mines", "built"}).

How the scenes are hard in the right way
----------------------------------------
* Mines are the real polygons filled with bare spoil, wet pits and turbid ponds; rivers and
  their tributaries are routed *through* the mine clusters, so pits string along streams.
  In each later season new pits appear along the rivers and some old pits widen.
* Built areas are compact simulated settlements on simulated roads: small roofs (metal,
  rusty metal, concrete) in bare compacted earth with some trees.
* Bare soil and fallow fields are rectangular plots in the farmland and laterite roads.
  Spoil, compacted earth and bare laterite are given overlapping spectra, and every soil-like
  pixel is mixed with a random sub-pixel vegetation fraction, so a per-pixel classifier
  confuses mines, built areas and bare fields; only spatial context (ponds and pits
  strung along rivers vs. roofs in a compact block on a road vs. a rectangular field)
  separates them.
* Each date has its own clouds (soft edges), their shadows (offset by a sun-geometry
  displacement), haze (a smooth additive path-radiance field strongest in the blue),
  a per-band gain/offset change, sensor noise and sometimes a partial-swath no-data edge.
* SCL is consistent with clouds, shadows and water, with realistic errors: thin cloud
  edges missed, some turbid ponds (and a few bright roofs) flagged as cloud, as Gallwey et
  al. report for turbid mining ponds, and a sprinkle of "unclassified".

Class spectra (surface reflectance, bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12)
--------------------------------------------------------------------------------------
Values are typical numbers, rounded, chosen by us from the shapes of published library
spectra resampled to Sentinel-2 bands and from commonly reported Sentinel-2 L2A
reflectances of West African land covers:

* tropical moist forest: red about 0.02-0.03, steep red edge, NIR about 0.30, SWIR1 about
  0.15 (green-vegetation spectra of the USGS Spectral Library v7, Kokaly et al. 2017).
* farmland / bush fallow and dry-season grass: brighter red, lower NIR, higher SWIR
  (dry grass and mixed cropland spectra, USGS v7).
* bare lateritic soil (red, iron-rich; fields, roads, mine spoil, compacted earth):
  reflectance rising from about 0.08 in the blue to about 0.3 in SWIR1 with the iron
  absorption making B02/B03 low relative to B04 (ECOSTRESS / ASTER spectral library soil
  spectra, Baldridge et al. 2009, Meerdink et al. 2019). Spoil, fallow and built earth
  differ by only a few hundredths, less than their within-class spread.
* sediment-laden (turbid) water of mining ponds and polluted rivers: bright in green and
  red (about 0.10-0.15), falling through the red edge, near zero in SWIR; clear water is
  dark in every band (about 0.04 in the blue, < 0.01 in SWIR) (USGS v7 water spectra; the
  turbid-pond brightness follows the ponds described by Gallwey et al.).
* roofs: galvanised metal roughly flat 0.15-0.25; rusty metal laterite-like; concrete flat
  and bright (ECOSTRESS/ASTER man-made material spectra).
* thick cloud: flat 0.4-0.5 in the visible and NIR, lower in SWIR (ice/water droplets).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from vitseg.constants import IGNORE_INDEX, S2_BANDS_10, S2_BANDS_20M
from vitseg.errors import MissingCRSError, VitsegError

__all__ = [
    "BOXES",
    "SPECTRA",
    "SYNTHETIC_VERSION",
    "load_truth",
    "make_cube",
    "make_scene",
    "season_dates",
    "write_catalog",
]

#: Bump when the generator changes so cached catalogs are rebuilt.
SYNTHETIC_VERSION: Final[int] = 4

#: Lon/lat bounds (west, south, east, north) of the two hand-labelled boxes of the asm-map
#: ground truth in Ghana (glr_id 260979 near Obuasi, 274213 near Kibi), rounded outward to
#: the polygons' extent.
BOXES: Final[dict[str, tuple[float, float, float, float]]] = {
    "obuasi": (-1.8225, 6.1400, -1.6900, 6.2725),
    "kibi": (-0.6275, 6.1400, -0.4950, 6.2725),
}
_BOX_GLR: Final[dict[str, int]] = {"obuasi": 260979, "kibi": 274213}

# Materials (internal codes of the simulated land surface).
_FOREST, _FARM, _GRASS, _BARE, _ROAD = 0, 1, 2, 3, 4
_RIVER, _TURBID_RIVER, _SPOIL, _POND, _WET_PIT = 5, 6, 7, 8, 9
_ROOF_METAL, _ROOF_RUST, _ROOF_CONCRETE, _BUILT_EARTH = 10, 11, 12, 13

#: Surface reflectance of each simulated material, bands in :data:`S2_BANDS_10` order
#: (see the module docstring for sources).
SPECTRA: Final[dict[str, tuple[float, ...]]] = {
    "forest": (0.020, 0.045, 0.025, 0.075, 0.230, 0.290, 0.310, 0.320, 0.150, 0.065),
    "farmland": (0.035, 0.065, 0.055, 0.105, 0.215, 0.255, 0.275, 0.285, 0.205, 0.115),
    "grass": (0.050, 0.080, 0.090, 0.130, 0.195, 0.225, 0.245, 0.255, 0.285, 0.185),
    "bare_soil": (0.085, 0.125, 0.185, 0.225, 0.250, 0.265, 0.280, 0.290, 0.340, 0.270),
    "road": (0.090, 0.130, 0.190, 0.225, 0.245, 0.260, 0.270, 0.280, 0.330, 0.265),
    "river": (0.040, 0.050, 0.035, 0.030, 0.020, 0.018, 0.015, 0.013, 0.006, 0.004),
    "turbid_river": (0.070, 0.110, 0.125, 0.115, 0.085, 0.075, 0.065, 0.058, 0.020, 0.012),
    "mine_spoil": (0.095, 0.135, 0.180, 0.210, 0.235, 0.250, 0.262, 0.272, 0.315, 0.255),
    "mine_pond": (0.085, 0.130, 0.150, 0.140, 0.105, 0.090, 0.080, 0.070, 0.028, 0.016),
    "wet_pit": (0.060, 0.085, 0.105, 0.120, 0.135, 0.145, 0.150, 0.155, 0.150, 0.110),
    "roof_metal": (0.150, 0.165, 0.175, 0.185, 0.195, 0.200, 0.205, 0.208, 0.225, 0.200),
    "roof_rust": (0.080, 0.110, 0.170, 0.205, 0.225, 0.235, 0.245, 0.252, 0.300, 0.255),
    "roof_concrete": (0.130, 0.150, 0.170, 0.185, 0.200, 0.210, 0.220, 0.228, 0.290, 0.245),
    "built_earth": (0.090, 0.130, 0.180, 0.215, 0.240, 0.255, 0.268, 0.278, 0.325, 0.262),
}
_MATERIAL_NAMES: Final[tuple[str, ...]] = (
    "forest", "farmland", "grass", "bare_soil", "road", "river", "turbid_river",
    "mine_spoil", "mine_pond", "wet_pit", "roof_metal", "roof_rust", "roof_concrete",
    "built_earth",
)  # fmt: skip
_SPEC: Final[NDArray[np.float32]] = np.array(
    [SPECTRA[n] for n in _MATERIAL_NAMES], dtype=np.float32
)  # (material, band)
_CLOUD: Final[NDArray[np.float32]] = np.array(
    [0.46, 0.46, 0.47, 0.47, 0.48, 0.48, 0.48, 0.48, 0.36, 0.25], dtype=np.float32
)
# Additive path radiance of haze (strongest at short wavelengths).
_HAZE: Final[NDArray[np.float32]] = np.array(
    [0.070, 0.055, 0.045, 0.038, 0.032, 0.028, 0.024, 0.023, 0.010, 0.005], dtype=np.float32
)
_BANDS_10M_IDX: Final[tuple[int, ...]] = tuple(
    i for i, b in enumerate(S2_BANDS_10) if b not in S2_BANDS_20M
)
_SOILLIKE: Final[tuple[int, ...]] = (_BARE, _ROAD, _SPOIL, _WET_PIT, _BUILT_EARTH, _ROOF_RUST)
_WATER: Final[tuple[int, ...]] = (_RIVER, _TURBID_RIVER, _POND)
_VEG: Final[tuple[int, ...]] = (_FOREST, _FARM, _GRASS)

#: Earth Search v1 asset key, common name, centre wavelength and FWHM (micrometres) of each band.
_EARTH_SEARCH: Final[dict[str, tuple[str, str, float, float, str]]] = {
    "B02": ("blue", "blue", 0.490, 0.098, "Blue - 10m"),
    "B03": ("green", "green", 0.560, 0.045, "Green - 10m"),
    "B04": ("red", "red", 0.665, 0.038, "Red - 10m"),
    "B05": ("rededge1", "rededge", 0.704, 0.019, "Red Edge 1 - 20m"),
    "B06": ("rededge2", "rededge", 0.740, 0.018, "Red Edge 2 - 20m"),
    "B07": ("rededge3", "rededge", 0.783, 0.028, "Red Edge 3 - 20m"),
    "B08": ("nir", "nir", 0.842, 0.145, "NIR 1 - 10m"),
    "B8A": ("nir08", "nir08", 0.865, 0.033, "NIR 2 - 20m"),
    "B11": ("swir16", "swir16", 1.610, 0.143, "SWIR 1.6μm - 20m"),
    "B12": ("swir22", "swir22", 2.190, 0.242, "SWIR 2.2μm - 20m"),
}
_COG_TYPE: Final[str] = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Processing baseline 04.00 (from 2022-01-25) added a +1000 DN offset to L2A reflectance.
_BASELINE_04_DATE: Final[_dt.date] = _dt.date(2022, 1, 25)


# ----------------------------------------------------------------------------- helpers
def _rng(seed: int, *keys: str | float) -> np.random.Generator:
    """Return a generator seeded from ``seed`` and stable hashes of ``keys`` (not ``hash()``)."""
    parts = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        parts.append(zlib.crc32(str(key).encode()) & 0xFFFFFFFF)
    return np.random.default_rng(parts)


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float
) -> NDArray[np.float32]:
    """Spatially correlated noise in [0, 1] with features about ``scale_px`` pixels wide.

    Drawn on a coarse grid and upsampled bilinearly with two small matrix products, so it
    costs little even at 1500 x 1500; fine scales blur white noise directly.
    """
    from scipy import ndimage

    h, w = shape
    step = max(scale_px / 2.0, 1.0)
    if step < 4.0:
        white = rng.standard_normal((h, w), dtype=np.float32)
        out = ndimage.gaussian_filter(white, max(scale_px / 3.0, 0.5), mode="reflect")
    else:
        ch, cw = max(math.ceil(h / step) + 3, 4), max(math.ceil(w / step) + 3, 4)
        coarse = rng.standard_normal((ch, cw)).astype(np.float32)
        coarse = ndimage.gaussian_filter(coarse, 0.8, mode="wrap")
        out = _interp_matrix(h, ch) @ coarse @ _interp_matrix(w, cw).T
    lo, hi = float(out.min()), float(out.max())
    res: NDArray[np.float32] = ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    return res


def _interp_matrix(n: int, m: int) -> NDArray[np.float32]:
    """Return the (n, m) matrix of linear interpolation from m coarse to n fine samples."""
    pos = np.linspace(1, m - 2, n)
    i0 = np.floor(pos).astype(int)
    frac = (pos - i0).astype(np.float32)
    mat = np.zeros((n, m), dtype=np.float32)
    mat[np.arange(n), i0] = 1 - frac
    mat[np.arange(n), np.minimum(i0 + 1, m - 1)] += frac
    return mat


def _is_geographic(crs: Any) -> bool:
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).is_geographic)


def _epsg(crs: Any) -> int:
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise VitsegError(f"crs {crs!r} has no EPSG code; pass e.g. 'EPSG:32630'")
    return int(code)


class _Grid:
    """A north-up raster grid: origin (upper-left), pixel size, shape, CRS."""

    def __init__(self, x0: float, y0: float, res: float, height: int, width: int, crs: str):
        self.x0, self.y0, self.res = x0, y0, res
        self.height, self.width, self.crs = height, width, crs

    @property
    def transform(self) -> Any:
        from affine import Affine

        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (
            self.x0,
            self.y0 - self.height * self.res,
            self.x0 + self.width * self.res,
            self.y0,
        )

    def coords(self) -> tuple[Any, Any]:
        ys = self.y0 - (np.arange(self.height) + 0.5) * self.res
        xs = self.x0 + (np.arange(self.width) + 0.5) * self.res
        return ys, xs

    def key(self) -> list[float]:
        return [self.x0, self.y0, self.res, self.height, self.width]


def _box_grid(box: str, crs: str, size_px: int | None, mines_lonlat: Any) -> _Grid:
    """Return the box's 10 m grid (origin snapped to 20 m so 20 m bands align), or a window of it."""
    import geopandas as gpd
    from shapely.geometry import box as shp_box

    poly = gpd.GeoSeries([shp_box(*BOXES[box])], crs="EPSG:4326").segmentize(0.001)
    minx, miny, maxx, maxy = poly.to_crs(crs).total_bounds
    x0 = math.floor(minx / 20.0) * 20.0
    y1 = math.ceil(maxy / 20.0) * 20.0
    width = 2 * math.ceil((maxx - x0) / 20.0)
    height = 2 * math.ceil((y1 - miny) / 20.0)
    full = _Grid(x0, y1, 10.0, height, width, crs)
    if size_px is None:
        return full
    size = int(size_px) + int(size_px) % 2
    # Choose the window on a coarse 40 m copy of the grid (cheap even for the whole box):
    # near the densest mining at three times the window size, preferring windows whose own
    # mine fraction is moderate, so they hold pits *and* their surroundings.
    from scipy import ndimage

    f = 4
    coarse = _Grid(x0, y1, 10.0 * f, -(-height // f), -(-width // f), crs)
    mask = _rasterize(mines_lonlat.to_crs(crs).geometry, coarse, 1).astype(np.float32)
    k = max(size // f, 1)
    near = ndimage.uniform_filter(mask, size=min(3 * k, *mask.shape), mode="constant")
    own = ndimage.uniform_filter(mask, size=min(k, *mask.shape), mode="constant")
    score = near * (1.0 - np.clip(np.abs(own - 0.3) * 2.0, 0.0, 0.9))
    r, c = (int(v) * f for v in np.unravel_index(int(np.argmax(score)), score.shape))
    r0 = int(np.clip(r - size // 2, 0, max(height - size, 0))) // 2 * 2
    c0 = int(np.clip(c - size // 2, 0, max(width - size, 0))) // 2 * 2
    return _Grid(x0 + c0 * 10.0, y1 - r0 * 10.0, 10.0, size, size, crs)


def _rasterize(geoms: Iterable[Any], grid: _Grid, value: int, *, all_touched: bool = False) -> Any:
    from rasterio import features

    shapes = [(g, value) for g in geoms if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros((grid.height, grid.width), dtype=np.uint8)
    return features.rasterize(
        shapes,
        out_shape=(grid.height, grid.width),
        transform=grid.transform,
        fill=0,
        dtype="uint8",
        all_touched=all_touched,
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


# ----------------------------------------------------------------------------- rendering
def _render(
    world: _World, rng: np.random.Generator, *, cloud_frac: float, haze: float, nodata_frac: float
) -> dict[str, Any]:
    """Render one date: reflectance (band, y, x) float32 at 10 m, cloud/shadow/valid masks."""
    from scipy import ndimage

    h, w, res = world.grid.height, world.grid.width, world.grid.res
    mat = world.material
    refl = _SPEC.T[:, mat]  # (band, y, x)

    # Within-class variability: brightness texture and sub-pixel vegetation in soils.
    bright = 1.0 + 0.10 * (_smooth_noise(rng, (h, w), 30.0 / res) - 0.5)
    bright += 0.03 * rng.standard_normal((h, w), dtype=np.float32)
    soil = np.isin(mat, _SOILLIKE)
    fveg = np.clip(_smooth_noise(rng, (h, w), 50.0 / res) * 0.55 - 0.05, 0, 0.5)
    fveg = np.where(soil, fveg, 0).astype(np.float32)
    refl *= (bright * (1 - fveg))[None]
    refl += fveg[None] * _SPEC[_FARM][:, None, None]
    # Moisture darkens SWIR of soils unevenly.
    wet = np.where(soil, _smooth_noise(rng, (h, w), 80.0 / res), 0).astype(np.float32)
    refl[8:] *= 1.0 - 0.18 * wet[None]
    # Phenology: dry-season vegetation vigour changes from date to date.
    veg = np.isin(mat, _VEG)
    refl[4:8] *= np.where(veg, float(rng.normal(1.0, 0.05)), 1.0)[None].astype(np.float32)

    # Haze: a smooth additive path radiance with slight attenuation.
    hz = haze * _smooth_noise(rng, (h, w), 2500.0 / res)
    refl *= (1 - 0.3 * hz)[None]
    refl += hz[None] * _HAZE[:, None, None]

    # Clouds with soft edges, and their shadows displaced along the sun direction.
    alpha = np.zeros((h, w), dtype=np.float32)
    shadow = np.zeros((h, w), dtype=np.float32)
    if cloud_frac > 0:
        c = 0.75 * _smooth_noise(rng, (h, w), 1500.0 / res)
        c += 0.25 * _smooth_noise(rng, (h, w), 300.0 / res)
        thr = float(np.quantile(c, 1.0 - cloud_frac))
        alpha = np.clip((c - thr) / 0.06 + 0.35, 0, 1).astype(np.float32)
        alpha[c < thr - 0.02] = 0
        az = math.radians(float(rng.uniform(120, 150)))  # sun azimuth, Ghana dry season AM
        disp = float(rng.uniform(600, 1200)) / res
        dy, dx = round(-math.cos(az) * disp), round(-math.sin(az) * disp)
        shadow = ndimage.shift(alpha, (-dy, dx), order=0, mode="constant", cval=0.0)
        shadow = shadow * (1 - alpha)
        refl *= ((1 - 0.7 * shadow) * (1 - alpha))[None]
        refl += alpha[None] * _CLOUD[:, None, None]

    # Per-band gain/offset change between dates (calibration, BRDF, atmosphere).
    gain = float(rng.normal(1.0, 0.04)) + rng.normal(0, 0.015, 10).astype(np.float32)
    offset = rng.normal(0, 0.004, 10).astype(np.float32)
    refl *= gain[:, None, None]
    refl += offset[:, None, None]
    # Optics: a mild PSF blur of the 10 m bands (20 m bands are block-averaged when
    # written, which smooths them more), then sensor noise.
    for b in _BANDS_10M_IDX:
        refl[b] = ndimage.gaussian_filter(refl[b], sigma=0.5, truncate=2.0)
    refl += 0.003 * rng.standard_normal(refl.shape, dtype=np.float32)

    valid = np.ones((h, w), dtype=bool)
    if nodata_frac > 0:
        theta = float(rng.uniform(-0.35, 0.35)) + (math.pi if rng.random() < 0.5 else 0.0)
        yy, xx = np.mgrid[0:h, 0:w]
        proj = xx * math.cos(theta) + yy * math.sin(theta)
        valid = proj < np.quantile(proj, 1.0 - nodata_frac)
    return {
        "refl": refl.astype(np.float32),
        "alpha": alpha,
        "shadow": shadow,
        "valid": valid,
    }


def _scl(world: _World, rend: dict[str, Any], rng: np.random.Generator) -> Any:
    """Scene classification at 20 m, consistent with the scene, with realistic errors."""
    mat = world.material[::2, ::2]
    alpha = _block_mean(rend["alpha"])
    shadow = _block_mean(rend["shadow"])
    valid = rend["valid"][::2, ::2]
    scl = np.full(mat.shape, 5, dtype=np.uint8)  # not vegetated
    scl[np.isin(mat, _VEG)] = 4
    scl[np.isin(mat, _WATER)] = 6
    scl[mat == _WET_PIT] = np.where(rng.random(int((mat == _WET_PIT).sum())) < 0.3, 2, 5)
    scl[(shadow > 0.35) & (alpha < 0.2)] = 3
    scl[(alpha >= 0.15) & (alpha < 0.45)] = 10
    scl[(alpha >= 0.45) & (alpha < 0.75)] = 8
    scl[alpha >= 0.75] = 9
    # Errors: turbid ponds / rivers flagged as cloud, a few bright roofs as cloud, noise.
    h2, w2 = mat.shape
    flag = _smooth_noise(rng, (h2, w2), 8.0)
    turbid = np.isin(mat, (_POND, _TURBID_RIVER))
    scl[turbid & (flag > 0.6)] = 8
    scl[turbid & (flag > 0.8)] = 9
    roofs = (mat == _ROOF_METAL) | (mat == _ROOF_CONCRETE)
    scl[roofs & (rng.random((h2, w2)) < 0.05)] = 9
    scl[rng.random((h2, w2)) < 0.01] = 7
    scl[~valid] = 0
    return scl


def _block_mean(a: Any) -> Any:
    """2 x 2 block mean over the last two axes (10 m -> 20 m)."""
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def _to_dn(refl: Any, valid: Any, offset_dn: int) -> Any:
    """Reflectance -> uint16 DN (reflectance = DN * 1e-4 - offset_dn * 1e-4), 0 = nodata."""
    dn = np.rint(refl * 10000.0) + offset_dn
    dn = np.clip(dn, 1, 65535).astype(np.uint16)
    dn[..., ~valid] = 0
    return dn


# ----------------------------------------------------------------------------- dates
def _parse_season(season: str) -> int:
    try:
        start, end = season.split("-")
        y0 = int(start)
        if (y0 + 1) % 100 != int(end) % 100 or len(start) != 4:
            raise ValueError(season)
    except ValueError:
        raise VitsegError(
            f"season must look like '2020-21' (dry season Nov 2020 - Mar 2021); got {season!r}"
        ) from None
    return y0


def season_dates(season: str, n: int, *, seed: int = 0) -> list[_dt.datetime]:
    """Acquisition datetimes spread over a dry season (15 Nov - 15 Mar).

    Parameters
    ----------
    season
        ``"2020-21"`` means the dry season from November 2020 to March 2021.
    n
        Number of dates (>= 1).
    seed
        Jitters the dates by up to +-4 days.

    Returns
    -------
    list of datetime.datetime
        UTC datetimes at about 10:30 (Sentinel-2 overpass over Ghana), sorted.

    Examples
    --------
    >>> [d.date().isoformat() for d in season_dates("2021-22", 3)]
    ['2021-12-05', '2022-01-15', '2022-02-19']
    """
    if n < 1:
        raise VitsegError(f"dates_per_season must be >= 1; got {n}")
    y0 = _parse_season(season)
    start = _dt.datetime(y0, 11, 15, 10, 28, 31, tzinfo=_dt.UTC)
    span = (_dt.datetime(y0 + 1, 3, 15, tzinfo=_dt.UTC) - start).days
    rng = _rng(seed, "dates", season)
    out = []
    for k in range(n):
        day = (k + 0.5) * span / n + float(rng.uniform(-4, 4))
        out.append(start + _dt.timedelta(days=round(day)))
    return sorted(out)


def _baseline(date: _dt.date) -> str:
    if date >= _BASELINE_04_DATE:
        return "04.00"
    if date >= _dt.date(2021, 6, 30):
        return "03.01"
    return "02.14"


def _mgrs(lon: float, lat: float) -> tuple[int, str, str]:
    """MGRS zone, latitude band and 100 km square of a point (standard WGS84 lettering)."""
    from pyproj import CRS, Transformer

    zone = int((lon + 180) // 6) + 1
    bands = "CDEFGHJKLMNPQRSTUVWXX"
    band = bands[int((lat + 80) // 8)]
    epsg = (32600 if lat >= 0 else 32700) + zone
    e, nn = Transformer.from_crs(
        CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True
    ).transform(lon, lat)
    cols = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    col = cols[int(e // 100000) - 1]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    row = rows[(int(nn // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return zone, band, col + row


# ----------------------------------------------------------------------------- writing
def _write_cog(path: Path, data: Any, grid_transform: Any, crs: str, *, nodata: int) -> Path:
    """Write a single-band COG (deflate, 256 blocks, overviews), atomically."""
    import rasterio

    from vitseg.io import atomic_path

    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp,
            "w",
            driver="COG",
            width=data.shape[-1],
            height=data.shape[-2],
            count=1,
            dtype=str(data.dtype),
            crs=crs,
            transform=grid_transform,
            nodata=nodata,
            compress="DEFLATE",
            level=1,
            blocksize=256,
            overview_resampling="nearest",
        ) as dst:
            dst.write(data, 1)
    return path


def _footprint(grid: _Grid, valid: Any) -> Any:
    """Footprint of the valid pixels, in EPSG:4326."""
    import geopandas as gpd
    from rasterio import features
    from shapely.geometry import shape
    from shapely.ops import unary_union

    mask = valid.astype(np.uint8)
    polys = [shape(g) for g, v in features.shapes(mask, mask=mask > 0, transform=grid.transform)]
    geom = unary_union(polys).simplify(grid.res) if polys else None
    return gpd.GeoSeries([geom], crs=grid.crs).to_crs("EPSG:4326").iloc[0]


def _item_dict(
    *,
    item_id: str,
    box: str,
    season: str,
    when: _dt.datetime,
    grid: _Grid,
    footprint: Any,
    hrefs: dict[str, str],
    scl: Any,
    mgrs: tuple[int, str, str],
    platform: str,
) -> dict[str, Any]:
    from shapely.geometry import mapping

    baseline = _baseline(when.date())
    offset = -0.1 if baseline >= "04.00" else 0.0
    epsg = _epsg(grid.crs)
    valid = scl > 0
    nvalid = max(int(valid.sum()), 1)

    def pct(codes: tuple[int, ...]) -> float:
        return round(100.0 * float(np.isin(scl[valid], codes).sum()) / nvalid, 6)

    zone, band, square = mgrs
    stamp = when.strftime("%Y%m%dT%H%M%S")
    tile = f"{zone:02d}{band}{square}"
    nbase = "N" + baseline.replace(".", "")
    created = (when + _dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    props: dict[str, Any] = {
        "created": created,
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": pct((8, 9, 10)),
        "proj:epsg": epsg,
        "proj:code": f"EPSG:{epsg}",
        "mgrs:utm_zone": zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{tile}",
        "view:sun_azimuth": 130.0,
        "view:sun_elevation": 55.0,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": baseline,
        "s2:product_uri": f"S2{platform[-1].upper()}_MSIL2A_{stamp}_{nbase}_R108_T{tile}_{stamp}.SAFE",
        "s2:nodata_pixel_percentage": round(100.0 * (1 - valid.mean()), 6),
        "s2:cloud_shadow_percentage": pct((3,)),
        "s2:vegetation_percentage": pct((4,)),
        "s2:not_vegetated_percentage": pct((5,)),
        "s2:water_percentage": pct((6,)),
        "s2:unclassified_percentage": pct((7,)),
        "s2:medium_proba_clouds_percentage": pct((8,)),
        "s2:high_proba_clouds_percentage": pct((9,)),
        "s2:thin_cirrus_percentage": pct((10,)),
        "s2:dark_features_percentage": pct((2,)),
        "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
        # DN keep ESA's +1000 from baseline 04.00 on and raster:bands carries the -0.1;
        # on Earth Search a true flag means the DN were already shifted back
        # (Element84/earth-search#66), which these simulated files are not.
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"vitseg.synthetic": str(SYNTHETIC_VERSION)},
        "updated": created,
        "vitseg:simulated": True,
        "vitseg:box": box,
        "vitseg:season": season,
    }
    assets: dict[str, Any] = {}
    for name in S2_BANDS_10:
        key, common, cw, fwhm, title = _EARTH_SEARCH[name]
        res = 20 if name in S2_BANDS_20M else 10
        f = res // 10
        assets[key] = {
            "href": hrefs[name],
            "type": _COG_TYPE,
            "title": title,
            "eo:bands": [
                {
                    "name": name,
                    "common_name": common,
                    "center_wavelength": cw,
                    "full_width_half_max": fwhm,
                }
            ],
            "gsd": res,
            "proj:epsg": epsg,
            "proj:code": f"EPSG:{epsg}",
            "proj:shape": [grid.height // f, grid.width // f],
            "proj:transform": [res, 0, grid.x0, 0, -res, grid.y0],
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": res,
                    "scale": 0.0001,
                    "offset": offset,
                }
            ],
            "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": hrefs["SCL"],
        "type": _COG_TYPE,
        "title": "Scene classification map (SCL)",
        "gsd": 20,
        "proj:epsg": epsg,
        "proj:code": f"EPSG:{epsg}",
        "proj:shape": [grid.height // 2, grid.width // 2],
        "proj:transform": [20, 0, grid.x0, 0, -20, grid.y0],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data"],
    }
    minx, miny, maxx, maxy = footprint.bounds
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
            "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id,
        "geometry": json.loads(json.dumps(mapping(footprint))),
        "bbox": [round(v, 6) for v in (minx, miny, maxx, maxy)],
        "properties": props,
        "links": [],
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }


def _collection_dict(items: list[dict[str, Any]]) -> dict[str, Any]:
    bboxes = np.array([it["bbox"] for it in items])
    times = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection",
        "id": "sentinel-2-l2a",
        "stac_version": "1.0.0",
        "title": "Sentinel-2 Level-2A (SIMULATED by vitseg.synthetic)",
        "description": (
            "Simulated Sentinel-2 L2A scenes over real hand-labelled mining boxes in Ghana, "
            "written by vitseg.synthetic for the offline demo and tests. Not real imagery."
        ),
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        float(bboxes[:, 0].min()),
                        float(bboxes[:, 1].min()),
                        float(bboxes[:, 2].max()),
                        float(bboxes[:, 3].max()),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "license": "CC-BY-4.0",
        "keywords": ["sentinel", "simulated", "ghana", "artisanal mining"],
        "providers": [{"name": "vitseg.synthetic", "roles": ["producer", "processor"]}],
        "links": [],
    }


def _mines_for(box: str) -> Any:
    if box not in BOXES:
        raise VitsegError(
            f"unknown box {box!r}; expected one of {sorted(BOXES)} (the asm-map boxes in Ghana)"
        )
    return _load_mines(box)


def write_catalog(
    root: str | os.PathLike[str],
    *,
    boxes: Sequence[str] = ("obuasi", "kibi"),
    seasons: Sequence[str] = ("2020-21", "2021-22"),
    dates_per_season: int = 3,
    size_px: int | None = None,
    seed: int = 0,
    crs: str = "EPSG:32630",
) -> Path:
    """Write a local static STAC catalog of simulated Sentinel-2 L2A scenes.

    Parameters
    ----------
    root
        Output folder (e.g. ``data/synthetic/demo``). Written to a temporary folder beside
        it and renamed on success; an existing catalog written with the same arguments and
        generator version is reused (cache hit returns at once).
    boxes
        Names in :data:`BOXES`; the real asm-map polygons of each box are the mining class.
    seasons
        Dry seasons as ``"YYYY-YY"`` (``"2020-21"`` = Nov 2020 - Mar 2021). Mining grows
        from each season to the next.
    dates_per_season
        Acquisition dates per season (spread over the dry season, see :func:`season_dates`).
    size_px
        ``None``: the whole box at 10 m (about 1480 x 1480 px). An int: a square window of
        that many 10 m pixels (rounded up to even) centred on the densest mining of the box.
    seed
        Everything (world, clouds, radiometry) is deterministic from it.
    crs
        Projected CRS of the scenes (UTM; both boxes are in zone 30N).

    Returns
    -------
    pathlib.Path
        ``root/catalog.json``.

    Raises
    ------
    VitsegError
        Unknown box, malformed season, geographic or unknown ``crs``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cat = write_catalog(tempfile.mkdtemp(), boxes=("kibi",), seasons=("2021-22",),
    ...                     dates_per_season=1, size_px=32)
    >>> sorted(p.name for p in cat.parent.iterdir())[:3]
    ['catalog.json', 'items.json', 'labels']
    """
    from pyproj import CRS

    from vitseg.io import atomic_path, read_json, write_json

    try:
        crs_obj = CRS.from_user_input(crs)
    except Exception as exc:
        raise MissingCRSError(f"crs {crs!r} is not a valid CRS; pass e.g. 'EPSG:32630'") from exc
    if crs_obj.is_geographic:
        raise VitsegError(
            f"crs {crs!r} is geographic; the scenes need a metric UTM CRS, e.g. 'EPSG:32630'"
        )
    final = Path(root).resolve()
    boxes = list(boxes)
    seasons = list(seasons)
    for b in boxes:
        if b not in BOXES:
            raise VitsegError(
                f"unknown box {b!r}; expected one of {sorted(BOXES)} (the asm-map boxes in Ghana)"
            )
    for s in seasons:
        _parse_season(s)
    if size_px is not None and int(size_px) < 8:
        raise VitsegError(f"size_px must be None or >= 8; got {size_px}")
    args = {
        "version": SYNTHETIC_VERSION,
        "boxes": boxes,
        "seasons": seasons,
        "dates_per_season": int(dates_per_season),
        "size_px": None if size_px is None else int(size_px),
        "seed": int(seed),
        "crs": str(crs),
        "root": str(final),
    }
    meta = final / "synthetic.json"
    if meta.exists() and (final / "catalog.json").exists():
        try:
            if read_json(meta) == args:
                return final / "catalog.json"
        except (OSError, ValueError):
            pass

    with atomic_path(final, suffix="") as tmp:
        tmp.mkdir(parents=True)
        _write_all(tmp, final, args)
        write_json(tmp / "synthetic.json", args)
    return final / "catalog.json"


def _write_all(tmp: Path, final: Path, args: dict[str, Any]) -> None:
    import geopandas as gpd

    from vitseg.io import write_json

    crs = args["crs"]
    seed = args["seed"]
    items: list[dict[str, Any]] = []
    coll_dir = tmp / "sentinel-2-l2a"
    # GDAL compresses in C without the GIL: write COGs in threads while the next date renders.
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    jobs: list[Future[Path]] = []
    for box in args["boxes"]:
        mines_ll = _mines_for(box)
        grid = _box_grid(box, crs, args["size_px"], mines_ll)
        from shapely.geometry import box as shp_box

        box_poly = gpd.GeoSeries([shp_box(*BOXES[box])], crs="EPSG:4326").segmentize(0.001)
        inside = _rasterize(box_poly.to_crs(crs), grid, 1) > 0
        worlds = _make_worlds(
            grid, mines_ll, n_seasons=len(args["seasons"]), seed=seed, key=box, inside=inside
        )
        west, south, east, north = BOXES[box]
        mgrs = _mgrs((west + east) / 2, (south + north) / 2)
        for season, world in zip(args["seasons"], worlds, strict=True):
            tag = f"{box}_{season}"
            _write_cog(
                tmp / "truth" / f"{tag}.tif", world.truth, grid.transform, crs, nodata=IGNORE_INDEX
            )
            labels = gpd.GeoDataFrame(
                {
                    "class": ["mines"] * len(world.mines) + ["built"] * len(world.built),
                    "source": ["asm-map ground truth (real) + simulated growth"] * len(world.mines)
                    + ["simulated settlement"] * len(world.built),
                    "box": box,
                    "season": season,
                },
                geometry=list(world.mines) + list(world.built),
                crs=crs,
            )
            (tmp / "labels").mkdir(exist_ok=True)
            labels.to_file(tmp / "labels" / f"{tag}.gpkg", driver="GPKG", layer="labels")
            dates = season_dates(season, args["dates_per_season"], seed=seed)
            for k, when in enumerate(dates):
                rng = _rng(seed, box, season, k)
                cloud = float(rng.choice([0.0, 0.03, 0.1, 0.25, 0.4]))
                haze = float(rng.uniform(0.0, 0.6))
                partial = (k == 1 and season == args["seasons"][0]) or rng.random() < 0.2
                nodata = float(rng.uniform(0.1, 0.3)) if partial else 0.0
                rend = _render(world, rng, cloud_frac=cloud, haze=haze, nodata_frac=nodata)
                for job in jobs:  # bound memory: the previous date's COGs are done
                    job.result()
                jobs.clear()
                platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
                letter = "A" if platform.endswith("a") else "B"
                zone, lband, sq = mgrs
                item_id = f"S2{letter}_{zone}{lband}{sq}_{when:%Y%m%d}_0_L2A"
                if any(it["id"] == item_id for it in items):
                    item_id = f"S2{letter}_{zone}{lband}{sq}_{when:%Y%m%d}_{box}_L2A"
                folder = coll_dir / item_id
                hrefs_final: dict[str, str] = {}
                offset_dn = 1000 if _baseline(when.date()) >= "04.00" else 0
                refl = rend["refl"]
                for bi, name in enumerate(S2_BANDS_10):
                    if name in S2_BANDS_20M:
                        data = _to_dn(_block_mean(refl[bi]), rend["valid"][::2, ::2], offset_dn)
                        tr = _Grid(grid.x0, grid.y0, 20.0, data.shape[0], data.shape[1], crs)
                    else:
                        data = _to_dn(refl[bi], rend["valid"], offset_dn)
                        tr = grid
                    jobs.append(
                        pool.submit(
                            _write_cog, folder / f"{name}.tif", data, tr.transform, crs, nodata=0
                        )
                    )
                    hrefs_final[name] = str(final / "sentinel-2-l2a" / item_id / f"{name}.tif")
                scl = _scl(world, rend, rng)
                g20 = _Grid(grid.x0, grid.y0, 20.0, scl.shape[0], scl.shape[1], crs)
                jobs.append(
                    pool.submit(_write_cog, folder / "SCL.tif", scl, g20.transform, crs, nodata=0)
                )
                hrefs_final["SCL"] = str(final / "sentinel-2-l2a" / item_id / "SCL.tif")
                item = _item_dict(
                    item_id=item_id,
                    box=box,
                    season=season,
                    when=when,
                    grid=grid,
                    footprint=_footprint(grid, rend["valid"]),
                    hrefs=hrefs_final,
                    scl=scl,
                    mgrs=mgrs,
                    platform=platform,
                )
                items.append(item)

    for job in jobs:
        job.result()
    pool.shutdown()
    items.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    for it in items:
        it["links"] = [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "self", "href": str(final / "sentinel-2-l2a" / it["id"] / f"{it['id']}.json"),
             "type": "application/geo+json"},
        ]  # fmt: skip
        write_json(coll_dir / it["id"] / f"{it['id']}.json", it)
    coll = _collection_dict(items)
    coll["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        *[
            {"rel": "item", "href": f"./{it['id']}/{it['id']}.json", "type": "application/geo+json"}
            for it in items
        ],
    ]
    write_json(coll_dir / "collection.json", coll)
    write_json(
        tmp / "catalog.json",
        {
            "type": "Catalog",
            "id": "vitseg-synthetic",
            "stac_version": "1.0.0",
            "description": (
                "Local static catalog of SIMULATED Sentinel-2 L2A scenes (vitseg.synthetic). "
                "Mining polygons are real (asm-map, CC BY 4.0); the imagery is not."
            ),
            "links": [
                {"rel": "root", "href": "./catalog.json", "type": "application/json"},
                {
                    "rel": "child",
                    "href": "./sentinel-2-l2a/collection.json",
                    "type": "application/json",
                    "title": "sentinel-2-l2a",
                },
            ],
        },
    )
    ic_items = []
    for it in items:
        d = dict(it)
        d["links"] = [ln for ln in it["links"] if ln["rel"] == "self"]
        ic_items.append(d)
    write_json(tmp / "items.json", {"type": "FeatureCollection", "features": ic_items})


# ----------------------------------------------------------------------------- readers
def load_truth(root: str | os.PathLike[str], box: str, season: str) -> xr.DataArray:
    """Read the simulated truth raster of one box and season.

    Parameters
    ----------
    root
        Catalog folder given to :func:`write_catalog`.
    box, season
        E.g. ``"obuasi"``, ``"2020-21"``.

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` uint8 class codes (0 mines, 1 built, 2 vegetation/other, 255 outside the
        box) on the box's 10 m grid, with ``rio.crs``.

    Raises
    ------
    VitsegError
        No truth raster for that box/season under ``root``.
    """
    import rioxarray

    path = Path(root) / "truth" / f"{box}_{season}.tif"
    if not path.exists():
        have = sorted(p.stem for p in (Path(root) / "truth").glob("*.tif"))
        raise VitsegError(
            f"no truth raster {path}; available: {have}. Call "
            "vitseg.synthetic.write_catalog(root, boxes=..., seasons=...) first."
        )
    da = rioxarray.open_rasterio(path, masked=False).squeeze("band", drop=True).load()
    da.name = "truth"
    da.attrs["classes"] = "0 mines, 1 built, 2 vegetation, 255 no data"
    return da  # type: ignore[no-any-return]


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
