"""Tests for vitseg.exclusions: rasterised, buffered exclusion layers and their report."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from shapely import LineString, box

from vitseg.errors import DimensionError, MissingCRSError, ParamsError, VectorError
from vitseg.exclusions import (
    apply_exclusions,
    exclusion_layers,
    exclusion_mask,
    exclusion_report,
    pixel_area_ha,
)


def like_grid(crs: str = "EPSG:32630", *, chunks: int | None = None) -> xr.DataArray:
    """A 20 x 30 grid of 10 m pixels from (600000, 100000) at the lower-left (or 0.0001 deg)."""
    res, x0, y0 = (10.0, 600_000.0, 100_200.0) if crs == "EPSG:32630" else (0.0001, -1.8, 6.002)
    data = np.zeros((2, 20, 30), "float32")
    arr = xr.DataArray(
        da.from_array(data, chunks=(1, chunks, chunks)) if chunks else data,
        dims=("time", "y", "x"),
        coords={"y": y0 - res * (np.arange(20) + 0.5), "x": x0 + res * (np.arange(30) + 0.5)},
    )
    return arr.rio.write_crs(crs)


@pytest.mark.parametrize("chunks", [None, 7])
def test_layers_count_pixels_and_hectares(chunks: int | None) -> None:
    like = like_grid(chunks=chunks)
    lake = gpd.GeoDataFrame(geometry=[box(600_000, 100_000, 600_050, 100_040)], crs="EPSG:32630")
    mine = gpd.GeoDataFrame(geometry=[box(600_040, 100_000, 600_100, 100_020)], crs="EPSG:32630")
    layers = exclusion_layers(like, {"lakes": lake, "large_mines": mine})
    assert layers.dims == ("layer", "y", "x") and isinstance(layers.data, da.Array) == bool(chunks)
    sums = layers.sum(("y", "x")).values.tolist()
    assert sums == [5 * 4, 6 * 2]  # 50x40 m and 60x20 m at 10 m pixels
    assert bool(layers.sel(layer="lakes")[-1, 0]) and not bool(layers.sel(layer="lakes")[0, 0])
    report = exclusion_report(layers)
    assert report["layer"].tolist() == ["lakes", "large_mines", "all layers"]
    assert report["pixels"].tolist() == [20, 12, 30]  # overlap of 2 pixels counted once
    np.testing.assert_allclose(report["hectares"], [0.20, 0.12, 0.30])
    np.testing.assert_allclose(report["percent"].iloc[-1], 100 * 30 / 600)


def test_buffer_in_metres_and_union() -> None:
    like = like_grid()
    coast = gpd.GeoDataFrame(
        geometry=[LineString([(600_000, 100_200), (600_300, 100_200)]).buffer(0.01)],
        crs="EPSG:32630",
    )
    mask = exclusion_mask(like, {"coast": coast}, buffer_m={"coast": 50})
    assert mask.dims == ("y", "x") and mask.dtype == bool
    assert mask.sum(axis=1).values.tolist() == [30] * 5 + [0] * 15  # 5 rows within 50 m


def test_geographic_grid_and_layer_in_other_crs() -> None:
    like = like_grid("EPSG:4326")
    # A 4x3-pixel box given in UTM 30N, reprojected to the geographic grid.
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True)
    x1, y1 = t.transform(-1.8 + 0.00002, 6.002 - 0.0003 + 0.00002)
    x2, y2 = t.transform(-1.8 + 0.0004 - 0.00002, 6.002 - 0.00002)
    poly = gpd.GeoDataFrame(geometry=[box(x1, y1, x2, y2)], crs="EPSG:32630")
    layers = exclusion_layers(like, [poly])
    assert list(layers["layer"].values) == ["layer_0"]
    assert int(layers.sum()) == 12
    area = pixel_area_ha(like)
    # WGS84 ellipsoid, not a sphere (0.4 % apart at 6 N): closed-form area of a lat/lon cell.
    a, f = 6_378_137.0, 1 / 298.257223563
    e = np.sqrt(f * (2 - f))

    def q(lat_deg):
        s = np.sin(np.radians(lat_deg))
        return (1 - e**2) * (s / (1 - e**2 * s**2) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))

    y = like["y"].values
    want_ha = a**2 * np.radians(0.0001) / 2 * (q(y + 0.00005) - q(y - 0.00005)) / 1e4
    np.testing.assert_allclose(area.values, want_ha, rtol=1e-6)
    sphere_ha = 6_371_008.8**2 * np.radians(0.0001) ** 2 * np.cos(np.radians(y)) / 1e4
    assert abs(area.values[0] / sphere_ha[0] - 1) > 0.003  # the old spherical formula


def test_apply_exclusions() -> None:
    probs = xr.DataArray(np.ones((3, 2, 2), "float32"), dims=("class", "y", "x"))
    cls = xr.DataArray(np.zeros((2, 2), "uint8"), dims=("y", "x"))
    mask = xr.DataArray(np.array([[True, False], [False, False]]), dims=("y", "x"))
    assert np.isnan(apply_exclusions(probs, mask).values[:, 0, 0]).all()
    out = apply_exclusions(cls, mask)
    assert out.dtype == np.uint8 and out.values.tolist() == [[255, 0], [0, 0]]
    with pytest.raises(DimensionError, match="boolean"):
        apply_exclusions(cls, mask.astype(int))


def test_exclusion_errors(tmp_path) -> None:
    like = like_grid()
    lake = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:32630")
    with pytest.raises(MissingCRSError, match="layer 'x' has no CRS"):
        exclusion_layers(like, {"x": lake.set_crs(None, allow_override=True)})
    with pytest.raises(VectorError, match="polygons"):
        exclusion_layers(
            like, {"roads": gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])], crs=3857)}
        )
    with pytest.raises(VectorError, match="GeoDataFrame"):
        exclusion_layers(like, {"bad": 42})
    with pytest.raises(MissingCRSError, match="like has no CRS"):
        exclusion_layers(like.drop_vars("spatial_ref"), [lake])
    with pytest.raises(DimensionError, match="'y' and 'x'"):
        exclusion_layers(like.rename(x="lon"), [lake])
    path = tmp_path / "lakes.gpkg"
    lake.to_file(path)
    assert int(exclusion_layers(like, {"lakes": path}).sum()) == 0  # far away: nothing excluded


def test_coastal_strip_is_the_coast_only_not_the_land_borders():
    import geopandas as gpd
    from shapely.geometry import Point

    from vitseg.exclusions import coastal_strip

    strip = coastal_strip(5000.0).to_crs("EPSG:32630").geometry.iloc[0]
    pts = gpd.GeoSeries(
        [Point(-0.19, 5.58), Point(-0.19, 5.75), Point(-2.8, 7.5), Point(0.6, 8.0)], crs=4326
    ).to_crs("EPSG:32630")  # Accra seafront, 20 km inland, Ivorian border, Togolese border
    inside = [bool(strip.contains(p)) for p in pts]
    assert inside == [True, False, False, False]
    area_km2 = strip.area / 1e6  # ~5 km x Ghana's ~550 km coast
    assert 2200 < area_km2 < 3200
    with pytest.raises(ParamsError, match="coastal strip"):
        coastal_strip(0.0)
