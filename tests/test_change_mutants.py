"""Tests for vitseg.change added from mutation testing (docs/mutation.md, issue 20).

Each test pins a value worked out by hand that a surviving mutant of vitseg/change.py
changed; the mutant it kills is named in a comment.
"""

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from _rasters import class_grid as grid
from affine import Affine
from shapely.geometry import LineString, box

from vitseg.change import (
    change_map,
    class_areas,
    new_mining,
    new_mining_polygons,
    pixel_area_m2,
    polygon_area_ha,
    transition_areas,
)
from vitseg.errors import GridMismatchError


def _raster(transform: Affine, crs: str, shape=(2, 2)) -> xr.DataArray:
    """A uint8 (y, x) map without coordinates whose grid is ``transform``."""
    da = xr.DataArray(np.zeros(shape, "uint8"), dims=("y", "x"))
    return da.rio.write_crs(crs).rio.write_transform(transform)


@pytest.mark.parametrize(
    "transform",
    [
        Affine(0.001, 0.0005, -1.75, 0.0, -0.001, 6.25),
        Affine(0.001, 0.0, -1.75, 0.0005, -0.001, 6.25),
    ],
    ids=["b-only", "d-only"],
)
def test_geographic_grid_sheared_in_one_direction_is_refused(transform):
    # a shear in x alone (b != 0, d == 0) or in y alone is as unmeasurable as a rotation
    with pytest.raises(GridMismatchError, match="rotated transform"):
        pixel_area_m2(_raster(transform, "EPSG:4326"))


def test_projected_rotated_pixel_area_is_the_cross_product():
    # columns (a, d) = (10, 3) and (b, e) = (2, -10): |a e - b d| = |-100 - 6| = 106 m²
    t = Affine(10.0, 2.0, 600000.0, 3.0, -10.0, 700000.0)
    assert pixel_area_m2(_raster(t, "EPSG:32630", shape=(3, 2))).tolist() == [106.0] * 3


def test_polygon_area_ha_in_a_projected_area_crs_is_exact():
    # 100 m x 250 m = 25,000 m² = 2.5 ha exactly (no reprojection error in its own CRS)
    gdf = gpd.GeoDataFrame(geometry=[box(600000, 700000, 600100, 700250)], crs=32630)
    assert polygon_area_ha(gdf, area_crs="EPSG:32630").tolist() == [2.5]


def test_new_mining_polygons_exact_areas_columns_and_index():
    before = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=32630)
    after = gpd.GeoDataFrame(
        geometry=[box(0, 0, 200, 100), box(300, 0, 350, 100)], index=[10, 11], crs=32630
    )
    new = new_mining_polygons(before, after, area_crs="EPSG:32630")
    # 200x100 minus the old 100x100 leaves 1 ha; the second site is 50x100 = 0.5 ha
    assert new["area_ha"].tolist() == [1.0, 0.5]
    assert list(new.columns) == ["area_ha", "geometry"]
    assert list(new.index) == [0, 1]
    assert new.geometry.iloc[0].bounds == (100.0, 0.0, 200.0, 100.0)


def test_new_mining_polygons_without_before_is_all_of_after():
    before = gpd.GeoDataFrame(geometry=[], crs=32630)
    after = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=32630)
    new = new_mining_polygons(before, after, area_crs="EPSG:32630")
    assert new["area_ha"].tolist() == [1.0]


def test_new_mining_polygons_keeps_polygons_only():
    before = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=32630)
    after = gpd.GeoDataFrame(
        geometry=[box(0, 0, 200, 100), LineString([(500, 0), (600, 0)])], crs=32630
    )
    new = new_mining_polygons(before, after, area_crs="EPSG:32630")
    assert new.geom_type.tolist() == ["Polygon"]
    assert new["area_ha"].tolist() == [1.0]


def test_new_mining_mask_declares_its_nodata_unencoded():
    mask = new_mining(grid([[2, 255]]), grid([[0, 0]]))
    assert mask.values.tolist() == [[1, 255]]
    assert mask.rio.nodata == 255
    assert mask.rio.encoded_nodata is None


def test_single_band_input_leaves_no_band_coordinate():
    before = grid([[2, 0]]).expand_dims(band=[1])
    out = change_map(before, before)
    assert out.dims == ("y", "x")
    assert "band" not in out.coords


def test_grids_a_micrometre_apart_are_one_grid():
    # the tolerance is 1e-6 pixel widths: 10 m pixels allow 1e-5 m, 1e-6 m is well inside
    a = _raster(Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 700000.0), "EPSG:32630")
    b = _raster(Affine(10.0, 0.0, 600000.000001, 0.0, -10.0, 700000.0), "EPSG:32630")
    assert change_map(a, b).values.tolist() == [[0, 0], [0, 0]]
    c = _raster(Affine(10.0, 0.0, 600000.0001, 0.0, -10.0, 700000.0), "EPSG:32630")
    with pytest.raises(GridMismatchError, match="share a shape but not a transform"):
        change_map(a, c)


def test_class_areas_of_a_dask_map_with_more_columns_than_rows():
    # 2 x 4 map of 10 m pixels (0.01 ha), chunked (1, 2): row chunks differ from column chunks
    values = [[0, 0, 1, 2], [2, 2, 2, 255]]
    out = class_areas(grid(values, chunks=(1, 2)))
    assert out.loc["map"].to_dict() == pytest.approx(
        {"mines": 0.02, "built": 0.01, "vegetation": 0.04, "no_data_ha": 0.01, "total_ha": 0.08}
    )
    t = transition_areas(grid(values, chunks=(1, 2)), grid(values, chunks=(1, 2)))
    assert t.loc["vegetation", "vegetation"] == pytest.approx(0.04)


@pytest.mark.parametrize("chunks", [None, 1], ids=["numpy", "dask"])
@pytest.mark.parametrize(
    ("values", "declared"),
    [
        (np.array([[0, 1], [2, 300]], "int16"), 300),  # above 255: was left out of total_ha
        (np.array([[0, 1], [2, -1]], "int16"), -1),  # negative no-data: bincount raised
        (np.array([[0.0, 1.0], [2.0, np.nan]]), None),  # NaN: raised too
        (np.array([[0, 1], [2, 255]], "uint8"), None),  # the default nodata
    ],
    ids=["300", "-1", "nan", "255"],
)
def test_class_areas_count_every_no_data_pixel_in_the_total(values, declared, chunks):
    g = grid(np.zeros((2, 2)))
    m = g.copy(data=values)
    if declared is not None:
        m = m.rio.write_nodata(declared)
    if chunks:
        m = m.chunk(chunks)
    row = class_areas(m).loc["map"].to_dict()
    # four 10 m pixels: one of each class and one no-data, 0.01 ha each
    assert row == pytest.approx(
        {"mines": 0.01, "built": 0.01, "vegetation": 0.01, "no_data_ha": 0.01, "total_ha": 0.04}
    )


def test_class_areas_honour_the_nodata_argument_and_declared_nodata():
    m = grid(np.array([[0, 2], [1, 1]]))  # four 10 m pixels, 0.01 ha each
    row = class_areas(m, nodata=2).loc["map"]
    assert (row["vegetation"], row["no_data_ha"], row["total_ha"]) == pytest.approx(
        (0.0, 0.01, 0.04)
    )
    row = class_areas(m.rio.write_nodata(1)).loc["map"]
    assert (row["built"], row["no_data_ha"], row["total_ha"]) == pytest.approx((0.0, 0.02, 0.04))
