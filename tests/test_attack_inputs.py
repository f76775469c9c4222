"""Bad input, round 2 (issue 22): STAC, cubes, areas, periods, downloads, server, reference.

Every case here was a silent wrong result, a raw traceback or a misleading message
before issue 22 (or is a correct result kept on purpose); nothing touches the network:
each check runs before any request.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import shapely.geometry as sg

from vitseg import aoi, cube, downloads, periods, reference, stac, stac_server
from vitseg.errors import (
    BandError,
    MissingAssetError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    SampleError,
    VectorError,
    VitsegError,
)

L1C = Path(__file__).parent / "data" / "s2_l1c_13band_germany"
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
UTM = (600000.0, 699620.0, 600400.0, 700020.0)
DICT_ITEM = {
    "type": "Feature", "stac_version": "1.0.0", "id": "a", "links": [], "bbox": [0, 0, 1, 1], "geometry": SQUARE,
    "properties": {"datetime": "2021-01-05T10:00:00Z"}, "assets": {"B04": {"href": "/x.tif"}},
}  # fmt: skip


def _item(item_id: str, day: int, cloud: Any) -> pystac.Item:
    props = {} if cloud is None else {"eo:cloud_cover": cloud}
    return pystac.Item(item_id, SQUARE, [0, 0, 1, 1], dt.datetime(2021, 1, day), props)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stac")
    return stac.freeze_items([_item("a", 5, 5), _item("b", 6, 9)], folder / "items.json")


# ------------------------------------------------------------------------- stac
SEARCH_CASES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("lat_1000", {"bbox": (0.2, 0.2, 0.4, 1000)}, VitsegError, "lon/lat degrees"),
    ("bbox_nan", {"bbox": (math.nan, 0.2, 0.4, 0.4)}, ParamsError, "finite numbers"),
    ("bbox_text", {"bbox": "0,0,1,1"}, ParamsError, "must be 4 numbers"),
    ("cloud_nan", {"max_cloud_pct": math.nan}, ParamsError, r"max_cloud_pct .* \[0, 100\]"),
    ("cloud_text", {"max_cloud_pct": "10"}, ParamsError, r"max_cloud_pct .* got '10'"),
    ("cloud_negative", {"max_cloud_pct": -5}, ParamsError, r"\[0, 100\].*got -5"),
    ("max_items_neg", {"max_items": -1}, ParamsError, "max_items must be an integer >= 1"),
    ("max_items_zero", {"max_items": 0}, ParamsError, "max_items must be an integer >= 1"),
    ("bands_text", {"bands": "B04"}, ParamsError, r"Write bands=\['B04'\]"),
    ("bands_asset_key", {"bands": ["red"]}, BandError, "not asset keys like 'red'"),
    ("datetime_int", {"datetime": 2021}, ParamsError, "datetime must be ISO 8601 text"),
    ("retries_neg", {"retries": -1}, ParamsError, "retries must be an integer >= 0"),
    ("timeout_nan", {"timeout_s": math.nan}, ParamsError, "timeout_s must be a finite number"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [c[1:] for c in SEARCH_CASES],
    ids=[c[0] for c in SEARCH_CASES],
)
def test_search_items_refuses_bad_queries(
    frozen: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"bbox": (0.2, 0.2, 0.4, 0.4), "datetime": None, **kwargs}
    with pytest.raises(error, match=match):
        stac.search_items(frozen, **args)


def test_search_items_folder_without_catalog_names_the_folder(frozen: Path) -> None:
    with pytest.raises(MissingFileError, match=r"folder without a catalog.json .*'items.json'"):
        stac.search_items(frozen.parent, bbox=(0, 0, 1, 1), datetime=None)
    with pytest.raises(MissingFileError, match=r"is a folder, not an ItemCollection"):
        stac.load_items(frozen.parent)
    with pytest.raises(ParamsError, match=r"is a folder; freeze_items needs a file path"):
        stac.freeze_items([_item("a", 5, 5)], frozen.parent)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda a: stac.select_items([a], geometry=None), VectorError, "needs a shapely geometry"),
        (lambda a: stac.select_items([a], geometry=sg.box(600000, 700000, 601000, 701000)),
         VectorError, r"not lon/lat degrees; is it in metres"),
        (lambda a: stac.select_items([a], geometry=sg.Polygon()), VectorError, "empty geometry"),
        (lambda a: stac.select_items(a, geometry=sg.box(0, 0, 1, 1)), ParamsError,
         r"got one Item\. Write \[item\]"),
        (lambda a: stac.cube_bbox([a], geometry=None), VectorError, "needs a shapely geometry"),
        (lambda a: stac.asset_band_map({"id": "x"}), MissingAssetError, "without 'assets'"),
    ],
    ids=["select_none", "select_utm", "select_empty", "select_one_item", "cube_bbox_none",
         "asset_map_no_assets"],
)  # fmt: skip
def test_item_helpers_refuse_bad_areas(
    call: Callable[[pystac.Item], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(_item("a", 5, 5))


@pytest.mark.parametrize("unknown", [None, math.nan], ids=["missing", "nan"])
def test_clearest_day_ranks_unknown_cloud_cover_last(unknown: Any) -> None:
    """Unknown cover was read as 0 % (missing) or won every comparison (NaN)."""
    items = [_item("a", 5, unknown), _item("b", 6, 9), _item("c", 6, 3)]
    assert stac.item_ids(stac.clearest_day(items)) == ["b", "c"]  # mean 6 % beats unknown
    assert stac.item_ids(stac.clearest_day([_item("a", 5, unknown)])) == ["a"]
    with pytest.raises(VitsegError, match=r"eo:cloud_cover 'x', not a number"):
        stac.clearest_day([_item("a", 5, "x"), _item("b", 6, 9)])


# ------------------------------------------------------------------------- cube
CUBE_CASES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("res_zero", {"resolution_m": 0}, ParamsError, "resolution_m must be a finite number > 0"),
    ("res_neg", {"resolution_m": -10}, ParamsError, "resolution_m must be a finite number > 0"),
    ("res_nan", {"resolution_m": math.nan}, ParamsError, "resolution_m must be a finite"),
    ("res_bool", {"resolution_m": True}, ParamsError, "resolution_m must be a number of metres"),
    ("res_text", {"resolution_m": "10"}, ParamsError, "resolution_m must be a number of metres"),
    ("chunks_zero", {"chunks": 0}, ParamsError, "chunks must be a whole number of pixels"),
    ("chunks_float", {"chunks": 1.5}, ParamsError, "chunks must be a whole number of pixels"),
    ("bbox_inf", {"bbox": (*UTM[:2], math.inf, UTM[3])}, ParamsError, "4 finite numbers"),
    ("bbox_crs_none", {"bbox_crs": None}, MissingCRSError, "bbox_crs is None"),
    ("bands_text", {"bands": "B04"}, BandError, r"Write bands=\['B04'\]"),
    ("one_item", {"items": pystac.Item.from_dict(DICT_ITEM)}, ParamsError, r"got one Item"),
    ("one_dict", {"items": DICT_ITEM}, ParamsError, r"got one dict"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), [c[1:] for c in CUBE_CASES], ids=[c[0] for c in CUBE_CASES]
)
def test_build_cube_refuses_bad_grids(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"items": [DICT_ITEM], "bbox": UTM, "bbox_crs": "EPSG:32630",
                            "crs": "EPSG:32630", "bands": ("B04",), **kwargs}  # fmt: skip
    with pytest.raises(error, match=match):
        cube.build_cube(**args)


@pytest.mark.parametrize(
    ("band", "raster_bands", "error", "match"),
    [
        ("B99", None, BandError, "unknown band 'B99'"),
        ("B08", None, MissingAssetError, "no asset for band 'B08'"),
        ("B04", [{"scale": "abc"}], VitsegError, "scale is 'abc', not a finite number"),
        ("B04", [{"scale": 1e-4, "offset": math.nan}], VitsegError, "offset is nan"),
    ],
    ids=["unknown_band", "no_asset", "scale_text", "offset_nan"],
)
def test_reflectance_scaling_never_guesses(
    band: str, raster_bands: Any, error: type[Exception], match: str
) -> None:
    asset: dict[str, Any] = {"href": "x.tif"}
    if raster_bands is not None:
        asset["raster:bands"] = raster_bands
    item = {"id": "i", "properties": {}, "assets": {"B04": asset}}
    with pytest.raises(error, match=match):
        cube.reflectance_scaling(item, band)


def test_l1c_reader_refuses_missing_folders_and_bad_bands(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"L1C folder .* does not exist"):
        cube.l1c_item(tmp_path / "nope")
    (tmp_path / "f.jp2").write_bytes(b"")
    with pytest.raises(MissingFileError, match=r"L1C folder .* is a file"):
        cube.l1c_item(tmp_path / "f.jp2")
    with pytest.raises(BandError, match=r"unknown band\(s\) \[\]"):  # was StopIteration
        cube.l1c_item(L1C, bands=())
    with pytest.raises(BandError, match=r"Write bands=\['B04'\]"):
        cube.read_l1c_scene(L1C, bands="B04")
    with pytest.raises(ParamsError, match="resolution_m must be a finite number > 0"):
        cube.read_l1c_scene(L1C, bands=("B04",), resolution_m=0)


# -------------------------------------------------------------------------- aoi
def test_aoi_empty_text_folders_and_non_frames(tmp_path: Path) -> None:
    with pytest.raises(aoi.AOIError, match=r"aoi is empty \('  '\)"):  # read the cwd before
        aoi.resolve_aoi("  ")
    (tmp_path / "a.gpkg").write_bytes(b"")
    with pytest.raises(aoi.AOIError, match=r"is a folder; pass the vector file .*'a.gpkg'"):
        aoi.resolve_aoi(str(tmp_path))
    with pytest.raises(aoi.AOIError, match=r"cells_file .* is a folder"):
        aoi.resolve_aoi("cells", cells_file=tmp_path)
    with pytest.raises(aoi.AOIError, match=r"needs cells_file=\.\.\.; got ''"):
        aoi.resolve_aoi("cells", cells_file="")
    with pytest.raises(
        aoi.AOIError, match="must be a GeoDataFrame or GeoSeries with a CRS; got Polygon"
    ):
        aoi.choose_crs(sg.box(0, 0, 1, 1))
    with pytest.raises(aoi.AOIError, match=r"not \[west, south, east, north\]"):  # kept
        aoi.resolve_aoi([math.nan, 6.1, -1.7, 6.2])


# ---------------------------------------------------------------------- periods
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: periods.parse_period("9999-00"), "must start in a year 1..9998"),
        (lambda: periods.parse_period(-5), r"year -5 is not a year in 1..9999"),
        (lambda: periods.Period("../x", dt.date(2020, 1, 1), dt.date(2020, 2, 1)),
         "not safe in file names"),
        (lambda: periods.parse_period("2020").contains(5), "is a number, not a date"),
        (lambda: periods.period_of([20210101], ["2021"]), "is a number, not a date"),
        (lambda: periods.period_of({"a": 1}, ["2021"]), "got a dict"),
        (lambda: periods.period_of(["2021-01-01"], []), "periods is empty"),
    ],
    ids=["season_9999", "negative_year", "label_escapes", "contains_int", "period_of_ints",
         "period_of_dict", "no_periods"],
)  # fmt: skip
def test_periods_refuse_numbers_and_unsafe_labels(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        call()


def test_period_of_missing_times_are_none() -> None:
    """None was a RecursionError; NaN and NaT stay missing (None)."""
    assert periods.period_of(None, ["2021"]) is None
    assert periods.period_of([None, math.nan, "2021-06-01"], ["2021"]) == [None, None, "2021"]
    assert periods.parse_period("2021").contains(math.nan) is False


# -------------------------------------------------------------------- downloads
DL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("url_ftp", {"url": "ftp://host/x.bin"}, "must be an http:// or https:// URL"),
    ("url_file", {"url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
    ("retries_float", {"retries": 2.5}, "'retries' must be a whole number"),
    ("timeout_inf", {"timeout_s": math.inf}, r"both finite seconds.*got inf"),
    ("backoff_inf", {"backoff_s": math.inf}, r"both finite seconds.*got 60.0, inf"),
    ("chunk_float", {"chunk_bytes": 1.5}, "chunk_bytes must be a whole number"),
    ("sha_short", {"sha256": "abc"}, "sha256 must be 64 hexadecimal digits"),
]


@pytest.mark.parametrize(
    ("kwargs", "match"), [c[1:] for c in DL_CASES], ids=[c[0] for c in DL_CASES]
)
def test_download_file_refuses_before_any_request(
    tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"url": "http://127.0.0.1:9/x.bin", "dest": tmp_path / "x.bin"}
    with pytest.raises(ParamsError, match=match):
        downloads.download_file(**{**args, **kwargs})


def test_download_dest_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ParamsError, match=r"lies under .*f, which is a file"):
        downloads.download_file("http://127.0.0.1:9/x.bin", tmp_path / "f" / "x.bin")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: downloads.fetch_smallminesds(r, years=2016), "non-empty list of years"),
        (lambda r: downloads.fetch_smallminesds(r, years="2016"), "non-empty list of years"),
        (lambda r: downloads.fetch_smallminesds(r, years=[]), "non-empty list of years"),
        (lambda r: downloads.fetch_smallminesds(r, years=[2016.0]), r"whole numbers .*\[2016.0\]"),
        (lambda r: downloads.fetch_mining_polygons(bbox=(math.nan, 0, 1, 1), root=r),
         "bbox must be 4 finite numbers"),
        (lambda r: downloads.fetch_mining_polygons(bbox=(1, 0, 0, 1), root=r),
         "with min < max"),
    ],
    ids=["years_int", "years_text", "years_empty", "years_float", "bbox_nan", "bbox_reversed"],
)  # fmt: skip
def test_fetchers_check_before_downloading(
    tmp_path: Path, call: Callable[[Path], Any], match: str
) -> None:
    with pytest.raises(ParamsError, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or created


# ------------------------------------------------------------------ stac_server
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: stac_server.StacServer(DICT_ITEM), ParamsError, r"got one dict\. Write \[item\]"),
        (lambda p: stac_server.serve_items(42), ParamsError, r"got int \(42\)"),
        (lambda p: stac_server.serve_items(None), ParamsError, r"got NoneType"),
        (lambda p: stac_server.serve_items(p), MissingFileError, "folder without a catalog.json"),
        (lambda p: stac_server.serve_items([{**DICT_ITEM, "bbox": [math.nan, 0, 1, 1]}]),
         VitsegError, "bbox with NaN or inf"),
    ],
    ids=["one_dict", "number", "none", "folder", "nan_bbox"],
)  # fmt: skip
def test_stac_server_refuses_bad_sources(
    tmp_path: Path, call: Callable[[Path], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(tmp_path)


# -------------------------------------------------------------------- reference
SAMPLE = pd.DataFrame(
    {"point_id": [1, 2, 3], "map_class": ["mines", "built", "mines"],
     "x": [5.0, 15.0, 25.0], "y": [5.0, 5.0, 5.0]}
)  # fmt: skip


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "filled.csv"
    path.write_text("point_id,reference_class\n1,mines\n2,built\n3,built\n")
    return path


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda f: reference.read_sample(f.parent), MissingFileError, "is a folder"),
        (lambda f: reference.read_sample(f.parent / "no.gpkg"), MissingFileError, "does not exist"),
        (lambda f: reference.read_sample(SAMPLE.assign(reference_class="mines"), classes="mines"),
         ParamsError, "non-empty list of class names"),
        (lambda f: reference.read_sample(SAMPLE.assign(reference_class="mines"),
                                         classes=["mines", "Mines"]), ParamsError, "unique"),
        (lambda f: reference.read_sample(SAMPLE.assign(reference_class="mines",
                                                       map_class=["mines", None, ""])),
         SampleError, r"2 of 3 points .* no 'map_class' \(point_id \[2, 3\]\)"),
        (lambda f: reference.read_reference(f, SAMPLE.assign(map_class=["mines", None, "built"])),
         SampleError, r"no 'map_class' \(point_id \[2\]\)"),
        (lambda f: reference.read_reference(f, SAMPLE, cannot_tell="unknown"), ParamsError,
         r"Write \['unknown'\]"),
        (lambda f: reference.read_reference(f, SAMPLE, cannot_tell=["Built"]), ParamsError,
         r"cannot_tell labels \['built'\] are class names"),
        (lambda f: reference.read_reference(f, SAMPLE.assign(point_id=[1, 2, None])),
         SampleError, r"1 row\(s\) of the sample have no point_id \(rows \[2\]"),
        (lambda f: reference.sample_id(SAMPLE.assign(x=["a", "b", "c"])), SampleError,
         "'x'/'y' columns must hold numbers"),
        (lambda f: reference.sample_id(gpd.GeoDataFrame(
            SAMPLE[["point_id"]], geometry=[sg.box(0, 0, 1, 1)] * 3)), SampleError,
         r"must be Point geometries; got \['Polygon'\]"),
        (lambda f: reference.sample_id(None), SampleError, "must be a DataFrame"),
        (lambda f: reference.interpreter_agreement(SAMPLE.assign(reference_class="mines"), None),
         SampleError, "interpretation b must be a DataFrame"),
        (lambda f: reference.merge_interpretations(
            SAMPLE.assign(reference_class="mines", point_id=[None, 2, 3]),
            SAMPLE.assign(reference_class="mines")),
         SampleError, r"interpretation a have no point_id"),
    ],
    ids=["sample_folder", "sample_missing", "classes_text", "classes_repeat",
         "sample_map_blank", "reference_map_blank", "cannot_tell_text", "cannot_tell_class",
         "blank_point_id", "sample_id_text_xy", "sample_id_polygons", "sample_id_none",
         "agreement_none", "merge_blank_ids"],
)  # fmt: skip
def test_reference_refuses_what_it_would_drop_or_misread(
    filled: Path, call: Callable[[Path], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(filled)


def test_blank_point_id_in_the_filled_file(tmp_path: Path) -> None:
    """Was 'point ids [] of f.csv are not in the sample' (an empty list named)."""
    path = tmp_path / "f.csv"
    path.write_text("point_id,reference_class\n1,mines\n2,built\n,built\n3,mines\n")
    with pytest.raises(SampleError, match=r"1 row\(s\) of f.csv have no point_id \(rows \[2\]"):
        reference.read_reference(path, SAMPLE)


def test_reference_still_reads_a_good_sheet(filled: Path) -> None:
    ref = reference.read_reference(filled, SAMPLE, cannot_tell=["?"])
    assert ref["reference_class"].tolist() == ["mines", "built", "built"]
    assert np.array_equal(ref["point_id"].to_numpy(), [1, 2, 3])
