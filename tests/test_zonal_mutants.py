"""Tests for the survivors of the second mutation run of vitseg/zonal.py (issue 20, issue 22)."""

import re

import geopandas as gpd
import pytest
from _rasters import X0, Y0
from _rasters import class_grid as grid
from shapely.geometry import Polygon, box

from vitseg.errors import ParamsError
from vitseg.zonal import zonal_areas, zonal_polygon_areas

# one zone over the whole 2 x 2 map of 10 m pixels: 0.01 ha per pixel, 0.04 ha in all
ZONE = gpd.GeoDataFrame({"id": ["a"]}, geometry=[box(X0, Y0 - 20, X0 + 20, Y0)], crs=32630)


def _areas(values, **kw):
    out = zonal_areas(grid(values), ZONE, zone_id="id", keep_columns=(), **kw)
    assert len(out) == 1
    return out.iloc[0]


def test_nodata_just_above_the_last_code_is_allowed():
    # 3 classes (codes 0..2): nodata=3 is no class code, so it is accepted and read as no data
    row = _areas([[0, 1], [2, 3]], nodata=3)
    assert [row["mines_ha"], row["built_ha"], row["vegetation_ha"]] == pytest.approx([0.01] * 3)
    assert row["no_data_ha"] == pytest.approx(0.01)
    assert row["mapped_ha"] == pytest.approx(0.03)
    assert row["covered_fraction"] == pytest.approx(0.75)
    with pytest.raises(ParamsError, match=r"no class code \(codes 0\.\.2\).*got 2"):
        _areas([[0, 1], [2, 3]], nodata=2)


def test_a_single_class_is_enough():
    row = _areas([[0, 0], [0, 255]], class_names=["mines"])
    assert row["mines_ha"] == pytest.approx(0.03)
    assert row["no_data_ha"] == pytest.approx(0.01)
    assert [c for c in row.index if c.endswith("_ha")] == [
        "mines_ha", "no_data_ha", "zone_ha", "mapped_ha",
        "new_mines_ha", "mines_change_ha", "cumulative_new_mines_ha",
    ]  # fmt: skip


def test_255_classes_are_allowed():
    names = ["mines", *(f"c{i}" for i in range(1, 255))]  # codes 0..254, 255 is no data
    row = _areas([[0, 254], [254, 255]], class_names=names)
    assert row["mines_ha"] == pytest.approx(0.01)
    assert row["c254_ha"] == pytest.approx(0.02)
    assert row["c1_ha"] == 0.0
    assert row["no_data_ha"] == pytest.approx(0.01)
    assert [c for c in row.index if re.fullmatch(r"c\d+_ha", c)] == [
        f"c{i}_ha" for i in range(1, 255)
    ]


@pytest.mark.parametrize(
    "names",
    [[], ["mines", *(f"c{i}" for i in range(1, 256))], "mines"],
    ids=["none", "256", "string"],
)
def test_class_name_counts_outside_1_to_255_are_refused(names):
    with pytest.raises(ParamsError, match=r"class names must be a list of 1\.\.255 names"):
        _areas([[0, 0], [0, 0]], class_names=names, nodata=300)


@pytest.mark.parametrize(
    ("by", "columns"), [(None, ["id", "zone_ha", "area_ha"]), ("yr", ["id", "zone_ha"])]
)
def test_features_with_only_missing_or_empty_geometries_give_an_empty_table(by, columns):
    feats = gpd.GeoDataFrame({"yr": [1, 2]}, geometry=[None, Polygon()], crs=32630)
    out = zonal_polygon_areas(feats, ZONE, zone_id="id", keep_columns=(), by=by)
    assert len(out) == 0
    assert out.columns.tolist() == columns
    assert out.attrs["outside_ha"] == {}


def test_groups_of_missing_geometries_get_no_column():
    feats = gpd.GeoDataFrame(
        {"yr": [1, 2, 3]},
        geometry=[None, box(X0, Y0 - 10, X0 + 20, Y0), Polygon()],  # 0.02 ha in year 2
        crs=32630,
    )
    out = zonal_polygon_areas(feats, ZONE, zone_id="id", keep_columns=(), by="yr")
    assert out.columns.tolist() == ["id", "zone_ha", "area_ha_2"]
    assert list(out.attrs["outside_ha"]) == ["area_ha_2"]
    assert out.loc[0, "area_ha_2"] == pytest.approx(0.02, rel=2e-3)  # equal-area CRS vs UTM
    assert out.loc[0, "area_ha_2"] == pytest.approx(out.loc[0, "zone_ha"] / 2, rel=1e-6)


def test_polygon_areas_of_zones_whose_geometry_column_has_another_name() -> None:
    # was KeyError "['geometry'] not in index" (zones read from PostGIS have "geom")
    zones = gpd.GeoDataFrame(
        {"id": ["a"]}, geometry=[box(0, 0, 200, 100)], crs="EPSG:32630"
    ).rename_geometry("geom")
    feats = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs="EPSG:32630")
    out = zonal_polygon_areas(feats, zones, zone_id="id", area_crs="EPSG:32630")
    assert out["id"].tolist() == ["a"]
    assert out["area_ha"].tolist() == pytest.approx([1.0])  # 100 m x 100 m
    assert out["zone_ha"].tolist() == pytest.approx([2.0])
