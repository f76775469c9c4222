"""Tests for vitseg.cube: grids, band mapping, offset harmonisation, SCL, L1C reader, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.warp import transform_bounds

from vitseg.constants import S2_BANDS_10, S2_BANDS_20M, S2_BANDS_ALL
from vitseg.cube import build_cube, read_l1c_scene, reflectance_scaling
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    EmptySearchError,
    MissingAssetError,
    MissingCRSError,
    ParamsError,
    VitsegError,
)

DATA = Path(__file__).parent / "data"
ES = DATA / "stac_earthsearch"
L1C = DATA / "s2_l1c_13band_germany"

CRS = "EPSG:32630"
X0, Y0 = 600000.0, 700020.0  # UTM 30N, ~6.3N 2.1W (Ghana); multiples of 20 m
N10 = 40  # 10 m pixels per side (400 m)
EV1_KEYS = {
    "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22",
    "SCL": "scl",
}  # fmt: skip


def true_reflectance(band: str, n: int, res: float) -> np.ndarray:
    """Known reflectance: a linear ramp in x, a band-dependent level."""
    level = 0.02 + 0.02 * (list(S2_BANDS_10).index(band) if band in S2_BANDS_10 else 0)
    cols = np.arange(n) * res / 10.0  # in 10 m units
    return np.broadcast_to(level + 0.001 * cols, (n, n)).astype("float64")


def write_tif(path: Path, data: np.ndarray, *, x0: float, y0: float, res: float, crs: str) -> Path:
    profile = {
        "driver": "GTiff", "dtype": data.dtype.name, "count": 1, "height": data.shape[0],
        "width": data.shape[1], "crs": crs, "transform": Affine(res, 0, x0, 0, -res, y0),
        "nodata": 0, "tiled": True, "blockxsize": 16, "blockysize": 16,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path


def scl_pattern(n20: int) -> np.ndarray:
    scl = np.full((n20, n20), 4, "uint8")  # vegetation
    scl[:5, :5] = 9  # high-probability cloud, top-left 100 m
    scl[-5:, -5:] = 3  # cloud shadow, bottom-right
    return scl


def make_item(
    folder: Path,
    item_id: str,
    *,
    style: str,
    date: str,
    x0: float = X0,
    y0: float = Y0,
    crs: str = CRS,
    nodata_rows: int = 0,
) -> pystac.Item:
    """Write tiny DN COGs + an item in one of the real conventions.

    style: 'pre04' (baseline 03.01, raster:bands offset 0), 'c1' (05.11, offset -0.1, raw
    DN), 'es_applied' (05.11, earthsearch:boa_offset_applied true, offset -0.1 in
    metadata but DN already shifted), 'v0' (keys B04, no raster:bands, baseline 04.00).
    """
    folder.mkdir(parents=True, exist_ok=True)
    epsg = int(crs.split(":")[1])
    add = 1000 if style in ("c1", "v0") else 0
    assets: dict[str, Any] = {}
    for band in (*S2_BANDS_10, "SCL"):
        res = 20.0 if band in (*S2_BANDS_20M, "SCL") else 10.0
        n = int(N10 * 10 / res)
        if band == "SCL":
            dn = scl_pattern(n)
        else:
            dn = np.round(true_reflectance(band, n, res) * 1e4 + add).astype("uint16")
        if nodata_rows:
            dn[: int(nodata_rows * 10 / res)] = 0
        key = band if style == "v0" else EV1_KEYS[band]
        href = write_tif(folder / f"{item_id}_{band}.tif", dn, x0=x0, y0=y0, res=res, crs=crs)
        asset: dict[str, Any] = {
            "href": str(href),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "proj:shape": [n, n],
            "proj:transform": [res, 0, x0, 0, -res, y0],
        }
        if style != "v0":
            rb: dict[str, Any] = {"nodata": 0, "data_type": "uint16", "spatial_resolution": res}
            if band != "SCL":
                rb.update(scale=0.0001, offset=0.0 if style == "pre04" else -0.1)
                asset["eo:bands"] = [{"name": band}]
            asset["raster:bands"] = [rb]
        assets[key] = asset
    bounds = (x0, y0 - N10 * 10, x0 + N10 * 10, y0)
    ll = transform_bounds(crs, "EPSG:4326", *bounds)
    props: dict[str, Any] = {
        "datetime": f"{date}T10:30:00Z",
        "proj:epsg": epsg,
        "eo:cloud_cover": 12.5,
        "s2:processing_baseline": {"pre04": "03.01", "v0": "04.00"}.get(style, "05.11"),
    }
    if style == "es_applied":
        props["earthsearch:boa_offset_applied"] = True
    d = {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [[
            [ll[0], ll[1]], [ll[2], ll[1]], [ll[2], ll[3]], [ll[0], ll[3]], [ll[0], ll[1]]]]},
        "bbox": list(ll), "properties": props, "links": [], "assets": assets,
        "collection": "sentinel-2-l2a",
    }  # fmt: skip
    return pystac.Item.from_dict(d)


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[pystac.Item]:
    root = tmp_path_factory.mktemp("cogs")
    return [
        make_item(root, "pre04", style="pre04", date="2020-12-01"),
        make_item(root, "c1", style="c1", date="2022-12-01"),
        make_item(root, "esapplied", style="es_applied", date="2023-01-10"),
        make_item(root, "v0", style="v0", date="2022-02-01", nodata_rows=4),
    ]


UTM_BBOX = (X0, Y0 - N10 * 10, X0 + N10 * 10, Y0)


def test_cube_dims_grid_and_crs(items: list[pystac.Item]) -> None:
    cube = build_cube(items, bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, chunks=16)
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.shape == (4, 10, N10, N10)
    assert cube.dtype == np.float32
    assert list(cube.band.values) == list(S2_BANDS_10)
    assert cube.rio.crs.to_epsg() == 32630
    assert cube.rio.transform() == Affine(10, 0, X0, 0, -10, Y0)
    assert cube.rio.resolution() == (10.0, -10.0)
    assert cube.chunks is not None and max(cube.chunks[2]) == 16
    assert list(cube["id"].values) == ["pre04", "v0", "c1", "esapplied"]  # sorted by time
    assert cube.time.values[0] == np.datetime64("2020-12-01T10:30:00")


@pytest.mark.parametrize("backing", ["dask", "numpy"])
def test_offset_harmonised_both_sides_of_04(items: list[pystac.Item], backing: str) -> None:
    cube = build_cube(items, bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, bands=("B02", "B04"))
    if backing == "numpy":
        cube = cube.compute()
        assert isinstance(cube.data, np.ndarray)
    expected = true_reflectance("B04", N10, 10.0)
    for item_id in ["pre04", "c1", "esapplied"]:
        got = cube.sel(band="B04").isel(time=list(cube["id"].values).index(item_id)).values
        np.testing.assert_allclose(got, expected, atol=1e-6)
    # the v0 item has 4 no-data rows at the top -> NaN, the rest harmonised
    v0 = cube.sel(band="B04").isel(time=1).values
    assert np.isnan(v0[:4]).all()
    np.testing.assert_allclose(v0[4:], expected[4:], atol=1e-6)


def test_20m_bands_bicubic_to_10m(items: list[pystac.Item]) -> None:
    cube = build_cube(items[:1], bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, bands=("B8A", "B04"))
    b8a = cube.sel(band="B8A").isel(time=0).values
    # 20 m ramp: value_j at 20 m centre X0+10+20j; bicubic reproduces a linear ramp inside
    x = cube.x.values
    level = 0.02 + 0.02 * list(S2_BANDS_10).index("B8A")
    expected = level + 0.001 * (x - X0 - 10.0) / 10.0
    np.testing.assert_allclose(b8a[5:-5, 4:-4], np.broadcast_to(expected, b8a.shape)[5:-5, 4:-4],
                               atol=2e-4)  # fmt: skip
    assert b8a.shape == (N10, N10)


def test_lonlat_bbox_gives_same_aligned_grid(items: list[pystac.Item]) -> None:
    inner = (X0 + 100, Y0 - 300, X0 + 300, Y0 - 100)
    ll = transform_bounds(CRS, "EPSG:4326", *inner)
    cube_ll = build_cube(items[:1], bbox=ll, crs=CRS, bands=("B04",))
    cube_utm = build_cube(items[:1], bbox=inner, bbox_crs=CRS, crs=CRS, bands=("B04",))
    assert cube_utm.shape[-2:] == (20, 20)
    # lon/lat bbox reprojects outwards, snapped to the 10 m grid: contains the UTM grid
    assert ((cube_ll.x.values - 5) % 10 == 0).all() and ((cube_ll.y.values - 5) % 10 == 0).all()
    sub = cube_ll.sel(x=cube_utm.x, y=cube_utm.y)
    xr.testing.assert_allclose(sub.compute(), cube_utm.compute())


def test_scl_layer_nearest(items: list[pystac.Item]) -> None:
    cube = build_cube(items[:1], bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, bands=("B04", "SCL"))
    scl = cube.sel(band="SCL").isel(time=0).values
    assert set(np.unique(scl)) == {3.0, 4.0, 9.0}  # nearest: no blended classes
    assert (scl[:10, :10] == 9).all() and scl[10, 10] == 4 and (scl[-10:, -10:] == 3).all()


def test_other_utm_zone_is_reprojected(tmp_path: Path, items: list[pystac.Item]) -> None:
    # the same place written in UTM 31N: mixed zones in one search are fine
    from pyproj import Transformer

    t = Transformer.from_crs(CRS, "EPSG:32631", always_xy=True)
    x31, y31 = t.transform(X0 - 200, Y0 + 200)
    x31, y31 = np.floor(x31 / 20) * 20, np.ceil(y31 / 20) * 20
    other = make_item(tmp_path, "z31", style="c1", date="2022-12-05", x0=x31, y0=y31,
                      crs="EPSG:32631")  # fmt: skip
    ll = transform_bounds(CRS, "EPSG:4326", X0 + 50, Y0 - 150, X0 + 150, Y0 - 50)
    cube = build_cube([items[0], other], bbox=ll, crs=CRS, bands=("B02",))
    assert cube.rio.crs.to_epsg() == 32630
    assert list(cube.source_epsg.values) == [32630, 32631]
    vals = cube.compute()
    assert np.isfinite(vals.isel(time=1).values).mean() > 0.9


def test_real_earth_search_items_with_local_cogs(tmp_path: Path) -> None:
    """Real Earth Search item documents (24MVV, l2a with the applied-offset flag and the
    Collection-1 twin without), hrefs pointed at local DN COGs on the real tile grid."""
    import shapely.geometry
    from pyproj import Transformer

    docs = [json.loads((ES / f).read_text()) for f in (
        "item_sentinel-2-l2a_S2B_24MVV_20250731_0_L2A.json",
        "item_sentinel-2-c1-l2a_S2B_T24MVV_20250731T130245_L2A.json")]  # fmt: skip
    cen = shapely.geometry.shape(docs[0]["geometry"]).centroid
    x, y = Transformer.from_crs(4326, 32724, always_xy=True).transform(cen.x, cen.y)
    ox, oy = 399960 + np.floor((x - 399960) / 60) * 60, 9500020 + np.floor((y - 9500020) / 60) * 60
    red = true_reflectance("B04", 12, 10.0)
    for doc in docs:
        add = 0 if doc["properties"].get("earthsearch:boa_offset_applied") else 1000
        dn = np.round(red * 1e4 + add).astype("uint16")
        doc["assets"]["red"]["href"] = str(
            write_tif(tmp_path / f"{doc['id']}_B04.tif", dn, x0=ox, y0=oy, res=10, crs="EPSG:32724")
        )
    cube = build_cube(docs, bbox=(ox, oy - 120, ox + 120, oy), bbox_crs="EPSG:32724",
                      crs="EPSG:32724", bands=("B04",)).compute()  # fmt: skip
    assert list(cube.processing_baseline.values) == ["05.11", "05.11"]
    for t in range(2):
        np.testing.assert_allclose(cube.isel(time=t, band=0).values, red, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("item_sentinel-2-l2a_S2B_24MVV_20250731_0_L2A.json", (1e-4, 0.0, 0.0)),
        ("item_sentinel-2-c1-l2a_S2B_T24MVV_20250731T130245_L2A.json", (1e-4, -0.1, 0.0)),
        ("item_sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json", (1e-4, 0.0, 0.0)),
        ("odcstac_v0_item_S2A_28QCH_20200714_0_L2A.json", (1e-4, 0.0, 0.0)),
    ],
)
def test_reflectance_scaling_of_real_items(name: str, expected: tuple[float, ...]) -> None:
    doc = json.loads((ES / name).read_text())
    assert reflectance_scaling(doc, "B04") == pytest.approx(expected)
    assert reflectance_scaling(doc, "SCL")[:2] == (1.0, 0.0)


def test_l1c_13_band_scene_read_and_resampled() -> None:
    cube = read_l1c_scene(L1C, chunks=256)
    assert cube.shape == (1, 13, 768, 1536)
    assert list(cube.band.values) == list(S2_BANDS_ALL)
    with rasterio.open(next(L1C.glob("*_B04.jp2"))) as ds:
        b04 = ds.read(1).astype("float32")
        assert cube.rio.transform() == ds.transform
        assert cube.rio.crs == ds.crs
    got = cube.sel(band=["B04", "B11", "B01"]).isel(time=0).compute()
    # 10 m band: exactly the file's DN / 10000 (no resampling on the native grid)
    np.testing.assert_allclose(got.sel(band="B04").values, np.where(b04 > 0, b04 / 1e4, np.nan),
                               rtol=1e-6)  # fmt: skip
    # 20 m and 60 m bands: block means of the resampled 10 m values match the native pixels
    for band, f in (("B11", 2), ("B01", 6)):
        with rasterio.open(next(L1C.glob(f"*_{band}.jp2"))) as ds:
            native = ds.read(1).astype("float64") / 1e4
            assert ds.transform.a == 10 * f
        up = got.sel(band=band).values.astype("float64")
        blocks = up.reshape(up.shape[0] // f, f, up.shape[1] // f, f).mean(axis=(1, 3))
        inner = (slice(2, -2), slice(2, -2))
        rel = np.abs(blocks[inner] - native[inner]) / native[inner]
        assert np.median(rel) < 0.01, (band, np.median(rel))
        assert np.corrcoef(blocks[inner].ravel(), native[inner].ravel())[0, 1] > 0.98


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"crs": None}, MissingCRSError, "explicit output crs"),
        ({"crs": "EPSG:4326"}, MissingCRSError, "projected CRS in metres"),
        ({"bands": ("B04", "red")}, BandError, "unknown band"),
        ({"bands": ("B01",)}, MissingAssetError, "no asset for band"),
        ({"bbox": (1.0, 1.0, 1.1, 1.1), "bbox_crs": "EPSG:4326"}, EmptySearchError, "outside"),
        ({"bbox": (5, 5, 1, 1)}, VitsegError, "min < max"),
    ],
)
def test_bad_inputs_raise_clear_errors(
    items: list[pystac.Item], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"bbox": UTM_BBOX, "bbox_crs": CRS, "crs": CRS, "bands": ("B04",)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        build_cube(items, **args)


def test_empty_items_raise() -> None:
    with pytest.raises(EmptySearchError, match="no items"):
        build_cube([], bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cog_raises_at_compute(tmp_path: Path, damage: str) -> None:
    item = make_item(tmp_path, "bad", style="c1", date="2022-12-01")
    path = Path(item.assets["red"].href)
    raw = path.read_bytes()
    path.write_bytes(b"not a tiff at all" * 50 if damage == "garbage" else raw[: len(raw) // 3])
    cube = build_cube([item], bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, bands=("B04",))
    with pytest.raises(CorruptRasterError, match="cannot read raster"):
        cube.compute()


def test_trust_offset_metadata_switch(items: list[pystac.Item]) -> None:
    """Catalogs that keep +1000 DN but set the applied flag: trust raster:bands instead."""
    cube = build_cube(items, bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, bands=("B04",),
                      trust_offset_metadata=True).compute()  # fmt: skip
    ids = list(cube["id"].values)
    expected = true_reflectance("B04", N10, 10.0)
    got = cube.sel(band="B04").isel(time=ids.index("esapplied")).values
    np.testing.assert_allclose(got, expected - 0.1, atol=1e-6)  # flag ignored
    got = cube.sel(band="B04").isel(time=ids.index("c1")).values
    np.testing.assert_allclose(got, expected, atol=1e-6)  # unaffected


# ------------------------------------------------------------------ same-pass tiles: one step

LON0, LAT0 = -0.003, 6.0  # just west of the 30N/31N boundary (0 degrees), eastern Ghana


def _two_zone_items(root: Path) -> tuple[list[pystac.Item], dict[str, float]]:
    """West half 'A' (30N, applied-offset DN), east half 'B' (31N, raw DN, 12 no-data rows on
    top, less cloudy), overlapping by ~200 m, both on 2022-12-01; 'C' (30N) on 2022-12-06."""
    import datetime as dt

    from pyproj import Transformer

    xw, yw = Transformer.from_crs(4326, CRS, always_xy=True).transform(LON0, LAT0)
    xw, yw = float(np.floor(xw / 20) * 20), float(np.floor(yw / 20) * 20)
    xe, ye = Transformer.from_crs(CRS, "EPSG:32631", always_xy=True).transform(xw + 200, yw)
    xe, ye = float(np.floor(xe / 20) * 20), float(np.ceil(ye / 20) * 20)
    west = make_item(root, "A", style="es_applied", date="2022-12-01", x0=xw, y0=yw)
    east = make_item(root, "B", style="c1", date="2022-12-01", x0=xe, y0=ye, crs="EPSG:32631",
                     nodata_rows=12)  # fmt: skip
    east.datetime = dt.datetime(2022, 12, 1, 10, 30, 5, tzinfo=dt.UTC)  # same pass, 5 s later
    east.properties["s2:processing_baseline"] = "05.10"
    west.properties["eo:cloud_cover"] = 30.0
    east.properties["eo:cloud_cover"] = 10.0
    later = make_item(root, "C", style="c1", date="2022-12-06", x0=xw, y0=yw)
    return [later, east, west], {"xw": xw, "yw": yw, "xe": xe, "ye": ye}


@pytest.fixture(scope="module")
def two_zones(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[pystac.Item], dict[str, float]]:
    return _two_zone_items(tmp_path_factory.mktemp("zones"))


def _aoi(g: dict[str, float]) -> tuple[float, float, float, float]:
    return (g["xw"], g["yw"] - 380, g["xw"] + 560, g["yw"] - 20)


def test_same_day_tiles_in_two_zones_become_one_step(
    two_zones: tuple[list[pystac.Item], dict[str, float]],
) -> None:
    import dask.array as da
    from pyproj import Transformer

    items, g = two_zones
    kw: dict[str, Any] = {"bbox": _aoi(g), "bbox_crs": CRS, "crs": CRS, "bands": ("B04", "SCL"),
                          "chunks": 32}  # fmt: skip
    cube = build_cube(items, **kw)
    assert isinstance(cube.data, da.Array)  # still lazy
    assert cube.sizes["time"] == 2 and cube.dtype == np.float32
    assert list(cube["id"].values) == ["A+B", "C"]
    assert list(cube["n_items"].values) == [2, 1] and cube["n_items"].dtype.kind == "i"
    assert cube.time.values[0] == np.datetime64("2022-12-01T10:30:00")  # the earliest
    np.testing.assert_allclose(cube["cloud_cover_pct"].values, [20.0, 12.5])
    assert list(cube["source_epsg"].values) == ["32630+32631", "32630"]
    assert list(cube["processing_baseline"].values) == ["05.10+05.11", "05.11"]

    single = build_cube(items, group_by=None, **kw)
    assert list(single["id"].values) == ["A", "B", "C"]
    assert list(single["source_epsg"].values) == [32630, 32631, 32630]
    assert list(single["n_items"].values) == [1, 1, 1]
    halves = single.compute().values  # (time, band, y, x)
    merged = cube.compute().values[0]
    w, e = halves[0], halves[1]
    ok_w, ok_e = np.isfinite(w), np.isfinite(e)
    assert not ok_w.all() and not ok_e.all()  # each half alone has gaps
    np.testing.assert_array_equal(np.isfinite(merged), ok_w | ok_e)
    assert np.isfinite(merged).mean() > 0.9
    # per band: the less cloudy B first, A where B has no data
    np.testing.assert_array_equal(merged, np.where(ok_e, e, w))
    np.testing.assert_array_equal(cube.isel(time=1).values, single.isel(time=2).values)

    # against the source rasters: ramps of 0.001 per 10 m column from each item's corner
    level = 0.02 + 0.02 * list(S2_BANDS_10).index("B04")
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    x31, y31 = Transformer.from_crs(CRS, "EPSG:32631", always_xy=True).transform(xx, yy)
    west_true = level + 0.001 * (xx - g["xw"] - 5) / 10
    east_true = level + 0.001 * (x31 - g["xe"] - 5) / 10
    b04 = merged[0]
    in_w = xx < g["xw"] + 370  # same grid as A: exact
    in_e = (x31 > g["xe"] + 30) & (x31 < g["xe"] + 370) & (y31 > g["ye"] - 370)
    e_valid = in_e & (y31 < g["ye"] - 140)  # away from B's edges and no-data rows
    a_only = in_w & ~ok_e[0]  # where B has no data: A, also inside the overlap
    assert e_valid.sum() > 400 and a_only.sum() > 400 and (a_only & in_e).sum() > 20
    np.testing.assert_allclose(b04[e_valid], east_true[e_valid], atol=2e-4)  # reprojected B
    np.testing.assert_allclose(b04[a_only], west_true[a_only], atol=1e-6)  # same-CRS A
    assert np.abs(east_true - west_true)[e_valid & in_w].min() > 0.01  # overlap: B, not A
    assert set(np.unique(merged[1][np.isfinite(merged[1])])) <= {3.0, 4.0, 9.0}  # SCL classes


def test_solar_day_shifts_utc_by_longitude() -> None:
    from datetime import date

    from vitseg.cube import _groups, _solar_day

    def item(i: str, when: str, lon: float, *, geometry: bool = True) -> dict[str, Any]:
        box = [lon - 0.5, 5.0, lon + 0.5, 6.0]
        ring = [[box[0], 5.0], [box[2], 5.0], [box[2], 6.0], [box[0], 6.0], [box[0], 5.0]]
        d: dict[str, Any] = {"id": i, "bbox": box, "properties": {"datetime": when}}
        if geometry:
            d["geometry"] = {"type": "Polygon", "coordinates": [ring]}
        return d

    # Ghana's two zones at 10:30 UTC: the same day
    assert _solar_day(item("w", "2022-12-01T10:30:00Z", -3.0)) == date(2022, 12, 1)
    assert _solar_day(item("e", "2022-12-01T10:30:00Z", 1.0, geometry=False)) == date(2022, 12, 1)
    # same UTC date, 45 degrees apart: 22:00 UTC is 01:00 on the next day at 45E ...
    a, b = item("a", "2022-12-01T22:00:00Z", 0.0), item("b", "2022-12-01T22:00:00+00:00", 45.0)
    assert _solar_day(b) == date(2022, 12, 2) and _solar_day(a) == date(2022, 12, 1)
    assert _solar_day(item("c", "2022-12-01T01:00:00Z", -30.0)) == date(2022, 11, 30)
    assert _groups([a, b], "solar_day") == [[0], [1]]  # ... so they are not merged
    c = item("c", "2022-12-01T10:00:00Z", 0.2)
    c["properties"]["eo:cloud_cover"] = 50.0
    a["properties"]["eo:cloud_cover"] = 5.0
    assert _groups([c, a], "solar_day") == [[1, 0]]  # least cloudy first
    assert _groups([c, a], None) == [[0], [1]]


def test_group_by_rejects_unknown(items: list[pystac.Item]) -> None:
    with pytest.raises(ParamsError, match=r"'group_by' must be one of \['solar_day', None\]"):
        build_cube(items, bbox=UTM_BBOX, bbox_crs=CRS, crs=CRS, group_by="day")  # type: ignore[arg-type]
