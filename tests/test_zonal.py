import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from _rasters import class_grid as grid
from shapely.geometry import Polygon, box

from vitseg.errors import GridMismatchError, LabelError, MissingCRSError, VectorError
from vitseg.zonal import zonal_areas, zonal_polygon_areas

X0, Y0, RES = 600000.0, 700000.0, 10.0


@pytest.fixture
def seasons():
    """200 x 200 px of vegetation (4 km²); a 50 x 50 px (25 ha) mine appears in season 2."""
    a = np.full((200, 200), 2, "uint8")
    b = a.copy()
    b[20:70, 30:80] = 0
    c = b.copy()
    c[20:70, 80:90] = 0  # +5 ha
    c[150:160, 150:160] = 0  # +1 ha in the other zone
    return {"2019-20": a, "2020-21": b, "2021-22": c}


def zones(crs):
    z = gpd.GeoDataFrame(
        {"pcode": ["Z1", "Z2"], "name": ["north", "south"]},
        geometry=[
            box(X0, Y0 - 1000, X0 + 2000, Y0),  # rows 0..99: holds the mine square
            box(X0, Y0 - 2000, X0 + 2000, Y0 - 1000),
        ],
        crs="EPSG:32630",
    )
    return z.to_crs(crs)


@pytest.mark.parametrize("zone_crs", ["EPSG:32630", "EPSG:4326"])
@pytest.mark.parametrize("chunks", [None, 64], ids=["numpy", "dask"])
def test_known_square_in_known_zone(seasons, zone_crs, chunks):
    maps = {k: grid(v, chunks=chunks) for k, v in seasons.items()}
    out = zonal_areas(maps, zones(zone_crs), zone_id="pcode", keep_columns=["name"])
    row = out.set_index(["pcode", "season"]).loc[("Z1", "2020-21")]
    assert row["name"] == "north"
    assert row["mines_ha"] == pytest.approx(25.0, rel=1e-3)
    assert row["zone_ha"] == pytest.approx(200.0, rel=1e-3)
    assert row["vegetation_ha"] == pytest.approx(175.0, rel=1e-3)
    assert row["covered_fraction"] == pytest.approx(1.0, rel=1e-3)


def test_new_and_cumulative_mining_per_zone(seasons):
    maps = {k: grid(v) for k, v in seasons.items()}
    out = zonal_areas(maps, zones("EPSG:32630"), zone_id="pcode").set_index(["pcode", "season"])
    z1 = out.loc["Z1"]
    assert z1["new_mines_ha"].tolist() == pytest.approx([0.0, 25.0, 5.0])
    assert z1["cumulative_new_mines_ha"].tolist() == pytest.approx([0.0, 25.0, 30.0])
    assert z1["mines_change_ha"].tolist() == pytest.approx([0.0, 25.0, 5.0])
    assert out.loc["Z2", "new_mines_ha"].tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_mine_loss_is_negative_change_not_new(seasons):
    maps = {"a": grid(seasons["2020-21"]), "b": grid(seasons["2019-20"])}
    out = zonal_areas(maps, zones("EPSG:32630"), zone_id="pcode").set_index(["pcode", "season"])
    assert out.loc[("Z1", "b"), "mines_change_ha"] == pytest.approx(-25.0)
    assert out.loc[("Z1", "b"), "new_mines_ha"] == 0.0


def test_partly_covered_and_outside_zones():
    m = grid(np.zeros((100, 100)))  # 1 km x 1 km of mines
    z = gpd.GeoDataFrame(
        {"id": ["half", "out", "all"]},
        geometry=[
            box(X0 + 500, Y0 - 1000, X0 + 1500, Y0),
            box(X0 + 5000, Y0, X0 + 6000, Y0 + 1000),
            box(X0 - 1000, Y0 - 2000, X0 + 2000, Y0 + 1000),  # overlaps "half": counted in both
        ],
        crs="EPSG:32630",
    )
    out = zonal_areas(m, z, zone_id="id", keep_columns=()).set_index("id")
    assert "out" not in out.index
    assert out.loc["half", "covered_fraction"] == pytest.approx(0.5)
    assert out.loc["half", "mines_ha"] == pytest.approx(50.0)
    assert out.loc["all", "mines_ha"] == pytest.approx(100.0)
    assert out.loc["all", "covered_fraction"] == pytest.approx(100 / 900)
    kept = zonal_areas(m, z, zone_id="id", drop_empty=False).set_index("id")
    assert kept.loc["out", "covered_fraction"] == 0.0
    assert kept.loc["out", "mines_ha"] == 0.0


def test_nodata_lowers_covered_fraction():
    arr = np.zeros((100, 100))
    arr[:50] = 255
    z = gpd.GeoDataFrame({"id": [1]}, geometry=[box(X0, Y0 - 1000, X0 + 1000, Y0)], crs=32630)
    row = zonal_areas(grid(arr), z, zone_id="id").iloc[0]
    assert row["covered_fraction"] == pytest.approx(0.5)
    assert row["no_data_ha"] == pytest.approx(50.0)


def test_geographic_raster():
    res = 0.001
    m = grid(np.zeros((20, 20)), crs="EPSG:4326", res=res, x0=-1.75, y0=6.25)
    z = gpd.GeoDataFrame({"id": ["w"]}, geometry=[box(-1.75, 6.23, -1.74, 6.25)], crs=4326)
    row = zonal_areas(m, z, zone_id="id").iloc[0]
    # 10 x 20 cells of ~1.224 ha (0.001 deg at 6.24 N)
    assert row["mines_ha"] == pytest.approx(244.8, rel=2e-3)
    assert row["covered_fraction"] == pytest.approx(1.0, rel=2e-3)


def test_zone_errors(seasons):
    m = grid(seasons["2019-20"])
    z = zones("EPSG:32630")
    with pytest.raises(VectorError, match="no column 'ADM2_PCODE'"):
        zonal_areas(m, z)
    with pytest.raises(VectorError, match="unique"):
        zonal_areas(m, z.assign(pcode=["A", "A"]), zone_id="pcode")
    with pytest.raises(VectorError, match="GeoDataFrame"):
        zonal_areas(m, pd.DataFrame({"pcode": [1]}), zone_id="pcode")
    with pytest.raises(MissingCRSError, match="set_crs"):
        zonal_areas(m, z.set_crs(None, allow_override=True), zone_id="pcode")
    with pytest.raises(MissingCRSError, match="write_crs"):
        zonal_areas(xr.DataArray(seasons["2019-20"], dims=("y", "x")), z, zone_id="pcode")
    with pytest.raises(VectorError, match="empty"):
        zonal_areas(m, z.iloc[:0], zone_id="pcode")


def test_zonal_polygon_areas_by_year():
    z = zones("EPSG:4326")
    feats = gpd.GeoDataFrame(
        {"year": [2017, 2020, 2020]},
        geometry=[
            box(X0, Y0 - 1500, X0 + 1000, Y0 - 500),  # 100 ha: 50 in each zone
            box(X0, Y0 - 1500, X0 + 1000, Y0 - 500),
            box(X0 + 500, Y0 - 1500, X0 + 1500, Y0 - 500),  # overlaps: dissolved, +50 ha
        ],
        crs="EPSG:32630",
    )
    out = zonal_polygon_areas(feats, z, zone_id="pcode", keep_columns=["name"], by="year")
    out = out.set_index("pcode")
    assert out.loc["Z1", "area_ha_2017"] == pytest.approx(50.0, rel=2e-3)
    assert out.loc["Z1", "area_ha_2020"] == pytest.approx(75.0, rel=2e-3)
    assert out.loc["Z2", "area_ha_2020"] == pytest.approx(75.0, rel=2e-3)
    assert out.loc["Z1", "zone_ha"] == pytest.approx(200.0, rel=2e-3)
    assert out.attrs["outside_ha"]["area_ha_2017"] == pytest.approx(0.0, abs=1e-3)
    far = feats.translate(50000)
    total = zonal_polygon_areas(far, z, zone_id="pcode")
    assert len(total) == 0
    assert total.attrs["outside_ha"]["area_ha"] == pytest.approx(150.0, rel=2e-3)
    with pytest.raises(VectorError, match="no column 'yr'"):
        zonal_polygon_areas(feats, z, zone_id="pcode", by="yr")


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


def test_pixel_centres_by_default_all_touched_on_request():
    m = grid(np.zeros((4, 4)))  # 10 m mine pixels, centres at X0 + 5, 15, 25, 35
    z = gpd.GeoDataFrame({"id": [1]}, geometry=[box(X0 + 6, Y0 - 20, X0 + 24, Y0)], crs=32630)
    assert zonal_areas(m, z, zone_id="id").loc[0, "mines_ha"] == pytest.approx(0.02)
    touched = zonal_areas(m, z, zone_id="id", all_touched=True)
    assert touched.loc[0, "mines_ha"] == pytest.approx(0.06)
    assert touched.loc[0, "covered_fraction"] == 1.0  # 0.06 ha mapped in a 0.036 ha zone


@pytest.mark.parametrize("drop_empty", [True, False])
def test_zones_without_geometry_are_skipped(drop_empty):
    m = grid(np.zeros((4, 4)))
    z = gpd.GeoDataFrame(
        {"id": ["a", "none", "empty"]},
        geometry=[box(X0, Y0 - 40, X0 + 40, Y0), None, Polygon()],
        crs=32630,
    )
    out = zonal_areas(m, z, zone_id="id", drop_empty=drop_empty)
    assert out["id"].tolist() == ["a"]
    assert out.loc[0, "mines_ha"] == pytest.approx(0.16)


def test_zone_hectares_are_exact():
    from vitseg.change import AREA_CRS

    z = zones("EPSG:4326")
    want = (z.to_crs(AREA_CRS).area / 1e4).tolist()
    m = grid(np.zeros((20, 20)), crs="EPSG:4326", res=0.001, x0=-1.75, y0=6.25)
    zg = gpd.GeoDataFrame({"id": ["w"]}, geometry=[box(-1.75, 6.23, -1.74, 6.25)], crs=4326)
    row = zonal_areas(m, zg, zone_id="id").iloc[0]
    assert row["zone_ha"] == pytest.approx(float(zg.to_crs(AREA_CRS).area.iloc[0]) / 1e4, rel=1e-9)
    feats = gpd.GeoDataFrame(geometry=[box(X0, Y0 - 1500, X0 + 1000, Y0 - 500)], crs=32630)
    out = zonal_polygon_areas(feats, z, zone_id="pcode").set_index("pcode")
    assert out["zone_ha"].tolist() == pytest.approx(want, rel=1e-9)


def test_every_season_must_share_the_grid(seasons):
    maps = {k: grid(v) for k, v in seasons.items()}
    maps["2020-21"] = grid(seasons["2020-21"], x0=X0 + 5)  # the second season too
    with pytest.raises(GridMismatchError):
        zonal_areas(maps, zones("EPSG:32630"), zone_id="pcode")


def test_one_pixel_wide_zone_and_empty_zone_over_seasons():
    maps = {"a": grid(np.full((4, 4), 2)), "b": grid(np.zeros((4, 4)))}
    z = gpd.GeoDataFrame(
        {"id": ["col", "row", "far"]},
        geometry=[
            box(X0 + 10, Y0 - 40, X0 + 20, Y0),  # one pixel wide
            box(X0, Y0 - 20, X0 + 40, Y0 - 10),  # one pixel high
            box(X0 + 500, Y0, X0 + 600, Y0 + 100),
        ],
        crs=32630,
    )
    out = zonal_areas(maps, z, zone_id="id", drop_empty=False).set_index(["id", "season"])
    assert out.loc[("col", "b"), "new_mines_ha"] == pytest.approx(0.04)
    assert out.loc[("row", "b"), "new_mines_ha"] == pytest.approx(0.04)
    far = out.loc["far"]
    assert far["new_mines_ha"].tolist() == [0.0, 0.0]
    assert far["cumulative_new_mines_ha"].tolist() == [0.0, 0.0]


def test_duplicate_ids_listed_up_to_five():
    m = grid(np.zeros((4, 4)))
    z = gpd.GeoDataFrame({"id": ["A"] * 7}, geometry=[box(X0, Y0 - 40, X0 + 40, Y0)] * 7, crs=32630)
    with pytest.raises(VectorError, match=r"duplicated: \['A', 'A', 'A', 'A', 'A'\]"):
        zonal_areas(m, z, zone_id="id")


def test_season_grid_error_names_the_first_season(seasons):
    maps = {k: grid(v) for k, v in seasons.items()}
    maps["2021-22"] = grid(seasons["2021-22"][:-1])
    with pytest.raises(GridMismatchError, match=r"2019-20 has shape \(200, 200\) but 2021-22"):
        zonal_areas(maps, zones("EPSG:32630"), zone_id="pcode")


def test_covered_fraction_of_small_and_zero_area_zones():
    m = grid(np.zeros((4, 4)))
    z = gpd.GeoDataFrame(
        {"id": ["small", "flat"]},
        geometry=[
            box(X0, Y0 - 40, X0 + 40, Y0),  # 0.16 ha, fully mapped
            Polygon([(X0 + 5, Y0 - 5), (X0 + 15, Y0 - 5), (X0 + 25, Y0 - 5)]),  # no area
        ],
        crs=32630,
    )
    out = zonal_areas(m, z, zone_id="id", drop_empty=False).set_index("id")
    assert out.loc["small", "covered_fraction"] == pytest.approx(1.0)
    assert out.loc["flat", "covered_fraction"] == 0.0


def test_polygon_areas_keep_columns():
    feats = gpd.GeoDataFrame(geometry=[box(X0, Y0 - 1500, X0 + 1000, Y0 - 500)], crs=32630)
    out = zonal_polygon_areas(feats, zones("EPSG:32630"), zone_id="pcode", keep_columns=["name"])
    assert out.set_index("pcode")["name"].to_dict() == {"Z1": "north", "Z2": "south"}


def test_new_area_of_another_class_and_unknown_previous_codes():
    before = np.array([[0, 0, 3, 3], [255, 255, 2, 2]])
    after = np.ones((2, 4))  # all built
    maps = {"a": grid(before), "b": grid(after)}
    z = gpd.GeoDataFrame({"id": [1]}, geometry=[box(X0, Y0 - 20, X0 + 40, Y0)], crs=32630)
    # an unknown code (3) is an error naming it (issue 22: it was read as no data silently)
    with pytest.raises(LabelError, match=r"'a' holds class codes outside 0\.\.2 .*\{3: 2\}"):
        zonal_areas(maps, z, zone_id="id", mine_class="built")
    maps["a"] = grid(before).rio.write_nodata(3)  # declared: no data, like 255
    out = zonal_areas(maps, z, zone_id="id", mine_class="built").set_index("season")
    # mines -> built and vegetation -> built are new; no-data (255, declared 3) is not
    assert out.loc["b", "new_built_ha"] == pytest.approx(0.04)
    assert out.loc["b", "built_change_ha"] == pytest.approx(0.08)


def test_polygon_areas_small_features_and_order():
    feats = gpd.GeoDataFrame(
        {"year": [1, 1]},
        geometry=[
            box(X0, Y0 - 500, X0 + 50, Y0 - 400),  # 0.5 ha in Z1
            box(X0, Y0 - 1900, X0 + 100, Y0 - 1600),  # 3 ha in Z2
        ],
        crs=32630,
    )
    out = zonal_polygon_areas(feats, zones("EPSG:32630"), zone_id="pcode")
    assert out["pcode"].tolist() == ["Z2", "Z1"]  # largest first
    assert out["area_ha"].tolist() == pytest.approx([3.0, 0.5], rel=2e-3)  # equal-area CRS
