import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from _rasters import class_grid as grid
from shapely.geometry import Point, box

from vitseg.density import kde_map
from vitseg.errors import CRSMismatchError, MissingCRSError, ParamsError

X0, Y0 = 600000.0, 700000.0


@pytest.fixture
def mask():
    """300 x 300 px (3 km); a 10 x 10 px cluster (100 events) near the top left, 3 strays."""
    m = np.zeros((300, 300), "uint8")
    m[20:30, 40:50] = 1
    m[250, 250] = m[200, 280] = m[280, 100] = 1
    m[0, 0] = 255  # no-data is not an event
    return m


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
@pytest.mark.parametrize("chunks", [None, 70], ids=["numpy", "dask"])
def test_raster_density_integrates_and_peaks_on_cluster(mask, kernel, chunks):
    d = kde_map(grid(mask, chunks=chunks), bandwidth_m=400, cell_size_m=100, kernel=kernel)
    cell_km2 = 0.01
    assert float(d.sum()) * cell_km2 == pytest.approx(103.0, rel=1e-9)
    assert d.attrs["total"] == 103.0
    assert d.attrs["units"] == "events per km²"
    assert d.rio.crs == "EPSG:32630"
    iy, ix = np.unravel_index(int(np.argmax(d.values)), d.shape)
    # cluster centre: x = X0 + 450 m, y = Y0 - 250 m
    assert abs(float(d.x[ix]) - (X0 + 450)) <= 100
    assert abs(float(d.y[iy]) - (Y0 - 250)) <= 100


def test_area_weight_and_shared_bounds(mask):
    bounds = (X0 - 2000, Y0 - 5000, X0 + 5000, Y0 + 2000)
    d = kde_map(grid(mask), bandwidth_m=500, cell_size_m=250, weight="area_ha", bounds=bounds)
    assert d.shape == (28, 28)
    assert d.rio.bounds() == pytest.approx(bounds)
    assert float(d.sum()) * 0.0625 == pytest.approx(1.03, rel=1e-9)  # 103 px x 0.01 ha
    assert d.attrs["units"] == "hectares per km²"


def test_quartic_is_zero_beyond_bandwidth():
    pts = gpd.GeoDataFrame(geometry=[Point(X0 + 50, Y0 + 50)], crs="EPSG:32630")
    d = kde_map(pts, bandwidth_m=300, cell_size_m=100)
    dist = np.hypot(d.x - (X0 + 50), d.y - (Y0 + 50))
    assert float(d.where(dist >= 300, 0).max()) == 0.0
    assert float(d.max()) == float(d.sel(x=X0 + 50, y=Y0 + 50))


def test_polygons_weighted_by_area_in_geographic_crs():
    polys = gpd.GeoDataFrame(
        geometry=[box(X0, Y0, X0 + 450, Y0 + 450), box(X0 + 5000, Y0, X0 + 5100, Y0 + 100)],
        crs="EPSG:32630",
    ).to_crs("EPSG:4326")
    d = kde_map(polys, bandwidth_m=1000, cell_size_m=200, weight="area_ha")
    assert d.rio.crs == "EPSG:32630"  # estimated UTM zone
    # rasterised at 40 m (cell / 5): the 450 m and 100 m squares lose or gain edge pixels
    assert float(d.sum()) * 0.04 == pytest.approx(20.25 + 1.0, rel=0.05)
    assert float(d.sum()) * 0.04 == pytest.approx(d.attrs["total"], rel=1e-9)
    # area is spread over the cells a polygon covers: never more than 100 ha per km²
    big = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 5000, Y0 + 5000)], crs="EPSG:32630")
    dense = kde_map(big, bandwidth_m=200, cell_size_m=100, weight="area_ha")
    assert float(dense.max()) <= 100.0 + 1e-6
    assert float(dense.sum()) * 0.01 == pytest.approx(2500.0, rel=1e-3)
    counts = kde_map(polys, bandwidth_m=1000, cell_size_m=200, crs="EPSG:32630")
    assert float(counts.sum()) * 0.04 == pytest.approx(2.0, rel=1e-9)


def test_density_errors(mask):
    with pytest.raises(CRSMismatchError, match="projected"):
        kde_map(grid(mask, crs="EPSG:4326", res=0.0001))
    with pytest.raises(MissingCRSError, match="write_crs"):
        kde_map(xr.DataArray(mask, dims=("y", "x")))
    with pytest.raises(ParamsError, match="> 0"):
        kde_map(grid(mask), bandwidth_m=0)
    with pytest.raises(ParamsError, match="'kernel'"):
        kde_map(grid(mask), kernel="epanechnikov")
    with pytest.raises(ParamsError, match="no events"):
        kde_map(grid(np.zeros((5, 5))))
    with pytest.raises(ParamsError, match="bounds"):
        kde_map(grid(mask), bounds=(1.0, 1.0, 0.0, 2.0))
    with pytest.raises(ParamsError, match="oversample"):
        kde_map(
            gpd.GeoDataFrame(geometry=[box(0, 0, 9, 9)], crs=32630), weight="area_ha", oversample=0
        )
    with pytest.raises(ParamsError, match="GeoDataFrame"):
        kde_map(np.zeros((4, 4)))
    empty = kde_map(grid(np.zeros((5, 5))), bounds=(X0, Y0 - 50, X0 + 50, Y0))
    assert float(empty.sum()) == 0.0
