import warnings

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import shapely
import xarray as xr
import yaml

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import (
    DimensionError,
    LabelError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VectorError,
)
from vitseg.labels import (
    class_distribution,
    cooccurrence,
    extent_mask,
    rasterize_labels,
    read_extent,
    read_labels,
    read_reference_tiles,
)

# Template grids: 32 x 32 pixels. UTM: 10 m pixels from (600000, 700320) at the top left.
# Geographic: 0.001 degree pixels from (-1.8, 6.232).
GRIDS = {
    "EPSG:32630": (600000.0, 700320.0, 10.0),
    "EPSG:4326": (-1.8, 6.232, 0.001),
}


def make_like(crs, *, dask=False, n=32):
    x0, y0, res = GRIDS[crs]
    data = np.zeros((2, n, n), "float32")
    if dask:
        data = dsa.from_array(data, chunks=(1, 16, 16))
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": ["B04", "B08"],
            "y": y0 - res * (np.arange(n) + 0.5),
            "x": x0 + res * (np.arange(n) + 0.5),
        },
    ).rio.write_crs(crs)


def pixel_box(crs, col0, row0, col1, row1):
    """Polygon covering pixel columns col0..col1-1 and rows row0..row1-1 exactly."""
    x0, y0, res = GRIDS[crs]
    return shapely.box(x0 + col0 * res, y0 - row1 * res, x0 + col1 * res, y0 - row0 * res)


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
@pytest.mark.parametrize("dask", [False, True])
def test_box_rasterises_to_known_pixel_count(crs, dask):
    like = make_like(crs, dask=dask)
    gdf = gpd.GeoDataFrame(
        {"class": ["mines", "built"]},
        geometry=[pixel_box(crs, 2, 3, 12, 13), pixel_box(crs, 20, 20, 24, 25)],
        crs=crs,
    )
    lab = rasterize_labels(gdf, like=like)
    assert lab.dtype == np.uint8 and lab.dims == ("y", "x")
    assert lab.rio.crs == like.rio.crs
    assert int((lab == 0).sum()) == 100  # 10 x 10 mines
    assert int((lab == 1).sum()) == 20  # 4 x 5 built
    assert int((lab == 2).sum()) == 32 * 32 - 120  # vegetation background
    assert bool((lab.isel(y=slice(3, 13), x=slice(2, 12)) == 0).all())
    assert lab.attrs["classes"] == ["mines", "built", "vegetation"]
    assert lab.rio.nodata == IGNORE_INDEX


def test_geographic_gdf_reprojected_onto_utm_grid():
    like = make_like("EPSG:32630")
    box = gpd.GeoSeries([pixel_box("EPSG:32630", 2, 3, 12, 13)], crs="EPSG:32630")
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=box.to_crs("EPSG:4326"))
    assert gdf.crs.is_geographic
    lab = rasterize_labels(gdf, like=like)
    assert int((lab == 0).sum()) == 100


def test_binary_mode_and_no_background():
    crs = "EPSG:32630"
    like = make_like(crs)
    gdf = gpd.GeoDataFrame(
        {"class": ["mines", "built"]},
        geometry=[pixel_box(crs, 0, 0, 4, 4), pixel_box(crs, 10, 10, 12, 12)],
        crs=crs,
    )
    binary = rasterize_labels(gdf, like=like, mode="binary")
    assert binary.attrs["classes"] == ["background", "mines"]
    assert int((binary == 1).sum()) == 16
    assert int((binary == 0).sum()) == 32 * 32 - 16
    unlabelled = rasterize_labels(gdf, like=like, background=None)
    assert int((unlabelled == IGNORE_INDEX).sum()) == 32 * 32 - 16 - 4


def test_integer_codes_overlap_priority_and_all_touched():
    crs = "EPSG:32630"
    like = make_like(crs)
    # built box 0..8 overlapped by a mines box 4..8: mines win in the overlap.
    gdf = gpd.GeoDataFrame(
        {"code": [1, 0]},
        geometry=[pixel_box(crs, 0, 0, 8, 8), pixel_box(crs, 4, 4, 8, 8)],
        crs=crs,
    )
    lab = rasterize_labels(gdf, like=like, attribute="code")
    assert int((lab == 0).sum()) == 16 and int((lab == 1).sum()) == 48
    # A small box inside one pixel: centre rule burns nothing, all_touched burns 1 pixel.
    x0, y0, _ = GRIDS[crs]
    tiny = gpd.GeoDataFrame(
        {"class": ["mines"]}, geometry=[shapely.box(x0 + 1, y0 - 9, x0 + 3, y0 - 7)], crs=crs
    )
    assert int((rasterize_labels(tiny, like=like) == 0).sum()) == 0
    assert int((rasterize_labels(tiny, like=like, all_touched=True) == 0).sum()) == 1


@pytest.mark.parametrize("dask", [False, True])
def test_nodata_mask_becomes_ignore(dask):
    crs = "EPSG:32630"
    like = make_like(crs)
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[pixel_box(crs, 0, 0, 4, 4)], crs=crs)
    mask = np.zeros((32, 32), bool)
    mask[:2, :] = True  # 2 rows of clouds: 64 pixels, 8 of them mines
    if dask:
        mask = dsa.from_array(mask, chunks=16)
    lab = rasterize_labels(gdf, like=like, nodata_mask=mask)
    assert int((lab == IGNORE_INDEX).sum()) == 64
    assert int((lab == 0).sum()) == 8
    assert lab.dtype == np.uint8


def test_invalid_geometry_repaired_with_warning():
    crs = "EPSG:32630"
    x0, y0, _ = GRIDS[crs]
    bowtie = shapely.Polygon(
        [(x0, y0), (x0 + 100, y0 - 100), (x0 + 100, y0), (x0, y0 - 100), (x0, y0)]
    )
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[bowtie], crs=crs)
    with pytest.warns(UserWarning, match="invalid"):
        lab = rasterize_labels(gdf, like=make_like(crs))
    assert int((lab == 0).sum()) > 0


@pytest.mark.parametrize(
    ("gdf_kwargs", "like_crs", "kw", "error", "match"),
    [
        ({"crs": None}, "EPSG:32630", {}, MissingCRSError, "no CRS"),
        ({}, None, {}, MissingCRSError, "no CRS"),
        ({"classes": ["mines", "gold pit"]}, "EPSG:32630", {}, LabelError, "gold pit"),
        ({"classes": [0, 7]}, "EPSG:32630", {}, LabelError, r"\[7\]"),
        ({"empty": True}, "EPSG:32630", {}, VectorError, "empty"),
        ({}, "EPSG:32630", {"attribute": "landuse"}, VectorError, "landuse"),
        ({}, "EPSG:32630", {"mode": "ternary"}, LabelError, "mode"),
        ({}, "EPSG:32630", {"background": "water"}, LabelError, "background"),
    ],
)
def test_rasterize_errors(gdf_kwargs, like_crs, kw, error, match):
    crs = "EPSG:32630"
    classes = gdf_kwargs.get("classes", ["mines"])
    geoms = [pixel_box(crs, i, i, i + 2, i + 2) for i in range(len(classes))]
    gdf = gpd.GeoDataFrame({"class": classes}, geometry=geoms, crs=gdf_kwargs.get("crs", crs))
    if gdf_kwargs.get("empty"):
        gdf = gdf.iloc[:0]
    like = make_like(crs)
    if like_crs is None:
        like = like.drop_vars("spatial_ref")
    with pytest.raises(error, match=match):
        rasterize_labels(gdf, like=like, **kw)


def test_like_without_xy_dims():
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(DimensionError, match="'y' and 'x'"):
        rasterize_labels(gdf, like=xr.DataArray(np.zeros((2, 2)), dims=("lat", "lon")))


HAND = np.array(
    [
        [0, 0, 1, 2],
        [0, 255, 1, 2],
        [2, 2, 2, 2],
    ],
    dtype="uint8",
)


@pytest.mark.parametrize("dask", [False, True])
def test_class_distribution_hand_made(dask):
    arr = dsa.from_array(HAND, chunks=2) if dask else HAND
    df = class_distribution(xr.DataArray(arr, dims=("y", "x")))
    assert df["class"].tolist() == ["mines", "built", "vegetation"]
    assert df["pixels"].tolist() == [3, 2, 6]
    np.testing.assert_allclose(df["fraction"], [3 / 11, 2 / 11, 6 / 11])
    assert df.attrs["ignored_pixels"] == 1


def test_class_distribution_rejects_unknown_codes():
    with pytest.raises(LabelError, match=r"\[7\]"):
        class_distribution(np.array([[0, 7]], dtype="uint8"))


@pytest.mark.parametrize("dask", [False, True])
def test_cooccurrence_hand_made(dask):
    arr = dsa.from_array(HAND, chunks=2) if dask else HAND
    # Right-hand neighbours, by hand (pairs with 255 skipped):
    # row 0: (0,0) (0,1) (1,2); row 1: (1,2) [0-255 and 255-1 skipped]; row 2: (2,2) x3
    right = cooccurrence(arr, offset=(0, 1))
    expected = np.array([[1, 1, 0], [0, 0, 2], [0, 0, 3]])
    np.testing.assert_array_equal(right.to_numpy(), expected)
    assert right.index.tolist() == ["mines", "built", "vegetation"]
    # Neighbours below: col0 (0,0) (0,2); col1 skipped x2; col2 (1,1) (1,2); col3 (2,2) x2
    below = cooccurrence(arr, offset=(1, 0))
    np.testing.assert_array_equal(below.to_numpy(), [[1, 0, 1], [0, 1, 1], [0, 0, 2]])
    # A negative offset gives the transpose of the positive one.
    left = cooccurrence(arr, offset=(0, -1))
    np.testing.assert_array_equal(left.to_numpy(), expected.T)
    norm = cooccurrence(arr, offset=(0, 1), normalize=True)
    assert np.isclose(norm.to_numpy().sum(), 1.0)


def test_cooccurrence_stacked_tiles_and_errors():
    stack = np.stack([HAND, HAND])
    np.testing.assert_array_equal(cooccurrence(stack).to_numpy(), 2 * cooccurrence(HAND).to_numpy())
    with pytest.raises(DimensionError, match="smaller than the image"):
        cooccurrence(HAND, offset=(0, 4))
    with pytest.raises(LabelError, match="outside"):
        cooccurrence(np.array([[0, 5]]))


def test_cooccurrence_and_distribution_figures(tmp_path):
    from vitseg.plotting import plot_class_distribution, plot_cooccurrence, savefig

    ax = plot_cooccurrence(cooccurrence(HAND))
    assert ax.get_xlabel() == "class of the offset neighbour"
    assert savefig(ax.figure, tmp_path / "cooc.png", simulated=True).stat().st_size > 0
    ax = plot_class_distribution(
        {"train": class_distribution(HAND), "test": class_distribution(HAND)}
    )
    assert len(ax.patches) == 6
    savefig(ax.figure, tmp_path / "dist.png", simulated=False)


# ------------------------------------------------------------------ label files
UTM = "EPSG:32630"


def _polys(n):
    return [pixel_box(UTM, 2 * i, 0, 2 * i + 2, 2) for i in range(n)]


def _write(tmp_path, columns, *, name="labels.gpkg", crs=UTM, layer=None, geoms=None):
    n = len(next(iter(columns.values())))
    gdf = gpd.GeoDataFrame(columns, geometry=geoms or _polys(n), crs=crs)
    path = tmp_path / name
    gdf.to_file(path, layer=layer) if layer else gdf.to_file(path)
    return path


def test_read_labels_custom_vocabulary(tmp_path):
    landuse = ["galamsey", "Town", "farm", "galamsey", "water"]
    path = _write(tmp_path, {"landuse": landuse, "area_ha": [1.0, 2, 3, 4, 5]})
    class_map = {"galamsey": "mines", "Town": "Built", "farm": "vegetation", "water": None}
    gdf = read_labels(path, class_column="landuse", class_map=class_map)
    assert gdf["class"].tolist() == ["mines", "built", "vegetation", "mines"]  # water dropped
    assert gdf["landuse"].tolist() == landuse[:4] and gdf["area_ha"].tolist() == [1, 2, 3, 4]
    assert gdf.crs.to_epsg() == 32630 and gdf.geom_type.eq("Polygon").all()
    assert gdf.index.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["codes.gpkg", "codes.geojson", "codes.shp"])
def test_read_labels_integer_codes_with_yaml_keys(tmp_path, name):
    path = _write(tmp_path, {"code": [1, 2, 3, 1, 9]}, name=name)
    class_map = yaml.safe_load("{1: mines, 2: built, 3: vegetation, 9: null}")
    assert list(class_map) == [1, 2, 3, 9]  # int keys, as YAML gives them
    gdf = read_labels(path, class_column="code", class_map=class_map)
    assert gdf["class"].tolist() == ["mines", "built", "vegetation", "mines"]
    # string keys work on the same integer column
    str_map = {"1": "mines", "2": "mines", "3": "mines", "9": ""}
    assert (
        read_labels(path, class_column="code", class_map=str_map)["class"].tolist() == ["mines"] * 4
    )


def test_read_labels_vitseg_names_need_no_map_and_layer_choice(tmp_path):
    path = _write(tmp_path, {"class": ["Mines", "vegetation"]}, name="m.gpkg", layer="other")
    _write(tmp_path, {"class": ["built"]}, name="m.gpkg", layer="labels")
    gdf = read_labels(path)  # the layer named 'labels' wins over the first layer
    assert gdf["class"].tolist() == ["built"] and gdf["class_source"].tolist() == ["built"]
    assert read_labels(path, layer="other")["class"].tolist() == ["mines", "vegetation"]
    with pytest.raises(LabelError, match=r"no layer 'tiles'; its layers are \['other', 'labels'\]"):
        read_labels(path, layer="tiles")


def test_read_labels_repairs_invalid_geometries(tmp_path):
    x0, y0, _ = GRIDS[UTM]
    bowtie = shapely.Polygon(
        [(x0, y0), (x0 + 100, y0 - 100), (x0 + 100, y0), (x0, y0 - 100), (x0, y0)]
    )
    path = _write(tmp_path, {"class": ["mines", "built"]}, geoms=[bowtie, _polys(1)[0]])
    with pytest.warns(UserWarning, match="1 of 2 geometries .* invalid"):
        gdf = read_labels(path)
    assert gdf.is_valid.all() and gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert gdf.geometry.iloc[0].area == pytest.approx(5000)  # two triangles of 50 x 100 / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        rasterize_labels(gdf, like=make_like(UTM))  # nothing left to repair


@pytest.mark.parametrize(
    ("columns", "kw", "error", "match"),
    [
        (
            {"landuse": ["galamsey", "farm", "farm", "mines"]},
            {"class_column": "landuse"},
            LabelError,
            r"'farm' \(2\), 'galamsey' \(1\).*class_map=\{'farm': 'mines', 'galamsey': None\}",
        ),
        (
            {"code": [1, 2, 2]},
            {"class_column": "code", "class_map": {1: "mines"}},
            LabelError,
            r"'2' \(2\)",
        ),
        (
            {"landuse": ["a", "b"]},
            {},
            LabelError,
            r"no class column 'class'; its columns are \['landuse'\]",
        ),
        (
            {"class": ["a", "b"]},
            {"class_map": {"a": None, "b": ""}},
            LabelError,
            "no labelled polygon left",
        ),
        ({"class": ["a"]}, {"class_map": {"a": "water"}}, ParamsError, r"'a': 'water'"),
    ],
)
def test_read_labels_errors(tmp_path, columns, kw, error, match):
    path = _write(tmp_path, columns)
    with pytest.raises(error, match=match):
        read_labels(path, **kw)


def test_read_labels_path_and_crs_errors(tmp_path):
    (tmp_path / "labels_dir").mkdir()
    with pytest.raises(MissingFileError, match=r"'.*labels_dir' is a folder"):
        read_labels(tmp_path / "labels_dir")
    with pytest.raises(MissingFileError, match=r"nope\.gpkg' does not exist"):
        read_labels(tmp_path / "nope.gpkg")
    with warnings.catch_warnings():  # pyogrio warns that the file gets no CRS
        warnings.simplefilter("ignore", UserWarning)
        path = _write(tmp_path, {"class": ["mines"]}, crs=None, name="nocrs.gpkg")
    with pytest.raises(MissingCRSError, match=r"no CRS; .*set_crs\('EPSG:4326'\)"):
        read_labels(path)
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    with pytest.raises(VectorError, match="cannot read"):
        read_labels(tmp_path / "junk.gpkg")


def _grid10(crs=UTM, *, dask=False):
    # 10 x 10 pixels of 10 m; top-left corner (600000, 700100)
    data = np.zeros((10, 10), "float32")
    like = xr.DataArray(
        dsa.from_array(data, chunks=5) if dask else data,
        dims=("y", "x"),
        coords={
            "y": 700_100 - 10 * (np.arange(10) + 0.5),
            "x": 600_000 + 10 * (np.arange(10) + 0.5),
        },
    )
    return like.rio.write_crs(crs)


@pytest.mark.parametrize("extent_crs", ["EPSG:32630", "EPSG:4326"])
@pytest.mark.parametrize("dask", [False, True])
def test_extent_mask_box_pixel_count(extent_crs, dask):
    # box x 600023..600071, y 700034..700078: pixel centres x 25..65 (5 columns),
    # y 35..75 (5 rows: 700035, 45, 55, 65, 75) -> 25 pixels
    box = shapely.box(600_023, 700_034, 600_071, 700_078)
    extent = gpd.GeoDataFrame(geometry=[box], crs=UTM).to_crs(extent_crs)
    like = _grid10(dask=dask)
    mask = extent_mask(extent, like=like)
    assert mask.dtype == bool and mask.dims == ("y", "x") and mask.rio.crs == like.rio.crs
    assert (mask.chunks is not None) == dask
    assert int(mask.sum()) == 25
    assert bool(mask.isel(y=slice(2, 7), x=slice(2, 7)).all())
    # a layer where inside-extent unlabelled = background, outside = IGNORE_INDEX
    labels = rasterize_labels(
        gpd.GeoDataFrame({"class": ["mines"]}, geometry=[box], crs=UTM), like=like
    ).where(mask, IGNORE_INDEX)
    assert int((labels == IGNORE_INDEX).sum()) == 75


def test_extent_mask_outside_warns_and_bad_input():
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=UTM)
    with pytest.warns(UserWarning, match="covers no pixel centre"):
        assert int(extent_mask(far, like=_grid10()).sum()) == 0
    with pytest.raises(MissingCRSError, match="no CRS"):
        extent_mask(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]), like=_grid10())
    with pytest.raises(VectorError, match="no polygon"):
        extent_mask(far.iloc[:0], like=_grid10())


def test_read_extent_union_and_layer(tmp_path):
    a = shapely.box(600_000, 700_000, 600_050, 700_100)
    b = shapely.box(600_040, 700_000, 600_100, 700_050)  # overlaps a by 10 x 50
    path = _write(tmp_path, {"name": ["a", "b"]}, name="aoi.gpkg", layer="first", geoms=[a, b])
    _write(tmp_path, {"name": ["c"]}, name="aoi.gpkg", layer="extent", geoms=[a])
    ext = read_extent(path)  # the 'extent' layer
    assert len(ext) == 1 and ext.crs.to_epsg() == 32630 and ext.area.iloc[0] == 5000
    ext = read_extent(path, layer="first")
    assert len(ext) == 1 and ext.area.iloc[0] == pytest.approx(5000 + 3000 - 500)
    assert int(extent_mask(ext, like=_grid10()).sum()) == 50 + 30 - 5


def _tiles_file(tmp_path, *, tiles=("t1", "t2"), layers=("tiles", "polygons")):
    path = tmp_path / "reference.gpkg"
    t = gpd.GeoDataFrame(
        {"tile": list(tiles)},
        geometry=[shapely.box(600_000 + 640 * i, 700_000, 600_640 + 640 * i, 700_640)
                  for i in range(len(tiles))],
        crs=UTM,
    )  # fmt: skip
    t.to_file(path, layer=layers[0])
    polys = gpd.GeoDataFrame(
        {"kind": ["pit", "road", "pit"]},
        geometry=[shapely.box(600_010, 700_010, 600_100, 700_100),
                  shapely.box(600_700, 700_010, 600_800, 700_100),
                  shapely.box(600_200, 700_200, 600_300, 700_300)],
        crs=UTM,
    ).to_crs("EPSG:4326")  # fmt: skip
    polys.to_file(path, layer=layers[1])
    return path


def test_read_reference_tiles(tmp_path):
    path = _tiles_file(tmp_path)
    tiles, polys = read_reference_tiles(
        path, class_column="kind", class_map={"pit": "mines", "road": "built"}
    )
    assert tiles["tile"].tolist() == ["t1", "t2"] and tiles.crs.to_epsg() == 32630
    assert polys.crs == tiles.crs  # reprojected from EPSG:4326
    assert polys["class"].tolist() == ["mines", "built", "mines"]
    assert polys.area.round().tolist() == [8100, 9000, 10000]
    assert polys.within(tiles.union_all()).all()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"layers": ("tiles", "labels")},
            r"lacks layers \['polygons'\]; its layers are "
            r"\['tiles', 'labels'\]",
        ),
        ({"tiles": ("t1", "t1")}, r"duplicates \['t1'\]"),
    ],
)
def test_read_reference_tiles_errors(tmp_path, kw, match):
    path = _tiles_file(tmp_path, **kw)
    with pytest.raises(LabelError, match=match):
        read_reference_tiles(path, class_column="kind", class_map={"pit": "mines", "road": "built"})


# ----------------------------------------------------------- re-exports (issue 21)
def test_label_file_readers_stay_importable_from_labels():
    from vitseg import labelfiles, labels

    assert set(labelfiles.__all__) <= set(labels.__all__)
    for name in labelfiles.__all__:
        assert getattr(labels, name) is getattr(labelfiles, name), name


def test_labelled_extent_never_falls_back_to_the_labels_themselves(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    from vitseg.errors import LabelError
    from vitseg.labels import labelled_extent

    polys = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    plain = tmp_path / "plain.gpkg"
    polys.to_file(plain, layer="labels")
    with_extent = tmp_path / "with_extent.gpkg"
    polys.to_file(with_extent, layer="labels")
    gpd.GeoDataFrame(geometry=[box(0, 0, 5, 5)], crs=4326).to_file(with_extent, layer="extent")
    other = tmp_path / "other.geojson"
    gpd.GeoDataFrame(geometry=[box(0, 0, 9, 9)], crs=4326).to_file(other)
    area = box(-1, -1, 3, 3)
    assert labelled_extent(with_extent, area=area).total_bounds.tolist() == [0, 0, 5, 5]
    assert labelled_extent(plain, area=area).total_bounds.tolist() == [-1, -1, 3, 3]
    assert labelled_extent(plain, extent_file=other, area=area).total_bounds.tolist() == [
        0,
        0,
        9,
        9,
    ]
    with pytest.raises(LabelError, match="no 'extent' layer"):
        labelled_extent(plain)
