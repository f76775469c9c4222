import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box

from vitseg.errors import CRSMismatchError, MissingCRSError, VectorError, VitsegError
from vitseg.grid import make_grid, select_cells, utm_crs_for
from vitseg.io import data_path


@pytest.fixture
def aoi_utm():
    # 4.5 km x 2.5 km rectangle, corner on the 1 km lattice: 5 columns x 3 rows = 15 cells.
    return gpd.GeoDataFrame(geometry=[box(600000, 700000, 604500, 702500)], crs="EPSG:32630")


def test_grid_counts_rectangle(aoi_utm):
    grid = make_grid(aoi_utm, 1000, crs="EPSG:32630")
    assert len(grid) == 15
    assert grid.crs.to_epsg() == 32630
    assert set(grid["row"]) == {0, 1, 2} and set(grid["col"]) == set(range(5))
    assert grid.area.round(6).unique().tolist() == [1e6]
    # Cells are aligned to multiples of the cell size and row 0 is the northernmost.
    minx, miny, maxx, maxy = grid.total_bounds
    assert (minx, miny, maxx, maxy) == (600000, 700000, 605000, 703000)
    north = grid[grid["row"] == 0].total_bounds
    assert north[3] == 703000
    assert grid["cell_id"].is_unique


def test_grid_exact_fit_has_no_extra_cells():
    aoi = gpd.GeoDataFrame(geometry=[box(0, 0, 3000, 2000)], crs="EPSG:32630")
    assert len(make_grid(aoi, 1000, crs="EPSG:32630")) == 6  # touching edges do not count


def test_grid_triangle_keeps_only_intersecting_cells():
    # Right triangle with legs of 3 km: cells strictly above the diagonal are dropped.
    tri = gpd.GeoDataFrame(geometry=[Polygon([(0, 0), (3000, 0), (0, 3000)])], crs="EPSG:32630")
    grid = make_grid(tri, 1000, crs="EPSG:32630")
    # row/col counted from the north: kept cells have (2 - row) + col <= 2 -> 6 cells.
    assert len(grid) == 6
    clipped = make_grid(tri, 1000, crs="EPSG:32630", clip=True)
    assert clipped.area.sum() == pytest.approx(4.5e6)


@pytest.mark.parametrize("aoi_crs", ["EPSG:4326", "EPSG:32630"])
def test_grid_reprojects_aoi(aoi_crs):
    aoi = gpd.GeoDataFrame(geometry=[box(-1.82, 6.14, -1.69, 6.27)], crs="EPSG:4326").to_crs(
        aoi_crs
    )
    grid = make_grid(aoi, 2000, crs="EPSG:32630")
    # ~14.4 km x 14.4 km box -> 8 or 9 cells per side after alignment to the 2 km lattice.
    assert 64 <= len(grid) <= 81
    assert grid.crs.to_epsg() == 32630


def test_grid_geographic_crs_is_an_error(aoi_utm):
    with pytest.raises(CRSMismatchError, match="geographic"):
        make_grid(aoi_utm, 1000, crs="EPSG:4326")


@pytest.mark.parametrize("crs", [None, "not-a-crs"])
def test_grid_missing_or_bad_crs(aoi_utm, crs):
    with pytest.raises(MissingCRSError, match="crs"):
        make_grid(aoi_utm, 1000, crs=crs)


def test_grid_aoi_without_crs():
    aoi = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)])
    with pytest.raises(MissingCRSError, match="set_crs"):
        make_grid(aoi, 1000, crs="EPSG:32630")


@pytest.mark.parametrize("size", [0, -5, float("nan")])
def test_grid_bad_cell_size(aoi_utm, size):
    with pytest.raises(VectorError, match="cell_size_m"):
        make_grid(aoi_utm, size, crs="EPSG:32630")


def test_select_cells_area_hand_computed(aoi_utm):
    grid = make_grid(aoi_utm, 1000, crs="EPSG:32630")
    labels = gpd.GeoDataFrame(
        geometry=[
            box(600500, 700500, 601500, 700700),  # straddles c0/c1 of the southern row
            box(600600, 700500, 600800, 700600),  # overlaps the first: not counted twice
            box(604100, 702100, 604200, 702200),  # 1 ha in the north-east cell
        ],
        crs="EPSG:32630",
    )
    sel = select_cells(grid, labels)
    got = dict(zip(sel["cell_id"], sel["label_area_m2"], strict=True))
    assert got == pytest.approx({"r2_c0": 1e5, "r2_c1": 1e5, "r0_c4": 1e4})
    assert dict(zip(sel["cell_id"], sel["n_polygons"], strict=True)) == {
        "r2_c0": 2,
        "r2_c1": 1,
        "r0_c4": 1,
    }
    assert sel["label_frac"].max() == pytest.approx(0.1)
    assert len(select_cells(grid, labels, min_area_m2=5e4)) == 2


def test_select_cells_reprojects_labels(aoi_utm):
    grid = make_grid(aoi_utm, 1000, crs="EPSG:32630")
    labels = gpd.GeoDataFrame(
        geometry=[box(601200, 701200, 601400, 701400)], crs="EPSG:32630"
    ).to_crs("EPSG:4326")
    sel = select_cells(grid, labels)
    assert sel["cell_id"].tolist() == ["r1_c1"]
    assert sel["label_area_m2"].iloc[0] == pytest.approx(4e4, rel=1e-3)


def test_select_cells_no_overlap_is_empty(aoi_utm):
    grid = make_grid(aoi_utm, 1000, crs="EPSG:32630")
    far = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs="EPSG:32630")
    sel = select_cells(grid, far)
    assert len(sel) == 0 and "label_area_m2" in sel.columns


def test_select_cells_errors(aoi_utm):
    grid = make_grid(aoi_utm, 1000, crs="EPSG:32630")
    with pytest.raises(MissingCRSError, match="no CRS"):
        select_cells(grid, gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(VectorError, match="no label polygons"):
        select_cells(grid, gpd.GeoDataFrame(geometry=[], crs="EPSG:32630"))


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ((-1.82, 6.14, -1.69, 6.27), "EPSG:32630"),
        ((0.1, 9.0, 0.5, 9.5), "EPSG:32631"),
        ((-40.0, -5.0, -39.0, -4.0), "EPSG:32724"),
    ],
)
def test_utm_crs_for(bounds, expected):
    assert utm_crs_for(bounds) == expected


def test_utm_crs_for_geodataframe_and_errors():
    gdf = gpd.GeoDataFrame(geometry=[box(-0.63, 6.14, -0.5, 6.27)], crs="EPSG:4326")
    assert utm_crs_for(gdf) == "EPSG:32630"
    with pytest.raises(MissingCRSError):
        utm_crs_for(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(VitsegError, match="degrees"):
        utm_crs_for((500000, 0, 600000, 10))


def test_real_asm_polygons_select_cells():
    """Real data: the 135 asm-map polygons fall in the two ~15 km boxes."""
    polys = gpd.read_file(data_path("asm_ground_truth_ghana.geojson"))
    assert len(polys) == 135
    grid = make_grid(polys, 5000, crs=utm_crs_for(polys))
    sel = select_cells(grid, polys)
    # Total labelled area is 22.0 km² (PROVENANCE); cells partition it exactly.
    assert sel["label_area_m2"].sum() / 1e6 == pytest.approx(22.0, abs=0.2)
    assert 8 <= len(sel) <= 32  # two boxes of ~15 km: at most 4 x 4 cells each


@pytest.mark.parametrize("lat", [-45.0, 45.0])
def test_utm_crs_for_zone_centres(lat):
    # the centre of zone z lies at longitude -183 + 6 z; north 326zz, south 327zz
    for zone in (1, 30, 31, 60):  # PROJ's database answers in ~0.1 s a call: a few zones
        lon = -183.0 + 6 * zone
        expected = f"EPSG:{(32600 if lat > 0 else 32700) + zone}"
        assert utm_crs_for((lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1)) == expected


def test_utm_crs_for_polar_aoi_is_an_error():
    with pytest.raises(VitsegError, match="UTM covers latitudes 80S-84N"):
        utm_crs_for((10.0, 85.0, 11.0, 86.0))
