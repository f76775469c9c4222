"""Tests for vitseg.accuracy: sample design, drawing the sample, the interpreters' sheet."""

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

from vitseg import accuracy, estimators, reference
from vitseg.accuracy import (
    allocate,
    map_class_counts,
    pixel_area_m2,
    read_sample,
    sample_size,
    stratified_sample,
    write_sample,
)
from vitseg.errors import (
    DimensionError,
    MissingCRSError,
    ParamsError,
    SampleError,
)

# Olofsson et al. (2014) mapped pixels of their worked example (tests/test_estimators.py).
OLOFSSON_MAPPED_PX = [200_000, 150_000, 3_200_000, 6_450_000]


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


# ----------------------------------------------------------- re-exports (issue 21)
def test_every_name_of_the_split_modules_stays_importable_from_accuracy():
    moved = {*estimators.__all__, *reference.__all__}
    assert moved <= set(accuracy.__all__)
    for name in moved:
        home = estimators if name in estimators.__all__ else reference
        assert getattr(accuracy, name) is getattr(home, name), name
    for name in accuracy.__all__:
        assert hasattr(accuracy, name), name
