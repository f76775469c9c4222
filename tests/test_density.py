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


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


@pytest.mark.parametrize("chunks", [None, 2], ids=["numpy", "dask"])
def test_single_raster_event_lands_on_its_own_cell(chunks):
    # event pixel at row 3, col 7 of a 10 m grid; a 5 m bandwidth keeps all mass in one cell
    m = np.zeros((6, 9), "uint8")
    m[3, 7] = 1
    d = kde_map(grid(m, chunks=chunks), bandwidth_m=5, cell_size_m=10)
    iy, ix = np.unravel_index(int(np.argmax(d.values)), d.shape)
    assert (float(d.x[ix]), float(d.y[iy])) == (X0 + 75, Y0 - 35)
    assert float(d.max()) == pytest.approx(1 / 1e-4)  # one event in a 0.0001 km² cell
    assert d.attrs["total_in_grid"] == 1.0


def test_polygon_area_is_spread_over_the_cells_it_covers():
    # a 400 m x 200 m box: 8 ha over eight 1-ha cells, 100 ha/km² each, nothing elsewhere
    poly = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 400, Y0 + 200)], crs="EPSG:32630")
    bounds = (X0 - 200, Y0 - 200, X0 + 600, Y0 + 400)
    d = kde_map(poly, bandwidth_m=50, cell_size_m=100, weight="area_ha", bounds=bounds)
    inside = d.where(d > 0, drop=True)
    assert inside.shape == (2, 4)
    np.testing.assert_allclose(inside.values, 100.0)
    assert (float(inside.x.min()), float(inside.x.max())) == (X0 + 50, X0 + 350)
    assert (float(inside.y.min()), float(inside.y.max())) == (Y0 + 50, Y0 + 150)
    # on the default grid too, the mass is centred on the box (up to the binning)
    d = kde_map(poly, bandwidth_m=50, cell_size_m=100, weight="area_ha")
    w = d.values / d.values.sum()
    assert float((w.sum(0) * d.x.values).sum()) == pytest.approx(X0 + 200, abs=25)
    assert float((w.sum(1) * d.y.values).sum()) == pytest.approx(Y0 + 100, abs=25)


def test_defaults():
    pts = gpd.GeoDataFrame(geometry=[Point(X0 + 250, Y0 + 250)], crs="EPSG:32630")
    d = kde_map(pts)
    assert (d.attrs["bandwidth_m"], d.attrs["cell_size_m"], d.attrs["kernel"]) == (
        2000.0,
        500.0,
        "quartic",
    )
    assert d.shape == (9, 9)  # padded by ceil(2000 / 500) = 4 cells on each side


def test_gaussian_kernel_hand_checked():
    # one event on a cell centre: density ratios exp(-d² / 2 sigma²), nonzero out to 3 sigma
    pts = gpd.GeoDataFrame(geometry=[Point(X0 + 25, Y0 + 25)], crs="EPSG:32630")
    d = kde_map(pts, bandwidth_m=100, cell_size_m=50, kernel="gaussian")
    centre = float(d.sel(x=X0 + 25, y=Y0 + 25))
    for off in (100, 200, 300):
        ratio = float(d.sel(x=X0 + 25 + off, y=Y0 + 25)) / centre
        assert ratio == pytest.approx(np.exp(-0.5 * (off / 100) ** 2), rel=1e-9)
    assert d.shape == (13, 13)  # padded by 3 sigma = 6 cells on each side
    assert float(d.sum()) * 0.0025 == pytest.approx(1.0)


def test_events_outside_explicit_bounds_are_left_out():
    m = np.zeros((4, 4), "uint8")
    m[0, 0] = m[3, 3] = m[0, 3] = m[2, 0] = m[0, 2] = 1  # rows and columns 0, 2 and 3
    bounds = (X0, Y0 - 20, X0 + 20, Y0)  # a 2 x 2 grid of 10 m cells: holds only pixel (0, 0)
    d = kde_map(grid(m), bandwidth_m=5, cell_size_m=10, bounds=bounds)
    assert d.attrs["total"] == 5.0 and d.attrs["total_in_grid"] == 1.0
    assert float(d.sum()) * 1e-4 == pytest.approx(1.0)
    assert float(d.sel(x=X0 + 5, y=Y0 - 5)) == pytest.approx(1e4)


def test_single_band_raster_is_squeezed():
    m = np.zeros((5, 5), "uint8")
    m[2, 2] = 1
    d = kde_map(grid(m).expand_dims(band=[1]), bandwidth_m=5, cell_size_m=10)
    assert d.dims == ("y", "x") and d.attrs["total"] == 1.0


def test_bounds_smaller_than_one_fine_pixel():
    # the fine polygon grid has at least one pixel: one 5 m pixel (0.0025 ha) of the big box
    poly = gpd.GeoDataFrame(geometry=[box(X0 - 100, Y0 - 100, X0 + 100, Y0 + 100)], crs=32630)
    d = kde_map(
        poly, bandwidth_m=1, cell_size_m=5, weight="area_ha", oversample=1,
        bounds=(X0, Y0, X0 + 4, Y0 + 4),
    )  # fmt: skip
    assert d.shape == (1, 1)
    assert d.attrs["total"] == pytest.approx(0.0025)


def test_default_oversample_is_five():
    # cells of 100 m are rasterised at 20 m: a 40 m square is exactly 4 fine pixels (0.16 ha)
    poly = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 40, Y0 + 40)], crs=32630)
    bounds = (X0 - 200, Y0 - 200, X0 + 200, Y0 + 200)
    d = kde_map(poly, bandwidth_m=50, cell_size_m=100, weight="area_ha", bounds=bounds)
    assert d.attrs["total"] == pytest.approx(0.16)


def test_tall_dask_raster_is_read_by_row_chunks():
    m = np.zeros((9, 4), "uint8")
    m[8, 1] = 1
    d = kde_map(grid(m, chunks=2), bandwidth_m=5, cell_size_m=10)
    assert d.attrs["total"] == 1.0
    iy, ix = np.unravel_index(int(np.argmax(d.values)), d.shape)
    assert (float(d.x[ix]), float(d.y[iy])) == (X0 + 15, Y0 - 85)


@pytest.mark.parametrize(("bandwidth_m", "cell_size_m"), [(0, 10), (-1, 10), (10, 0), (10, -5)])
def test_non_positive_bandwidth_or_cell_size(bandwidth_m, cell_size_m):
    pts = gpd.GeoDataFrame(geometry=[Point(X0, Y0)], crs="EPSG:32630")
    with pytest.raises(ParamsError, match="must be > 0"):
        kde_map(pts, bandwidth_m=bandwidth_m, cell_size_m=cell_size_m)


@pytest.mark.parametrize(("bandwidth_m", "width_m", "ha"), [(7.0, 45.0, 0.16), (1.5, 47.0, 0.36)])
def test_gaussian_polygon_fine_grid_is_padded_by_three_sigma(bandwidth_m, width_m, ha):
    # the 20 m fine grid starts 3 sigma + one cell left of / below the polygon, which fixes
    # where its pixel centres fall: 2 x 2 of them in the first square, 3 x 3 in the second
    poly = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + width_m, Y0 + width_m)], crs=32630)
    d = kde_map(poly, bandwidth_m=bandwidth_m, cell_size_m=100, kernel="gaussian", weight="area_ha")
    assert d.attrs["total"] == pytest.approx(ha)


def test_polygon_fine_grid_covers_the_whole_polygon():
    # quartic reach (50 m) is below the cell size: the fine grid must still cover the box
    poly = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 400, Y0 + 200)], crs=32630)
    d = kde_map(poly, bandwidth_m=50, cell_size_m=100, weight="area_ha")
    assert d.attrs["total"] == pytest.approx(8.0, rel=0.1)


def test_tiny_weights_are_not_rounded_away():
    # 1 m² (0.0001 ha) spread by a 1 km kernel: densities ~1e-4 must survive the round-off cut
    poly = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 1, Y0 + 1)], crs=32630)
    d = kde_map(poly, bandwidth_m=1000, cell_size_m=100, weight="area_ha", oversample=100)
    assert float(d.sum()) * 0.01 == pytest.approx(1e-4)


def test_missing_geometries_are_skipped():
    # (an empty geometry would also be skipped, but geopandas >= 1 warns from
    # GeoSeries.notna() there, which the vitseg warning filter turns into an error)
    pts = gpd.GeoDataFrame(geometry=[Point(X0 + 50, Y0 + 50), None], crs=32630)
    d = kde_map(pts, bandwidth_m=100, cell_size_m=100)
    assert d.attrs["total"] == 1.0
    assert float(d.sum()) * 0.01 == pytest.approx(1.0)


@pytest.mark.parametrize("bounds", [(1.0, 1.0, 1.0, 2.0), (1.0, 1.0, 2.0, 1.0)])
def test_zero_width_bounds_are_refused(bounds):
    pts = gpd.GeoDataFrame(geometry=[Point(X0, Y0)], crs="EPSG:32630")
    with pytest.raises(ParamsError, match="max > min"):
        kde_map(pts, bounds=bounds)


def test_one_metre_cells_are_fine():
    pts = gpd.GeoDataFrame(geometry=[Point(X0 + 0.5, Y0 + 0.5)], crs="EPSG:32630")
    d = kde_map(pts, bandwidth_m=2, cell_size_m=1)
    assert float(d.sum()) * 1e-6 == pytest.approx(1.0)


def test_kde_of_polygons_skips_empty_and_missing_geometries_without_warning():
    import geopandas as gpd
    from shapely.geometry import Polygon, box

    from vitseg.density import kde_map

    full = gpd.GeoDataFrame(geometry=[box(0, 0, 200, 200)], crs="EPSG:32630")
    mixed = gpd.GeoDataFrame(geometry=[box(0, 0, 200, 200), Polygon(), None], crs="EPSG:32630")
    kw = {"bandwidth_m": 1000.0, "cell_size_m": 100.0, "bounds": (-2000, -2000, 2200, 2200)}
    np.testing.assert_allclose(kde_map(mixed, **kw).values, kde_map(full, **kw).values)
