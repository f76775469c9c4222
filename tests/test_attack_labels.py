"""Issue 22, round 2: attacker's inputs to tiles, labels, chips, exclusions, baselines, metrics, losses.

Each case names what came in; the fixed ones were silent wrong results or raw tracebacks.
"""

from __future__ import annotations

import math
import warnings

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import torch
import xarray as xr
from rasterio.transform import from_origin

from vitseg import baselines, chips, exclusions, labelfiles, labels, losses, metrics, tiles
from vitseg.errors import (
    BandError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    ParamsError,
    SampleError,
    VectorError,
)

NAN, INF = float("nan"), float("inf")


def _nan_polygon():
    with warnings.catch_warnings():  # shapely warns about the NaN it is asked to build
        warnings.simplefilter("ignore", RuntimeWarning)
        return shapely.Polygon([(0, 0), (NAN, 0), (10, 10)])


def _grid(ny=4, nx=4, nb=1, dtype="float32"):
    return xr.DataArray(
        np.ones((nb, ny, nx), dtype),
        dims=("band", "y", "x"),
        coords={"band": [f"B0{i + 2}" for i in range(nb)], "y": 35.0 - 10 * np.arange(ny),
                "x": 5.0 + 10 * np.arange(nx)},
    ).rio.write_crs("EPSG:32630")  # fmt: skip


def _like():
    return _grid().isel(band=0, drop=True)


def _labels(value=0, dtype="uint8"):
    return xr.full_like(_like(), value, dtype=dtype)


def _gdf(geom=None, cls="mines"):
    geom = shapely.box(0, 0, 20, 20) if geom is None else geom
    return gpd.GeoDataFrame({"class": [cls]}, geometry=[geom], crs="EPSG:32630")


# ------------------------------------------------------------------------------- tiles


@pytest.mark.parametrize(
    "kw",
    [{"tile_px": NAN}, {"tile_px": 2.5}, {"tile_px": "2"}, {"tile_px": True},
     {"tile_px": 2, "stride_px": 1.7}, {"tile_px": 2, "max_nodata_frac": "0.5"},
     {"tile_px": 2, "min_labelled_frac": NAN}],
    ids=["nan", "fraction", "str", "bool", "stride-fraction", "frac-str", "frac-nan"],
)  # fmt: skip
def test_make_tiles_sizes_are_never_truncated(kw):
    with pytest.raises(ParamsError, match=r"must be an integer >= 1|must be in \[0, 1\]"):
        tiles.make_tiles(_grid(), _labels(), **kw)


@pytest.mark.parametrize(
    ("scene", "lab", "match"),
    [(_grid(dtype="complex64"), _labels(), "real numbers"),
     (_grid().astype(str), _labels(), "real numbers"),
     (_grid(nb=1).isel(band=slice(0, 0)), _labels(), "0 bands"),
     (_grid(), np.zeros((4, 4), "uint8"), "must be an xarray.DataArray")],
    ids=["complex", "str", "no-band", "numpy-labels"],
)  # fmt: skip
def test_make_tiles_wrong_types(scene, lab, match):
    with pytest.raises(DimensionError, match=match):
        tiles.make_tiles(scene, lab, tile_px=2)


IDX = pd.DataFrame({"minx": [0.0, 10, 20, 30, 40], "maxx": [10.0, 20, 30, 40, 50],
                    "miny": 0.0, "maxy": 10.0, "crs": "EPSG:32630", "width": 1})  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "index", "match"),
    [({"block_m": NAN}, IDX, "finite number > 0"),
     ({"block_m": INF}, IDX, "finite number > 0"),
     ({"block_px": 2}, IDX.assign(width=0), "finite number > 0"),
     ({"block_m": 10, "seed": -1}, IDX, "seed must be an integer >= 0"),
     ({"block_m": 10, "seed": 1.5}, IDX, "seed must be an integer >= 0"),
     ({"block_m": 10}, IDX.drop(columns="minx"), r"lacks columns \['minx'\]"),
     ({"block_m": 10}, IDX.assign(minx=[NAN, 10, 20, 30, 40]), "NaN or inf"),
     ({"blocks": [1, 2]}, IDX, "blocks must be a GeoDataFrame")],
    ids=["nan", "inf", "zero-width", "seed-neg", "seed-frac", "no-minx", "nan-bounds", "blocks"],
)  # fmt: skip
def test_split_tiles_bad_inputs(kw, index, match):
    with pytest.raises(ParamsError, match=match):
        tiles.split_tiles(index, **kw)


def test_split_tiles_blocks_with_a_plain_dataframe_index():
    # its .crs is the 'crs' column: this crashed with "truth value of a Series is ambiguous"
    cells = gpd.GeoDataFrame(
        geometry=[
            shapely.box(0, 0, 20, 10),
            shapely.box(20, 0, 40, 10),
            shapely.box(40, 0, 50, 10),
        ],
        crs="EPSG:32630",
    )
    out = tiles.split_tiles(IDX, blocks=cells, seed=0)
    assert len(out) == 5 and out["split"].nunique() == 3
    assert out.groupby("block")["split"].nunique().max() == 1


@pytest.fixture
def chip_index():
    return tiles.make_tiles(_grid(), _labels(), tile_px=2)


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [("escape", ParamsError, "path separator"),
     ("outside", DimensionError, "outside the 4 x 4-px scene"),
     ("no-row_off", ParamsError, r"lacks columns \['row_off'\]"),
     ("file", ParamsError, "is a file"),
     ("wrap256", LabelError, "outside 0..255"),
     ("wrap-1", LabelError, "outside 0..255"),
     ("fraction", LabelError, "not whole class codes")],
    ids=["escape", "outside", "no-row_off", "file", "wrap256", "wrap-1", "fraction"],
)  # fmt: skip
def test_write_tiles_refuses_escaping_ids_and_wrapping_labels(
    tmp_path, chip_index, case, error, match
):
    lab, index, dest = _labels(), chip_index, tmp_path / "tiles"
    if case == "escape":
        index = index.assign(tile_id="../../evil")
    elif case == "outside":
        index = index.assign(row_off=10)
    elif case == "no-row_off":
        index = index.drop(columns="row_off")
    elif case == "file":
        dest.write_text("x")
    elif case == "wrap256":
        lab = _labels(256, "int64")
    elif case == "wrap-1":
        lab = _labels(-1, "int64")
    else:
        lab = _labels(0.6, "float32")
    with pytest.raises(error, match=match):
        tiles.write_tiles(_grid(), lab, index, dest)
    assert not (tmp_path / "evil.tif").exists()


def test_write_tiles_nan_labels_are_nodata(tmp_path, chip_index):
    lab = _labels(1, "float32").where(lambda a: a.x > 10)  # x = 5 is NaN
    tiles.write_tiles(_grid(), lab, chip_index.iloc[:1], tmp_path)
    with rasterio.open(tmp_path / "masks" / "r00000_c00000.tif") as src:
        assert src.read(1).tolist() == [[255, 1], [255, 1]]


# ------------------------------------------------------------------------------ labels


def test_rasterize_labels_bool_and_complex_class_columns():
    for value in (True, 1 + 0j):
        with pytest.raises(LabelError, match=r"holds (bool|complex128) values"):
            labels.rasterize_labels(_gdf(cls=value), like=_like())


@pytest.mark.parametrize(
    "classes", [("mines", "mines", "vegetation"), (), "mines"], ids=["duplicate", "empty", "str"]
)
def test_rasterize_labels_class_list_must_be_distinct_names(classes):
    with pytest.raises(ParamsError, match="distinct class names"):
        labels.rasterize_labels(_gdf(), like=_like(), classes=classes, background=None)


@pytest.mark.parametrize(
    ("geom", "match"),
    [(shapely.box(0, 0, INF, 20), "NaN or infinite coordinates"),
     (_nan_polygon(), "NaN or infinite coordinates"),
     (shapely.GeometryCollection([shapely.Point(5, 5)]), "only empty geometries")],
    ids=["inf", "nan", "collection-of-a-point"],
)  # fmt: skip
def test_rasterize_labels_bad_geometries(geom, match):
    with pytest.raises(VectorError, match=match):
        labels.rasterize_labels(_gdf(geom), like=_like())


def test_rasterize_labels_collection_burns_only_its_polygon():
    gc = shapely.GeometryCollection([shapely.box(0, 0, 20, 20), shapely.Point(35, 35)])
    out = labels.rasterize_labels(_gdf(gc), like=_like())
    assert int((out == 0).sum()) == 4  # the point at pixel (0, 3) is not a mine


def test_rasterize_labels_plain_dataframe_is_a_vector_error():
    with pytest.raises(VectorError, match="must be a GeoDataFrame"):
        labels.rasterize_labels(pd.DataFrame({"class": ["mines"]}), like=_like())


@pytest.mark.parametrize(
    ("like", "match"),
    [(_like().isel(y=slice(0, 0)), "0 pixel"), (_like().isel(x=[0]), "1 pixel"),
     (_like().assign_coords(x=[5.0, 15.0, 40.0, 45.0]), "unevenly spaced")],
    ids=["zero-size", "one-pixel", "irregular"],
)  # fmt: skip
@pytest.mark.parametrize("func", ["rasterize_labels", "extent_mask"])
def test_templates_without_a_regular_grid(like, match, func):
    with pytest.raises(DimensionError, match=match):
        getattr(labels, func)(_gdf(), like=like)


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [(np.full((4, 4), 0.5), DimensionError, "must be boolean"),
     (np.full((4, 4), "a"), DimensionError, "must be boolean"),
     (np.zeros((1, 4, 4), bool), DimensionError, "must have shape"),
     (xr.DataArray(np.zeros((4, 4), bool), dims=("a", "b")), DimensionError, "dims"),
     (_like().assign_coords(x=_like().x + 1000) > 0, GridMismatchError, "shifted grid")],
    ids=["float", "str", "3d", "dims", "shifted"],
)  # fmt: skip
def test_rasterize_labels_nodata_mask(mask, error, match):
    with pytest.raises(error, match=match):
        labels.rasterize_labels(_gdf(), like=_like(), nodata_mask=mask)


@pytest.mark.parametrize("dask", [False, True])
@pytest.mark.parametrize(
    ("arr", "error", "match"),
    [(np.array([[0, 0.6]]), LabelError, "not whole"),
     (np.array([[0, -1]]), LabelError, "negative"),
     (np.array([[0, 300]]), LabelError, "above 255"),
     (np.array([["a", "b"]]), DimensionError, "integer class codes")],
    ids=["fraction", "negative", "above-255", "str"],
)  # fmt: skip
def test_class_distribution_never_truncates(arr, error, match, dask):
    data = dsa.from_array(arr) if dask and arr.dtype.kind != "U" else arr
    with pytest.raises(error, match=match):
        labels.class_distribution(data)


def test_class_distribution_and_cooccurrence_nan_is_nodata():
    arr = np.array([[0.0, NAN, 1.0, 1.0]])
    df = labels.class_distribution(arr, classes=("a", "b"))
    assert df["pixels"].tolist() == [1, 2] and df.attrs["ignored_pixels"] == 1
    # pairs (0, nan) and (nan, 1) skipped, (1, 1) counted
    assert labels.cooccurrence(arr, classes=("a", "b")).to_numpy().tolist() == [[0, 0], [0, 1]]


@pytest.mark.parametrize(
    ("arr", "offset", "error", "match"),
    [(np.array([[0, 0.6, 1]]), (0, 1), LabelError, "not whole"),
     (np.array([[0, -1, 1]], "int8"), (0, 1), LabelError, "negative"),
     (np.array([[0, 0, 1]]), (NAN, 1), ParamsError, "two integers"),
     (np.array([[0, 0, 1]]), (0, 1.5), ParamsError, "two integers"),
     (np.array([[0, 0, 1]]), (0, 1, 2), ParamsError, "two integers")],
    ids=["fraction", "negative", "offset-nan", "offset-fraction", "offset-3"],
)  # fmt: skip
def test_cooccurrence_bad_codes_and_offsets(arr, offset, error, match):
    with pytest.raises(error, match=match):
        labels.cooccurrence(arr, offset=offset, classes=("a", "b"))


# -------------------------------------------------------------------------- labelfiles


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # shapely reading the NaN
def test_read_labels_and_extent_with_nan_coordinates(tmp_path):
    bad = _nan_polygon()
    gpd.GeoDataFrame({"class": ["mines", "mines"]}, geometry=[bad, shapely.box(0, 0, 1, 1)],
                     crs="EPSG:32630").to_file(tmp_path / "nan.gpkg")  # fmt: skip
    with pytest.raises(VectorError, match=r"NaN or infinite coordinates \(rows \[0\]\)"):
        labelfiles.read_labels(tmp_path / "nan.gpkg")
    with pytest.raises(VectorError, match="NaN or infinite coordinates"):
        labelfiles.read_extent(tmp_path / "nan.gpkg")


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "l.gpkg"
    _gdf(cls="galamsey").to_file(path, layer="labels")
    return path


@pytest.mark.parametrize(
    ("area", "error", "match"),
    [("Obuasi", ParamsError, "shapely polygon"),
     (shapely.Point(0, 0), VectorError, "got a Point"),
     (shapely.Polygon(), VectorError, "empty Polygon"),
     (shapely.box(600_000, 600_000, 610_000, 610_000), VectorError, "not lon/lat degrees")],
    ids=["str", "point", "empty", "utm-coordinates"],
)  # fmt: skip
def test_labelled_extent_area(labels_file, area, error, match):
    with pytest.raises(error, match=match):
        labelfiles.labelled_extent(labels_file, area=area)


def test_label_file_arguments_of_the_wrong_type(labels_file):
    with pytest.raises(ParamsError, match="class_map must be a mapping"):
        labelfiles.read_labels(labels_file, class_map=["mines"])
    with pytest.raises(ParamsError, match=r"must be a path .* got None"):
        labelfiles.read_labels(None)
    with pytest.raises(ParamsError, match="areas must be a mapping"):
        labelfiles.area_labels(labels_file, areas=[shapely.box(0, 0, 1, 1)])
    with pytest.raises(MissingFileError, match="is a folder"):  # already handled
        labelfiles.read_labels(labels_file.parent)


# ------------------------------------------------------------------------------- chips


def _tif(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = arr[None] if arr.ndim == 2 else arr
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2],
                       count=arr.shape[0], dtype=arr.dtype, crs="EPSG:32630",
                       transform=from_origin(0, 40, 10, 10)) as dst:  # fmt: skip
        dst.write(arr)


@pytest.fixture
def chip_root(tmp_path):
    for name, code in (("a", 0), ("b", 2)):
        _tif(tmp_path / "images" / f"{name}.tif", np.ones((2, 4, 4), "float32"))
        _tif(tmp_path / "masks" / f"{name}.tif", np.full((4, 4), code, "uint8"))
    return tmp_path


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [({"images": "masks"}, LabelError, "same folder"),
     ({"pattern": ""}, ParamsError, "relative file glob"),
     ({"pattern": "/etc/*"}, ParamsError, "relative file glob"),
     ({"mask_name": "x"}, ParamsError, "must be a function"),
     ({"mask_name": lambda s: 1}, ParamsError, r"returned 1"),
     ({"mask_values": [0, 1]}, ParamsError, "must be a mapping"),
     ({"band_names": ["B02", "B02"]}, BandError, r"repeats \['B02'\]"),
     ({"band_names": "ab"}, BandError, "list of band names"),
     ({"band_names": [1, 2]}, BandError, "list of band names")],
    ids=["images-is-masks", "pattern-empty", "pattern-absolute", "mask_name-str",
         "mask_name-int", "mask_values-list", "band-dup", "band-str", "band-int"],
)  # fmt: skip
def test_load_chip_folder_arguments(chip_root, kw, error, match):
    with pytest.raises(error, match=match):
        chips.load_chip_folder(chip_root, **kw)


def test_chip_index_and_split_of_the_wrong_kind(chip_root):
    folder = chips.load_chip_folder(chip_root)
    for i in (5, 1.0, "a"):
        with pytest.raises(ParamsError, match=r"integer in 0\.\.1"):
            folder.read(i)
    assert folder.read(-1)[1].max() == 2  # negative counts from the end, as in a list
    (chip_root / "index.csv").write_text("tile_id,split\na,train\nb,val\n")
    folder = chips.load_chip_folder(chip_root)
    for split in (None, 1):
        with pytest.raises(ParamsError, match="split name or a list"):
            folder.subset(split)
    with pytest.raises(ParamsError, match="must be a path"):
        chips.load_chip_folder(None)


# -------------------------------------------------------------------------- exclusions

LAKE = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 20, 20)], crs="EPSG:32630")


@pytest.mark.parametrize(
    ("layers", "buffer_m", "error", "match"),
    [({"lakes": LAKE}, NAN, ParamsError, "finite number of metres >= 0; got nan"),
     ({"lakes": LAKE}, INF, ParamsError, "finite number of metres"),
     ({"lakes": LAKE}, -5, ParamsError, "finite number of metres"),
     ({"lakes": LAKE}, {"lake": 10}, ParamsError, r"names layers \['lake'\]"),
     ("lakes.gpkg", 0.0, ParamsError, "must be a mapping"),
     ({"lakes": "/no/such.gpkg"}, 0.0, MissingFileError, "does not exist"),
     ({"lakes": "/tmp"}, 0.0, MissingFileError, "is a folder"),
     ({"lakes": gpd.GeoDataFrame(geometry=[_nan_polygon()], crs="EPSG:32630")},
      0.0, VectorError, "would exclude nothing")],
    ids=["buffer-nan", "buffer-inf", "buffer-negative", "buffer-unknown-layer", "str-layers",
         "missing-file", "folder", "nan-coordinates"],
)  # fmt: skip
def test_exclusion_layers_bad_inputs(layers, buffer_m, error, match):
    with pytest.raises(error, match=match):
        exclusions.exclusion_layers(_like(), layers, buffer_m=buffer_m)


@pytest.mark.parametrize(
    ("like", "match"),
    [(_like().isel(x=slice(0, 0)), "no pixels"),
     (_like().assign_coords(x=[5.0, 15.0, 100.0, 200.0]), "unevenly spaced"),
     (np.zeros((4, 4)), "must be an xarray.DataArray")],
    ids=["zero-size", "irregular", "numpy"],
)  # fmt: skip
def test_exclusion_templates(like, match):
    with pytest.raises(DimensionError, match=match):
        exclusions.exclusion_mask(like, {"lakes": LAKE})


U8 = xr.DataArray(np.array([[1, 2]], "uint8"), dims=("y", "x"), coords={"x": [0, 1]})
M = xr.DataArray(np.array([[True, False]]), dims=("y", "x"), coords={"x": [0, 1]})


@pytest.mark.parametrize(
    ("arr", "mask", "nodata", "error", "match"),
    [(U8, M, 256, ParamsError, "would wrap"), (U8, M, -1, ParamsError, "would wrap"),
     (U8, M, NAN, ParamsError, "would wrap"), (U8, M, 1.5, ParamsError, "would wrap"),
     (U8 > 1, M, None, DimensionError, "got dtype bool"),
     (U8, M.assign_coords(x=[5, 6]), None, GridMismatchError, "differ along 'x'"),
     (np.array([[1, 2]]), M, None, DimensionError, "must be an xarray.DataArray")],
    ids=["256", "-1", "nan", "fraction", "bool-map", "shifted-mask", "numpy"],
)  # fmt: skip
def test_apply_exclusions_nodata_never_wraps_onto_a_class(arr, mask, nodata, error, match):
    with pytest.raises(error, match=match):
        exclusions.apply_exclusions(arr, mask, nodata=nodata)


def test_apply_exclusions_valid_nodata_still_works():
    assert exclusions.apply_exclusions(U8, M, nodata=9).values.tolist() == [[9, 2]]


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"buffer_m": "5000"}, "number > 0"), ({"buffer_m": 5000, "crs": "EPSG:4326"}, "metres"),
     ({"buffer_m": 5000, "crs": "junk"}, "not a CRS")],
    ids=["str", "geographic", "junk-crs"],
)  # fmt: skip
def test_coastal_strip_needs_a_metric_crs(kw, match):
    with pytest.raises(ParamsError, match=match):
        exclusions.coastal_strip(**kw)


def test_exclusion_report_counts_only_boolean_layers():
    lay = exclusions.exclusion_layers(_like(), {"lakes": LAKE})
    assert exclusions.exclusion_report(lay)["pixels"].tolist() == [4, 4]
    with pytest.raises(DimensionError, match="must be boolean"):
        exclusions.exclusion_report(lay.astype("float64") * 2)
    with pytest.raises(DimensionError, match="no pixels"):
        exclusions.exclusion_report(lay.isel(x=slice(0, 0)))
    with pytest.raises(DimensionError, match="no pixels"):
        exclusions.pixel_area_ha(_like().isel(x=slice(0, 0)))


# --------------------------------------------------------------------------- baselines


def test_spectral_angles_nan_and_huge_spectra():
    ang = baselines.spectral_angles(
        np.array([[NAN, 1.0], [INF, 1.0], [1e200, 1e200], [1.0, 0.0]]), np.array([[1.0, 1.0]])
    )
    assert np.isnan(ang[:2]).all()  # was pi / 2 for NaN: a tie that picked class 0 (mines)
    assert ang[2, 0] == pytest.approx(0.0, abs=1e-7) and ang[3, 0] == pytest.approx(math.pi / 4)
    for X, R in ((np.ones(2), np.ones((1, 2))), (np.ones((1, 3)), np.ones((1, 2)))):
        with pytest.raises(DimensionError, match="same bands"):
            baselines.spectral_angles(X, R)
    with pytest.raises(DimensionError, match="real numbers"):
        baselines.spectral_angles(np.array([[1j, 1.0]]), np.ones((1, 2)))


@pytest.mark.parametrize("refs", [[[NAN, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]],
                         ids=["nan", "zeros"])  # fmt: skip
def test_sam_reference_spectra_need_a_direction(refs):
    X = np.array([[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 0.8]])
    with pytest.raises(ParamsError, match=r"rows \[0\] .* NaN/inf or only zeros"):
        baselines.SpectralAngleMapper(reference_spectra=np.array(refs)).fit(X, [0, 0, 1, 1])


Y = np.array([0] * 2 + [2] * 30)


@pytest.mark.parametrize(
    ("kw", "y", "error", "match"),
    [({"max_ratio": NAN}, Y, ParamsError, "finite number > 0"),
     ({"max_ratio": INF}, Y, ParamsError, "finite number > 0"),
     ({"max_ratio": "5"}, Y, ParamsError, "finite number > 0"),
     ({"majority": "veg"}, np.array(["mines"] * 2 + ["vegetation"] * 30), LabelError,
      "neither in classes"),
     ({"majority": "mines"}, Y, ParamsError, "same class")],
    ids=["nan", "inf", "str", "typo-with-names", "same"],
)  # fmt: skip
def test_rebalance_bad_arguments(kw, y, error, match):
    with pytest.raises(error, match=match):
        baselines.rebalance(np.zeros((32, 1)), y, **kw)


def test_rebalance_whole_float_codes_by_name():
    # float codes 0.0 / 2.0 (was "minority class 'mines' has no samples")
    _, yb = baselines.rebalance(np.zeros((32, 1)), Y.astype(float), random_state=0)
    assert int((yb == 2).sum()) == 10


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"n_splits": 1}, "n_splits must be an integer >= 2"),
     ({"n_splits": 5}, "the rarest class has 2"),
     ({"n_splits": 2, "param_grid": {"max_depth": 1}}, "lists of candidates"),
     ({"n_splits": 2, "scoring": "acc"}, "unknown scoring 'acc'")],
    ids=["one-fold", "too-many-folds", "scalar-grid", "scoring"],
)  # fmt: skip
def test_search_hyperparameters_arguments(kw, match):
    X = np.array([[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 0.8]])
    kw = {"param_grid": {"max_depth": [1]}, **kw}
    with pytest.raises(ParamsError, match=match):
        baselines.search_hyperparameters(
            baselines.make_random_forest(n_estimators=2), X, [0, 0, 1, 1], **kw
        )


@pytest.mark.parametrize(
    ("factory", "kw", "match"),
    [(baselines.make_random_forest, {"n_estimators": 0}, "n_estimators"),
     (baselines.make_random_forest, {"n_estimators": NAN}, "n_estimators"),
     (baselines.make_mlp, {"max_iter": 0}, "max_iter"),
     (baselines.make_mlp, {"hidden_layer_sizes": 10}, "hidden_layer_sizes")],
    ids=["rf-0", "rf-nan", "mlp-iter-0", "mlp-int-layers"],
)  # fmt: skip
def test_factories_check_their_numbers(factory, kw, match):
    with pytest.raises(ParamsError, match=match):
        factory(**kw)


IMG = np.ones((2, 3, 3), dtype="float32")
MASK = np.array([[0, 0, 255], [1, 1, 1], [2, 2, 2]])


@pytest.mark.parametrize(
    ("images", "masks", "kw", "error", "match"),
    [([IMG], [MASK + 0.6], {}, LabelError, "not whole class codes"),
     ([IMG], [MASK + 256], {}, LabelError, "outside 0..255"),
     ([IMG], [MASK - 1], {}, LabelError, "outside 0..255"),
     ([IMG], [MASK], {"n_per_class": NAN}, ParamsError, "n_per_class must be an integer"),
     ([IMG], [MASK], {"n_per_class": 0}, ParamsError, "n_per_class must be an integer"),
     ([IMG], [MASK], {"max_pixels": -1}, ParamsError, "max_pixels must be an integer"),
     ([IMG.astype(complex)], [MASK], {}, DimensionError, "real numbers"),
     ([IMG[:0]], [MASK], {}, DimensionError, ">= 1 band"),
     (["/no/x.tif"], [MASK], {}, MissingFileError, "does not exist"),
     ([IMG], ["/tmp"], {}, MissingFileError, "is a folder")],
    ids=["fraction", "256", "-1", "n-nan", "n-0", "max-neg", "complex", "no-band", "missing",
         "folder"],
)  # fmt: skip
def test_sample_pixels_bad_inputs(images, masks, kw, error, match):
    with pytest.raises(error, match=match):
        baselines.sample_pixels(images, masks, **kw)


def test_sample_pixels_nan_mask_is_nodata():
    _, y = baselines.sample_pixels([IMG], [np.where(MASK == 255, NAN, MASK)])
    assert np.bincount(y).tolist() == [2, 3, 3]


SAM = baselines.SpectralAngleMapper().fit(np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1])
CUBE = xr.DataArray(np.array([[[1.0, NAN]], [[0.1, 1.0]]]), dims=("band", "y", "x"))


@pytest.mark.parametrize(
    ("est", "cube", "kw", "error", "match"),
    [(SAM, CUBE, {"batch_pixels": -1}, ParamsError, "batch_pixels"),
     (SAM, CUBE, {"batch_pixels": NAN}, ParamsError, "batch_pixels"),
     (SAM, CUBE, {"nodata": 256}, ParamsError, "integer that uint8 holds"),
     (SAM, CUBE, {"nodata": 0}, ParamsError, "also a class"),
     (baselines.SpectralAngleMapper().fit(np.eye(2), [300, 1]), CUBE, {}, ParamsError,
      "would wrap"),
     (baselines.SpectralAngleMapper(), CUBE, {}, ParamsError, "fitted classifier"),
     (SAM, CUBE.astype(str), {}, DimensionError, "real numbers"),
     (SAM, CUBE.values, {}, DimensionError, "xarray.DataArray")],
    ids=["batch-neg", "batch-nan", "nodata-256", "nodata-is-class", "class-300-in-uint8",
         "unfitted", "str-cube", "numpy"],
)  # fmt: skip
def test_predict_scene_bad_inputs(est, cube, kw, error, match):
    with pytest.raises(error, match=match):
        baselines.predict_scene(est, cube, **kw)


@pytest.mark.parametrize(
    ("truth", "pred", "kw", "error", "match"),
    [([0, 0, 1, 2], [0, 3, 3, 2], {}, LabelError, r"prediction holds codes \[3\]"),
     ([0, 0.6, 1, 2], [0, 0, 1, 2], {}, LabelError, "not whole"),
     ([0, -1], [0, 1], {}, LabelError, r"truth holds codes \[-1\]"),
     (np.zeros((2, 3)), np.zeros((3, 2)), {}, DimensionError, "same shape"),
     ([0], [0], {"mine_class": "mine"}, LabelError, "mine_class 'mine'")],
    ids=["pred-3", "fraction", "negative", "transposed", "mine-class"],
)  # fmt: skip
def test_tile_scores_never_skip_unknown_codes(truth, pred, kw, error, match):
    with pytest.raises(error, match=match):
        baselines.tile_scores(np.asarray(truth), np.asarray(pred), **kw)


def test_tile_scores_nan_is_nodata_and_benchmark_table_shape():
    s = baselines.tile_scores(np.array([0, NAN, 1, 2]), np.array([0, 1, 1, 2]))
    assert s["mean_class_accuracy"] == 1.0  # the NaN pixel is skipped, not class 0
    with pytest.raises(ParamsError, match=r"\(truth, prediction\) pair"):
        baselines.benchmark_table({"RF": {"A": np.zeros(3)}})
    with pytest.raises(ParamsError, match="must be \\{classifier"):
        baselines.benchmark_table([("RF", 1)])


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("backing", ["numpy", "torch", "dask"])
def test_confusion_float_codes(backing):
    wrap = {"numpy": np.asarray, "torch": torch.tensor, "dask": dsa.from_array}[backing]
    t, p = np.array([0.0, 0.6]), np.array([0.0, 0.0])
    with pytest.raises(LabelError, match="whole numbers"):
        np.asarray(metrics.confusion(wrap(t), wrap(p), classes=2))
    if backing != "torch":  # NaN = no data, counted nowhere
        cm = metrics.confusion(wrap(np.array([0.0, NAN])), wrap(p), classes=2)
        assert np.asarray(cm).tolist() == [[1, 0], [0, 0]]


def test_confusion_arguments():
    assert metrics.confusion([0, 1], [0, 1], classes=2).tolist() == [[1, 0], [0, 1]]  # lists
    for classes in (NAN, 2.5, "x"):
        with pytest.raises(DimensionError, match="integer number of classes"):
            metrics.confusion(np.array([0]), np.array([0]), classes=classes)
    with pytest.raises(ParamsError, match="ignore_index must be an integer"):
        metrics.confusion(np.array([0]), np.array([0]), classes=2, ignore_index=NAN)
    with pytest.raises(DimensionError, match="integer class codes"):
        metrics.confusion(np.array(["a"]), np.array(["a"]), classes=2)
    for classes in (0, -1, NAN, 2.5):
        with pytest.raises(DimensionError, match="classes must be"):
            metrics.ConfusionMatrix(classes=classes)


@pytest.mark.parametrize(
    ("cm", "error", "match"),
    [([[NAN, 1], [0, 4]], SampleError, "finite and >= 0; got nan"),
     ([[3, -1], [0, 4]], SampleError, "got -1.0 at reference 0, prediction 1"),
     ([[INF, 1], [0, 4]], SampleError, "finite and >= 0"),
     ([["a"]], SampleError, "numeric counts"),
     (np.zeros((0, 0)), DimensionError, "K >= 1")],
    ids=["nan", "negative", "inf", "str", "empty"],
)  # fmt: skip
def test_scores_refuse_impossible_counts(cm, error, match):
    with pytest.raises(error, match=match):
        metrics.scores(np.asarray(cm))


# ------------------------------------------------------------------------------ losses


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [("tversky", {"alpha": NAN}, "alpha must be a finite number"),
     ("focal", {"gamma": NAN}, "gamma must be"), ("focal", {"gamma": -1}, "gamma must be"),
     ("dice", {"smooth": -1}, "smooth must be"), ("tversky", {"alpha": "x"}, "alpha must be"),
     ("ce", {"weight": [NAN, 1]}, "weight must be"), ("ce", {"weight": [-1, 1]}, "weight must"),
     ("ce", {"weight": [0, 0]}, "not all 0"), ("ce", {"weight": 1.0}, "weight must be"),
     ("ce", {"classes": 0}, "classes must be"), ("ce", {"ignore_index": NAN}, "ignore_index")],
    ids=["alpha-nan", "gamma-nan", "gamma-neg", "smooth-neg", "alpha-str", "w-nan", "w-neg",
         "w-zeros", "w-scalar", "classes-0", "ignore-nan"],
)  # fmt: skip
def test_create_loss_refuses_what_gives_a_nan_loss(name, kw, match):
    with pytest.raises(ParamsError, match=match):
        losses.create_loss(name, **kw)
    with pytest.raises(ParamsError, match="unknown loss 'iou'"):
        losses.SegmentationLoss("iou")


@pytest.mark.parametrize("name", losses.LOSSES)
@pytest.mark.parametrize(
    ("k", "target", "error", "match"),
    [(2, [[[0, 2]]], LabelError, r"codes \[2\] outside 0\.\.1"),
     (2, [[[0, -1]]], LabelError, r"codes \[-1\]"),
     (1, [[[0, 2]]], LabelError, r"codes \[2\] outside 0\.\.1 \(logits have 1"),
     (2, [[[0.0, 0.6]]], DimensionError, "integer class codes")],
    ids=["K", "negative", "one-logit-2", "float"],
)  # fmt: skip
def test_loss_targets_outside_the_classes(name, k, target, error, match):
    with pytest.raises(error, match=match):
        losses.create_loss(name)(torch.zeros(1, k, 1, 2), torch.tensor(target))


def test_loss_on_numpy_is_a_dimension_error_and_valid_targets_still_work():
    ce = losses.create_loss("ce")
    with pytest.raises(DimensionError, match="torch tensors"):
        ce(np.zeros((1, 2, 1, 2)), np.zeros((1, 1, 2)))
    target = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert float(ce(torch.zeros(1, 2, 1, 2), target)) == pytest.approx(math.log(2))
