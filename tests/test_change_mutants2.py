"""Tests for vitseg.change added from its second mutation run (docs/mutation.md, issue 20).

The run after the input-checking sweep of issue 22 left mutants that these tests kill; each
test names them (indices of the source with the ``_weighted_counts`` fix of this round).
"""

import dask.array
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from _rasters import X0, Y0, class_grid
from shapely.geometry import box

from vitseg.change import _class_codes, change_map, class_areas
from vitseg.errors import LabelError
from vitseg.zonal import zonal_areas


@pytest.mark.parametrize("chunks", [None, -1], ids=["numpy", "dask"])  # dask: one block
def test_outside_codes_message_shows_the_first_five_values(chunks):
    # six codes outside 0..2 (3, 4, 5, 6, 7, 8): the message lists the five smallest with
    # their pixel counts and leaves 8 out (mutants vals[:6] / counts[:6], which made zip raise)
    bad = np.array([[3, 3, 4, 5], [6, 7, 8, 8], [8, 0, 1, 2]], "uint8")
    good = np.zeros_like(bad)
    before, after = class_grid(good, chunks=chunks), class_grid(bad, chunks=chunks)
    shown = r"\[255\]: \{3: 2, 4: 1, 5: 1, 6: 1, 7: 1\} \(pixels per value\)"
    with pytest.raises(LabelError, match=r"'after' holds class codes outside 0\.\.2 .*" + shown):
        change_map(before, after).values  # noqa: B018  (dask raises at compute, per block)


def test_float_map_outside_codes_are_shown_as_integers_first_five_only():
    # NaN is no data; -1, 3, 4, 5, 6, 9 are six codes outside 0..2 -> 9 is left out
    arr = np.array([[np.nan, -1.0, 3.0, 4.0], [5.0, 6.0, 9.0, 0.0]])
    m = xr.DataArray(arr, dims=("y", "x"))
    with pytest.raises(LabelError, match=r"\{-1: 1, 3: 1, 4: 1, 5: 1, 6: 1\} \(pixels"):
        _class_codes(m, "map", 3, 255)


@pytest.mark.parametrize("chunks", [None, 1], ids=["numpy", "dask"])
def test_no_data_code_is_minus_one_and_zonal_areas_count_it(chunks):
    # zonal_areas bins the codes of _class_codes shifted by one (bin 0 = no data), so the
    # no-data code must be exactly -1 (mutant np.full(..., -1) -> -2 made bincount fail)
    arr = np.array([[0, 255], [2, 2]])
    m = class_grid(arr, chunks=chunks)
    codes = _class_codes(m, "map", 3, 255)
    assert np.asarray(codes.values).tolist() == [[0, -1], [2, 2]]
    # 2 x 2 pixels of 10 m = 0.01 ha each, the zone covers all four pixel centres
    zone = gpd.GeoDataFrame({"id": ["z"]}, geometry=[box(X0, Y0 - 20, X0 + 20, Y0)], crs=32630)
    row = zonal_areas(m, zone, zone_id="id", keep_columns=()).iloc[0]
    assert row["mines_ha"] == pytest.approx(0.01)
    assert row["built_ha"] == 0.0
    assert row["vegetation_ha"] == pytest.approx(0.02)
    assert row["no_data_ha"] == pytest.approx(0.01)
    assert row["mapped_ha"] == pytest.approx(0.03)
    assert row["zone_ha"] == pytest.approx(0.04)
    assert row["covered_fraction"] == pytest.approx(0.75)


@pytest.mark.parametrize("chunks", [None, 1], ids=["numpy", "dask"])
@pytest.mark.parametrize("n", [256, 300])
def test_class_areas_of_more_than_255_classes(n, chunks):
    # bug found by mutants minlength=256 -> 257 of _weighted_counts: with n >= 256 classes
    # the no-data bin n lay beyond the 256 counted bins and class_areas raised IndexError
    # (256 classes, no pixel of no data) or dask refused the chunk sizes
    arr = np.array([[0, n - 1], [-1, 2]], "int16")  # -1: no data; n - 1: the last class
    m = xr.DataArray(
        arr, dims=("y", "x"), coords={"y": [Y0 - 5.0, Y0 - 15.0], "x": [X0 + 5.0, X0 + 15.0]}
    ).rio.write_crs(32630)
    if chunks:
        m = m.copy(data=dask.array.from_array(arr, chunks=chunks))
    classes = [f"c{i}" for i in range(n)]
    row = class_areas(m, classes=classes, nodata=-1).iloc[0]
    assert row[["c0", "c2", f"c{n - 1}"]].tolist() == pytest.approx([0.01, 0.01, 0.01])
    assert row[[f"c{i}" for i in (1, *range(3, n - 1))]].sum() == 0.0
    assert row["no_data_ha"] == pytest.approx(0.01)
    assert row["total_ha"] == pytest.approx(0.04)
    # every pixel mapped: the last bins are read although no pixel is no data
    full = class_areas(m.where(m >= 0, 1).astype("int16"), classes=classes, nodata=-1).iloc[0]
    assert full["c1"] == pytest.approx(0.01)
    assert full["no_data_ha"] == 0.0
    assert full["total_ha"] == pytest.approx(0.04)
