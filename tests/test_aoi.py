"""Tests for vitseg.aoi: box names, bboxes, vector files, grid cells and the metric CRS."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from vitseg.aoi import AOIError, choose_crs, resolve_aoi
from vitseg.errors import MissingCRSError, VitsegError
from vitseg.synthetic import BOXES

X0, Y0 = 600_000.0, 700_000.0  # near Obuasi in UTM 30N


def check_frame(gdf: gpd.GeoDataFrame) -> None:
    assert gdf.crs == "EPSG:4326"
    assert list(gdf.index) == list(range(len(gdf)))
    assert gdf["area"].is_unique and gdf["area"].str.fullmatch(r"[a-z0-9_-]+").all()
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    assert list(gdf.columns[:2]) == ["area", "source"] and gdf.columns[-1] == "geometry"


@pytest.mark.parametrize(
    ("aoi", "areas"),
    [("obuasi", ["obuasi"]), ("KIBI", ["kibi"]), (["kibi", "Obuasi"], ["kibi", "obuasi"]),
     (("obuasi", "kibi", "obuasi"), ["obuasi", "kibi"])],
)  # fmt: skip
def test_box_names(aoi: object, areas: list[str]) -> None:
    gdf = resolve_aoi(aoi)
    check_frame(gdf)
    assert list(gdf["area"]) == areas
    for name, geom in zip(gdf["area"], gdf.geometry, strict=True):
        assert geom.bounds == pytest.approx(BOXES[name])
        assert geom.equals(box(*BOXES[name]))
    assert "BOXES" in gdf["source"].iloc[0]


@pytest.mark.parametrize("bbox", [[-1.8, 6.1, -1.7, 6.2], (-1.8, 6.1, -1.7, 6.2),
                                  np.array([-1.8, 6.1, -1.7, 6.2]), [-2, 6, -1, 7]])  # fmt: skip
def test_bbox(bbox: object) -> None:
    gdf = resolve_aoi(bbox)
    check_frame(gdf)
    assert list(gdf["area"]) == ["bbox"] and len(gdf) == 1
    assert gdf.total_bounds.tolist() == pytest.approx([float(v) for v in bbox])  # type: ignore[attr-defined]
    assert gdf.geometry.iloc[0].area == pytest.approx(0.01 if bbox[0] == -1.8 else 1.0)  # type: ignore[index]


def write(path: Path, gdf: gpd.GeoDataFrame, driver: str | None = None) -> Path:
    gdf.to_file(path, driver=driver)
    return path


LONLAT = box(-1.80, 6.10, -1.70, 6.20)


@pytest.mark.parametrize(
    ("name", "crs", "driver"),
    [("mines.gpkg", "EPSG:4326", "GPKG"), ("mines_utm.gpkg", "EPSG:32630", "GPKG"),
     ("mines.geojson", "EPSG:32630", "GeoJSON"), ("mines.shp", "EPSG:32630", None)],
)  # fmt: skip
def test_file_any_crs_same_area(tmp_path: Path, name: str, crs: str, driver: str | None) -> None:
    src = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[box(-1.80, 6.10, -1.75, 6.20),
                                                     box(-1.75, 6.10, -1.70, 6.20)],
                           crs="EPSG:4326").to_crs(crs)  # fmt: skip
    gdf = resolve_aoi(write(tmp_path / name, src, driver))
    check_frame(gdf)
    stem = Path(name).stem
    assert list(gdf["area"]) == [stem] and gdf["source"].iloc[0] == f"{name} (union of 2 features)"
    geom = gdf.geometry.iloc[0]
    # the union of the two halves is the whole box, whichever CRS the file was in
    assert geom.symmetric_difference(LONLAT).area == pytest.approx(0.0, abs=1e-12)
    assert geom.area == pytest.approx(0.01, rel=1e-9)


def test_file_name_column_gives_two_areas(tmp_path: Path) -> None:
    src = gpd.GeoDataFrame(
        {"name": ["Tarkwa\u2013Nsuaem", "Obuasi North", "Obuasi North", "Obuasi North", "Tarkwa\u2013Nsuaem"]},
        geometry=[box(X0 + 5000, Y0, X0 + 6000, Y0 + 2000),  # 2 km2
                  box(X0, Y0, X0 + 1000, Y0 + 1000), box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
                  Point(X0, Y0),  # not a polygon: dropped
                  Polygon()],  # empty: dropped
        crs="EPSG:32630",
    )  # fmt: skip
    path = write(tmp_path / "polys.gpkg", src)
    gdf = resolve_aoi(path)
    check_frame(gdf)
    assert list(gdf["area"]) == ["obuasi_north", "tarkwa_nsuaem"]
    assert gdf["source"].tolist() == ["polys.gpkg: name=Obuasi North (2 features)",
                                      "polys.gpkg: name=Tarkwa\u2013Nsuaem (1 features)"]  # fmt: skip
    assert gdf.to_crs("EPSG:32630").area.tolist() == pytest.approx([2e6, 2e6], rel=1e-6)
    assert gdf.geom_type.tolist() == ["Polygon", "Polygon"]  # the two halves dissolved
    # with name_column=None, or a column the file lacks: one union named after the file
    for kwargs in ({"name_column": None}, {"name_column": "region"}):
        one = resolve_aoi(str(path), **kwargs)  # type: ignore[arg-type]
        assert list(one["area"]) == ["polys"] and one["source"].iloc[0].endswith("3 features)")
        assert one.to_crs("EPSG:32630").area.iloc[0] == pytest.approx(4e6, rel=1e-6)


def test_file_repairs_invalid_polygon(tmp_path: Path) -> None:
    bowtie = Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])
    assert not bowtie.is_valid
    src = gpd.GeoDataFrame({"name": ["a b", "A-B?"]}, geometry=[bowtie, box(X0, Y0, X0 + 10, Y0 + 10)],
                           crs="EPSG:32630")  # fmt: skip
    gdf = resolve_aoi(write(tmp_path / "bowtie.gpkg", src))
    check_frame(gdf)
    assert list(gdf["area"]) == ["a-b", "a_b"]  # slugs of 'A-B?' and 'a b', sorted
    assert gdf.geometry.is_valid.all()
    # make_valid splits the bow tie into two triangles of 250 000 m2 each
    assert gdf.to_crs("EPSG:32630").area.tolist() == pytest.approx([100.0, 5e5], rel=1e-6)


def test_duplicate_slugs_made_unique(tmp_path: Path) -> None:
    src = gpd.GeoDataFrame({"name": ["Kibi", "kibi", "KIBI!"]},
                           geometry=[box(X0 + i * 10, Y0, X0 + i * 10 + 5, Y0 + 5) for i in range(3)],
                           crs="EPSG:32630")  # fmt: skip
    gdf = resolve_aoi(write(tmp_path / "k.geojson", src, "GeoJSON"))
    assert sorted(gdf["area"]) == ["kibi", "kibi_2", "kibi_3"]


def cells_frame(boxes: list[tuple[int, int]], crs: str = "EPSG:32630") -> gpd.GeoDataFrame:
    """1 km cells at (col, row) offsets from (X0, Y0), as notebook 01 writes them."""
    geoms = [box(X0 + c * 1000, Y0 + r * 1000, X0 + (c + 1) * 1000, Y0 + (r + 1) * 1000)
             for c, r in boxes]  # fmt: skip
    return gpd.GeoDataFrame(
        {"cell_id": [f"r{r}_c{c}" for c, r in boxes], "row": [r for _, r in boxes],
         "col": [c for c, _ in boxes], "n_polygons": 1}, geometry=geoms, crs=crs,
    ).to_crs(crs)  # fmt: skip


def test_cells_groups(tmp_path: Path) -> None:
    # east group first in the file: 2 cells stacked; west group: 2 side by side + 1 by a corner
    cells = cells_frame([(6, 0), (0, 0), (6, 1), (1, 0), (2, 1)])
    path = tmp_path / "grid_cells.gpkg"
    cells.to_file(path, driver="GPKG", layer="grid_cells")
    gdf = resolve_aoi("cells", cells_file=path)
    check_frame(gdf)
    assert list(gdf.columns) == ["area", "source", "n_cells", "geometry"]
    assert list(gdf["area"]) == ["cells_01", "cells_02"]  # west to east
    assert list(gdf["n_cells"]) == [3, 2]
    assert gdf["source"].tolist() == ["grid_cells.gpkg: 3 connected cells",
                                      "grid_cells.gpkg: 2 connected cells"]  # fmt: skip
    assert gdf.to_crs("EPSG:32630").area.tolist() == pytest.approx([3e6, 2e6], rel=1e-6)
    assert isinstance(gdf.geometry.iloc[0], MultiPolygon)  # the corner-touching cell
    utm = gdf.to_crs("EPSG:32630").total_bounds
    assert utm == pytest.approx([X0, Y0, X0 + 7000, Y0 + 2000], abs=1e-3)


def test_cells_order_south_to_north_and_overlap(tmp_path: Path) -> None:
    # same west edge: the southern group comes first; overlapping cells join a group
    cells = cells_frame([(0, 5), (0, 0)])
    extra = gpd.GeoDataFrame({"cell_id": ["x"]}, geometry=[box(X0 + 500, Y0 + 500, X0 + 1500, Y0 + 1500)],
                             crs="EPSG:32630")  # fmt: skip
    both = gpd.GeoDataFrame(
        gpd.pd.concat([cells, extra], ignore_index=True), crs="EPSG:32630"
    ).to_crs("EPSG:4326")  # any CRS in the file
    path = write(tmp_path / "cells.gpkg", both)
    gdf = resolve_aoi("Cells", cells_file=str(path))
    assert list(gdf["n_cells"]) == [2, 1]
    assert gdf.geometry.iloc[0].bounds[1] < gdf.geometry.iloc[1].bounds[1]


@pytest.mark.parametrize(
    ("aoi", "kwargs", "error", "match"),
    [
        ("obuasii", {}, AOIError, r"'obuasii' is neither a box name.*Did you mean 'obuasi'\?"
         r".*accepted forms: a box name \('obuasi', 'kibi'\)"),
        (["obuasi", "kibbi"], {}, AOIError, r"'kibbi' is not a box name\. Did you mean 'kibi'"),
        ("celss", {}, AOIError, "Did you mean 'cells'"),
        ("no/such/file.gpkg", {}, AOIError, r"'no/such/file.gpkg'.*no file exists.*accepted forms"),
        (Path("missing.geojson"), {}, AOIError, r"'missing.geojson'.*no file exists"),
        ([-1.7, 6.1, -1.8, 6.2], {}, AOIError, r"bbox \[-1.7, 6.1, -1.8, 6.2\].*west < east"),
        ([-1.8, 6.2, -1.7, 6.1], {}, AOIError, r"south < north"),
        ([-181, 6.1, -1.7, 6.2], {}, AOIError, r"bbox \[-181, 6.1"),
        ([-1.8, 6.1, -1.7, 91], {}, AOIError, r"-90 <= south < north <= 90"),
        ([-1.8, float("nan"), -1.7, 6.2], {}, AOIError, r"bbox \[-1.8, nan"),
        ([-1.8, 6.1, -1.7], {}, AOIError, r"neither a bbox of 4 numbers.*nor a list of box names"),
        ([-1.8, 6.1, -1.7, True], {}, AOIError, "neither a bbox of 4 numbers"),
        (["obuasi", 3], {}, AOIError, "neither a bbox"),
        ([], {}, AOIError, "neither a bbox"),
        (42, {}, AOIError, r"aoi 42 \(int\) is not an area vitseg reads.*accepted forms"),
        (None, {}, AOIError, r"aoi None \(NoneType\)"),
        ({"west": 1}, {}, AOIError, r"\(dict\)"),
        ("cells", {}, AOIError, r"needs cells_file=.*run notebook 01"),
        ("cells", {"cells_file": "nope.gpkg"}, AOIError, r"'nope.gpkg' does not exist.*notebook 01"),
    ],
)  # fmt: skip
def test_errors(aoi: object, kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        resolve_aoi(aoi, **kwargs)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_file_errors(tmp_path: Path) -> None:
    square = box(X0, Y0, X0 + 10, Y0 + 10)
    shp = write(tmp_path / "nocrs.shp", gpd.GeoDataFrame(geometry=[square]))  # no .prj
    with pytest.raises(MissingCRSError, match=r"'.*nocrs.shp' has no CRS; set it.*set_crs\("):
        resolve_aoi(shp)
    with pytest.raises(MissingCRSError, match=r"cells_file .* has no CRS"):
        resolve_aoi("cells", cells_file=shp)
    lines = gpd.GeoDataFrame(geometry=[Point(X0, Y0), Point(X0, Y0).buffer(1).exterior],
                             crs="EPSG:32630")  # fmt: skip
    with pytest.raises(AOIError, match=r"'.*points.gpkg' holds no polygon"):
        resolve_aoi(write(tmp_path / "points.gpkg", lines))
    src = gpd.GeoDataFrame({"name": ["a", None]}, geometry=[square, square], crs="EPSG:32630")
    with pytest.raises(
        AOIError, match=r"1 polygon\(s\) have no value in column 'name'.*name_column=None"
    ):
        resolve_aoi(write(tmp_path / "nulls.gpkg", src))
    two = tmp_path / "two.gpkg"
    gpd.GeoDataFrame(geometry=[square], crs="EPSG:32630").to_file(two, layer="a")
    gpd.GeoDataFrame(geometry=[square], crs="EPSG:32630").to_file(two, layer="b")
    with pytest.raises(AOIError, match=r"holds 2 layers \('a', 'b'\)"):
        resolve_aoi(two)
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a geopackage")
    with pytest.raises(AOIError, match=r"cannot read aoi file '.*junk.gpkg' as a vector file"):
        resolve_aoi(junk)
    assert issubclass(AOIError, VitsegError) and issubclass(AOIError, ValueError)


def test_choose_crs() -> None:
    both = resolve_aoi(["obuasi", "kibi"])
    assert choose_crs(both) == "EPSG:32630"
    assert choose_crs(resolve_aoi("obuasi")) == "EPSG:32630"
    assert choose_crs(resolve_aoi("kibi"), "auto") == "EPSG:32630"
    assert choose_crs(resolve_aoi([1.4, 6.0, 1.6, 6.2])) == "EPSG:32631"
    assert choose_crs(resolve_aoi([14.0, -10.0, 15.0, -9.0])) == "EPSG:32733"  # south
    assert choose_crs(both.to_crs("EPSG:32631")) == "EPSG:32630"  # any CRS in
    assert choose_crs(both.geometry) == "EPSG:32630"  # a GeoSeries works too
    assert choose_crs(both, "epsg:32631") == "EPSG:32631"
    assert choose_crs(both, 32630) == "EPSG:32630"
    assert choose_crs(both, "+proj=utm +zone=30 +datum=WGS84 +units=m +no_defs") == "EPSG:32630"
    laea = "+proj=laea +lat_0=7 +lon_0=-1 +datum=WGS84 +units=m"
    assert choose_crs(both, laea).startswith("+proj=laea")


@pytest.mark.parametrize(
    ("crs", "match"),
    [
        ("EPSG:4326", r"'EPSG:4326' is geographic \(degrees\).*'auto'.*'EPSG:32630'"),
        ("EPSG:2229", r"'EPSG:2229' is not in metres \('US survey foot'\)"),
        ("EPSG:99999", r"'EPSG:99999' is not a valid CRS; pass 'auto'"),
        ("utm", r"'utm' is not a valid CRS"),
        (None, r"None is not a valid CRS"),
    ],
)  # fmt: skip
def test_choose_crs_errors(crs: object, match: str) -> None:
    with pytest.raises(MissingCRSError, match=match):
        choose_crs(resolve_aoi("obuasi"), crs)


def test_choose_crs_needs_crs_and_geometry() -> None:
    with pytest.raises(MissingCRSError, match="areas have no CRS"):
        choose_crs(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(AOIError, match="hold no geometry"):
        choose_crs(gpd.GeoDataFrame(geometry=[Polygon()], crs="EPSG:4326"))
