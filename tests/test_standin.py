"""Tests of vitseg.standin: the real path's inputs made from a simulated catalog."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from pyproj import Transformer
from rasterio import features
from rasterio.warp import Resampling, reproject
from shapely.geometry import box as shp_box
from shapely.geometry import shape
from shapely.ops import unary_union

from vitseg.errors import MissingFileError, ParamsError, SampleError
from vitseg.standin import StandIn, fill_sample_from_truth, write_standin
from vitseg.synthetic import load_truth, write_catalog

SEASONS = ["2020-21", "2021-22"]
SIZE = 128
OVERLAP = 32
# (128 - 32) // 2 rounded down to even: the east part starts at column 48, the west one
# ends at column 48 + 32 = 80.
EAST_START, WEST_END = 48, 80


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    write_catalog(root, boxes=["kibi"], seasons=SEASONS, dates_per_season=1, size_px=SIZE)
    return root


@pytest.fixture(scope="module")
def standin(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> StandIn:
    out = tmp_path_factory.mktemp("standin") / "s"
    return write_standin(catalog, out, box="kibi", seasons=SEASONS, overlap_px=OVERLAP)


def _items(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["features"]  # type: ignore[no-any-return]


def _read(href: str) -> tuple[Any, Any, Any]:
    with rasterio.open(href) as src:
        return src.read(1), src.transform, src.crs


def _pct(scl: Any, codes: tuple[int, ...]) -> float:
    valid = scl > 0
    return 100.0 * float(np.isin(scl[valid], codes).sum()) / max(int(valid.sum()), 1)


# ----------------------------------------------------------------------------- items
def test_two_items_per_date_in_two_utm_zones(catalog: Path, standin: StandIn) -> None:
    src = _items(catalog / "items.json")
    items = _items(standin.items)
    assert len(items) == 2 * len(src) == 4
    by_time: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        by_time.setdefault(it["properties"]["datetime"], []).append(it)
    assert sorted(by_time) == sorted(s["properties"]["datetime"] for s in src)
    for s in src:
        west, east = sorted(by_time[s["properties"]["datetime"]], key=lambda i: i["id"])
        assert west["properties"]["proj:epsg"] == 32630
        assert east["properties"]["proj:epsg"] == 32631
        # West keeps the source's tile; east gets zone 31 (lettering: 31NAG at lon -0.6).
        assert west["id"] == s["id"]
        assert east["id"] == s["id"].replace("30NYM", "31NAG")
        for it, zone in ((west, 30), (east, 31)):
            p = it["properties"]
            tile = f"{p['mgrs:utm_zone']}{p['mgrs:latitude_band']}{p['mgrs:grid_square']}"
            assert p["mgrs:utm_zone"] == zone
            assert it["id"].split("_")[1] == tile
            assert p["grid:code"] == f"MGRS-{tile}"
            assert f"_T{tile}_" in p["s2:product_uri"]
            assert p["proj:code"] == f"EPSG:{p['proj:epsg']}"
            assert it["collection"] == "sentinel-2-l2a"
            assert p["platform"] == s["properties"]["platform"]


def test_assets_match_their_files(standin: StandIn) -> None:
    for it in _items(standin.items):
        assert set(it["assets"]) == {
            "blue",
            "green",
            "red",
            "rededge1",
            "rededge2",
            "rededge3",
            "nir",
            "nir08",
            "swir16",
            "swir22",
            "scl",
        }
        for asset in it["assets"].values():
            assert Path(asset["href"]).is_absolute()
            assert Path(asset["href"]).is_relative_to(standin.root)
            with rasterio.open(asset["href"]) as f:
                assert list(f.shape) == asset["proj:shape"]
                assert list(f.transform)[:6] == pytest.approx(asset["proj:transform"])
                assert f.crs.to_epsg() == asset["proj:epsg"] == it["properties"]["proj:epsg"]
                assert f.nodata == 0
                assert f.profile["compress"] == "deflate"
                assert f.res[0] == asset["gsd"]


def test_cloud_cover_is_recomputed_from_each_part(standin: StandIn) -> None:
    covers = []
    for it in _items(standin.items):
        scl, _, _ = _read(it["assets"]["scl"]["href"])
        p = it["properties"]
        assert p["eo:cloud_cover"] == pytest.approx(_pct(scl, (8, 9, 10)), abs=1e-5)
        assert p["s2:water_percentage"] == pytest.approx(_pct(scl, (6,)), abs=1e-5)
        covers.append(p["eo:cloud_cover"])
    assert len(set(covers)) == len(covers)  # each part has its own


def test_west_part_is_the_source_window_exactly(catalog: Path, standin: StandIn) -> None:
    src = {s["id"]: s for s in _items(catalog / "items.json")}
    for it in _items(standin.items):
        if it["properties"]["proj:epsg"] != 32630:
            continue
        for key, asset in it["assets"].items():
            a, tr, _ = _read(src[it["id"]]["assets"][key]["href"])
            w, wtr, _ = _read(asset["href"])
            f = 2 if asset["gsd"] == 20 else 1
            assert w.shape == (a.shape[0], WEST_END // f)
            np.testing.assert_array_equal(w, a[:, : WEST_END // f])
            assert wtr == tr


@pytest.mark.parametrize("key", ["red", "swir16", "scl"])
def test_east_part_reprojected_back_matches_the_source(
    catalog: Path, standin: StandIn, key: str
) -> None:
    src = {s["properties"]["datetime"]: s for s in _items(catalog / "items.json")}
    for it in _items(standin.items):
        if it["properties"]["proj:epsg"] != 32631:
            continue
        a, tr, crs = _read(src[it["properties"]["datetime"]]["assets"][key]["href"])
        e, etr, ecrs = _read(it["assets"][key]["href"])
        assert ecrs.to_epsg() == 32631
        back = np.zeros_like(a)
        reproject(
            e,
            back,
            src_transform=etr,
            src_crs=ecrs,
            dst_transform=tr,
            dst_crs=crs,
            src_nodata=0,
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
        f = 2 if key != "red" else 1
        own, rest = a[:, EAST_START // f :], back[:, EAST_START // f :]
        both = (own > 0) & (rest > 0)
        assert both.mean() > 0.98 * (own > 0).mean()  # the east part covers its columns
        assert not back[:, : EAST_START // f - 2].any()  # and nothing west of them
        if key == "scl":  # nearest both ways: almost all equal
            assert (own[both] == rest[both]).mean() > 0.97
        else:  # bilinear: close (median within 5 %), strongly correlated
            rel = np.abs(own[both].astype(float) - rest[both]) / own[both]
            assert np.median(rel) < 0.05
            assert np.corrcoef(own[both].astype(float), rest[both])[0, 1] > 0.95


def test_footprints_are_valid_pixels_in_lonlat(standin: StandIn) -> None:
    items = _items(standin.items)
    for it in items:
        data, tr, crs = _read(it["assets"]["blue"]["href"])
        mask = data > 0
        shapes = [
            shape(g) for g, _ in features.shapes(mask.astype("uint8"), mask=mask, transform=tr)
        ]
        valid = gpd.GeoSeries([unary_union(shapes)], crs=crs).to_crs(4326).iloc[0]
        geom = shape(it["geometry"])
        # Same area within the simplification tolerance (one pixel on the edges).
        assert abs(geom.area - valid.area) / valid.area < 0.05
        assert it["bbox"] == pytest.approx(list(geom.bounds), abs=1e-6)
    west, east = (shape(it["geometry"]) for it in items[:2])
    # They overlap by about 32 of 128 columns (a quarter of the scene's width).
    assert 0.15 < west.intersection(east).area / west.union(east).area < 0.35


def test_no_simulator_property_anywhere(standin: StandIn) -> None:
    text = standin.items.read_text()
    assert "vitseg:" not in text
    coll = json.loads((standin.items.parent / "collection.json").read_text())
    assert "vitseg:" not in json.dumps(coll)
    assert "SIMULATED" in coll["description"] and "vitseg.synthetic" in coll["description"]
    assert "stand-in for Earth Search" in coll["description"]
    assert coll["id"] == "sentinel-2-l2a"


def test_items_are_read_by_the_real_search(standin: StandIn) -> None:
    from vitseg.stac import search_items

    aoi = gpd.read_file(standin.aoi_file).to_crs(4326)
    found = search_items(standin.items, bbox=list(aoi.total_bounds), datetime=None)
    assert len(found) == 4
    assert {i.properties["proj:epsg"] for i in found} == {32630, 32631}


# ----------------------------------------------------------------------------- vectors
def test_aoi_is_3857_inside_the_parts_and_crosses_the_seam(standin: StandIn) -> None:
    aoi = gpd.read_file(standin.aoi_file, layer="aoi")
    assert aoi.crs.to_epsg() == 3857
    assert aoi["name"].tolist() == ["standin"]
    west_it, east_it = _items(standin.items)[:2]
    parts = []
    for it in (west_it, east_it):
        _, tr, crs = _read(it["assets"]["blue"]["href"])
        shape = it["assets"]["blue"]["proj:shape"]
        grid = shp_box(tr.c, tr.f + shape[0] * tr.e, tr.c + shape[1] * tr.a, tr.f)
        parts.append(gpd.GeoSeries([grid], crs=crs).segmentize(10).to_crs(3857).iloc[0])
    poly = aoi.geometry.iloc[0]
    assert poly.within(unary_union(parts))
    assert not poly.within(parts[0]) and not poly.within(parts[1])  # crosses the seam
    assert poly.area > 0.6 * unary_union(parts).area


def test_labels_use_the_researchers_words_within_the_extent(
    catalog: Path, standin: StandIn
) -> None:
    assert sorted(n for n, _ in pyogrio.list_layers(standin.labels_file)) == ["extent", "labels"]
    labels = gpd.read_file(standin.labels_file, layer="labels")
    extent = gpd.read_file(standin.labels_file, layer="extent")
    assert set(labels["landcover"]) == {"galamsey", "settlement"}
    truth = load_truth(catalog, "kibi", SEASONS[0])
    t = truth.values
    scene = shp_box(*truth.rio.bounds())
    # The scene minus its southern 15 %: 128 - round(19.2) = 109 rows labelled.
    assert extent.geometry.iloc[0].area == pytest.approx(scene.area * 109 / 128)
    assert labels.union_all().within(extent.geometry.iloc[0].buffer(1e-6))
    # Burnt back, the labels are the first season's truth in the extent, pixel for pixel.
    codes = {"galamsey": 0, "settlement": 1}
    burnt = features.rasterize(
        [(g, codes[c]) for g, c in zip(labels.geometry, labels["landcover"], strict=True)],
        out_shape=t.shape,
        transform=truth.rio.transform(),
        fill=2,
        dtype="uint8",
    )
    np.testing.assert_array_equal(burnt[:109], np.where(t[:109] < 2, t[:109], 2))
    assert (burnt[109:] == 2).all()
    assert (t[109:] == 0).any()  # mines south of the extent are not labelled


def test_reference_tiles_are_three_densest_disjoint_squares(
    catalog: Path, standin: StandIn
) -> None:
    tiles = gpd.read_file(standin.reference_tiles_file, layer="tiles")
    polys = gpd.read_file(standin.reference_tiles_file, layer="polygons")
    assert tiles["tile"].tolist() == ["ref_1", "ref_2", "ref_3"]
    for g in tiles.geometry:
        minx, miny, maxx, maxy = g.bounds
        assert (maxx - minx, maxy - miny) == (640.0, 640.0)
        assert g.area == pytest.approx(640.0 * 640.0)
    for i in range(3):
        for j in range(i + 1, 3):
            assert tiles.geometry.iloc[i].intersection(tiles.geometry.iloc[j]).area == 0
    assert set(polys["class"]) <= {"mines", "built"} and "mines" in set(polys["class"])
    for name, group in polys.groupby("tile"):
        tile = tiles.geometry[tiles["tile"] == name].iloc[0]
        assert group.union_all().within(tile.buffer(1e-6))
    # Mines are densest there: more mine pixels than in the best 3 of the 4 quadrants,
    # and ordered by mine area.
    truth = load_truth(catalog, "kibi", SEASONS[-1])
    mines = truth.values == 0
    quad = sorted(int(mines[r : r + 64, c : c + 64].sum()) for r in (0, 64) for c in (0, 64))
    tr = truth.rio.transform()
    counts = []
    for g in tiles.geometry:
        c, r = (round(v) for v in ~tr * (g.bounds[0], g.bounds[3]))
        counts.append(int(mines[r : r + 64, c : c + 64].sum()))
    assert sum(counts) >= sum(quad[1:])
    assert counts == sorted(counts, reverse=True)
    area = polys[polys["class"] == "mines"].area.sum()
    assert area == pytest.approx(sum(counts) * 100.0)


# ----------------------------------------------------------------------------- cache
def test_second_call_is_a_cache_hit(catalog: Path, standin: StandIn) -> None:
    files = [standin.items, standin.aoi_file, standin.labels_file]
    before = [p.stat().st_mtime_ns for p in files]
    t0 = time.perf_counter()
    again = write_standin(catalog, standin.root, box="kibi", seasons=SEASONS, overlap_px=OVERLAP)
    assert time.perf_counter() - t0 < 0.5
    assert again == standin
    assert [p.stat().st_mtime_ns for p in files] == before


def test_east_crs_none_keeps_the_crs_and_cuts_plain_windows(catalog: Path, tmp_path: Path) -> None:
    s = write_standin(
        catalog, tmp_path / "same", box="kibi", seasons=SEASONS[:1], overlap_px=4, east_crs=None
    )
    src = _items(catalog / "items.json")[0]
    west, east = _items(s.items)
    assert west["properties"]["proj:epsg"] == east["properties"]["proj:epsg"] == 32630
    assert west["id"] != east["id"]  # an invented neighbouring square
    a, tr, _ = _read(src["assets"]["nir"]["href"])
    e, etr, _ = _read(east["assets"]["nir"]["href"])
    w, _, _ = _read(west["assets"]["nir"]["href"])
    # (128 - 4) // 2 = 62 (even): east from column 62, west up to 66.
    np.testing.assert_array_equal(e, a[:, 62:])
    np.testing.assert_array_equal(w, a[:, :66])
    assert etr.c == tr.c + 620.0
    meta = json.loads((s.root / "standin.json").read_text())
    assert meta["east_crs"] is None and meta["overlap_px"] == 4


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overlap_px": 3}, "even"),
        ({"overlap_px": -2}, "even"),
        ({"overlap_px": 130}, "at most 120"),
        ({"box": "obuasi"}, "not in the catalog"),
        ({"seasons": ["2019-20"]}, "missing"),
        ({"seasons": []}, "non-empty"),
        ({"east_crs": "EPSG:4326"}, "UTM"),
        ({"east_crs": "not a crs"}, "not a CRS"),
    ],
)
def test_bad_arguments_are_rejected(
    catalog: Path, tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"box": "kibi", "seasons": SEASONS, **kwargs}
    with pytest.raises(ParamsError, match=match):
        write_standin(catalog, tmp_path / "s", **args)
    assert not (tmp_path / "s").exists()


def test_missing_catalog_and_small_scene(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="write_catalog"):
        write_standin(tmp_path / "nothing", tmp_path / "s", box="kibi", seasons=SEASONS)
    small = tmp_path / "small"
    write_catalog(small, boxes=["kibi"], seasons=SEASONS[:1], dates_per_season=1, size_px=64)
    with pytest.raises(ParamsError, match="at least 128"):
        write_standin(small, tmp_path / "s", box="kibi", seasons=SEASONS[:1], overlap_px=8)
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- sample
def test_fill_sample_reads_the_truth_at_each_point(catalog: Path, tmp_path: Path) -> None:
    truth = load_truth(catalog, "kibi", SEASONS[-1])
    t = truth.values
    tr = truth.rio.transform()
    # One pixel of each class whose right neighbour differs: the point lies 0.8 px into
    # it, so rounding instead of flooring the pixel index would read the neighbour.
    picks = []
    for code in (0, 1, 2):
        r, c = np.argwhere((t[:, :-1] == code) & (t[:, 1:] != code))[0]
        picks.append((int(r), int(c)))
    xs = [tr.c + (c + 0.8) * tr.a for _, c in picks]
    ys = [tr.f + (r + 0.5) * tr.e for r, _ in picks]
    lon, lat = Transformer.from_crs(truth.rio.crs, 4326, always_xy=True).transform(xs, ys)
    sheet = pd.DataFrame(
        {
            "point_id": [1, 2, 3, 4],
            "map_class": ["mines", "built", "vegetation", "mines"],
            "x": [*xs, 0.0],
            "y": [*ys, 0.0],
            "lon": np.round([*lon, -0.3], 7),  # the last point is east of the scene
            "lat": np.round([*lat, 6.2], 7),
            "reference_class": "",
        }
    )
    sheet.to_csv(tmp_path / "sample.csv", index=False)
    out = fill_sample_from_truth(
        tmp_path / "sample.csv",
        catalog,
        box="kibi",
        season=SEASONS[-1],
        out=tmp_path / "filled.csv",
    )
    filled = pd.read_csv(out)
    assert list(filled.columns) == [
        "point_id",
        "reference_class",
        "interpreter",
        "labelled_at",
        "map_revealed",
    ]
    assert filled["reference_class"].tolist() == ["mines", "built", "vegetation", "cannot tell"]
    assert filled["point_id"].tolist() == [1, 2, 3, 4]
    assert (filled["interpreter"] == "stand-in: simulated truth").all()
    assert (~filled["map_revealed"]).all()
    assert pd.to_datetime(filled["labelled_at"]).notna().all()
    first = out.read_bytes()
    fill_sample_from_truth(
        tmp_path / "sample.csv", catalog, box="kibi", season=SEASONS[-1], out=out
    )
    assert out.read_bytes() == first  # reproducible


@pytest.mark.parametrize(
    ("sheet", "error", "match"),
    [
        (None, MissingFileError, "no sample sheet"),
        (pd.DataFrame({"point_id": [1], "lon": [0.0]}), SampleError, r"lacks columns \['lat'\]"),
    ],
)
def test_fill_sample_errors(
    catalog: Path, tmp_path: Path, sheet: pd.DataFrame | None, error: type, match: str
) -> None:
    path = tmp_path / "sample.csv"
    if sheet is not None:
        sheet.to_csv(path, index=False)
    with pytest.raises(error, match=match):
        fill_sample_from_truth(path, catalog, box="kibi", season=SEASONS[0], out=tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
