"""Tests for vitseg.composite: seasons, median/mean ignoring masked pixels, tiles, COG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from vitseg.composite import (
    composite,
    season_of,
    seasonal_composites,
    tile_valid_fraction,
    write_composite,
)
from vitseg.errors import (
    DimensionError,
    MissingCRSError,
    NoValidDataError,
    ParamsError,
    VitsegError,
)

DATES = pd.to_datetime(
    ["2020-11-10", "2020-12-20", "2021-02-15", "2021-06-01", "2021-11-30", "2022-03-31"]
)


def make_cube(crs: str, backing: str) -> xr.DataArray:
    """6 dates x 2 bands (+SCL) x 2 x 2: pixel values chosen for hand-computed medians."""
    v = np.zeros((6, 3, 2, 2), "float32")
    v[:, 0] = np.array([0.1, 0.2, 0.9, 5.0, 0.4, 0.6])[:, None, None]  # B04
    v[:, 1] = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 8.0])[:, None, None]  # B08
    v[:, 2] = 4  # SCL
    v[2, :2, 0, 0] = np.nan  # cloud-masked: the 0.9 / 3.0 outlier must not count
    v[:, :2, 1, 1] = np.nan  # never valid
    v[0, :2, 1, 1] = 0.5  # ... except once
    ys = np.array([700015.0, 700005.0]) if crs != "EPSG:4326" else np.array([6.2, 6.1])
    xs = np.array([600005.0, 600015.0]) if crs != "EPSG:4326" else np.array([-1.8, -1.7])
    cube = xr.DataArray(
        v, dims=("time", "band", "y", "x"),
        coords={"time": DATES, "band": ["B04", "B08", "SCL"], "y": ys, "x": xs},
    ).rio.write_crs(crs)  # fmt: skip
    return cube.chunk({"time": 2, "band": 1}) if backing == "dask" else cube


@pytest.fixture(params=["numpy", "dask"])
def backing(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("when", "label"),
    [("2020-11-01", "2020-21"), ("2020-12-31T23:59", "2020-21"), ("2021-03-31", "2020-21"),
     ("2021-04-01", None), ("2021-10-31", None), ("1999-12-01", "1999-00")],
)  # fmt: skip
def test_season_of(when: str, label: str | None) -> None:
    assert season_of(when) == label
    assert season_of(np.datetime64(when)) == label


def test_season_of_arrays() -> None:
    assert season_of(DATES) == ["2020-21", "2020-21", "2020-21", None, "2021-22", "2021-22"]
    assert season_of(xr.DataArray(DATES[:2])) == ["2020-21", "2020-21"]


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
def test_median_per_season_ignores_masked(crs: str, backing: str) -> None:
    cube = make_cube(crs, backing)
    out = composite(cube, method="median", season="2020-21")
    assert out.dims == ("band", "y", "x") and list(out.band.values) == ["B04", "B08"]
    assert (out.chunks is not None) == (backing == "dask")
    assert out.attrs["n_scenes"] == 3 and out.attrs["season"] == "2020-21"
    vals = out.values
    np.testing.assert_allclose(vals[:, 0, 0], [0.15, 1.5])  # median of 0.1, 0.2 (0.9 masked)
    np.testing.assert_allclose(vals[:, 0, 1], [0.2, 2.0])  # median of 0.1, 0.2, 0.9
    np.testing.assert_allclose(vals[:, 1, 1], [0.5, 0.5])  # the one valid date
    assert out.rio.crs.to_string() == crs
    second = composite(cube, method="mean", season="2021-22").values
    np.testing.assert_allclose(second[:, 0, 0], [0.5, 6.0], rtol=1e-6)
    assert np.isnan(second[:, 1, 1]).all()  # no valid date -> NaN


@pytest.mark.parametrize(
    ("season", "n", "b04_00", "label"),
    [
        # B04 at (0, 0): 2020-12-20 0.2, 2021-02-15 masked, 2021-06-01 5.0, 2021-11-30 0.4;
        # both ends inclusive -> 4 scenes, median(0.2, 5.0, 0.4)
        ("2020-12-20/2021-11-30", 4, 0.4, "2020-12-20_2021-11-30"),
        ("2021", 3, 2.7, "2021"),  # 2021-02-15 (masked), 2021-06-01 5.0, 2021-11-30 0.4
        ("2021-06-01/2021-06-01", 1, 5.0, "2021-06-01_2021-06-01"),
    ],
)
def test_composite_date_range_and_year(
    season: str, n: int, b04_00: float, label: str, backing: str
) -> None:
    out = composite(make_cube("EPSG:32630", backing), season=season)
    assert out.attrs["n_scenes"] == n and out.attrs["season"] == label
    np.testing.assert_allclose(out.values[0, 0, 0], b04_00, rtol=1e-6)


def test_min_count_and_all_dates(backing: str) -> None:
    cube = make_cube("EPSG:32630", backing)
    out = composite(cube, method="median", min_count=2).values
    assert np.isnan(out[:, 1, 1]).all()  # only one valid date
    np.testing.assert_allclose(out[0, 0, 1], 0.5)  # median of 6 values incl. June
    assert not np.isnan(out[:, 0, 0]).any()


def test_seasonal_composites(backing: str) -> None:
    out = seasonal_composites(make_cube("EPSG:32630", backing))
    assert out.dims == ("season", "band", "y", "x")
    assert list(out.season.values) == ["2020-21", "2021-22"]
    assert list(out.n_scenes.values) == [3, 2]
    np.testing.assert_allclose(out.sel(season="2021-22").values[0, 0, 0], 0.5)


def test_tile_valid_fraction(backing: str) -> None:
    a = np.ones((2, 6, 8), "float32")
    a[0, :3, :4] = np.nan  # a quarter of tile (0, 0) ... in one band only
    a[:, 3:, 4:] = np.nan  # tile (1, 1) blank
    da = xr.DataArray(a, dims=("band", "y", "x"),
                      coords={"y": np.arange(6) * -10.0, "x": np.arange(8) * 10.0})  # fmt: skip
    if backing == "dask":
        da = da.chunk({"y": 3})
    frac = tile_valid_fraction(da, tile_px=3)
    assert frac.dims == ("tile_y", "tile_x") and frac.shape == (2, 2)  # last 2 columns dropped
    np.testing.assert_allclose(frac.values, [[0.0, 2 / 3], [1.0, 1 / 3]])
    assert list(frac.row_off.values) == [0, 3] and list(frac.col_off.values) == [0, 3]
    np.testing.assert_allclose(frac.x.values, [10.0, 40.0])


def test_write_composite_cog(tmp_path: Path) -> None:
    comp = composite(make_cube("EPSG:32630", "dask"), season="2020-21")
    path = write_composite(comp, tmp_path / "data" / "composite_obuasi_2020-21.tif")
    assert path.exists() and not list(path.parent.glob("*.part"))
    assert not list(path.parent.glob(".*vitseg-tmp-*"))  # no temporary left beside it
    with rasterio.open(path) as ds:
        assert ds.count == 2 and ds.dtypes[0] == "float32"
        assert ds.crs.to_epsg() == 32630 and ds.descriptions == ("B04", "B08")
        assert ds.transform.a == 10 and ds.transform.c == 600000
        np.testing.assert_allclose(ds.read(1)[0, 0], 0.15)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: composite(c, season="2030-31"), NoValidDataError, r"seasons: \['2020-21'"),
        (lambda c: composite(c, season="2019-01-01/2019-12-31"), NoValidDataError,
         r"'2019-01-01/2019-12-31' \(2019-01-01/2019-12-31\).*6 dates: \['2020-11-10'"),
        (lambda c: composite(c, season="spring"), ParamsError, "cannot read period 'spring'"),
        (lambda c: composite(c, method="mode"), VitsegError, "must be one of"),
        (lambda c: composite(c, min_count=0), VitsegError, "min_count"),
        (lambda c: composite(c.isel(time=0)), DimensionError, "dims"),
        (lambda c: tile_valid_fraction(c, tile_px=5), DimensionError, "smaller than one"),
        (lambda c: write_composite(composite(c).drop_vars("spatial_ref"), "x.tif"), MissingCRSError,
         "no CRS"),
    ],
)  # fmt: skip
def test_errors(call: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(make_cube("EPSG:32630", "numpy"))  # type: ignore[operator]


def test_composite_cog_is_reused_only_for_the_same_inputs(tmp_path):
    import xarray as xr

    from vitseg.composite import inputs_key, read_composite, write_composite

    rng = np.random.default_rng(0)
    da = xr.DataArray(
        rng.random((2, 8, 8)).astype("float32"), dims=("band", "y", "x"),
        coords={"band": ["B02", "B03"], "y": np.arange(8)[::-1] * 10.0 + 5, "x": np.arange(8) * 10.0 + 5},
    ).rio.write_crs("EPSG:32630")  # fmt: skip
    da[0, 0, 0] = np.nan
    key = inputs_key(items=["a", "b"], method="median")
    path = write_composite(da, tmp_path / "c.tif", key=key)
    back = read_composite(path, key=key)
    assert back is not None and list(back["band"].values) == ["B02", "B03"]
    np.testing.assert_array_equal(back.values, da.values)
    assert read_composite(path, key=inputs_key(items=["a", "c"], method="median")) is None
    assert read_composite(tmp_path / "missing.tif", key=key) is None
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    assert read_composite(tmp_path / "broken.tif", key=key) is None
