"""Tests for vitseg.accuracy: design, sampling, sheet I/O, Olofsson et al. 2014 estimators."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import box

from vitseg.accuracy import (
    accuracy_table,
    allocate,
    area_proportions,
    count_ratios,
    error_matrix,
    estimate_area,
    estimate_zone_areas,
    map_class_counts,
    overall_accuracy,
    overall_count_ratio,
    pixel_area_m2,
    producers_accuracy,
    read_reference,
    read_sample,
    sample_size,
    stratified_sample,
    users_accuracy,
    write_sample,
)
from vitseg.errors import (
    DimensionError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    SampleError,
)

# Olofsson et al. (2014) worked example: strata = map classes, 30 m pixels (0.09 ha).
OLOFSSON_CLASSES = ["deforestation", "forest_gain", "stable_forest", "stable_non_forest"]
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_MAPPED_PX = [200_000, 150_000, 3_200_000, 6_450_000]


@pytest.fixture
def olofsson():
    return pd.DataFrame(OLOFSSON_COUNTS, index=OLOFSSON_CLASSES, columns=OLOFSSON_CLASSES)


# ------------------------------------------------------------------------ design
def test_sample_size_hand_computed():
    # S = sqrt(0.9 * 0.1) = 0.3 in both strata: (0.3 / 0.03)^2 = 100
    assert sample_size([0.5, 0.5], [0.9, 0.9], target_se=0.03) == 100
    # small population: 0.09 / (0.0009 + 0.09 / 100) = 50
    assert sample_size([0.5, 0.5], [0.9, 0.9], target_se=0.03, population=100) == 50
    # two unequal strata: W = (0.2, 0.8), U = (0.5, 0.9): sum W S = 0.1 + 0.24 = 0.34
    assert sample_size([0.2, 0.8], [0.5, 0.9], target_se=0.02) == 289  # 0.1156 / 0.0004
    # Olofsson et al.'s design: U = 0.7, 0.6, 0.9, 0.95 and S(O) = 0.01 -> 641
    w = np.array(OLOFSSON_MAPPED_PX) / sum(OLOFSSON_MAPPED_PX)
    assert sample_size(w, [0.7, 0.6, 0.9, 0.95], target_se=0.01) == 641


def test_sample_size_gallwey_509():
    # Gallwey et al. §2.8 reported 509 for S(O) = 0.01 without their W_i, U_i; a common
    # expected user's accuracy U with U(1-U) = 0.0509 gives it for any weights.
    u = (1 + math.sqrt(1 - 4 * 0.0509)) / 2
    assert sample_size([0.03, 0.02, 0.95], [u] * 3, target_se=0.01) == 509


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [0.5], "users_accuracy": [0.9, 0.8]}, "one value per stratum"),
        ({"weights": [-1, 2], "users_accuracy": [0.9, 0.8]}, "'weights' must be >= 0"),
        ({"weights": [1, 1], "users_accuracy": [1.2, 0.8]}, r"lie in \[0, 1\]"),
        ({"weights": [1, 1], "users_accuracy": [0.9, 0.8], "target_se": 0}, "target_se"),
    ],
)
def test_sample_size_errors(kwargs, match):
    with pytest.raises(ParamsError, match=match):
        sample_size(**kwargs)


def test_allocation_rules():
    w = {"mines": 0.02, "built": 0.03, "vegetation": 0.95}
    g = allocate(509, w, method="gallwey")
    assert g.to_dict() == {"mines": 127, "built": 127, "vegetation": 254}
    raised = allocate(509, w, method="gallwey", oversample=1.18, round_up_to=50)
    assert raised.tolist() == [150, 150, 300]
    assert allocate(100, w, method="proportional").tolist() == [2, 3, 95]
    assert allocate(100, w, method="proportional", min_per_stratum=20).tolist() == [20, 20, 95]
    assert allocate(100, [1, 1, 1], method="equal").tolist() == [33, 33, 33]
    assert allocate(10, [0.5, 0.5], method="equal", oversample=1.5).tolist() == [8, 8]
    with pytest.raises(ParamsError, match="'method' must be one of"):
        allocate(10, [1, 1], method="neyman")
    with pytest.raises(ParamsError, match="'oversample' must be >= 1"):
        allocate(10, [1, 1], oversample=0.5)


# --------------------------------------------------------------------- sampling
def _class_map(crs: str, backing: str = "numpy") -> xr.DataArray:
    rng = np.random.default_rng(11)
    data = rng.choice([0, 1, 2], p=[0.1, 0.2, 0.7], size=(30, 40)).astype("uint8")
    data[:5, :] = 255  # no-data band along the top
    data[10:12, 30:32] = 0
    if crs == "EPSG:4326":
        x = -2.0 + (np.arange(40) + 0.5) * 1e-4
        y = 6.0 - (np.arange(30) + 0.5) * 1e-4
    else:
        x = 600_000 + (np.arange(40) + 0.5) * 10
        y = 700_000 - (np.arange(30) + 0.5) * 10
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(crs)
    da.rio.write_nodata(255, inplace=True)
    return da.chunk({"y": 7, "x": 13}) if backing == "dask" else da


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_points_in_stratum_never_on_nodata(crs, backing):
    cmap = _class_map(crs, backing)
    sample = stratified_sample(cmap, n_per_class=[20, 25, 30], seed=3, strip_rows=4)
    assert sample.crs.to_string() == crs
    assert sample["map_class"].value_counts().to_dict() == {
        "mines": 20,
        "built": 25,
        "vegetation": 30,
    }
    values = cmap.values[sample["row"], sample["col"]]
    np.testing.assert_array_equal(values, sample["map_code"])
    assert not np.any(values == 255)
    picked = cmap.sel(
        x=xr.DataArray(sample.geometry.x.values), y=xr.DataArray(sample.geometry.y.values)
    )
    np.testing.assert_array_equal(picked.values, sample["map_code"])
    assert not sample.duplicated(["row", "col"]).any()
    assert (sample["reference_class"] == "").all()
    assert sample["point_id"].tolist() == list(range(1, 76))


def test_same_seed_same_sample_whatever_the_strips():
    cmap = _class_map("EPSG:32630")
    a = stratified_sample(cmap, n_per_class=15, seed=7, strip_rows=3)
    b = stratified_sample(cmap.chunk({"y": 5}), n_per_class=15, seed=7, strip_rows=1024)
    c = stratified_sample(cmap, n_per_class=15, seed=8)
    assert_geodataframe_equal(a, b)
    assert not a[["row", "col"]].equals(c[["row", "col"]])


def test_sample_from_cog_and_map_counts(tmp_path):
    cmap = _class_map("EPSG:32630")
    cmap.rio.to_raster(tmp_path / "class.tif")
    from_file = stratified_sample(tmp_path / "class.tif", n_per_class={"mines": 4}, seed=1)
    assert from_file["map_class"].tolist() == ["mines"] * 4
    counts = map_class_counts(tmp_path / "class.tif", strip_rows=4)
    expected = [int(np.sum(cmap.values == c)) for c in range(3)]
    assert counts.tolist() == expected and counts.index.tolist() == ["mines", "built", "vegetation"]
    assert pixel_area_m2(tmp_path / "class.tif") == 100.0
    with pytest.raises(ParamsError, match="geographic"):
        pixel_area_m2(_class_map("EPSG:4326"))


def test_sample_errors_and_warnings():
    cmap = _class_map("EPSG:32630")
    with pytest.raises(MissingCRSError, match="no CRS"):
        stratified_sample(xr.DataArray(cmap.values, dims=("y", "x")), n_per_class=1)
    no_built = cmap.where(cmap != 1, 2)
    with pytest.raises(SampleError, match=r"class 'built' .* has no pixel"):
        stratified_sample(no_built, n_per_class=1)
    with pytest.raises(ParamsError, match="unknown classes"):
        stratified_sample(cmap, n_per_class={"water": 3})
    with pytest.raises(DimensionError, match="one band"):
        stratified_sample(cmap.expand_dims(band=[1, 2]), n_per_class=1)
    n_mines = int(np.sum(cmap.values == 0))
    with pytest.warns(UserWarning, match="all are taken"):
        s = stratified_sample(cmap, n_per_class=[n_mines + 5, 0, 0], seed=0)
    assert len(s) == n_mines


def test_zones_are_attached(tmp_path):
    cmap = _class_map("EPSG:32630")
    zones = gpd.GeoDataFrame(
        {"district": ["west", "east"]},
        geometry=[box(600_000, 699_000, 600_200, 700_000), box(600_200, 699_000, 600_400, 700_000)],
        crs="EPSG:32630",
    ).to_crs("EPSG:4326")
    s = stratified_sample(cmap, n_per_class=10, seed=0, zones=zones, zone_col="district")
    expected = np.where(s["x"] < 600_200, "west", "east")
    assert s["district"].tolist() == expected.tolist()


def test_write_and_read_sheet(tmp_path):
    sample = stratified_sample(_class_map("EPSG:32630"), n_per_class=3, seed=0)
    path = write_sample(sample, tmp_path / "sample.gpkg")
    assert path == tmp_path / "sample.gpkg" and path.exists()
    sheet = pd.read_csv(tmp_path / "sample.csv")
    tail = ["reference_class", "interpreter", "labelled_at", "map_revealed"]
    assert sheet.columns[-4:].tolist() == tail and sheet[tail].isna().all().all()
    assert "reference" not in sheet.columns
    assert {"point_id", "map_class", "lon", "lat"} <= set(sheet.columns)
    assert sheet["lon"].between(-2.2, -2.0).all()  # 600 km E in UTM 30N is about 2.09 W
    back = gpd.read_file(path)
    assert len(back) == 9 and back.crs.to_epsg() == 32630
    with pytest.raises(SampleError, match=r"9 of 9 points .* have no reference label"):
        read_sample(tmp_path / "sample.csv")
    sheet["reference_class"] = ["Mines", "0", "built"] * 3
    sheet.to_csv(tmp_path / "filled.csv", index=False)
    table = read_sample(tmp_path / "filled.csv")
    assert table["reference_class"].tolist() == ["mines", "mines", "built"] * 3
    # a sheet of an older vitseg, labels in 'reference', still reads
    legacy = sheet.drop(columns="reference_class").assign(reference=["built"] * 9)
    legacy.to_csv(tmp_path / "legacy.csv", index=False)
    assert read_sample(tmp_path / "legacy.csv")["reference_class"].tolist() == ["built"] * 9
    both = sheet.assign(reference_class="", reference=["vegetation"] * 9)
    assert read_sample(both)["reference_class"].tolist() == ["vegetation"] * 9
    sheet.loc[4, "reference_class"] = "water"
    point = sheet.loc[4, "point_id"]
    with pytest.raises(
        SampleError, match=rf"reference labels \['water'\] \(point_id \[{point}\]\) are not"
    ):
        read_sample(sheet)
    with pytest.raises(SampleError, match="lacks columns"):
        read_sample(sheet.drop(columns="reference_class"))
    with pytest.raises(ParamsError, match=r"\.gpkg"):
        write_sample(sample, tmp_path / "sample.shp")


# ------------------------------------------------------------ filled reference file
# 8 points: ids 1-3 mapped mines, 4-5 built, 6-8 vegetation.
MAP_CLASSES = ["mines"] * 3 + ["built"] * 2 + ["vegetation"] * 3
# What the interpreters said (point 3 unreadable, point 7 left blank), in file order.
FILLED = {
    5: "vegetation",
    1: "Mines",
    2: "built",
    3: "Cannot tell",
    4: "1",
    6: "vegetation",
    7: "",
    8: "mines",
}


def _sample(n=8, map_classes=MAP_CLASSES):
    x, y = 600_005 + 10 * np.arange(n), np.full(n, 700_005.0)
    return gpd.GeoDataFrame(
        {
            "point_id": np.arange(1, n + 1),
            "map_class": map_classes[:n],
            "x": x,
            "y": y,
            "reference_class": [""] * n,
        },
        geometry=gpd.points_from_xy(x, y),
        crs="EPSG:32630",
    )


def _filled(labels=FILLED):
    return pd.DataFrame(
        {
            "point_id": list(labels),
            "reference_class": list(labels.values()),
            "interpreter": "ama",
            "labelled_at": "2024-05-01T10:00:00Z",
            "map_revealed": ["false", "true"] * (len(labels) // 2) + ["false"] * (len(labels) % 2),
        }
    )


@pytest.mark.parametrize("file_format", ["csv", "gpkg"])
@pytest.mark.parametrize("sample_from", ["frame", "gpkg"])
def test_read_reference_into_error_matrix(tmp_path, file_format, sample_from):
    sample = _sample()
    if sample_from == "gpkg":
        sample = write_sample(sample, tmp_path / "sample.gpkg")
    filled = _filled()
    path = tmp_path / f"filled.{file_format}"
    if file_format == "csv":
        filled.to_csv(path, index=False)
    else:  # a GeoPackage export, points in another CRS: only the ids count
        gpd.GeoDataFrame(
            filled, geometry=gpd.points_from_xy(filled["point_id"], [0] * 8), crs=4326
        ).to_file(path)
    ref = read_reference(path, sample)
    assert isinstance(ref, gpd.GeoDataFrame)
    assert ref.attrs["n_cannot_tell"] == 2 and ref.attrs["cannot_tell_ids"] == [3, 7]
    assert ref["point_id"].tolist() == [1, 2, 4, 5, 6, 8]  # the sample's order
    assert ref["reference_class"].tolist() == [
        "mines", "built", "built", "vegetation", "vegetation", "mines"
    ]  # fmt: skip
    assert (ref["interpreter"] == "ama").all()
    # file order 5, 1, 2, 3, 4, 6, 7, 8 alternates false, true
    assert ref["map_revealed"].tolist() == [True, False, False, False, True, True]
    # by hand: map mines -> ref (mines, built); built -> (built, vegetation);
    # vegetation -> (vegetation, mines)
    m = error_matrix(ref)
    assert m.to_numpy().tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]


def test_read_reference_fills_the_written_sheet(tmp_path):
    gpkg = write_sample(_sample(), tmp_path / "sample.gpkg")
    sheet = pd.read_csv(tmp_path / "sample.csv")
    sheet["reference_class"] = [
        "mines",
        "?",
        "mines",
        "built",
        "built",
        "UNKNOWN",
        "",
        "vegetation",
    ]
    sheet.to_csv(tmp_path / "sample.csv", index=False)
    ref = read_reference(tmp_path / "sample.csv", gpkg)
    assert ref.attrs["n_cannot_tell"] == 3
    assert error_matrix(ref).to_numpy().tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


ROWS = list(FILLED.items())


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            [*ROWS, (99, "mines"), (100, "built")],
            r"point ids \[99, 100\] .* not in the sample .* another run\?",
        ),
        ([r for r in ROWS if r[0] not in (5, 6)], r"sample points \[5, 6\] \(2 of 8\) are missing"),
        ([*ROWS, ("2.0", "mines")], r"point ids \[2\] appear more than once"),
        (
            [(i, {4: "water", 6: "gold"}.get(i, c)) for i, c in ROWS],
            r"labels \['gold', 'water'\] \(point_id \[4, 6\]\) are not classes",
        ),
    ],
)
def test_read_reference_errors_name_the_points(tmp_path, rows, match):
    frame = pd.DataFrame(rows, columns=["point_id", "reference_class"])
    frame.to_csv(tmp_path / "filled.csv", index=False)
    with pytest.raises(SampleError, match=match):
        read_reference(tmp_path / "filled.csv", _sample())


def test_read_reference_reports_every_problem_at_once(tmp_path):
    rows = [r for r in ROWS if r[0] != 8] + [(42, "mines"), (1, "mines")]
    pd.DataFrame(rows, columns=["point_id", "reference_class"]).to_csv(
        tmp_path / "filled.csv", index=False
    )
    with pytest.raises(SampleError) as info:
        read_reference(tmp_path / "filled.csv", _sample())
    msg = str(info.value)
    assert "[1] appear more than once" in msg and "[42] of filled.csv" in msg
    assert "sample points [8]" in msg


def test_read_reference_lists_at_most_ten_ids_and_checks_columns(tmp_path):
    sample = _sample(30, ["mines"] * 30)
    pd.DataFrame({"point_id": [1], "reference_class": ["mines"]}).to_csv(
        tmp_path / "one.csv", index=False
    )
    with pytest.raises(SampleError, match=r"\[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, \.\.\.\] \(29 of"):
        read_reference(tmp_path / "one.csv", sample)
    pd.DataFrame({"point_id": [1], "label": ["mines"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SampleError, match=r"lacks columns \['reference_class'\]"):
        read_reference(tmp_path / "bad.csv", sample)
    with pytest.raises(MissingFileError, match=r"nothing\.csv"):
        read_reference(tmp_path / "nothing.csv", sample)


# ------------------------------------------------------------------- estimators
def test_error_matrix_rows_map_columns_reference():
    s = pd.DataFrame(
        {
            "map_class": ["mines", "mines", "mines", "built", "vegetation"],
            "reference_class": ["mines", "built", "built", "built", "mines"],
        }
    )
    m = error_matrix(s)
    assert m.index.name == "map" and m.columns.name == "reference"
    assert m.to_numpy().tolist() == [[1, 2, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(SampleError, match="not classes"):
        error_matrix(s.assign(reference_class=["mines", "water", "x", "built", "built"]))


def test_two_classes_hand_computed():
    # strata: A 25 px mapped, 10 points (8 A, 2 B); B 75 px, 10 points (all B)
    m = pd.DataFrame([[8, 2], [0, 10]], index=["A", "B"], columns=["A", "B"])
    area = {"A": 25, "B": 75}
    p = area_proportions(m, area).to_numpy()
    np.testing.assert_allclose(p, [[0.2, 0.05], [0.0, 0.75]])
    oa = overall_accuracy(m, area)
    assert oa["estimate"] == pytest.approx(0.95)
    # V = 0.25^2 * 0.8 * 0.2 / 9 + 0 = 0.00111...
    assert oa["se"] == pytest.approx(math.sqrt(0.0625 * 0.16 / 9))
    assert oa["ci95"] == pytest.approx(1.96 * oa["se"])
    ua = users_accuracy(m, area)
    assert ua["estimate"].tolist() == pytest.approx([0.8, 1.0])
    assert ua.loc["A", "se"] == pytest.approx(math.sqrt(0.16 / 9))
    pa = producers_accuracy(m, area)
    # P_A = 0.2 / 0.2 = 1; P_B = 0.75 / 0.8 = 0.9375
    assert pa["estimate"].tolist() == pytest.approx([1.0, 0.9375])
    # V(P_B) = 1/N_.B^2 [N_B^2 (1-P_B)^2 * 0 + P_B^2 * N_A^2 * 0.2*0.8/9], N_.B = 80
    assert pa.loc["B", "se"] == pytest.approx(math.sqrt(0.9375**2 * 625 * 0.16 / 9) / 80)
    assert pa.loc["A", "se"] == pytest.approx(0.0)
    area_est = estimate_area(m, area, pixel_area_m2=10_000)
    assert area_est["area_px"].tolist() == pytest.approx([20.0, 80.0])
    assert area_est["area_ha"].tolist() == pytest.approx([20.0, 80.0])
    se = math.sqrt(0.0625 * 0.16 / 9) * 100
    assert area_est["area_px_se"].tolist() == pytest.approx([se, se])
    table = accuracy_table(m, area)
    assert table["commission_error"].tolist() == pytest.approx([0.2, 0.0])
    assert table["omission_error"].tolist() == pytest.approx([0.0, 0.0625])
    assert table["n_points"].tolist() == [10, 10]


def test_three_classes_unequal_strata_plain_vs_weighted():
    # rows map, cols reference; strata 10 %, 30 %, 60 % of 1000 px
    m = pd.DataFrame(
        [[18, 2, 0], [3, 24, 3], [0, 6, 44]],
        index=["mines", "built", "vegetation"],
        columns=["mines", "built", "vegetation"],
    )
    area = [100, 300, 600]
    est = estimate_area(m, area)
    # p_.mines = 0.1*18/20 + 0.3*3/30 + 0 = 0.09 + 0.03 = 0.12 -> 120 px
    # p_.built = 0.1*2/20 + 0.3*24/30 + 0.6*6/50 = 0.01 + 0.24 + 0.072 = 0.322
    # p_.veg = 0 + 0.3*3/30 + 0.6*44/50 = 0.03 + 0.528 = 0.558
    assert est["area_px"].tolist() == pytest.approx([120, 322, 558])
    assert est["area_px"].sum() == pytest.approx(1000)
    assert est["mapped_ha"].tolist() == pytest.approx([1, 3, 6])  # 10 m pixels
    oa = overall_accuracy(m, area)["estimate"]
    assert oa == pytest.approx(0.09 + 0.24 + 0.528)
    plain = count_ratios(m)
    assert overall_count_ratio(m) == pytest.approx(86 / 100)
    assert plain.loc["mines", "producers_accuracy"] == pytest.approx(18 / 21)
    weighted = producers_accuracy(m, area)
    assert weighted.loc["mines", "estimate"] == pytest.approx(0.09 / 0.12)
    assert weighted.loc["vegetation", "estimate"] == pytest.approx(0.528 / 0.558)


def test_olofsson_2014_example(olofsson):
    area = dict(zip(OLOFSSON_CLASSES, OLOFSSON_MAPPED_PX, strict=True))
    # their Table of estimated area proportions (4 decimals)
    p = area_proportions(olofsson, area).to_numpy()
    expected_p = [
        [0.0176, 0.0000, 0.0013, 0.0011],
        [0.0000, 0.0110, 0.0016, 0.0024],
        [0.0019, 0.0000, 0.2967, 0.0213],
        [0.0040, 0.0020, 0.0179, 0.6212],
    ]
    np.testing.assert_allclose(p, expected_p, atol=5e-5)
    oa = overall_accuracy(olofsson, area)
    assert round(oa["estimate"], 2) == 0.95 and round(oa["ci95"], 2) == 0.02
    table = accuracy_table(olofsson, area)
    assert table["users_accuracy"].round(2).tolist() == [0.88, 0.73, 0.93, 0.96]
    assert table["users_ci95"].round(2).tolist() == [0.07, 0.10, 0.04, 0.02]
    assert table["producers_accuracy"].round(2).tolist() == [0.75, 0.85, 0.93, 0.96]
    # the paper prints 0.21 and 0.03 for these two intervals (others differ by rounding)
    assert table["producers_ci95"].round(2).tolist()[0] == 0.21
    assert table["producers_ci95"].round(2).tolist()[2] == 0.03
    # areas in ha with 95 % half-widths: 30 m pixels are 0.09 ha
    est = estimate_area(olofsson, area, pixel_area_m2=900)
    assert est["area_ha"].round().tolist() == [21158, 11686, 285770, 581386]
    assert est["area_ha_ci95"].round().tolist() == [6158, 3756, 15510, 16282]
    assert est["mapped_ha"].tolist() == [18_000, 13_500, 288_000, 580_500]
    assert est["area_px"].round().iloc[0] == 235_086


def test_perfect_map_estimates_equal_mapped_areas():
    m = pd.DataFrame(np.diag([30, 40, 50]), index=list("abc"), columns=list("abc"))
    area = [1234, 5678, 91011]
    est = estimate_area(m, area)
    np.testing.assert_allclose(est["area_px"], area)
    np.testing.assert_allclose(est["area_px_se"], 0)
    assert overall_accuracy(m, area)["estimate"] == 1.0
    np.testing.assert_allclose(producers_accuracy(m, area)["estimate"], 1.0)


def test_zone_estimates_add_up_and_match_single_zone(olofsson):
    rows = []
    for i, map_c in enumerate(OLOFSSON_CLASSES):
        for j, ref_c in enumerate(OLOFSSON_CLASSES):
            rows += [(map_c, ref_c)] * OLOFSSON_COUNTS[i][j]
    sample = pd.DataFrame(rows, columns=["map_class", "reference_class"])
    sample["zone"] = np.where(np.arange(len(sample)) % 3 == 0, "north", "south")
    kw = {"classes": OLOFSSON_CLASSES}
    total = estimate_area(olofsson, OLOFSSON_MAPPED_PX)
    by_zone = estimate_zone_areas(sample, OLOFSSON_MAPPED_PX, **kw)
    summed = by_zone.groupby("class")["area_px"].sum().reindex(OLOFSSON_CLASSES)
    np.testing.assert_allclose(summed.to_numpy(), total["area_px"].to_numpy())
    one = estimate_zone_areas(sample.assign(zone="all"), OLOFSSON_MAPPED_PX, **kw)
    np.testing.assert_allclose(one["area_px"], total["area_px"])
    np.testing.assert_allclose(one["area_px_se"], total["area_px_se"])
    with pytest.raises(SampleError, match="no zone column 'district'"):
        estimate_zone_areas(sample, OLOFSSON_MAPPED_PX, zone_col="district", **kw)


@pytest.mark.parametrize(
    ("matrix", "area", "match"),
    [
        ([[5, 1], [0, 0]], [10, 10], r"map classes \['1'\] have mapped area but no sample"),
        ([[5, 1], [0, 3]], [10], "needs 2 values"),
        ([[5, 1], [0, 3]], [0, 0], "not all 0"),
        ([[5, 1, 0], [0, 3, 1]], [1, 1], "square"),
    ],
)
def test_estimator_errors(matrix, area, match):
    with pytest.raises((SampleError, DimensionError), match=match):
        estimate_area(np.array(matrix), area)


def test_single_point_stratum_warns_and_gives_nan_se():
    with pytest.warns(UserWarning, match="single sample point"):
        est = estimate_area([[1, 0], [1, 9]], [10, 90])
    assert np.isnan(est["area_px_se"]).all()


# ------------------------------------------------- bad input, round 2 (issue 22)

CLS3 = ["mines", "built", "vegetation"]


def _m3(cell=None):
    m = pd.DataFrame([[8, 1, 1], [1, 8, 1], [1, 1, 8]], index=CLS3, columns=CLS3, dtype=float)
    if cell is not None:
        m.loc["built", "built"] = cell
    return m


@pytest.mark.parametrize("fn", [estimate_area, accuracy_table, overall_accuracy])
@pytest.mark.parametrize(
    ("cell", "area", "match"),
    [
        # a NaN count dropped the whole 'built' stratum (proportions summed to 0.9)
        (np.nan, [10, 10, 80], r"finite and >= 0.*'built' / reference 'built': nan"),
        (np.inf, [10, 10, 80], r"'built' / reference 'built': inf"),
        (-1, [10, 10, 80], r"'built' / reference 'built': -1"),
        # NaN / inf mapped areas gave all-NaN tables
        (None, [10, np.nan, 80], r"mapped_area' must be finite and >= 0.*'built': nan"),
        (None, {"mines": np.inf, "built": 10, "vegetation": 80}, r"'mines': inf"),
        (None, [10, -5, 80], r"'built': -5"),
    ],
)
def test_nan_inf_negative_counts_and_areas_name_the_class(fn, cell, area, match):
    with pytest.raises(SampleError, match=match):
        fn(_m3(cell), area)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pixel_area_m2": -100.0}, r"'pixel_area_m2' must be a finite number > 0; got -100"),
        ({"pixel_area_m2": 0}, "'pixel_area_m2' must be"),
        ({"pixel_area_m2": np.nan}, "'pixel_area_m2' must be"),
        ({"z": -1.96}, r"'z' must be a finite number > 0; got -1\.96.*1\.96"),
        ({"z": np.nan}, "'z' must be"),
    ],
)
def test_pixel_area_and_z_must_be_positive(kwargs, match):
    with pytest.raises(ParamsError, match=match):
        estimate_area(_m3(), [10, 10, 80], **kwargs)
    if "z" in kwargs:
        for fn in (accuracy_table, overall_accuracy, users_accuracy, producers_accuracy):
            with pytest.raises(ParamsError, match=match):
                fn(_m3(), [10, 10, 80], **kwargs)


def test_valid_matrix_still_sums_to_one_and_bad_shapes():
    est = estimate_area(_m3(), [10, 10, 80], pixel_area_m2=100)
    assert est["proportion"].sum() == pytest.approx(1.0)
    assert est["area_px"].sum() == pytest.approx(100.0)
    with pytest.raises(DimensionError, match="2-D"):
        estimate_area(np.array([1, 2]), [1, 1])
    with pytest.raises(DimensionError, match="empty"):
        estimate_area(np.zeros((0, 0)), [])
    with pytest.raises(SampleError, match="numeric counts"):
        estimate_area(pd.DataFrame([["a", 1], [0, 1]]), [1, 1])


# ------------------------------------------------------- interpretation pages (issue 18)
def _interp_sample():
    from vitseg.accuracy import stratified_sample

    m = xr.DataArray(
        np.array([[0, 0, 1, 1], [2, 2, 2, 2], [2, 0, 1, 2]], "uint8"),
        dims=("y", "x"),
        coords={"y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]},
    ).rio.write_crs("EPSG:32630")
    return stratified_sample(m, n_per_class=2, seed=0)


def test_sample_id_same_for_every_form_of_the_sample(tmp_path):
    from vitseg.accuracy import sample_id

    sample = _interp_sample()
    sid = sample_id(sample)
    assert len(sid) == 12 and int(sid, 16) >= 0
    write_sample(sample, tmp_path / "s.gpkg")
    assert sample_id(gpd.read_file(tmp_path / "s.gpkg")) == sid
    assert sample_id(pd.read_csv(tmp_path / "s.csv")) == sid
    assert sample_id(sample.iloc[::-1]) == sid
    assert sample_id(sample.assign(x=sample["x"] + 0.001)) == sid  # under a centimetre
    assert sample_id(sample.assign(x=sample["x"] + 10)) != sid
    assert sample_id(sample.assign(point_id=sample["point_id"] + 100)) != sid
    assert sample_id(sample.assign(sample_id="custom")) == "custom"
    with pytest.raises(SampleError, match="several ids"):
        sample_id(sample.assign(sample_id=["a", "b"] * 3))


def test_read_reference_refuses_another_samples_export(tmp_path):
    from vitseg.accuracy import sample_id

    sample = _interp_sample()
    rows = pd.DataFrame(
        {"point_id": sample["point_id"], "reference_class": sample["map_class"],
         "interpreter": "Ama", "notes": ["", "wet pit", "", "", "", ""],
         "sample_id": sample_id(sample)}
    )  # fmt: skip
    rows.to_csv(tmp_path / "ok.csv", index=False)
    ref = read_reference(tmp_path / "ok.csv", sample)
    assert len(ref) == 6 and ref["notes"].iloc[1] == "wet pit"
    rows.assign(sample_id="").to_csv(tmp_path / "blank.csv", index=False)
    assert len(read_reference(tmp_path / "blank.csv", sample)) == 6
    rows.assign(sample_id="0123456789ab").to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(SampleError, match=r"exported for sample_id 0123456789ab but this sample"):
        read_reference(tmp_path / "other.csv", sample)


def test_cohens_kappa_textbook_2x2():
    # Cohen's kappa, the Wikipedia example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no;
    # p_o = 35/50 = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.2 / 0.5 = 0.4
    from vitseg.accuracy import interpreter_agreement

    pairs = [("mines", "mines")] * 20 + [("mines", "vegetation")] * 5
    pairs += [("vegetation", "mines")] * 10 + [("vegetation", "vegetation")] * 15
    a = pd.DataFrame({"point_id": range(50), "reference_class": [p[0] for p in pairs]})
    b = pd.DataFrame({"point_id": range(50), "reference_class": [p[1] for p in pairs]})
    r = interpreter_agreement(a, b)
    assert r["n_common"] == 50 and r["percent_agreement"] == pytest.approx(70.0)
    assert r["kappa"] == pytest.approx(0.4)
    assert r["disagreeing_ids"] == list(range(20, 35))
    assert r["confusion"].loc["mines", "vegetation"] == 5
    assert r["confusion"].loc["vegetation", "mines"] == 10


def test_cohens_kappa_hand_computed_3x3_and_partial_overlap():
    # a in rows, b in columns: [[25, 2, 3], [4, 20, 6], [1, 4, 35]], n = 100
    # p_o = 80/100; rows 30, 30, 40; columns 30, 26, 44
    # p_e = (30*30 + 30*26 + 40*44) / 100^2 = 0.344; kappa = (0.8 - 0.344) / 0.656
    from vitseg.accuracy import interpreter_agreement
    from vitseg.constants import CLASSES

    counts = [[25, 2, 3], [4, 20, 6], [1, 4, 35]]
    la, lb = [], []
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            la += [CLASSES[i]] * n
            lb += [CLASSES[j]] * n
    a = pd.DataFrame({"point_id": [f"k-{i:04d}" for i in range(100)], "reference_class": la})
    b = pd.DataFrame({"point_id": [f"k-{i:04d}" for i in range(100)], "reference_class": lb})
    # b could not tell two more points; a's 'cannot tell' points are absent from a
    b = pd.concat([b, pd.DataFrame({"point_id": ["k-0100", "k-0101"], "reference_class": "built"})])
    r = interpreter_agreement(a, b)
    assert r["kappa"] == pytest.approx((0.8 - 0.344) / 0.656)
    assert (r["n_common"], r["n_only_a"], r["n_only_b"]) == (100, 0, 2)
    assert len(r["disagreeing_ids"]) == 20 and r["disagreeing_ids"][0] == "k-0025"
    assert r["confusion"].to_numpy().tolist() == counts
    same = interpreter_agreement(a, a)
    assert same["kappa"] == pytest.approx(1.0) and same["disagreeing_ids"] == []


def test_merge_interpretations():
    from vitseg.accuracy import merge_interpretations

    sample = _interp_sample()
    ids = sample["point_id"].tolist()
    a = sample.assign(
        reference_class=["mines", "mines", "built", "vegetation", "vegetation", "mines"]
    )
    a = a.drop(index=5).reset_index(drop=True)  # a could not tell the last point
    b = sample.assign(reference_class=["mines", "built", "built", "vegetation", "mines", "built"])
    b = b.drop(index=0).reset_index(drop=True)  # b could not tell the first
    first = merge_interpretations(a, b)
    assert first["point_id"].tolist() == ids
    assert first["reference_class"].tolist() == [
        "mines", "mines", "built", "vegetation", "vegetation", "built"
    ]  # fmt: skip
    assert first["labelled_by"].tolist() == ["first", "first", "both", "both", "first", "second"]
    assert first.attrs["disagreeing_ids"] == [ids[1], ids[4]]
    assert isinstance(first, gpd.GeoDataFrame) and first.crs == sample.crs
    agreed = merge_interpretations(a, b, how="agreed")
    assert agreed["point_id"].tolist() == [ids[2], ids[3]]
    assert set(agreed["labelled_by"]) == {"both"}
    assert int(error_matrix(agreed).to_numpy().sum()) == 2


@pytest.mark.parametrize(
    ("a", "b", "how", "match"),
    [
        ({"point_id": [1], "reference_class": ["mines"]}, {"point_id": [2], "reference_class": ["mines"]}, "first", "share no labelled point"),
        ({"point_id": [1]}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"interpretation a lacks columns \['reference_class'\]"),
        ({"point_id": [1, 1], "reference_class": ["mines"] * 2}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"labels points \[1\] more than once"),
        ({"point_id": [1], "reference_class": ["quarry"]}, {"point_id": [1], "reference_class": ["mines"]}, "first", r"\['quarry'\] \(point_id \[1\]\)"),
        ({"point_id": [1], "reference_class": ["mines"]}, {"point_id": [1], "reference_class": ["mines"]}, "union", "'how' must be one of"),
    ],
)  # fmt: skip
def test_agreement_and_merge_errors(a, b, how, match):
    from vitseg.accuracy import interpreter_agreement, merge_interpretations
    from vitseg.errors import ParamsError

    error = ParamsError if how == "union" else SampleError
    with pytest.raises(error, match=match):
        if how == "union":
            merge_interpretations(pd.DataFrame(a), pd.DataFrame(b), how=how)
        else:
            interpreter_agreement(pd.DataFrame(a), pd.DataFrame(b))
