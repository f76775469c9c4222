import dask.array
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from _rasters import class_grid as grid
from pyproj import Geod
from shapely.geometry import box

from vitseg.change import (
    change_legend,
    change_map,
    class_areas,
    new_mining,
    new_mining_polygons,
    pixel_area_m2,
    transition_areas,
)
from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    ParamsError,
    VectorError,
)

BEFORE = [[2, 2, 2], [0, 1, 255], [2, 0, 1]]
AFTER = [[0, 2, 1], [0, 0, 2], [255, 2, 1]]


@pytest.mark.parametrize("chunks", [None, 2], ids=["numpy", "dask"])
def test_change_codes_by_hand(chunks):
    out = change_map(grid(BEFORE, chunks=chunks), grid(AFTER, chunks=chunks))
    assert isinstance(out.data, dask.array.Array) == bool(chunks)
    # code = from * 3 + to
    assert out.values.tolist() == [[6, 8, 7], [0, 3, 255], [255, 2, 4]]
    assert out.dtype == np.uint8
    assert out.rio.crs == "EPSG:32630"
    assert out.rio.nodata == 255
    assert out.rio.transform() == grid(AFTER).rio.transform()


def test_change_unknown_values_are_an_error_declared_nodata_is_not():
    # issue 22: a code outside 0..n-1 was read as no data silently (a fourth class lost)
    with pytest.raises(
        LabelError, match=r"outside 0\.\.2 that are not its no-data \[255\]: \{7: 1\}"
    ):
        change_map(grid([[7, 2]]), grid([[0, 1]]))
    with pytest.raises(LabelError, match=r"'after' holds .*\{9: 1\}"):
        change_map(grid([[0, 2]]), grid([[0, 9]]))
    g = grid([[0, 0]])
    with pytest.raises(LabelError, match=r"\{-1: 1\}"):
        change_map(_like(g, np.array([[-1, 2]], "int16")), g)
    # declared no-data (nodata=, rio.nodata) stays no data
    out = change_map(grid([[200, 2]]), grid([[0, 200]]), nodata=200)
    assert out.values.tolist() == [[200, 200]]
    out = change_map(grid([[9, 2]]).rio.write_nodata(9), grid([[0, 1]]))
    assert out.values.tolist() == [[255, 7]]


def test_change_legend_matches_codes():
    leg = change_legend()
    assert len(leg) == 10
    lab = dict(zip(leg.code, leg.label, strict=True))
    assert lab[6] == "vegetation -> mines"
    assert lab[2] == "mines -> vegetation"
    assert lab[255] == "no data"
    assert not leg.loc[leg.code == 4, "changed"].item()
    assert change_legend(["a", "b"]).code.tolist() == [0, 1, 2, 3, 255]


def test_change_errors():
    with pytest.raises(GridMismatchError, match="shape"):
        change_map(grid(BEFORE), grid([[0, 1]]))
    with pytest.raises(CRSMismatchError, match="EPSG:32631"):
        change_map(grid(BEFORE), grid(AFTER, crs="EPSG:32631"))
    with pytest.raises(GridMismatchError, match="transform"):
        change_map(grid(BEFORE), grid(AFTER, x0=600010.0))
    with pytest.raises(DimensionError, match="dims"):
        change_map(grid(BEFORE).expand_dims(time=2), grid(AFTER))
    with pytest.raises(DimensionError, match="DataArray"):
        change_map(np.zeros((3, 3)), grid(AFTER))
    with pytest.raises(ParamsError, match="15 classes"):
        change_map(grid(BEFORE), grid(AFTER), classes=[str(i) for i in range(16)])
    with pytest.raises(ParamsError, match="collides"):
        change_map(grid(BEFORE), grid(AFTER), nodata=4)


@pytest.mark.parametrize("chunks", [None, 2], ids=["numpy", "dask"])
def test_class_areas_projected(chunks):
    # 10 m pixels = 0.01 ha each
    out = class_areas({"2019": grid(BEFORE, chunks=chunks), "2020": grid(AFTER, chunks=chunks)})
    assert out.loc["2019"].to_dict() == pytest.approx(
        {"mines": 0.02, "built": 0.02, "vegetation": 0.04, "no_data_ha": 0.01, "total_ha": 0.09}
    )
    assert out.loc["2020", "mines"] == pytest.approx(0.03)
    assert out.index.name == "season"


def test_class_areas_from_stacked_dataarray():
    stacked = xr.concat([grid(BEFORE), grid(AFTER)], dim="season").assign_coords(season=["a", "b"])
    out = class_areas(stacked)
    assert list(out.index) == ["a", "b"]
    assert out.loc["b", "vegetation"] == pytest.approx(0.03)


def test_class_areas_geographic_matches_geodesic_area():
    res = 0.001  # degrees, about 110 m near Obuasi
    da = grid(np.ones((20, 30)), crs="EPSG:4326", res=res, x0=-1.75, y0=6.25)
    out = class_areas(da)
    lon = [-1.75, -1.75 + 30 * res, -1.75 + 30 * res, -1.75]
    lat = [6.25, 6.25, 6.25 - 20 * res, 6.25 - 20 * res]
    expected_ha = abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / 1e4
    assert out["built"].item() == pytest.approx(expected_ha, rel=1e-6)
    assert 730 < expected_ha < 740  # 30 x 20 cells of ~1.22 ha


def test_pixel_area_errors():
    da = grid(BEFORE)
    with pytest.raises(MissingCRSError, match="write_crs"):
        pixel_area_m2(xr.DataArray(da.values, dims=da.dims))
    rotated = grid(BEFORE, crs="EPSG:4326", res=0.001, x0=-1.7, y0=6.2)
    rotated = rotated.rio.write_transform(
        rotated.rio.transform() @ rotated.rio.transform().rotation(5)
    )
    with pytest.raises(GridMismatchError, match="rotated"):
        pixel_area_m2(rotated)
    with pytest.raises(MissingCRSError, match="write_crs"):
        class_areas(xr.DataArray(da.values, dims=("y", "x")))


def test_transition_areas_by_hand():
    out = transition_areas(grid(BEFORE), grid(AFTER))
    assert out.loc["vegetation", "mines"] == pytest.approx(0.01)
    assert out.loc["vegetation", "built"] == pytest.approx(0.01)
    assert out.loc["built", "vegetation"] == pytest.approx(0.0)
    assert out.loc["built", "built"] == pytest.approx(0.01)
    # 9 pixels, 2 no-data in one of the seasons
    assert out.to_numpy().sum() == pytest.approx(0.07)
    assert out.index.name == "from" and out.columns.name == "to"


@pytest.mark.parametrize("mine_class", ["mines", 0])
@pytest.mark.parametrize("chunks", [None, 2], ids=["numpy", "dask"])
def test_new_mining_mask(mine_class, chunks):
    out = new_mining(grid(BEFORE, chunks=chunks), grid(AFTER, chunks=chunks), mine_class=mine_class)
    assert out.values.tolist() == [[1, 0, 0], [0, 1, 255], [255, 0, 0]]
    assert out.rio.crs == "EPSG:32630"


def test_new_mining_other_class_and_errors():
    out = new_mining(grid(BEFORE), grid(AFTER), mine_class="built")
    assert out.values.tolist() == [[0, 0, 1], [0, 0, 255], [255, 0, 0]]
    with pytest.raises(LabelError, match="unknown class 'gold'"):
        new_mining(grid(BEFORE), grid(AFTER), mine_class="gold")


def test_new_mining_polygons_difference():
    before = gpd.GeoDataFrame(geometry=[box(600000, 700000, 601000, 701000)], crs=32630)
    after = gpd.GeoDataFrame(
        geometry=[box(600000, 700000, 602000, 701000), box(610000, 700000, 610100, 700100)],
        crs=32630,
    ).to_crs(4326)
    new = new_mining_polygons(before, after)
    assert new.crs == "EPSG:4326"
    assert sorted(new.area_ha.round(0)) == [1.0, 100.0]  # 1 km² minus old + 1 ha new site
    with pytest.raises(VectorError, match="no polygons"):
        new_mining_polygons(before, after.iloc[:0])
    with pytest.raises(MissingCRSError, match="set_crs"):
        new_mining_polygons(before.set_crs(None, allow_override=True), after)


# ------------------------------------------------- bad input, round 2 (issue 22)


def _like(da, values):
    """``da``'s grid and CRS with other values (and their dtype)."""
    return da.copy(data=np.asarray(values))


@pytest.mark.parametrize("chunks", [None, 1], ids=["numpy", "dask"])
def test_nan_and_inf_in_float_maps_are_nodata(chunks):
    g = grid([[0, 0, 0, 0]])
    before = _like(g, np.array([[2.0, np.nan, 2.0, np.inf]], "float32"))
    after = _like(g, np.array([[0.0, 1.0, np.nan, 0.0]], "float64"))
    if chunks:
        before, after = before.chunk(1), after.chunk(1)
    # the old code read NaN as class 0: no data became "mines -> built"
    assert change_map(before, after).values.tolist() == [[6, 255, 255, 255]]
    assert new_mining(before, after).values.tolist() == [[1, 255, 255, 255]]


def test_declared_nodata_of_the_maps_is_nodata():
    g = grid([[0, 0, 0]])
    before = _like(g, np.array([[-9999.0, 2.0, 2.0]])).rio.write_nodata(-9999.0)
    after = _like(g, np.array([[0, 0, 1]], "uint8")).rio.write_nodata(1)  # the file says so
    assert change_map(before, after).values.tolist() == [[255, 6, 255]]


@pytest.mark.parametrize("chunks", [None, 1], ids=["numpy", "dask"])
def test_non_integer_float_classes_are_refused(chunks):
    g = grid([[0, 0]])
    before = _like(g, np.array([[0.6, 2.0]], "float32"))  # e.g. a probability map
    if chunks:
        before = before.chunk(1)
    with pytest.raises(LabelError, match=r"'before' holds 1 non-integer class values.*0\.6"):
        change_map(before, g).values  # noqa: B018  (dask: raised at compute)


def test_large_integers_do_not_wrap_onto_classes():
    g = grid([[0, 0, 0]])
    before = _like(g, np.array([[65536, 65538, -65536]], "int32"))  # int16: 0, 2, 0
    with pytest.raises(LabelError, match=r"\{-65536: 1, 65536: 1, 65538: 1\}"):
        change_map(before, g)  # named as they are, never wrapped onto classes


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        (np.array([[True, False]]), {}, DimensionError, r"dtype bool.*not a class map"),
        (np.array([["a", "b"]]), {}, DimensionError, "integer class codes"),
        (np.array([[0, 1]], "uint8"), {"nodata": 256}, ParamsError, r"integer in 9\.\.255"),
        (np.array([[0, 1]], "uint8"), {"nodata": -1}, ParamsError, "got -1"),
        (np.array([[0, 1]], "uint8"), {"nodata": 254.5}, ParamsError, "got 254.5"),
    ],
)
def test_change_map_dtype_and_nodata_errors(values, kwargs, error, match):
    g = grid([[0, 0]])
    with pytest.raises(error, match=match):
        change_map(_like(g, values), g, **kwargs)


def test_zero_size_maps_are_a_dimension_error():
    g = grid([[0, 0]]).isel(x=slice(0, 0))
    with pytest.raises(DimensionError, match=r"'before' has no pixels \(shape \(1, 0\)\)"):
        change_map(g, grid([[0, 0]]))


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


def test_polygon_area_ha_of_a_hectare():
    from vitseg.change import polygon_area_ha

    gdf = gpd.GeoDataFrame(geometry=[box(600000, 700000, 600100, 700100)], crs=32630)
    assert polygon_area_ha(gdf).tolist() == pytest.approx([1.0], rel=2e-3)


@pytest.mark.parametrize(("nodata", "ok"), [(0, False), (8, False), (9, True), (255, True)])
def test_change_nodata_must_lie_above_the_codes(nodata, ok):
    before = grid(np.zeros((2, 2)))
    if ok:
        assert change_map(before, before, nodata=nodata).dtype == np.uint8
    else:
        with pytest.raises(ParamsError, match=r"collides with change codes 0\.\.8"):
            change_map(before, before, nodata=nodata)


def test_geographic_pixel_area_uses_the_crs_ellipsoid():
    # ED50 (International 1924) is not WGS84: its geodesic areas differ by ~1e-4
    m = grid(np.zeros((2, 2)), crs="EPSG:4230", res=0.001, x0=-1.75, y0=6.25)
    geod = Geod(ellps="intl")
    want = abs(
        geod.polygon_area_perimeter([-1.75, -1.749, -1.749, -1.75], [6.25] * 2 + [6.249] * 2)[0]
    )
    assert pixel_area_m2(m)[0] == pytest.approx(want, rel=1e-9)


def test_union_area_of_an_empty_layer_is_zero():
    from vitseg.change import union_area_ha

    empty = gpd.GeoDataFrame(geometry=[], crs=32630)
    assert union_area_ha(empty) == 0.0 and isinstance(union_area_ha(empty), float)


def test_class_index_bounds_and_one_class_maps():
    from vitseg.change import class_index

    assert class_index(2) == 2
    with pytest.raises(LabelError, match=r"outside 0\.\.2"):
        class_index(3)
    one = grid(np.zeros((2, 2)))
    assert change_map(one, one, classes=["mines"]).values.tolist() == [[0, 0], [0, 0]]


def test_codes_at_or_above_the_class_count_are_an_error():
    before = grid(np.array([[0, 1], [2, 3]]))
    with pytest.raises(LabelError, match=r"outside 0\.\.2 .*\{3: 1\}"):
        change_map(before, before)
    # with a fourth class named, 3 is a class
    out = change_map(before, before, classes=["a", "b", "c", "d"])
    assert out.values.tolist() == [[0, 5], [10, 15]]


def test_single_band_maps_and_legend_nodata_row():
    before = grid(np.array([[0, 1], [2, 2]])).expand_dims(band=[1])
    assert change_map(before, before).values.tolist() == [[0, 4], [8, 8]]
    legend = change_legend()
    row = legend[legend["code"] == 255].iloc[0]
    assert row["label"] == "no data" and not row["changed"]


def test_union_area_of_one_polygon():
    from vitseg.change import union_area_ha

    one = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=32630)
    assert union_area_ha(one, area_crs="EPSG:32630") == pytest.approx(1.0)
