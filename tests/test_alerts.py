import json

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from pyproj import Transformer
from shapely.geometry import box

from vitseg.alerts import assign_districts, first_seen, make_alerts, write_alerts
from vitseg.errors import MissingCRSError, ParamsError, VectorError
from vitseg.io import data_path

SEASONS = ("2019-20", "2020-21", "2021-22")


def grid(arr, *, crs, x0, y0, res):
    arr = np.asarray(arr, dtype="uint8")
    ny, nx = arr.shape
    da = xr.DataArray(
        arr,
        dims=("y", "x"),
        coords={"y": y0 - (np.arange(ny) + 0.5) * res, "x": x0 + (np.arange(nx) + 0.5) * res},
    )
    return da.rio.write_crs(crs)


def season_maps(crs="EPSG:32630", x0=600000.0, y0=700000.0, res=10.0):
    """100 x 100 px of vegetation; a 20 x 20 px (4 ha) mine in season 2 (west half), a
    10 x 30 px (3 ha) mine in season 3 (east half), a 2-px speck and a 1-px diagonal pair."""
    a = np.full((100, 100), 2, "uint8")
    b = a.copy()
    b[10:30, 10:30] = 0
    c = b.copy()
    c[60:70, 60:90] = 0
    c[90, 5:7] = 0  # 2 px: under min_area
    c[95, 95] = c[96, 96] = 0  # diagonal neighbours
    c[40:45, 40:45] = 255  # no-data
    return {
        s: grid(v, crs=crs, x0=x0, y0=y0, res=res) for s, v in zip(SEASONS, (a, b, c), strict=True)
    }


@pytest.fixture
def districts():
    """Two hand-made districts splitting the 1 km map at x = 600500 (given in EPSG:4326)."""
    return gpd.GeoDataFrame(
        {"ADM2_PCODE": ["GH9901", "GH9902"], "ADM2_EN": ["West", "East"], "ADM1_EN": ["R", "R"]},
        geometry=[box(599000, 698000, 600500, 701000), box(600500, 698000, 602000, 701000)],
        crs="EPSG:32630",
    ).to_crs("EPSG:4326")


def test_first_seen_indices():
    fs = first_seen(season_maps())
    assert fs.attrs["seasons"] == ",".join(SEASONS)
    assert fs.values[15, 15] == 1 and fs.values[65, 65] == 2
    assert fs.values[0, 0] == 0 and fs.values[42, 42] == 0
    assert fs.rio.crs == "EPSG:32630"
    with pytest.raises(ParamsError, match="two seasons"):
        first_seen({"a": season_maps()["2019-20"]})


def test_alert_polygons_carry_area_season_and_district(districts):
    al = make_alerts(season_maps(), districts=districts, min_area_ha=0.05)
    assert list(al["alert_id"]) == ["2020-21-0001", "2021-22-0001"]
    assert al["area_ha"].tolist() == pytest.approx([4.0, 3.0])
    assert al["n_pixels"].tolist() == [400, 300]
    assert al["first_seen"].tolist() == ["2020-21", "2021-22"]
    assert al["district_pcode"].tolist() == ["GH9901", "GH9902"]
    assert al["district_name"].tolist() == ["West", "East"]
    # centroid of the 4 ha square: x = 600200, y = 699800 in UTM 30N
    lon, lat = Transformer.from_crs(32630, 4326, always_xy=True).transform(600200, 699800)
    assert (al.loc[0, "lon"], al.loc[0, "lat"]) == pytest.approx((lon, lat), abs=1e-6)
    assert al.crs == "EPSG:32630"


def test_alerts_on_real_districts():
    adm2 = gpd.read_file(data_path("gha_adm2_simplified.geojson"))
    maps = {}
    for name, (lon, lat) in {"obuasi": (-1.665, 6.205), "kibi": (-0.555, 6.165)}.items():
        x, y = Transformer.from_crs(4326, 32630, always_xy=True).transform(lon, lat)
        maps[name] = make_alerts(
            season_maps(x0=round(x) - 500, y0=round(y) + 500), districts=adm2, min_area_ha=1
        )
    assert set(maps["obuasi"]["district_pcode"]) == {"GH0233"}
    assert set(maps["obuasi"]["district_name"]) == {"Obuasi Municipal"}
    assert set(maps["kibi"]["district_name"]) == {"Abuakwa South"}
    assert set(maps["kibi"]["region_name"]) == {"Eastern"}


@pytest.mark.parametrize("connectivity, n", [(8, 4), (4, 5)])
def test_connectivity_and_min_area(connectivity, n):
    al = make_alerts(season_maps(), min_area_ha=0.0, connectivity=connectivity)
    assert len(al) == n  # the diagonal pair is one patch with 8-connectivity, two with 4
    assert al["district_pcode"].isna().all()
    assert len(make_alerts(season_maps(), min_area_ha=3.5)) == 1
    assert len(make_alerts(season_maps(), min_area_ha=100)) == 0


def test_geographic_maps():
    maps = season_maps(crs="EPSG:4326", x0=-1.7, y0=6.2, res=0.0001)
    al = make_alerts(maps, min_area_ha=0.5)
    # 400 cells of 0.0001 deg (~11.06 m x ~11.05 m) at 6.2 N
    assert al["area_ha"].iloc[0] == pytest.approx(400 * 122.2 / 1e4, rel=3e-3)


def test_first_seen_map_input_and_errors(districts):
    fs = first_seen(season_maps())
    assert len(make_alerts(fs, min_area_ha=1)) == 2
    with pytest.raises(ParamsError, match="connectivity"):
        make_alerts(fs, connectivity=6)
    with pytest.raises(ParamsError, match="min_area_ha"):
        make_alerts(fs, min_area_ha=-1)
    al = make_alerts(fs)
    with pytest.raises(VectorError, match="ADM2_PCODE"):
        assign_districts(al, districts.drop(columns="ADM2_PCODE"))
    with pytest.raises(MissingCRSError, match="set_crs"):
        assign_districts(al, districts.set_crs(None, allow_override=True))


def test_write_alerts_geojson_and_gpkg(tmp_path, districts):
    al = make_alerts(season_maps(), districts=districts, min_area_ha=1)
    gj = write_alerts(al, tmp_path / "alerts.geojson")
    gp = write_alerts(al, tmp_path / "alerts.gpkg")
    doc = json.loads(gj.read_text())
    assert len(doc["features"]) == 2
    assert doc["features"][0]["properties"]["district_pcode"] == "GH9901"
    lon = doc["features"][0]["geometry"]["coordinates"][0][0][0]
    assert -3.5 < lon < 1.5  # written in lon/lat
    back = gpd.read_file(gp, layer="alerts")
    assert back.crs == "EPSG:32630"
    assert back["alert_id"].tolist() == al["alert_id"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.geojson", "alerts.gpkg"]
    with pytest.raises(ParamsError, match=r"\.geojson"):
        write_alerts(al, tmp_path / "alerts.shp")
    assert not (tmp_path / "alerts.shp").exists()


def test_alerts_gpkg_carries_a_default_qgis_style(tmp_path, districts):
    import sqlite3
    import xml.etree.ElementTree as ET

    al = make_alerts(season_maps(), districts=districts, min_area_ha=1)
    gp = write_alerts(al, tmp_path / "alerts.gpkg")
    with sqlite3.connect(gp) as con:
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles"
        ).fetchall()
    assert [r[:3] for r in rows] == [("alerts", "geom", 1)]
    root = ET.fromstring(rows[0][3].split("\n", 1)[1])  # after the DOCTYPE line
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "first_seen"
    # one category per season that has alerts, in time order
    assert [c.get("value") for c in renderer.iter("category")] == ["2020-21", "2021-22"]
    assert root.find("labeling/settings/text-style").get("fieldName") == "alert_id"
