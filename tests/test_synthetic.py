import datetime as dt
import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio

from vitseg import synthetic
from vitseg.constants import S2_BANDS_10, S2_BANDS_20M
from vitseg.errors import VitsegError
from vitseg.io import sha256_file

SIZE = 64
ARGS = {"size_px": SIZE, "dates_per_season": 3, "seed": 3}

# Structure of a real Earth Search v1 ``sentinel-2-l2a`` item
# (item_sentinel-2-l2a_S2B_24MVV_20250731_0_L2A.json in the shared real data).
REAL_BAND_ASSETS = {
    "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "swir16": "B11", "swir22": "B12",
}  # fmt: skip
REAL_PROPERTIES = {
    "datetime", "platform", "constellation", "instruments", "eo:cloud_cover", "proj:epsg",
    "mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square", "grid:code",
    "s2:processing_baseline", "s2:product_uri", "s2:product_type", "s2:nodata_pixel_percentage",
    "s2:high_proba_clouds_percentage", "s2:cloud_shadow_percentage",
    "earthsearch:boa_offset_applied", "created", "updated",
}  # fmt: skip
REAL_BAND_ASSET_KEYS = {
    "href", "type", "title", "eo:bands", "gsd", "proj:shape", "proj:transform",
    "raster:bands", "roles",
}  # fmt: skip
REAL_RASTER_BAND_KEYS = {"nodata", "data_type", "spatial_resolution", "scale", "offset"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("cat") / "synthetic"
    path = synthetic.write_catalog(root, **ARGS)
    return path


@pytest.fixture(scope="module")
def items(catalog):
    return json.loads((catalog.parent / "items.json").read_text())["features"]


def _read(href):
    with rasterio.open(href) as src:
        return src.read(1), src.profile, src.res


def test_catalog_layout(catalog, items):
    root = catalog.parent
    assert catalog.name == "catalog.json"
    # 2 boxes x 2 seasons x 3 dates
    assert len(items) == 12
    for box in ("obuasi", "kibi"):
        for season in ("2020-21", "2021-22"):
            assert (root / "truth" / f"{box}_{season}.tif").exists()
            assert (root / "labels" / f"{box}_{season}.gpkg").exists()
    cat = pystac.Catalog.from_file(str(catalog))
    read = list(cat.get_items(recursive=True))
    assert sorted(i.id for i in read) == sorted(i["id"] for i in items)
    ic = pystac.ItemCollection.from_file(str(root / "items.json"))
    assert len(ic) == 12
    assert (
        json.loads((root / "synthetic.json").read_text())["version"] == synthetic.SYNTHETIC_VERSION
    )


def test_item_json_has_earth_search_structure(items):
    for item in items:
        assert item["collection"] == "sentinel-2-l2a"
        assert item["stac_version"] == "1.0.0"
        assert REAL_PROPERTIES <= set(item["properties"])
        props = item["properties"]
        assert props["proj:epsg"] == 32630 and props["proj:code"] == "EPSG:32630"
        assert props["mgrs:utm_zone"] == 30 and props["mgrs:latitude_band"] == "N"
        assert props["mgrs:grid_square"] in {"XM", "YM"}  # tiles 30NXM (Obuasi), 30NYM (Kibi)
        assert 0.0 <= props["eo:cloud_cover"] <= 100.0
        west, south, east, north = item["bbox"]
        assert -2 < west < east < 0 and 6 < south < north < 6.4  # EPSG:4326, Ghana
        assert item["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        for key, band in REAL_BAND_ASSETS.items():
            asset = item["assets"][key]
            assert REAL_BAND_ASSET_KEYS <= set(asset)
            assert asset["eo:bands"][0]["name"] == band
            assert asset["proj:epsg"] == 32630 and asset["proj:code"] == "EPSG:32630"
            (rb,) = asset["raster:bands"]
            assert set(rb) == REAL_RASTER_BAND_KEYS
            assert rb["scale"] == 0.0001 and rb["nodata"] == 0 and rb["data_type"] == "uint16"
            assert Path(asset["href"]).is_absolute() and Path(asset["href"]).exists()
            assert Path(asset["href"]).name == f"{band}.tif"  # Earth Search file names
        scl = item["assets"]["scl"]
        assert scl["raster:bands"][0]["data_type"] == "uint8"
        assert Path(scl["href"]).exists()


def test_baseline_offsets_on_both_sides_of_0400(items):
    by = {}
    for it in items:
        by.setdefault(it["properties"]["s2:processing_baseline"], []).append(it)
    assert {"02.14", "03.01", "04.00"} <= set(by)
    for it in items:
        when = dt.date.fromisoformat(it["properties"]["datetime"][:10])
        offset = it["assets"]["red"]["raster:bands"][0]["offset"]
        new = it["properties"]["s2:processing_baseline"] >= "04.00"
        assert new == (when >= dt.date(2022, 1, 25))
        assert offset == (-0.1 if new else 0.0)
        # the DN still carry the offset, so readers must apply raster:bands' -0.1
        assert it["properties"]["earthsearch:boa_offset_applied"] is False
    # Same box and season, one date on each side: DN differ by ~1000 on clear pixels.
    season = [i for i in items if i["properties"]["vitseg:season"] == "2021-22"]
    box = [i for i in season if i["properties"]["vitseg:box"] == "obuasi"]
    old = next(i for i in box if i["properties"]["s2:processing_baseline"] == "03.01")
    new = next(i for i in box if i["properties"]["s2:processing_baseline"] == "04.00")
    (red_old, _, _), (red_new, _, _) = (
        _read(old["assets"]["red"]["href"]),
        _read(new["assets"]["red"]["href"]),
    )
    scl_old, scl_new = (_read(i["assets"]["scl"]["href"])[0] for i in (old, new))
    clear = np.isin(scl_old, (4, 5)) & np.isin(scl_new, (4, 5))
    clear10 = np.repeat(np.repeat(clear, 2, 0), 2, 1)
    diff = np.median(red_new[clear10].astype(float)) - np.median(red_old[clear10].astype(float))
    assert 850 < diff < 1150
    # Decoded with the item's own scale/offset, both give similar reflectance.
    refl_old = np.median(red_old[clear10]) * 1e-4 + 0.0
    refl_new = np.median(red_new[clear10]) * 1e-4 - 0.1
    assert abs(refl_old - refl_new) < 0.015
    # ... and vitseg.cube's default reading of the item metadata agrees.
    from vitseg.cube import reflectance_scaling

    assert reflectance_scaling(old, "B04")[:2] == (1e-4, 0.0)
    assert reflectance_scaling(new, "B04")[:2] == (1e-4, -0.1)


def test_twenty_metre_bands_at_twenty_metres(items):
    item = items[0]
    red, red_profile, red_res = _read(item["assets"]["red"]["href"])
    assert red_res == (10.0, 10.0) and red.shape == (SIZE, SIZE)
    assert red.dtype == np.uint16
    for band in S2_BANDS_20M:
        key = next(k for k, v in REAL_BAND_ASSETS.items() if v == band)
        data, profile, res = _read(item["assets"][key]["href"])
        assert res == (20.0, 20.0)
        assert data.shape == (SIZE // 2, SIZE // 2)
        assert list(data.shape) == item["assets"][key]["proj:shape"]
        assert profile["transform"].c == red_profile["transform"].c
        assert profile["transform"].f == red_profile["transform"].f
        assert item["assets"][key]["proj:transform"][0] == 20
    scl, _, scl_res = _read(item["assets"]["scl"]["href"])
    assert scl_res == (20.0, 20.0) and scl.dtype == np.uint8
    assert set(np.unique(scl)) <= set(range(12))
    with rasterio.open(item["assets"]["red"]["href"]) as src:
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert src.nodata == 0


def test_truth_classes_and_mining_grows(catalog):
    root = catalog.parent
    seen = set()
    for box in ("obuasi", "kibi"):
        t0 = synthetic.load_truth(root, box, "2020-21")
        t1 = synthetic.load_truth(root, box, "2021-22")
        assert t0.dtype == np.uint8 and t0.dims == ("y", "x") and t0.shape == (SIZE, SIZE)
        assert t0.rio.crs.to_epsg() == 32630
        assert set(np.unique(t0.values)) <= {0, 1, 2, 255}
        seen |= set(np.unique(t0.values).tolist())
        assert (t1.values == 0).sum() > (t0.values == 0).sum()
        l0 = gpd.read_file(root / "labels" / f"{box}_2020-21.gpkg")
        l1 = gpd.read_file(root / "labels" / f"{box}_2021-22.gpkg")
        assert set(l0["class"]) <= {"mines", "built"} and "mines" in set(l0["class"])
        assert l0.crs.to_epsg() == 32630
        a0 = l0[l0["class"] == "mines"].area.sum()
        a1 = l1[l1["class"] == "mines"].area.sum()
        assert a1 > a0
    assert {0, 1, 2} <= seen


def test_truth_matches_real_polygons(catalog):
    """Season 1 mines are the real asm-map polygons rasterised on the 10 m grid."""
    from rasterio import features

    root = catalog.parent
    truth = synthetic.load_truth(root, "kibi", "2020-21")
    real = gpd.read_file(synthetic_data("asm_ground_truth_ghana.geojson")).to_crs(32630)
    real_mask = features.rasterize(
        [(g, 1) for g in real.geometry],
        out_shape=truth.shape,
        transform=truth.rio.transform(),
        fill=0,
    )
    agree = ((truth.values == 0) == (real_mask == 1)).mean()
    assert agree > 0.97


def synthetic_data(name):
    from vitseg.io import data_path

    return data_path(name)


def test_determinism_same_seed_same_bytes(catalog, items, tmp_path):
    other = synthetic.write_catalog(tmp_path / "again", **ARGS)
    items2 = json.loads((other.parent / "items.json").read_text())["features"]
    assert [i["id"] for i in items2] == [i["id"] for i in items]
    for a, b in zip(items, items2, strict=True):
        for key in ("red", "swir16", "scl"):
            assert sha256_file(a["assets"][key]["href"]) == sha256_file(b["assets"][key]["href"])
        assert a["properties"] == b["properties"]
    assert sha256_file(catalog.parent / "truth" / "obuasi_2021-22.tif") == sha256_file(
        other.parent / "truth" / "obuasi_2021-22.tif"
    )
    different = synthetic.write_catalog(
        tmp_path / "other", boxes=("kibi",), seasons=("2020-21",), size_px=SIZE,
        dates_per_season=1, seed=4,
    )  # fmt: skip
    it_d = json.loads((different.parent / "items.json").read_text())["features"][0]
    it_s = next(
        i for i in items if i["id"] == it_d["id"] or i["properties"]["vitseg:box"] == "kibi"
    )
    assert sha256_file(it_d["assets"]["red"]["href"]) != sha256_file(it_s["assets"]["red"]["href"])


def test_cache_hit_is_fast_and_untouched(catalog):
    red = next(catalog.parent.glob("sentinel-2-l2a/*/B04.tif"))
    mtime = red.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = synthetic.write_catalog(catalog.parent, **ARGS)
    assert time.perf_counter() - t0 < 0.5
    assert again == catalog
    assert red.stat().st_mtime_ns == mtime


def test_changed_arguments_rewrite(tmp_path):
    root = tmp_path / "c"
    synthetic.write_catalog(root, boxes=("kibi",), seasons=("2020-21",), dates_per_season=1,
                            size_px=16, seed=0)  # fmt: skip
    synthetic.write_catalog(root, boxes=("kibi",), seasons=("2020-21",), dates_per_season=2,
                            size_px=16, seed=0)  # fmt: skip
    items = json.loads((root / "items.json").read_text())["features"]
    assert len(items) == 2
    assert not list(tmp_path.glob(".c*"))  # no temporary folder left behind


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"boxes": ("accra",)}, "unknown box 'accra'"),
        ({"seasons": ("2020",)}, "season must look like"),
        ({"seasons": ("2020-22",)}, "season must look like"),
        ({"crs": "EPSG:4326"}, "geographic"),
        ({"crs": "EPSG:nope"}, "not a valid CRS"),
        ({"size_px": 2}, "size_px"),
    ],
)
def test_write_catalog_errors(tmp_path, kwargs, match):
    with pytest.raises(VitsegError, match=match):
        synthetic.write_catalog(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_load_truth_missing(tmp_path):
    with pytest.raises(VitsegError, match="write_catalog"):
        synthetic.load_truth(tmp_path, "obuasi", "2020-21")


@pytest.mark.parametrize("season", ["2020-21", "2021-22", "2023-24"])
def test_season_dates_in_dry_season(season):
    dates = synthetic.season_dates(season, 5, seed=1)
    y0 = int(season[:4])
    assert dates == sorted(dates) and len(dates) == 5
    for d in dates:
        assert (d.year == y0 and d.month in (11, 12)) or (d.year == y0 + 1 and d.month <= 3)


def test_default_season_spans_baseline_change():
    dates = synthetic.season_dates("2021-22", 3)
    before = [d for d in dates if d.date() < dt.date(2022, 1, 25)]
    assert 0 < len(before) < len(dates)
    assert {d.month for d in dates} == {12, 1, 2}


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
def test_make_scene(crs):
    scene = synthetic.make_scene(size=48, crs=crs, seed=1)
    assert scene.dims == ("band", "y", "x")
    assert scene.shape == (10, 48, 48)
    assert scene.dtype == np.float32
    assert scene.rio.crs.to_string() == crs
    assert list(scene.band.values) == list(S2_BANDS_10)
    truth = scene["truth"].values
    assert truth.shape == (48, 48) and {0, 2} <= set(np.unique(truth).tolist())
    assert np.all((scene.values > -0.1) & (scene.values < 1.0))
    again = synthetic.make_scene(size=48, crs=crs, seed=1)
    np.testing.assert_array_equal(scene.values, again.values)


def test_make_scene_clouds_nodata_and_scl():
    clear = synthetic.make_scene(size=64, seed=2)
    cloudy = synthetic.make_scene(size=64, seed=2, cloud_frac=0.4, nodata_frac=0.2)
    scl = cloudy["scl"].values
    assert np.isin(scl, (8, 9, 10)).mean() > 0.2
    blue = cloudy.sel(band="B02").values
    thick = scl == 9
    assert np.nanmean(blue[thick]) > 2 * np.nanmean(clear.sel(band="B02").values)
    nan = np.isnan(blue)
    assert 0.1 < nan.mean() < 0.3
    # SCL is at 20 m: the no-data edge matches to within one 10 m pixel.
    assert (scl[nan] == 0).mean() > 0.9


def test_make_scene_real_box_window():
    scene = synthetic.make_scene(size=64, box="kibi", bands=("B04", "B08", "B11"))
    assert scene.shape == (3, 64, 64)
    assert (scene["truth"].values == 0).mean() > 0.05
    with pytest.raises(VitsegError, match="unknown bands"):
        synthetic.make_scene(bands=("B99",))


def test_scenes_are_spectrally_confusable():
    """Per-pixel spectra of mines and built areas overlap; vegetation is separable."""
    scene = synthetic.make_scene(size=192, box="obuasi", seed=0)
    truth = scene["truth"].values
    x = scene.values.reshape(10, -1).T
    y = truth.ravel()
    means = np.stack([x[y == c].mean(axis=0) for c in (0, 1, 2)])
    nearest = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    acc = {c: (nearest[y == c] == c).mean() for c in (0, 1, 2)}
    assert acc[2] > 0.8  # vegetation mostly right
    assert acc[0] < 0.9 and acc[1] < 0.9  # mines and built confused per pixel


@pytest.mark.parametrize("dask", [False, True])
@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
def test_make_cube(dask, crs):
    cube = synthetic.make_cube(n_time=3, n_band=4, size=32, crs=crs, seed=0, dask=dask)
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.shape == (3, 4, 32, 32)
    assert cube.dtype == np.float32
    assert list(cube.band.values) == ["B02", "B03", "B04", "B08"]
    assert cube.rio.crs.to_string() == crs
    res = cube.rio.resolution()
    assert abs(res[0]) == (10.0 if crs == "EPSG:32630" else 1e-4)
    assert np.issubdtype(cube.time.dtype, np.datetime64)
    assert (cube.chunks is not None) == dask
    values = cube.values
    assert np.isfinite(values).all()
    # Different dates differ (clouds, radiometry); same seed is reproducible.
    assert not np.allclose(values[0], values[1])
    np.testing.assert_array_equal(values, synthetic.make_cube(crs=crs, seed=0).values)


def test_make_cube_ten_bands_and_errors():
    cube = synthetic.make_cube(n_time=1, n_band=10, size=16)
    assert list(cube.band.values) == list(S2_BANDS_10)
    with pytest.raises(VitsegError, match="n_band"):
        synthetic.make_cube(n_band=11)
    with pytest.raises(VitsegError, match="n_time"):
        synthetic.make_cube(n_time=0)
