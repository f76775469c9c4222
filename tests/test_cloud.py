"""Tests for vitseg.cloud: SCL and bright-threshold masks on known pixels, valid counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vitseg.cloud import cloud_mask, mask_clouds, valid_count
from vitseg.errors import BandError, DimensionError, VitsegError

BANDS = ["B02", "B03", "B04", "B08", "SCL"]


def make_cube(crs: str, backing: str) -> xr.DataArray:
    """2 dates x 5 bands x 3 x 4 px with hand-placed clouds, pond, shadow and no data."""
    v = np.full((2, 5, 3, 4), 0.05, "float32")
    v[:, 3] = 0.3  # NIR
    v[:, 4] = 4  # SCL vegetation
    # date 0: (0,0) white bright cloud, SCL says cloud too
    v[0, :4, 0, 0] = 0.45
    v[0, 4, 0, 0] = 9
    # date 0: (0,1) turbid pond: bright green/red, dark blue; SCL wrongly says cloud (8)
    v[0, 0:3, 0, 1] = (0.08, 0.25, 0.22)
    v[0, 4, 0, 1] = 8
    # date 0: (1,1) bright cloud that SCL missed (thin edge)
    v[0, :3, 1, 1] = (0.21, 0.22, 0.23)
    # date 1: (2,3) shadow in SCL; (2,0) no data everywhere
    v[1, 4, 2, 3] = 3
    v[1, :, 2, 0] = np.nan
    # date 1: (1,2) bright only in two visible bands -> not a cloud
    v[1, 0:3, 1, 2] = (0.1, 0.3, 0.3)
    ys = (np.arange(3) * -10.0 + 700015) if crs != "EPSG:4326" else np.array([6.3, 6.2, 6.1])
    xs = (
        (np.arange(4) * 10.0 + 600005) if crs != "EPSG:4326" else np.array([-1.8, -1.7, -1.6, -1.5])
    )
    cube = xr.DataArray(
        v,
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.to_datetime(["2020-12-01", "2021-01-10"]),
            "band": BANDS,
            "y": ys,
            "x": xs,
        },
    ).rio.write_crs(crs)
    return cube.chunk({"time": 1, "band": 1, "y": 2, "x": 2}) if backing == "dask" else cube


@pytest.fixture(params=["numpy", "dask"])
def backing(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["EPSG:32630", "EPSG:4326"])
def crs(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_scl_mask_known_pixels(crs: str, backing: str) -> None:
    m = cloud_mask(make_cube(crs, backing), method="scl")
    assert m.dims == ("time", "y", "x") and m.dtype == bool
    expected = np.zeros((2, 3, 4), bool)
    expected[0, 0, 0] = expected[0, 0, 1] = True  # cloud 9, cloud 8 (the pond)
    expected[1, 2, 3] = True  # shadow
    expected[1, 2, 0] = True  # SCL no data (NaN)
    np.testing.assert_array_equal(m.values, expected)
    assert m.rio.crs.to_string() == crs


def test_bright_mask_known_pixels(crs: str, backing: str) -> None:
    m = cloud_mask(make_cube(crs, backing), method="bright", threshold=0.2)
    expected = np.zeros((2, 3, 4), bool)
    expected[0, 0, 0] = True  # white cloud
    expected[0, 1, 1] = True  # thin edge SCL missed
    # the turbid pond (0,1) and the two-band bright pixel (1,2) are kept: blue is dark
    np.testing.assert_array_equal(m.values, expected)


def test_both_and_threshold(backing: str) -> None:
    cube = make_cube("EPSG:32630", backing)
    both = cloud_mask(cube, method="both")
    assert int(both.sum()) == 5
    # a higher threshold keeps the thin edge (0.21..0.23)
    assert not bool(cloud_mask(cube, method="bright", threshold=0.3)[0, 1, 1])


def test_mask_clouds_sets_nan_and_keeps_scl(crs: str, backing: str) -> None:
    cube = make_cube(crs, backing)
    out = mask_clouds(cube, method="bright")
    assert out.dims == cube.dims and out.dtype == cube.dtype
    assert (out.chunks is not None) == (backing == "dask")
    vals = out.values
    assert np.isnan(vals[0, :4, 0, 0]).all() and np.isnan(vals[0, :4, 1, 1]).all()
    assert vals[0, 4, 0, 0] == 9  # SCL kept
    assert np.isfinite(vals[0, :4, 0, 1]).all()  # the pond is kept
    assert out.rio.crs.to_string() == crs
    assert np.isnan(cube.values[0, 0, 0, 0]) is np.False_  # input unchanged
    np.testing.assert_array_equal(
        mask_clouds(cube, method="scl", return_mask=True).values,
        cloud_mask(cube, method="scl").values,
    )


def test_valid_count(crs: str, backing: str) -> None:
    cube = mask_clouds(make_cube(crs, backing), method="both")
    n = valid_count(cube)
    assert n.dtype == np.int16 and n.dims == ("y", "x")
    expected = np.full((3, 4), 2)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = 1
    expected[2, 3] = expected[2, 0] = 1
    np.testing.assert_array_equal(n.values, expected)
    assert n.rio.crs.to_string() == crs


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: cloud_mask(c.drop_sel(band="SCL"), method="scl"), BandError, "needs band 'SCL'"),
        (lambda c: cloud_mask(c.drop_sel(band="B02"), method="bright"), BandError, "'B02'"),
        (lambda c: cloud_mask(c, method="fmask"), VitsegError, "must be one of"),
        (lambda c: cloud_mask(c, method="bright", threshold=2000), VitsegError, "0-1"),
        (lambda c: cloud_mask(c.isel(time=0)), DimensionError, "missing"),
        (lambda c: valid_count(c, bands=["B99"]), BandError, "B99"),
    ],
)
def test_errors(call: object, error: type[Exception], match: str) -> None:
    cube = make_cube("EPSG:32630", "numpy")
    with pytest.raises(error, match=match):
        call(cube)  # type: ignore[operator]
