"""Issue 22 ("Bad input, round 2"): attacks on grid, cloud, composite, temporal, zonal,
alerts and density. Each case ends in a VitsegError naming the input, or in a correct,
hand-checked result (rows in docs/reliability.md)."""

from __future__ import annotations

import json

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from shapely.geometry import LineString, Point, Polygon, box

from vitseg import alerts, cloud, composite, density, grid, temporal, zonal
from vitseg.errors import (
    BandError,
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    NoValidDataError,
    ParamsError,
    VectorError,
)

NAN, INF = np.nan, np.inf
UTM = "EPSG:32630"
BOWTIE = [(0, 0), (40, 40), (40, 0), (0, 40)]  # self-intersecting: two 400 m² triangles


def gdf(geoms, crs=UTM, **cols):
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=crs)


def cube(nt=3, bands=("B02", "B03", "B04", "SCL"), ny=2, nx=2, val=0.1):
    a = np.full((nt, len(bands), ny, nx), val, "float32")
    return xr.DataArray(
        a,
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.date_range("2020-11-05", periods=nt, freq="10D"),
            "band": list(bands),
            "y": 15.0 - 10 * np.arange(ny),
            "x": 5.0 + 10 * np.arange(nx),
        },
    ).rio.write_crs(UTM)


def cmap(v, dtype="uint8", crs=UTM):
    """A (y, x) class map with 10 m pixels, top-left corner at (0, 40)."""
    v = np.array(v, dtype)
    ny, nx = v.shape
    out = xr.DataArray(
        v, dims=("y", "x"), coords={"y": 35.0 - 10 * np.arange(ny), "x": 5.0 + 10 * np.arange(nx)}
    )
    return out.rio.write_crs(crs) if crs else out


def probs(values, dims=("time", "class", "y", "x")):
    a = np.asarray(values, "float32")
    coords = {"y": 5.0 + 10 * np.arange(a.shape[-2])[::-1], "x": 5.0 + 10 * np.arange(a.shape[-1])}
    return xr.DataArray(a, dims=dims, coords=coords).rio.write_crs(UTM)


# ---------------------------------------------------------------- grid
AOI = gdf([box(0, 0, 2500, 1000)])
GRID = grid.make_grid(gdf([box(0, 0, 3000, 1000)]), 1000, crs=UTM)
LABELS = gdf([box(900, 0, 1100, 100)])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: grid.utm_crs_for(("a", 6, -1, 7)), ParamsError, "four numbers"),
        (lambda: grid.utm_crs_for((1, 6, 7)), ParamsError, "four numbers"),
        (lambda: grid.utm_crs_for(None), ParamsError, "four numbers.*got None"),
        (lambda: grid.utm_crs_for((NAN, 6, -1, 7)), grid.VitsegError, r"bounds must be \(west"),
        (lambda: grid.utm_crs_for(gdf([], crs=4326)), VectorError, "AOI has no geometry"),
        (lambda: grid.utm_crs_for(gdf([Polygon()], crs=4326)), VectorError, "no geometry"),
    ],
    ids=["str", "three_values", "none", "nan", "empty_layer", "empty_geometry"],
)
def test_utm_crs_for_bad_bounds(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("aoi", "size", "error", "match"),
    [
        (AOI, "100", VectorError, "cell_size_m must be a positive number.*'100'"),
        (AOI, True, VectorError, "cell_size_m must be a positive number.*True"),
        (AOI, NAN, VectorError, "cell_size_m must be a positive number.*nan"),
        (AOI, INF, VectorError, "cell_size_m must be a positive number.*inf"),
        (AOI, 1e-3, VectorError, r"would make 2,500,000,000,000 cells.*larger cell_size_m"),
        (gdf([Point(500, 500)]), 100, VectorError, r"AOI must hold polygons.*\['Point'\]"),
        (gdf([LineString([(0, 0), (1000, 0)])]), 100, VectorError, "AOI must hold polygons"),
        ([box(0, 0, 1, 1)], 100, VectorError, "aoi must be a GeoDataFrame or GeoSeries; got list"),
    ],
    ids=["str", "bool", "nan", "inf", "tiny", "point", "line", "list"],
)
def test_make_grid_refuses(aoi, size, error, match):
    with pytest.raises(error, match=match):
        grid.make_grid(aoi, size, crs=UTM)


def test_make_grid_repairs_a_self_intersecting_aoi():
    bowtie = gdf([Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)])])
    cells = grid.make_grid(bowtie, 500, crs=UTM, clip=True)  # raised GEOSException before
    assert cells.area.tolist() == [125000.0] * 4  # each triangle (250000 m²) over two cells


@pytest.mark.parametrize(
    ("cells", "labels", "kw", "error", "match"),
    [
        (GRID, LABELS, {"min_area_m2": NAN}, ParamsError, "min_area_m2 must be a finite.*nan"),
        (GRID, LABELS, {"min_area_m2": -1}, ParamsError, "min_area_m2 must be a finite.*-1"),
        (GRID, LABELS, {"min_area_m2": "5"}, ParamsError, "min_area_m2 must be a finite.*'5'"),
        (GRID, gdf([Point(500, 500)]), {}, VectorError, r"labels must hold polygons.*Point"),
        (GRID, gdf([LineString([(0, 5), (2000, 5)])]), {}, VectorError, "labels must hold poly"),
        (GRID.drop(columns="cell_id"), LABELS, {}, VectorError, "'cell_id' column.*make_grid"),
        (GRID.to_crs(4326), LABELS, {}, CRSMismatchError, "geographic.*square degrees"),
        (GRID, gdf([box(900, 0, 1100, 100)], crs=4326), {}, VectorError, "NaN or infinite coord"),
        (GRID, [box(0, 0, 1, 1)], {}, VectorError, "labels must be a GeoDataFrame or GeoSeries"),
    ],
    ids=["nan", "negative", "str", "points", "lines", "no_cell_id", "geographic", "inf", "list"],
)
def test_select_cells_refuses(cells, labels, kw, error, match):
    with pytest.raises(error, match=match):
        grid.select_cells(cells, labels, **kw)


def test_select_cells_repairs_a_self_intersecting_label():
    g = grid.make_grid(gdf([box(0, 0, 1000, 1000)]), 1000, crs=UTM)
    bowtie = gdf([Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)])])
    assert grid.select_cells(g, bowtie)["label_area_m2"].tolist() == [500000.0]


# ---------------------------------------------------------------- cloud
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"threshold": "0.2"}, r"'threshold' must be a number.*'0.2' \(str\)"),
        ({"threshold": None}, "'threshold' must be a number.*None"),
        ({"scl_classes": "389"}, "'scl_classes' must be a list of SCL class codes.*'389'"),
        ({"scl_classes": 8}, "'scl_classes' must be a list of SCL class codes.*got 8"),
        ({"scl_classes": [NAN]}, r"integers 0-11; got \[nan\]"),
        ({"scl_classes": [3.5]}, r"integers 0-11; got \[3.5\]"),
        ({"scl_classes": [300]}, r"integers 0-11; got \[300\]"),
    ],
    ids=["threshold_str", "threshold_none", "scl_str", "scl_int", "scl_nan", "scl_frac", "scl_300"],
)
def test_cloud_mask_options_are_checked(kw, match):
    with pytest.raises(ParamsError, match=match):
        cloud.cloud_mask(cube(), **kw)


def test_empty_scl_classes_masks_only_missing_scl():
    c = cube()
    c.loc[{"band": "SCL"}] = 8.0  # every pixel "cloud" by SCL
    c[0, 3, 0, 0] = NAN  # one missing SCL value
    mask = cloud.cloud_mask(c, method="scl", scl_classes=[])
    assert int(mask.sum()) == 1
    assert int(cloud.cloud_mask(c, method="scl").sum()) == 12


@pytest.mark.parametrize(
    ("c", "kw", "error", "match"),
    [
        (cube(bands=("B02", "B02", "B03", "B04", "SCL")), {}, BandError, r"\['B02'\] more than"),
        (cube(ny=0), {}, DimensionError, r"cube has no pixels \(y: 0"),
        (cube(), {"return_mask": "no"}, ParamsError, "'return_mask' must be True or False"),
    ],
    ids=["duplicate_band", "zero_pixels", "return_mask_str"],
)
def test_mask_clouds_refuses(c, kw, error, match):
    with pytest.raises(error, match=match):
        cloud.mask_clouds(c, **kw)


def test_valid_count_takes_one_band_name_as_a_string():
    c = cube(nt=3)
    c[0, 0, 0, 0] = NAN  # B02 missing once at pixel (0, 0)
    assert cloud.valid_count(c, bands="B02").values.tolist() == [[2, 3], [3, 3]]


# ---------------------------------------------------------------- composite
@pytest.mark.parametrize(
    ("times", "match"),
    [
        (2020, r"needs dates.*got numbers \(int64: \[2020\]\)"),
        (NAN, "needs dates.*got numbers"),
        ([1.6e9, 1.7e9], "needs dates.*got numbers"),
        ("notadate", "cannot read 'notadate' as dates"),
        (["2020-12-01", "x"], "cannot read.*as dates"),
    ],
    ids=["int", "nan", "floats", "garbage", "garbage_in_list"],
)
def test_season_of_refuses_numbers_and_garbage(times, match):
    with pytest.raises(ParamsError, match=match):
        composite.season_of(times)


def test_season_of_empty_and_missing():
    assert composite.season_of([]) == []
    assert composite.season_of(None) is None
    assert composite.season_of(["2020-12-01", None]) == ["2020-21", None]


@pytest.mark.parametrize(
    ("c", "kw", "error", "match"),
    [
        (cube(), {"min_count": NAN}, ParamsError, r"'min_count' must be an integer >= 1.*nan"),
        (cube(), {"min_count": 1.5}, ParamsError, r"'min_count' must be an integer.*1\.5"),
        (cube(), {"min_count": "2"}, ParamsError, r"'min_count' must be an integer.*'2'"),
        (cube(), {"min_count": True}, ParamsError, r"'min_count' must be an integer.*True"),
        (cube(nt=0), {}, NoValidDataError, r"cube has no date \(time has size 0\)"),
        (cube(bands=("SCL",)), {}, BandError, "only the 'SCL' band"),
        (
            cube().assign_coords(time=[0, 1, 2]),
            {"season": "2020-21"},
            DimensionError,
            "needs dates in the cube's 'time' coordinate; got int64",
        ),
        (cube(nx=0), {}, DimensionError, "cube has no pixels"),
    ],
    ids=["nan", "frac", "str", "bool", "no_dates", "only_scl", "int_time", "zero_pixels"],
)
def test_composite_refuses(c, kw, error, match):
    with pytest.raises(error, match=match):
        composite.composite(c, **kw)


def test_seasonal_composites_seasons_argument():
    c = cube()
    one = composite.seasonal_composites(c, seasons="2020-21")  # one season, not '2', '0', ...
    assert one["season"].values.tolist() == ["2020-21"]
    with pytest.raises(ParamsError, match="'seasons' is empty"):
        composite.seasonal_composites(c, seasons=[])
    with pytest.raises(ParamsError, match=r"names \['2020-21'\] more than once"):
        composite.seasonal_composites(c, seasons=["2020-21", "2020-21"])


@pytest.mark.parametrize("tile_px", [NAN, 1.5, "2", True, INF, 0], ids=str)
def test_tile_valid_fraction_tile_px_must_be_a_positive_integer(tile_px):
    with pytest.raises(ParamsError, match="'tile_px' must be a positive number of pixels"):
        composite.tile_valid_fraction(cube()[0], tile_px=tile_px)


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_tile_valid_fraction_counts_inf_as_invalid(backing):
    a = np.array([[INF, 1.0], [1.0, -INF]])
    arr = xr.DataArray(da.from_array(a, chunks=1) if backing == "dask" else a, dims=("y", "x"))
    assert composite.tile_valid_fraction(arr, tile_px=2).values.tolist() == [[0.5]]


@pytest.mark.parametrize(
    ("arr", "match"),
    [
        (np.ones((4, 4)), "expected an xarray.DataArray.*got ndarray"),
        (xr.DataArray(np.array([["a", "b"], ["c", "d"]]), dims=("y", "x")), "needs numbers"),
        (cube()[0, :0], r"zero-size dims \{'band': 0\}"),
    ],
    ids=["numpy", "strings", "zero_bands"],
)
def test_tile_valid_fraction_refuses_arrays(arr, match):
    with pytest.raises(DimensionError, match=match):
        composite.tile_valid_fraction(arr, tile_px=2)


def test_write_composite_paths_dtypes_and_inf(tmp_path):
    comp = composite.composite(cube())
    with pytest.raises(ParamsError, match="is a folder; give a file such as"):
        composite.write_composite(comp, tmp_path)
    with pytest.raises(ParamsError, match="is a folder"):
        composite.read_composite(tmp_path)
    with pytest.raises(ParamsError, match=r"must end in \.tif or \.tiff.*'c\.png'"):
        composite.write_composite(comp, tmp_path / "c.png")
    for dtype in ("complex64", "bool"):
        with pytest.raises(DimensionError, match=f"must hold real numbers.*{dtype}"):
            composite.write_composite(comp.astype(dtype), tmp_path / "c.tif")
    with pytest.raises(BandError, match=r"\['B02'\] more than once"):
        composite.write_composite(
            comp.assign_coords(band=["B02", "B02", "B03"]), tmp_path / "d.tif"
        )
    assert list(tmp_path.iterdir()) == []  # nothing written by a refused call
    path = composite.write_composite(comp.where(comp.x < 10, INF), tmp_path / "c.tif", key=5)
    back = composite.read_composite(path, key=5)  # a non-str key matches itself
    assert back is not None
    assert np.isnan(back.values[:, :, 1]).all()  # inf was written as inf before
    assert np.allclose(back.values[:, :, 0], 0.1)


# ---------------------------------------------------------------- temporal
def test_ensemble_inf_is_no_data_by_hand():
    # pixel seen 3 times; the second observation is inf (was propagated as inf)
    p = probs([[[[0.9]], [[0.1]]], [[[INF]], [[0.5]]], [[[0.3]], [[0.7]]]])
    out = temporal.ensemble(p)
    assert out["probs"].values.ravel().astype(float).round(2).tolist() == [0.6, 0.4]
    assert out["valid_count"].values.ravel().tolist() == [2]
    assert out["class_map"].values.ravel().tolist() == [0]


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_ensemble_refuses_logits(backing):
    p = probs([[[[2.5]], [[-1.0]]]])
    if backing == "dask":
        p = p.chunk()
        out = temporal.ensemble(p)  # lazy: refused when computed
        with pytest.raises(DimensionError, match=r"probabilities in \[0, 1\].*from -1 to 2.5"):
            out["class_map"].compute()
    else:
        with pytest.raises(DimensionError, match=r"probabilities in \[0, 1\].*Logits"):
            temporal.ensemble(p)


@pytest.mark.parametrize(
    ("p", "kw", "error", "match"),
    [
        (probs(np.ones((2, 3, 2, 2))).astype("uint8"), {}, DimensionError, "float prob.*uint8"),
        (probs(np.ones((2, 3, 2, 2))).astype(bool), {}, DimensionError, "float prob.*bool"),
        (probs(np.ones((2, 3, 2, 2))).astype("complex64"), {}, DimensionError, "complex64"),
        (probs(np.ones((2, 0, 2, 2))), {}, DimensionError, "has 0 classes along 'class'"),
        (probs(np.zeros((1, 300, 2, 2))), {}, DimensionError, "has 300 classes"),
        (probs(np.ones((2, 3, 2, 2))), {"nodata": 256}, ParamsError, "0..255.*got 256"),
        (probs(np.ones((2, 3, 2, 2))), {"nodata": -1}, ParamsError, "0..255.*got -1"),
        (probs(np.ones((2, 3, 2, 2))), {"nodata": NAN}, ParamsError, "0..255.*got nan"),
        (probs(np.ones((2, 3, 2, 2))), {"nodata": 1}, ParamsError, "also the code of class 1"),
        (
            probs(np.ones((2, 3, 2, 2))),
            {"valid": np.ones((2, 2, 2), bool)},
            DimensionError,
            "valid must be a boolean xarray.DataArray",
        ),
        (
            probs(np.ones((2, 3, 2, 2))),
            {"valid": xr.DataArray(np.ones((2, 3, 2), bool), dims=("time", "y", "x"))},
            DimensionError,
            r"differ in size along \{'y': \(3, 2\)\}",
        ),
        (np.ones((2, 3, 2, 2)), {}, DimensionError, "must be an xarray.DataArray"),
    ],
    ids=[
        "uint8",
        "bool",
        "complex",
        "no_class",
        "300_classes",
        "nodata_256",
        "nodata_neg",
        "nodata_nan",
        "nodata_is_class",
        "valid_numpy",
        "valid_shape",
        "numpy",
    ],
)
def test_ensemble_refuses(p, kw, error, match):
    with pytest.raises(error, match=match):
        temporal.ensemble(p, **kw)


def tile(x0, v, dtype="uint8"):
    return xr.DataArray(
        np.array(v, dtype), dims=("y", "x"), coords={"y": [15.0, 5.0], "x": [x0, x0 + 10]}
    ).rio.write_crs(UTM)


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize(
    ("v", "dtype"),
    [
        ([[256, 2], [1, 1]], "int16"),
        ([[-1, 2], [1, 1]], "int16"),
        ([[NAN, 2], [1, 1]], "float32"),
        ([[INF, 2], [1, 1]], "float32"),
    ],
    ids=["256_int16", "minus1_int16", "nan_float", "inf_float"],
)
def test_mosaic_codes_outside_uint8_or_nan_are_no_data(v, dtype, backing):
    a = tile(5.0, v, dtype)
    a = a.chunk(1) if backing == "dask" else a
    m = temporal.mosaic([a, tile(15.0, [[1, 0], [0, 0]])])  # 256 wrapped to 0 = mines before
    assert m.values.tolist() == [[255, 2, 0], [1, 1, 0]]


@pytest.mark.parametrize(
    ("maps", "kw", "error", "match"),
    [
        ([tile(5.0, [[0.6, 2], [1, 1]], "float32")], {}, LabelError, "non-integer class values"),
        (
            [tile(5.0, [[True, False], [True, True]], "bool")],
            {},
            DimensionError,
            "integer class codes.*bool. A boolean mask",
        ),
        ([tile(5.0, [["a", "b"], ["c", "d"]], "U1")], {}, DimensionError, "integer class codes"),
        ([tile(5.0, [[0, 1], [1, 0]])], {"nodata": 300}, ParamsError, "0..255.*300"),
        ([tile(5.0, [[0, 1], [1, 0]])], {"nodata": NAN}, ParamsError, "0..255.*nan"),
        (tile(5.0, [[0, 1], [1, 0]]), {}, DimensionError, r"list of DataArrays.*mosaic\(\[m\]\)"),
        ([np.zeros((2, 2))], {}, DimensionError, "map 0 must be an xarray.DataArray"),
        (
            [tile(5.0, [[0, 1], [1, 0]]).assign_coords(x=[NAN, 1.0])],
            {},
            GridMismatchError,
            "x coordinates are not a regular grid",
        ),
        (
            [tile(5.0, [[0, 1], [1, 0]]).assign_coords(x=[5.0, 5.0])],
            {},
            GridMismatchError,
            "not a regular grid",
        ),
        (
            [
                xr.DataArray(
                    np.zeros((2, 3), "uint8"),
                    dims=("y", "x"),
                    coords={"y": [15.0, 5.0], "x": [0.0, 10.0, 35.0]},
                ).rio.write_crs(UTM)
            ],
            {},
            GridMismatchError,
            r"not a regular grid.*\[0.0, 10.0, 35.0\]",
        ),
        (
            [probs(np.ones((3, 2, 2)), dims=("class", "y", "x")).astype("uint8")],
            {"method": "mean_prob"},
            DimensionError,
            "float probabilities.*uint8",
        ),
        (
            [probs(np.zeros((300, 2, 2)), dims=("class", "y", "x"))],
            {},
            DimensionError,
            "has 300 classes",
        ),
    ],
    ids=[
        "fraction",
        "bool",
        "str",
        "nodata_300",
        "nodata_nan",
        "single_map",
        "numpy",
        "nan_x",
        "repeated_x",
        "irregular_x",
        "int_mean_prob",
        "300_classes",
    ],
)
def test_mosaic_refuses(maps, kw, error, match):
    with pytest.raises(error, match=match):
        temporal.mosaic(maps, **kw)


def test_mosaic_mean_prob_inf_is_no_data():
    p = probs([[[0.2, 0.4], [0.6, 0.8]], [[0.8, 0.6], [0.4, 0.2]]], dims=("class", "y", "x"))
    q = p.copy()
    q[0, 0, 0] = INF
    m = temporal.mosaic([p, q], method="mean_prob")
    assert m.values[:, 0, 0].tolist() == [pytest.approx(0.2), pytest.approx(0.8)]


# ---------------------------------------------------------------- zonal
ZONE = gdf([box(0, 0, 20, 40)], id=["a"])  # the two left columns of a 4x4 map: 0.08 ha


def za(m, zones=ZONE, **kw):
    return zonal.zonal_areas(m, zones, zone_id="id", keep_columns=(), **kw)


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize(
    "m",
    [
        cmap(np.full((4, 4), -1), "int16").rio.write_nodata(-1),
        cmap(np.full((4, 4), NAN), "float32"),
        cmap(np.full((4, 4), 256), "int16").rio.write_nodata(256),
        cmap(np.ones((4, 4))).rio.write_nodata(1),
    ],
    ids=["minus1", "nan", "256", "declared_nodata"],
)
def test_zonal_areas_no_data_values(m, backing):
    m = m.chunk(2) if backing == "dask" else m
    row = za(m).iloc[0]  # -1 and NaN raised a raw ValueError; declared no-data was "built"
    assert (row["mines_ha"], row["built_ha"], row["no_data_ha"]) == (0.0, 0.0, pytest.approx(0.08))
    assert row["covered_fraction"] == 0.0


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize(("value", "dtype"), [(-1, "int16"), (256, "int16"), (3, "uint8")])
def test_zonal_areas_undeclared_codes_outside_the_classes_are_errors(value, dtype, backing):
    m = cmap(np.full((4, 4), value), dtype)
    m = m.chunk(2) if backing == "dask" else m
    with pytest.raises(LabelError, match=rf"outside 0\.\.2 .*\{{{value}: (16|4)\}}"):
        za(m)  # never read as no data silently (issue 22); dask counts the first bad block


@pytest.mark.parametrize(
    ("m", "zones", "kw", "error", "match"),
    [
        (cmap(np.full((4, 4), 0.6), "float32"), ZONE, {}, LabelError, "non-integer class val"),
        (cmap(np.ones((4, 4)), "bool"), ZONE, {}, DimensionError, "got dtype bool"),
        (cmap(np.zeros((4, 4))), ZONE, {"nodata": 0}, ParamsError, "no class code.*got 0"),
        (cmap(np.zeros((4, 4))), ZONE, {"nodata": NAN}, ParamsError, "no class code.*got nan"),
        (cmap(np.zeros((4, 4))), ZONE, {"mine_class": True}, LabelError, "mine_class must be"),
        (cmap(np.zeros((4, 4))), ZONE, {"mine_class": NAN}, LabelError, "mine_class must be"),
        (cmap(np.zeros((4, 4))), ZONE, {"class_names": []}, ParamsError, "1..255 names"),
        (cmap(np.zeros((0, 4))), ZONE, {}, DimensionError, r"has no pixels \(shape \(0, 4\)\)"),
        (
            cmap(np.zeros((4, 4))),
            gdf([Point(5, 5)], id=["a"]),
            {},
            VectorError,
            r"zones must hold polygons.*\['Point'\]",
        ),
        (
            cmap(np.zeros((4, 4))),
            gdf([LineString([(0, 5), (40, 5)])], id=["a"]),
            {},
            VectorError,
            "zones must hold polygons",
        ),
        (
            cmap(np.zeros((4, 4))),
            gdf([box(0, 0, 20, 40)], id=[NAN]),
            {},
            VectorError,
            "1 zones have no id in 'id'",
        ),
    ],
    ids=[
        "fraction",
        "bool",
        "nodata_class",
        "nodata_nan",
        "mine_bool",
        "mine_nan",
        "no_classes",
        "zero_size",
        "point_zone",
        "line_zone",
        "nan_id",
    ],
)
def test_zonal_areas_refuses(m, zones, kw, error, match):
    with pytest.raises(error, match=match):
        za(m, zones, **kw)


def test_zonal_areas_repairs_zones_and_keeps_one_column_by_name():
    m = cmap(np.zeros((4, 4)))
    row = za(m, gdf([Polygon(BOWTIE)], id=["a"])).iloc[0]  # zone_ha was 0 (signed areas)
    assert row["zone_ha"] == pytest.approx(0.08)
    assert row["mines_ha"] == pytest.approx(0.08)  # 8 pixel centres inside the triangles
    assert row["covered_fraction"] == pytest.approx(1.0)
    z = ZONE.assign(name=["Obuasi"])
    out = zonal.zonal_areas(m, z, zone_id="id", keep_columns="name")  # was silently dropped
    assert out["name"].tolist() == ["Obuasi"]


F = gdf([box(0, 0, 10, 10)], yr=[2020])


@pytest.mark.parametrize(
    ("features", "kw", "error", "match"),
    [
        (gdf([Point(5, 5)]), {}, VectorError, r"features must hold polygons.*\['Point'\]"),
        (gdf([LineString([(0, 5), (40, 5)])]), {}, VectorError, "features must hold polygons"),
        ([box(0, 0, 1, 1)], {}, VectorError, "features must be a GeoDataFrame or GeoSeries"),
        (
            gdf([box(0, 0, 10, 10), box(10, 10, 20, 20)], yr=[2020, NAN]),
            {"by": "yr"},
            VectorError,
            "1 features have no value in 'yr'",
        ),
        (
            gdf([box(0, 0, 10, 10), box(10, 10, 20, 20)], yr=[2020, "2021"]),
            {"by": "yr"},
            VectorError,
            r"mixes types \['int', 'str'\]",
        ),
        (F, {"area_crs": "EPSG:4326"}, CRSMismatchError, "geographic.*equal-area CRS"),
        (F, {"area_crs": "EPSG:99999"}, MissingCRSError, "'EPSG:99999' is not a valid CRS"),
    ],
    ids=["points", "lines", "list", "by_nan", "by_mixed", "geographic_crs", "bad_crs"],
)
def test_zonal_polygon_areas_refuses(features, kw, error, match):
    with pytest.raises(error, match=match):
        zonal.zonal_polygon_areas(features, ZONE, zone_id="id", keep_columns=(), **kw)


def test_zonal_polygon_areas_empty_features_and_invalid_zone():
    out = zonal.zonal_polygon_areas(F.iloc[:0], ZONE, zone_id="id", by="yr")  # IndexError before
    assert len(out) == 0 and "zone_ha" in out.columns
    bowtie = gdf([Polygon(BOWTIE)], id=["a"])
    row = zonal.zonal_polygon_areas(F, bowtie, zone_id="id").iloc[0]  # zone_ha was ~0
    assert row["zone_ha"] == pytest.approx(0.08, rel=0.01)  # equal-area CRS vs UTM
    assert row["area_ha"] == pytest.approx(0.005, rel=0.01)  # half of the 10 x 10 box inside


# ---------------------------------------------------------------- alerts
SEASONS = [
    cmap(v) for v in ([[2, 2, 0], [2, 2, 2]], [[0, 2, 0], [2, 2, 2]], [[0, 0, 0], [2, 2, 2]])
]


def test_first_seen_reads_declared_nodata_as_no_data():
    before = cmap([[2, 2, 0], [2, 2, 2]]).rio.write_nodata(2)  # "2" is this map's no data
    assert alerts.first_seen([before, SEASONS[1]]).values.tolist() == [[0, 0, 0], [0, 0, 0]]
    nan = cmap([[NAN, 2, 0], [2, 2, 2]], "float32")
    assert alerts.first_seen([nan, SEASONS[1]]).values.tolist() == [[0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize(
    ("maps", "kw", "error", "match"),
    [
        ([SEASONS[0], cmap([[0.4, 2, 0], [2, 2, 2]], "float32")], {}, LabelError, "non-integer"),
        ([cmap([[1, 0]], "bool"), cmap([[0, 1]], "bool")], {}, DimensionError, "dtype bool"),
        ([cmap([["a"]], "U1"), cmap([["b"]], "U1")], {}, DimensionError, "integer class codes"),
        (SEASONS, {"nodata": 2}, ParamsError, r"no class code \(codes 0..2\).*got 2"),
        (SEASONS, {"nodata": NAN}, ParamsError, "no class code.*got nan"),
        (SEASONS, {"mine_class": True}, LabelError, "mine_class must be"),
        ([SEASONS[0]] * 300, {}, ParamsError, "at most 255 seasons; got 300"),
        ({"2020,21": SEASONS[0], "2021,22": SEASONS[1]}, {}, ParamsError, "must not hold commas"),
        ([cmap(np.zeros((0, 3))), cmap(np.zeros((0, 3)))], {}, DimensionError, "has no pixels"),
    ],
    ids=[
        "fraction",
        "bool",
        "str",
        "nodata_class",
        "nodata_nan",
        "mine_bool",
        "300_seasons",
        "comma",
        "zero_size",
    ],
)
def test_first_seen_refuses(maps, kw, error, match):
    with pytest.raises(error, match=match):
        alerts.first_seen(maps, **kw)


BIG = [cmap(np.full((10, 10), 2)), cmap(np.where(np.arange(100).reshape(10, 10) < 30, 0, 2))]
DISTRICT = gdf([box(-5, -5, 200, 200)], ADM2_PCODE=["GH01"], ADM2_EN=["A"])


@pytest.mark.parametrize(
    ("maps", "kw", "error", "match"),
    [
        (BIG, {"min_area_ha": NAN}, ParamsError, "'min_area_ha' must be a finite.*nan"),
        (BIG, {"min_area_ha": INF}, ParamsError, "'min_area_ha' must be a finite.*inf"),
        (BIG, {"min_area_ha": "1"}, ParamsError, "'min_area_ha' must be a finite.*'1'"),
        (BIG, {"connectivity": 8.0}, ParamsError, "the integer 4 or 8; got 8.0"),
        (BIG, {"districts": gdf([], ADM2_PCODE=[], ADM2_EN=[])}, VectorError, "no polygons"),
        (
            BIG,
            {"districts": gdf([Point(0, 0)], ADM2_PCODE=["a"], ADM2_EN=["A"])},
            VectorError,
            "districts must hold polygons",
        ),
        (
            BIG,
            {"districts": DISTRICT.set_crs(None, allow_override=True)},
            MissingCRSError,
            "districts have no CRS",
        ),
    ],
    ids=[
        "min_nan",
        "min_inf",
        "min_str",
        "connectivity_float",
        "no_districts",
        "point_districts",
        "districts_no_crs",
    ],
)
def test_make_alerts_refuses(maps, kw, error, match):
    with pytest.raises(error, match=match):
        alerts.make_alerts(maps, **kw)


@pytest.mark.parametrize(
    ("scale", "dtype", "match"),
    [(3, "uint8", r"indices 0..3 but.*names 2 seasons"), (1, "float32", "dtype float32")],
    ids=["index_beyond_seasons", "float"],
)
def test_make_alerts_refuses_a_foreign_first_seen_map(scale, dtype, match):
    fs = (alerts.first_seen(BIG) * scale).astype(dtype)
    fs = fs.rio.write_crs(UTM).assign_attrs(seasons="a,b")
    with pytest.raises(DimensionError, match=match):
        alerts.make_alerts(fs, min_area_ha=0)


def test_make_alerts_connectivity_and_districts_by_hand():
    out = alerts.make_alerts(BIG, min_area_ha=0, connectivity=np.int64(8), districts=DISTRICT)
    assert out[["n_pixels", "area_ha", "district_pcode"]].values.tolist() == [[30, 0.3, "GH01"]]


def test_assign_districts_types_and_repair():
    pol = gdf([box(2, 18, 6, 22)])  # representative point (4, 20): inside the left triangle
    with pytest.raises(VectorError, match="polygons must be a GeoDataFrame; got list"):
        alerts.assign_districts([box(0, 0, 1, 1)], DISTRICT)
    with pytest.raises(VectorError, match="districts must be a GeoDataFrame; got DataFrame"):
        alerts.assign_districts(pol, pd.DataFrame({"ADM2_PCODE": ["a"], "ADM2_EN": ["A"]}))
    bowtie = gdf([Polygon(BOWTIE)], ADM2_PCODE=["GH02"], ADM2_EN=["B"])
    assert alerts.assign_districts(pol, bowtie)["district_pcode"].tolist() == ["GH02"]


def test_write_alerts_paths_types_and_inf(tmp_path):
    out = alerts.make_alerts(BIG, min_area_ha=0)
    (tmp_path / "x.gpkg").mkdir()
    for p in (tmp_path, tmp_path / "x.gpkg"):
        with pytest.raises(ParamsError, match="is a folder; give a file such as"):
            alerts.write_alerts(out, p)
    with pytest.raises(VectorError, match="alerts must be a GeoDataFrame; got list"):
        alerts.write_alerts([1], tmp_path / "a.geojson")
    path = alerts.write_alerts(out.assign(area_ha=INF), tmp_path / "a.geojson")
    text = path.read_text()
    assert "Infinity" not in text  # RFC 8259 JSON has no Infinity
    assert json.loads(text)["features"][0]["properties"]["area_ha"] is None


# ---------------------------------------------------------------- density
PTS = gdf([Point(500, 500)])
POLY = gdf([box(0, 0, 500, 500)])


def kde(source, **kw):
    return density.kde_map(source, **{"bandwidth_m": 300, "cell_size_m": 100, **kw})


@pytest.mark.parametrize(
    ("source", "kw", "error", "match"),
    [
        (PTS, {"bandwidth_m": INF}, ParamsError, "bandwidth_m and cell_size_m must be > 0.*inf"),
        (PTS, {"cell_size_m": INF}, ParamsError, "must be > 0; got 300, inf"),
        (PTS, {"bandwidth_m": "300"}, ParamsError, "must be > 0; got '300'"),
        (PTS, {"bandwidth_m": True}, ParamsError, "must be > 0; got True"),
        (PTS, {"bandwidth_m": 1e9}, ParamsError, r"the kernel .* would have .* cells.*larger"),
        (PTS, {"cell_size_m": 1e-3}, ParamsError, "the kernel .* would have"),
        (POLY, {"weight": "area_ha", "oversample": 100000}, ParamsError, "the fine grid .* would"),
        (PTS, {"bounds": (0, 0, 1e9, 1e9)}, ParamsError, "the density grid .* would have"),
        (PTS, {"bounds": (-INF, 0, 1000, 1000)}, ParamsError, "'bounds' must be four finite"),
        (PTS, {"bounds": (0, 0, 1000)}, ParamsError, "'bounds' must be four finite"),
        (PTS, {"bounds": "0,0,1,1"}, ParamsError, "'bounds' must be four finite"),
        (
            POLY,
            {"weight": "area_ha", "oversample": NAN},
            ParamsError,
            "'oversample' must be an int",
        ),
        (POLY, {"weight": "area_ha", "oversample": 2.7}, ParamsError, "'oversample' must be an"),
        (PTS, {"value": NAN}, ParamsError, r"'value' must be an integer; got nan \(float\)"),
        (PTS, {"value": 1.5}, ParamsError, "'value' must be an integer; got 1.5"),
        (PTS, {"value": True}, ParamsError, "'value' must be an integer; got True"),
        (gdf([LineString([(0, 0), (1000, 0)])]), {}, VectorError, "takes points or polygons"),
        (PTS, {"weight": "area_ha"}, VectorError, r"'area_ha' needs polygons.*\['Point'\]"),
        (PTS, {"crs": "EPSG:99999"}, MissingCRSError, "'EPSG:99999' is not a valid CRS"),
        (PTS, {"crs": "EPSG:2263"}, CRSMismatchError, "axis unit 'US survey foot'; expected m"),
    ],
    ids=[
        "bw_inf",
        "cell_inf",
        "bw_str",
        "bw_bool",
        "bw_huge",
        "cell_tiny",
        "oversample_huge",
        "bounds_huge",
        "bounds_inf",
        "bounds_3",
        "bounds_str",
        "oversample_nan",
        "oversample_frac",
        "value_nan",
        "value_frac",
        "value_bool",
        "lines",
        "points_area",
        "crs_invalid",
        "crs_feet",
    ],
)
def test_kde_map_refuses(source, kw, error, match):
    with pytest.raises(error, match=match):
        kde(source, **kw)


def raster(v, dtype="uint8"):
    v = np.array(v, dtype)
    ny, nx = v.shape
    coords = {"y": 95.0 - 10 * np.arange(ny), "x": 5.0 + 10 * np.arange(nx)}
    return xr.DataArray(v, dims=("y", "x"), coords=coords).rio.write_crs(UTM)


@pytest.mark.parametrize(
    ("r", "match"),
    [
        (raster(np.zeros((0, 3))), r"raster has no pixels \(shape \(0, 3\)\)"),
        (raster(np.eye(3), "complex64"), "integer .*event codes.*complex64"),
        (raster([["a"]], "U1"), "integer .*event codes.*<U1"),  # was "no events"
    ],
    ids=["zero_size", "complex", "str"],
)
def test_kde_map_refuses_rasters(r, match):
    with pytest.raises(DimensionError, match=match):
        kde(r)


def test_kde_map_counts_true_pixels_of_a_boolean_mask():
    d = kde(raster(np.eye(3), "bool"))
    assert d.attrs["total"] == 3.0
    assert float(d.sum()) * 0.01 == pytest.approx(3.0)  # 100 m cells: 0.01 km² each


def test_repaired_polygons_keep_only_their_polygonal_parts():
    # a square with a spike: make_valid gives a GeometryCollection (square + line)
    spiky = Polygon([(0, 0), (500, 0), (500, 500), (0, 500), (0, 0), (0, -200), (0, 0)])
    d = kde(gdf([spiky]), weight="area_ha")
    assert d.attrs["total"] == pytest.approx(25.0)  # 500 m x 500 m = 25 ha, nothing dropped
    g = grid.make_grid(gdf([box(0, 0, 1000, 1000)]), 1000, crs=UTM)
    assert grid.select_cells(g, gdf([spiky]))["label_area_m2"].tolist() == [250000.0]
