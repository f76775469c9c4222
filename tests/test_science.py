"""Tests that catch wrong science: each checks a result against an independent computation.

Each test below was checked to fail under a named mutation of the code it guards (issue 20):
training with the gradient reversed, ``(1 - p) ** gamma`` -> ``p ** gamma`` in the focal
loss, the quartic kernel's exponent 2 -> 1, a spherical pixel area, and so on.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import torch
import xarray as xr
from pyproj import CRS, Geod, Proj, Transformer
from shapely.geometry import Point, Polygon
from torch.utils.data import Dataset

import vitseg.io
from vitseg import accuracy
from vitseg.change import pixel_area_m2
from vitseg.constants import CLASSES
from vitseg.density import kde_map
from vitseg.exclusions import pixel_area_ha
from vitseg.losses import create_loss
from vitseg.models import create_model
from vitseg.train import fit
from vitseg.zonal import zonal_polygon_areas

WGS84 = Geod(ellps="WGS84")

# --------------------------------------------------------------------- 1. training learns


class _Blobs(Dataset):  # type: ignore[type-arg]
    """4-band 32x32 tiles: mine where band 0 (a smooth random field) > 0.5; bands 1-3 noise."""

    def __init__(self, n: int, seed: int, size: int = 32) -> None:
        g = torch.Generator().manual_seed(seed)
        low = torch.rand(n, 1, 4, 4, generator=g)
        field = torch.nn.functional.interpolate(
            low, size=(size, size), mode="bilinear", align_corners=False
        )[:, 0]
        self.x = torch.cat([field[:, None], torch.rand(n, 3, size, size, generator=g)], 1)
        self.y = (field > 0.5).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def test_training_learns_an_easy_task(tmp_path):
    """12 CPU epochs (~5 s) of a SegFormer reach val IoU ~0.89 (bar 0.8); all-mine is ~0.5."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = create_model("segformer", in_channels=4, classes=2)
        train, val_ds = _Blobs(32, seed=0), _Blobs(8, seed=1)
        val = [val_ds[i] for i in range(len(val_ds))]
        cfg = {"epochs": 12, "batch_size": 8, "optimizer": "adamw", "lr": 2e-3,
               "scheduler": "poly", "progress": False, "device": "cpu", "bf16": False,
               "seed": 0}  # fmt: skip
        res = fit(model, train, val, config=cfg, run_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    h = res.history
    all_mine_iou = float(val_ds.y.float().mean())  # IoU of calling every pixel a mine
    assert all_mine_iou < 0.6
    assert h["val_iou"].iloc[-1] > 0.8, h[["epoch", "train_loss", "val_iou"]].to_string()
    assert h["train_loss"].iloc[-1] < 0.5 * h["train_loss"].iloc[0]
    assert h["val_loss"].iloc[-1] < 0.3


# ------------------------------------------------------------------------- 2. focal loss


def _focal_by_hand(p_t: float, gamma: float) -> float:
    return -((1 - p_t) ** gamma) * math.log(p_t)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("p_t", [0.9, 0.2])
@pytest.mark.parametrize("k", [1, 2])
def test_focal_loss_hand_values(p_t, gamma, k):
    """One pixel of class 1 whose softmax (K=2) or sigmoid (K=1) probability is ``p_t``."""
    z = math.log(p_t / (1 - p_t))  # p_1 = sigmoid(z) = softmax([0, z])[1]
    logits = torch.tensor([[[[z]]]]) if k == 1 else torch.tensor([[[[0.0]], [[z]]]])
    target = torch.tensor([[[1]]])
    got = float(create_loss("focal", gamma=gamma)(logits, target))
    assert got == pytest.approx(_focal_by_hand(p_t, gamma), rel=1e-5)


def test_focal_loss_mean_weights_and_gamma0_is_ce():
    # two pixels, class 1 at p = 0.9 and class 0 at p = 1 - 0.2 / ... : p_t = 0.9 and 0.2
    z1, z2 = math.log(9.0), math.log(0.8 / 0.2)
    logits = torch.tensor([[[[0.0, 0.0]], [[z1, z2]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])  # pixel 2: class 0 has p = 0.2
    f2 = _focal_by_hand(0.9, 2), _focal_by_hand(0.2, 2)
    assert float(create_loss("focal", gamma=2)(logits, target)) == pytest.approx(
        (f2[0] + f2[1]) / 2, rel=1e-5
    )
    w = create_loss("focal", gamma=2, weight=[3.0, 1.0])(logits, target)
    assert float(w) == pytest.approx((1 * f2[0] + 3 * f2[1]) / 4, rel=1e-5)
    ce = create_loss("ce")(logits, target)
    assert float(create_loss("focal", gamma=0)(logits, target)) == pytest.approx(float(ce))


# ------------------------------------------------------------------ 3. kernel density


@pytest.mark.parametrize("bandwidth_m", [1000.0, 2000.0])
def test_quartic_kde_matches_the_biweight_formula(bandwidth_m):
    """One event: density (per km²) = 3 / (pi r²) (1 - d²/r²)² with r in km, 0 beyond r."""
    cell = 25.0
    pts = gpd.GeoDataFrame(geometry=[Point(600_012.5, 700_012.5)], crs="EPSG:32630")
    pad = 2 * bandwidth_m  # the default grid ends at r; look beyond it too
    bounds = (600_000 - pad, 700_000 - pad, 600_025 + pad, 700_025 + pad)
    d = kde_map(pts, bandwidth_m=bandwidth_m, cell_size_m=cell, bounds=bounds)
    assert d.attrs["units"] == "events per km²"
    cy, cx = np.unravel_index(int(np.argmax(d.values)), d.shape)
    assert float(d.x[cx]) == 600_012.5 and float(d.y[cy]) == 700_012.5
    r_km = bandwidth_m / 1000
    for frac in (0.0, 0.25, 0.5, 0.9, 1.05, 1.5):
        off = round(frac * bandwidth_m / cell)
        dist = off * cell / bandwidth_m  # d / r
        want = 3 / (math.pi * r_km**2) * max(0.0, 1 - dist**2) ** 2
        for got in (d.values[cy, cx + off], d.values[cy - off, cx]):  # east and north
            if want == 0:
                assert got == 0.0
            else:
                assert got == pytest.approx(want, rel=1e-4, abs=1e-12)
    assert float(d.sum()) * (cell / 1000) ** 2 == pytest.approx(1.0)


# ------------------------------------------------------------------------ 4. pixel area


def _geodesic_area(lons, lats) -> float:
    return abs(WGS84.geometry_area_perimeter(Polygon(zip(lons, lats, strict=True)))[0])


def _grid(crs: str, x0: float, y0: float, res: float, n: int = 3) -> xr.DataArray:
    y = y0 - res * (np.arange(n) + 0.5)
    x = x0 + res * (np.arange(n) + 0.5)
    da = xr.DataArray(np.zeros((n, n)), dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs(crs)


@pytest.mark.parametrize(("lon", "lat"), [(-1.8, 6.0), (-1.8, 60.0), (20.0, -35.0)])
def test_geographic_pixel_area_is_the_wgs84_geodesic_area(lon, lat):
    res = 0.0001  # ~11 m
    g = _grid("EPSG:4326", lon, lat, res)
    got = pixel_area_m2(g)
    for i, top in enumerate(lat - res * np.arange(3)):
        lons = [lon, lon + res, lon + res, lon]
        lats = [top, top, top - res, top - res]
        assert got[i] == pytest.approx(_geodesic_area(lons, lats), rel=1e-4)
    np.testing.assert_allclose(pixel_area_ha(g).values, got / 1e4, rtol=1e-12)
    if lat == 6.0:  # a sphere of the mean radius is 0.4 % off in Ghana
        sphere = 6_371_008.8**2 * math.radians(res) ** 2 * math.cos(math.radians(lat - res / 2))
        assert abs(got[0] / sphere - 1) > 3e-3


@pytest.mark.parametrize("x0", [500_000.0, 600_000.0, 820_000.0])
def test_utm_pixel_area_is_the_grid_area_and_the_geodesic_area_times_the_areal_scale(x0):
    """A 10 m UTM pixel is 100 m² of grid; on the ground it is 100 m² / k² (k: scale factor).

    The corners reprojected to lon/lat give the pixel's geodesic area; times the
    projection's areal scale factor it is the grid area to 0.01 %. (In Ghana, UTM 30N's
    areal scale is 0.9992-1.004, so grid and ground areas differ by up to 0.4 %.)
    """
    y0 = 700_000.0
    g = _grid("EPSG:32630", x0, y0, 10.0)
    got = pixel_area_m2(g)
    np.testing.assert_allclose(got, 100.0)
    np.testing.assert_allclose(pixel_area_ha(g).values, 0.01)
    to_ll = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True)
    lons, lats = to_ll.transform([x0, x0 + 10, x0 + 10, x0], [y0, y0, y0 - 10, y0 - 10])
    ground = _geodesic_area(lons, lats)
    scale = Proj("EPSG:32630").get_factors(np.mean(lons), np.mean(lats)).areal_scale
    assert got[0] == pytest.approx(ground * scale, rel=1e-4)


def test_projected_pixel_area_in_feet():
    g = _grid("EPSG:2272", 2_700_000.0, 250_000.0, 10.0)  # NAD83 / Pennsylvania S (US ft)
    ft = CRS("EPSG:2272").axis_info[0].unit_conversion_factor
    np.testing.assert_allclose(pixel_area_m2(g), (10 * ft) ** 2)
    np.testing.assert_allclose(pixel_area_ha(g).values, (10 * ft) ** 2 / 1e4)


# --------------------------------------------------- 5a. real Earth Genome district areas

GHANA_LAEA = "+proj=laea +lat_0=7.9 +lon_0=-1.0 +datum=WGS84 +units=m +no_defs"


def _overlay_ha(features, districts, crs: str) -> pd.Series:
    f = features.to_crs(crs)
    dissolved = gpd.GeoDataFrame(geometry=[f.geometry.make_valid().union_all()], crs=crs)
    inter = gpd.overlay(districts.to_crs(crs)[["ADM2_PCODE", "geometry"]], dissolved)
    return (inter.area / 1e4).groupby(inter["ADM2_PCODE"]).sum()


def test_earthrise_district_hectares_equal_an_independent_overlay():
    """Notebook 08's "earthrise" call vs an overlay in a Lambert equal-area CRS on Ghana."""
    er = gpd.read_file(vitseg.io.data_path("earthrise_ashanti_2017_2020.geojson"))
    er["year"] = er["year"].astype(str).str[:4]
    er24 = gpd.read_file(vitseg.io.data_path("earthrise_ghana_2024.geojson"))
    districts = gpd.read_file(vitseg.io.data_path("gha_adm2_simplified.geojson"))
    by_year = zonal_polygon_areas(
        er, districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"], by="year"
    ).set_index("ADM2_PCODE")
    d24 = zonal_polygon_areas(
        er24, districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"]
    ).set_index("ADM2_PCODE")
    checks = [(by_year[f"area_ha_{y}"], er[er["year"] == y]) for y in ("2017", "2020")]
    for got, feats in [*checks, (d24["area_ha"], er24)]:
        want = _overlay_ha(feats, districts, GHANA_LAEA)
        want = want[want > 0]
        got = got[got > 0]
        assert set(got.index) == set(want.index)
        assert float(got.sum()) == pytest.approx(float(want.sum()), rel=5e-3)
        np.testing.assert_allclose(got[want.index], want, rtol=5e-3)  # today: within 4e-5
    assert float(d24["area_ha"].sum()) > 100_000  # ~122 000 ha mapped in 2024 (sanity)


# ------------------------------------------------------------- 5b. Gallwey et al. Table 3

# The paper's printed values (notebooks/07_accuracy.py section 5), classes as CLASSES.
PAPER_CLASS_ACCURACY = {
    "2015-16": [0.99, 0.98, 0.93],
    "2016-17": [0.98, 0.93, 0.99],
    "2017-18": [0.94, 0.98, 0.99],
    "2018-19": [1.00, 0.94, 0.99],
}
PAPER_COMMISSION = {
    "2015-16": [0.06, 0.13, 0.00],
    "2016-17": [0.04, 0.03, 0.02],
    "2017-18": [0.00, 0.05, 0.02],
    "2018-19": [0.02, 0.02, 0.02],
}
PAPER_OA = {"2015-16": 0.95, "2016-17": 0.97, "2017-18": 0.98, "2018-19": 0.98}


def _table3_matrices() -> dict[str, pd.DataFrame]:
    t3 = pd.read_csv(vitseg.io.data_path("reference") / "gallwey_table3_stratified_sample.csv")
    return {
        str(s): g.set_index("reference")[["pred_mines", "pred_built", "pred_vegetation"]]
        .set_axis(list(CLASSES), axis=1)
        .reindex(list(CLASSES))
        .T  # paper: rows reference, columns predicted; vitseg: rows map
        for s, g in t3.groupby("season")
    }


@pytest.mark.parametrize("season", sorted(PAPER_OA))
def test_gallwey_table3_recomputed_from_counts(season):
    m = _table3_matrices()[season]
    r = accuracy.count_ratios(m)
    np.testing.assert_allclose(r["producers_accuracy"], PAPER_CLASS_ACCURACY[season], atol=0.005)
    np.testing.assert_allclose(
        r["omission_error"], 1 - np.array(PAPER_CLASS_ACCURACY[season]), atol=0.005
    )
    np.testing.assert_allclose(r["commission_error"], PAPER_COMMISSION[season], atol=0.005)
    assert accuracy.overall_count_ratio(m) == pytest.approx(PAPER_OA[season], abs=0.005)


# ------------------------------------------------ 5c. Olofsson estimators on a small case

SYN_COUNTS = np.array([[40, 8, 2], [5, 80, 15], [3, 7, 140]])
SYN_MAPPED_PX = np.array([30_000, 120_000, 850_000])


def test_olofsson_areas_add_up_and_overall_accuracy_inside_its_interval():
    est = accuracy.estimate_area(SYN_COUNTS, SYN_MAPPED_PX, pixel_area_m2=100.0)
    total_ha = SYN_MAPPED_PX.sum() * 100 / 1e4
    assert float(est["area_ha"].sum()) == pytest.approx(total_ha)
    assert float(est["mapped_ha"].sum()) == pytest.approx(total_ha)
    w = SYN_MAPPED_PX / SYN_MAPPED_PX.sum()
    props = SYN_COUNTS / SYN_COUNTS.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(est["proportion"], (w[:, None] * props).sum(axis=0))
    oa = accuracy.overall_accuracy(SYN_COUNTS, SYN_MAPPED_PX)
    assert float(oa["estimate"]) == pytest.approx(float(np.sum(w * np.diag(props))))
    assert oa["lower"] < oa["estimate"] < oa["upper"] and 0 < oa["se"] < 0.05
    assert 0 < oa["lower"] and oa["upper"] < 1


def test_olofsson_intervals_cover_the_truth():
    """Stratified samples of a known population: 95 % intervals hold the truth ~95 % of runs."""
    rng = np.random.default_rng(0)
    w = SYN_MAPPED_PX / SYN_MAPPED_PX.sum()
    p_ref_given_map = np.array([[0.7, 0.2, 0.1], [0.05, 0.85, 0.1], [0.03, 0.04, 0.93]])
    true_oa = float(np.sum(w * np.diag(p_ref_given_map)))
    true_area = (w[:, None] * p_ref_given_map).sum(axis=0) * SYN_MAPPED_PX.sum()
    n_per_stratum = [50, 100, 150]
    runs, hit_oa, hit_area = 300, 0, np.zeros(3)
    for _ in range(runs):
        counts = np.array(
            [rng.multinomial(n, p) for n, p in zip(n_per_stratum, p_ref_given_map, strict=True)]
        )
        oa = accuracy.overall_accuracy(counts, SYN_MAPPED_PX)
        hit_oa += oa["lower"] <= true_oa <= oa["upper"]
        a = accuracy.estimate_area(counts, SYN_MAPPED_PX)
        hit_area += (a["area_px"] - 1.96 * a["area_px_se"] <= true_area) & (
            true_area <= a["area_px"] + 1.96 * a["area_px_se"]
        )
    assert 0.90 <= hit_oa / runs <= 0.99
    assert np.all(hit_area / runs >= 0.88) and np.all(hit_area / runs <= 0.99)
