"""Rendering one acquisition of a simulated world, and its scene classification (SCL).

Reflectance with within-class texture, haze, soft clouds and their shadows, per-band
gain/offset drift, a mild PSF, sensor noise and partial-swath no-data; SCL at 20 m with
realistic errors (turbid ponds flagged as cloud, thin cloud edges missed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vitseg.synthetic.base import (
    _BANDS_10M_IDX,
    _CLOUD,
    _FARM,
    _HAZE,
    _POND,
    _ROOF_CONCRETE,
    _ROOF_METAL,
    _SOILLIKE,
    _SPEC,
    _TURBID_RIVER,
    _VEG,
    _WATER,
    _WET_PIT,
    _smooth_noise,
)
from vitseg.synthetic.world import _World


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
