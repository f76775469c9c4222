"""Constants, seeded noise and raster grids shared by the simulator's modules.

The generator version (the catalog cache key), the two hand-labelled boxes, the codes
and spectra of the simulated materials, deterministic random generators, smooth noise
fields and the small north-up :class:`_Grid` that every other module draws on.

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

import math
import zlib
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from vitseg.constants import S2_BANDS_10, S2_BANDS_20M
from vitseg.errors import VitsegError

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
