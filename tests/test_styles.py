"""QGIS styles in GeoPackages and the colour tables of class and change maps."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import Point, box

from vitseg.errors import MissingCRSError, MissingFileError, ParamsError, VectorError
from vitseg.styles import (
    add_layer_style,
    categorized_qml,
    change_colormap,
    class_colormap,
    district_qml,
    graduated_qml,
    layer_styles,
    sample_qml,
    single_qml,
    to_rgba,
    write_styled_layer,
)


def qml_root(qml: str) -> ET.Element:
    assert qml.startswith("<!DOCTYPE qgis")
    return ET.fromstring(qml.split("\n", 1)[1])


@pytest.fixture
def sample_gpkg(tmp_path: Path) -> Path:
    p = tmp_path / "sample.gpkg"
    gpd.GeoDataFrame(
        {"point_id": [1, 2], "map_class": ["mines", "vegetation"]},
        geometry=[Point(600000, 700000), Point(600100, 700000)],
        crs="EPSG:32630",
    ).to_file(p, layer="sample")
    return p


def test_sample_style_is_stored_as_the_layers_default(sample_gpkg: Path) -> None:
    add_layer_style(sample_gpkg, "sample", sample_qml())
    rows = layer_styles(sample_gpkg)
    assert len(rows) == 1
    row = rows[0]
    assert (row["f_table_name"], row["f_geometry_column"], row["styleName"]) == (
        "sample", "geom", "sample",
    )  # fmt: skip
    assert row["useAsDefault"] == 1
    root = qml_root(row["styleQML"])
    renderer = root.find("renderer-v2")
    assert renderer.get("attr") == "map_class"
    cats = {c.get("value"): c.get("symbol") for c in renderer.iter("category")}
    assert list(cats) == ["mines", "built", "vegetation"]
    # the mines symbol is the class colour #d95f02 = 217,95,2
    sym = renderer.find(f"symbols/symbol[@name='{cats['mines']}']")
    colour = sym.find("layer/Option/Option[@name='color']").get("value")
    assert colour == "217,95,2,255"
    with sqlite3.connect(sample_gpkg) as con:  # registered as OGR / QGIS do it
        kind = con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchone()
    assert kind == ("attributes",)
    # the features are untouched and still read back by layer name
    assert gpd.read_file(sample_gpkg, layer="sample")["map_class"].tolist() == [
        "mines", "vegetation",
    ]  # fmt: skip
    assert "sample" in pyogrio.list_layers(sample_gpkg)[:, 0]


def test_restyling_replaces_and_a_new_default_clears_the_old(sample_gpkg: Path) -> None:
    add_layer_style(sample_gpkg, "sample", sample_qml())
    add_layer_style(sample_gpkg, "sample", sample_qml())  # same name: replaced
    assert len(layer_styles(sample_gpkg)) == 1
    add_layer_style(sample_gpkg, "sample", single_qml("#000000", geometry="point"), name="plain")
    rows = {r["styleName"]: r["useAsDefault"] for r in layer_styles(sample_gpkg)}
    assert rows == {"sample": 0, "plain": 1}


@pytest.mark.parametrize(
    ("layer", "qml", "error", "match"),
    [
        ("nope", None, VectorError, r"no feature layer 'nope'.*\['sample'\]"),
        ("sample", "<qgis><unclosed></qgis>", VectorError, "not valid XML"),
        ("sample", "<style/>", VectorError, "<qgis> root"),
    ],
)
def test_add_layer_style_errors(
    sample_gpkg: Path, layer: str, qml: str | None, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        add_layer_style(sample_gpkg, layer, qml or sample_qml())
    assert layer_styles(sample_gpkg) == []


def test_missing_gpkg(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="no GeoPackage"):
        add_layer_style(tmp_path / "x.gpkg", "sample", sample_qml())


def test_write_styled_layer_districts(tmp_path: Path) -> None:
    districts = gpd.GeoDataFrame(
        {"ADM2_EN": ["West", "East"], "mines_ha": [2.0, 8.0]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:32630",
    )
    p = write_styled_layer(
        districts, tmp_path / "d.gpkg", layer="districts", qml=district_qml(districts["mines_ha"])
    )
    (row,) = layer_styles(p)
    assert row["f_table_name"] == "districts"
    ranges = qml_root(row["styleQML"]).findall("renderer-v2/ranges/range")
    assert ranges[0].get("lower") == "0" and ranges[-1].get("upper") == "8"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["d.gpkg"]
    with pytest.raises(ParamsError, match=r"\.gpkg"):
        write_styled_layer(districts, tmp_path / "d.shp", layer="d", qml=sample_qml())
    with pytest.raises(MissingCRSError):
        write_styled_layer(districts.set_crs(None, allow_override=True), tmp_path / "e.gpkg",
                           layer="d", qml=sample_qml())  # fmt: skip
    assert not (tmp_path / "e.gpkg").exists()


def test_qml_builders_check_their_input() -> None:
    with pytest.raises(ParamsError, match="at least one category"):
        categorized_qml("a", {})
    with pytest.raises(ParamsError, match="geometry must be one of"):
        single_qml("#ff0000", geometry="area")  # type: ignore[arg-type]
    with pytest.raises(ParamsError, match="breaks must rise"):
        graduated_qml("a", [0, 5, 5], ["#ffffff", "#000000"])
    with pytest.raises(ParamsError, match="a colour must be"):
        to_rgba("red")
    polygon = qml_root(categorized_qml("c", {"x": "#010203"}, geometry="polygon"))
    assert polygon.find("renderer-v2/symbols/symbol").get("type") == "fill"


def test_class_and_change_colormaps() -> None:
    assert class_colormap(["mines", "unknown"]) == {0: (217, 95, 2, 255), 1: (153, 153, 153, 255)}
    cmap, names = change_colormap(["mines", "vegetation"])
    assert names == ["mines -> mines", "mines -> vegetation", "vegetation -> mines",
                     "vegetation -> vegetation"]  # fmt: skip
    assert cmap[2] == (228, 26, 28, 255)  # vegetation -> mines: red
    # stable vegetation: #1b9e77 = (27, 158, 119) pale, 255 - 0.35 * (255 - v)
    assert cmap[3] == (
        round(255 - 0.35 * 228),
        round(255 - 0.35 * 97),
        round(255 - 0.35 * 136),
        255,
    )
    assert cmap[1] == (20, 118, 89, 255)  # mines -> vegetation: 0.75 x vegetation
