"""Issue 22, round 2: bad input to the output modules (io, styles, plotting, webmap, interpret).

Each case either ends in a VitsegError subclass whose message names the value and the fix,
or gives a documented, hand-checked result. Rows in docs/reliability.md point here.
"""

import json
import re
import sqlite3
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from shapely.geometry import Point, box

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from vitseg import interpret, io, plotting, styles, webmap
from vitseg.errors import (
    BandError,
    CorruptFileError,
    CorruptRasterError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    MissingFileError,
    NoValidDataError,
    ParamsError,
    SampleError,
    VectorError,
    VitsegError,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def grid(arr, crs="EPSG:32630"):
    arr = np.asarray(arr)
    ny, nx = arr.shape
    da = xr.DataArray(
        arr,
        dims=("y", "x"),
        coords={"y": 700000.0 - 10 * np.arange(ny) - 5, "x": 600000.0 + 10 * np.arange(nx) + 5},
    )
    return da.rio.write_crs(crs) if crs else da


CLASS_MAP = grid(np.array([[0, 2, 2, 1], [2, 2, 0, 255], [1, 1, 2, 2]], dtype="uint8"))
BANDS = ["B02", "B03", "B04", "B08", "B8A", "B11", "B12"]
IMG = xr.DataArray(
    np.random.default_rng(0).random((7, 40, 40), "float32"),
    dims=("band", "y", "x"),
    coords={"band": BANDS, "y": 1000 - 10 * np.arange(40) - 5, "x": 10 * np.arange(40) + 5},
).rio.write_crs("EPSG:32630")
SAMPLE = gpd.GeoDataFrame(
    {"point_id": ["a-1", "a-2"], "map_class": ["mines", "built"]},
    geometry=gpd.points_from_xy([105, 255], [895, 705]),
    crs=32630,
)


def _folders(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "f.txt").write_text("not json, not a raster")
    return tmp_path


def _fig():
    return plt.subplots()[0]


# ----------------------------------------------------------------------------- io


def test_data_path_returns_shipped_folders_and_files() -> None:
    # notebooks 05 and 07 read vitseg/data/reference as a folder
    assert io.data_path("reference").is_dir()
    assert (io.data_path("reference") / "gallwey_table3_stratified_sample.csv").is_file()
    assert io.data_path("reference/vitsegh24_table1.csv").is_file()


IO_ERRORS = {
    "data_path_escapes": (lambda t: io.data_path("../io.py"), MissingFileError,
                          "is not one inside it"),
    "data_path_empty": (lambda t: io.data_path(""), MissingFileError, "is not one inside it"),
    "atomic_path_is_folder": (lambda t: io.atomic_write_text(t / "dir", "x"), ParamsError,
                              "a folder of that name exists"),
    "atomic_parent_is_file": (lambda t: io.atomic_write_text(t / "f.txt" / "a.txt", "x"),
                              ParamsError, "f.txt is a file, not a folder"),
    "atomic_empty_path": (lambda t: io.atomic_write_text("", "x"), ParamsError, "names no file"),
    "write_bytes_str": (lambda t: io.atomic_write_bytes(t / "b.bin", "x"), ParamsError,
                        "must be bytes; got str; use atomic_write_text"),
    "write_text_bytes": (lambda t: io.atomic_write_text(t / "b.txt", b"x"), ParamsError,
                         "must be a str; got bytes"),
    "write_json_set": (lambda t: io.write_json(t / "s.json", {"a": {1, 2}}), ParamsError,
                       r"cannot serialise set .*sorted\(s\)"),
    "read_json_folder": (lambda t: io.read_json(t / "dir"), MissingFileError,
                         "is a folder, not a JSON file"),
    "read_json_missing": (lambda t: io.read_json(t / "no.json"), MissingFileError,
                          "no file at .*no.json"),
    "sha256_folder": (lambda t: io.sha256_file(t / "dir"), MissingFileError, "is a folder"),
    "sha256_chunk_0": (lambda t: io.sha256_file(t / "f.txt", chunk_bytes=0), ParamsError,
                       "chunk_bytes must be an int >= 1; got 0"),
    "clean_partials_file": (lambda t: io.clean_partials(t / "f.txt"), MissingFileError,
                            "is a file; clean_partials needs the folder"),
    "write_table_list": (lambda t: io.write_table([1, 2], t / "t.csv"), ParamsError,
                         "needs a pandas DataFrame .* got list"),
    "manifest_is_folder": (lambda t: (t / "m" / "manifest.json").mkdir(parents=True)
                           or io.update_manifest(t / "m", "a", 1), MissingFileError,
                           "manifest.json is a folder"),
    "update_manifest_section": (lambda t: io.update_manifest(t, None, 1), ParamsError,
                                "section must be a non-empty string"),
    "waiting_not_mapping": (lambda t: (t / "manifest.json").write_text('{"waiting": [1]}')
                            and io.set_waiting(t, "07_accuracy", "x"), CorruptFileError,
                            "holds 'waiting' as a JSON list"),
    "start_run_empty_dir": (lambda t: io.start_run(""), ParamsError, "report_dir is empty"),
    "start_run_params_list": (lambda t: io.start_run(t / "r", params=[1]), ParamsError,
                              "params must be a mapping"),
    "package_versions_str": (lambda t: io.package_versions("numpy"), ParamsError,
                             r"letter by letter. Pass \('numpy',\)"),
    "data_source_str": (lambda t: io.data_source("no"), ParamsError,
                        "'simulated' must be True or False; got 'no'"),
}  # fmt: skip


@pytest.mark.parametrize("case", IO_ERRORS, ids=list(IO_ERRORS))
def test_io_bad_input(tmp_path, case):
    call, error, match = IO_ERRORS[case]
    with pytest.raises(error, match=match):
        call(_folders(tmp_path))
    assert not list(tmp_path.rglob(".*vitseg-tmp-*")), "a temporary was left behind"
    assert issubclass(error, VitsegError)


def test_io_folder_at_final_path_is_left_alone(tmp_path):
    (tmp_path / "out.txt").mkdir()
    (tmp_path / "out.txt" / "keep").write_text("k")
    with pytest.raises(ParamsError, match="a folder of that name exists"):
        io.atomic_write_text(tmp_path / "out.txt", "x")
    assert (tmp_path / "out.txt" / "keep").read_text() == "k"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_io_correct_results(tmp_path):
    assert io.Run("reports/x").figures == Path("reports/x/figures")  # a str root works
    assert io.git_sha(tmp_path) is None  # not a git checkout
    assert io.data_source(np.bool_(False)) == "Sentinel-2 L2A (STAC API)"
    io.write_json(tmp_path / "n.json", {"a": float("nan"), "b": float("inf")})
    back = io.read_json(tmp_path / "n.json")  # documented: NaN/Infinity read back
    assert np.isnan(back["a"]) and back["b"] == float("inf")


# ----------------------------------------------------------------------------- styles


def _gpkg(tmp_path):
    p = tmp_path / "s.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)], crs=32630).to_file(p, layer="s")
    return p


def _sqlite(tmp_path):
    con = sqlite3.connect(tmp_path / "e.sqlite")
    con.execute("create table t(a)")
    con.commit()
    con.close()
    return tmp_path / "e.sqlite"


STYLE_ERRORS = {
    "to_rgba_strings": (lambda t: styles.to_rgba(("a", "b", "c")), ParamsError, "a colour must be"),
    "to_rgba_int": (lambda t: styles.to_rgba(5), ParamsError, "got 5"),
    "to_rgba_bools": (lambda t: styles.to_rgba((True, False, True)), ParamsError,
                      r"got \(True, False, True\)"),
    "to_rgba_nan": (lambda t: styles.to_rgba((float("nan"), 0.0, 0.0)), ParamsError, "got \\(nan"),
    "class_colormap_str": (lambda t: styles.class_colormap("mines"), ParamsError,
                           "read letter by letter"),
    "class_colormap_empty": (lambda t: styles.class_colormap([]), ParamsError, "classes is empty"),
    "change_colors_16": (lambda t: styles.change_colors([f"c{i}" for i in range(16)]),
                         ParamsError, "at most 15 classes"),
    "change_colormap_nodata_5": (lambda t: styles.change_colormap(nodata=5), ParamsError,
                                 r"nodata must be an integer in 9..255 .*got 5"),
    "categorized_empty_field": (lambda t: styles.categorized_qml("", {"a": "#ff0000"}),
                                ParamsError, "field must name an attribute"),
    "categorized_list": (lambda t: styles.categorized_qml("f", ["#ff0000"]), ParamsError,
                         "categories must map each value"),
    "categorized_size_nan": (lambda t: styles.categorized_qml("f", {"a": "#ff0000"},
                                                              size=float("nan")),
                             ParamsError, "size must be a finite number of millimetres"),
    "single_size_negative": (lambda t: styles.single_qml("#ff0000", size=-1), ParamsError,
                             "got -1"),
    "graduated_nan_break": (lambda t: styles.graduated_qml("f", [0, float("nan"), 20],
                                                           ["#ffffff", "#ff0000"]),
                            ParamsError, "finite breaks"),
    "graduated_text_breaks": (lambda t: styles.graduated_qml("f", ["a", "b"], ["#ffffff"]),
                              ParamsError, "breaks must be numbers"),
    "graduated_no_colour": (lambda t: styles.graduated_qml("f", [0], []), ParamsError,
                            "at least one colour"),
    "district_negative": (lambda t: styles.district_qml([-5.0, -1.0]), ParamsError,
                          "values must be >= 0"),
    "district_n_classes_0": (lambda t: styles.district_qml([1.0], n_classes=0), ParamsError,
                             "n_classes must be an int >= 1"),
    "district_text": (lambda t: styles.district_qml(["a"]), ParamsError, "values must be numbers"),
    "alerts_qml_str": (lambda t: styles.alerts_qml("2020-21"), ParamsError,
                       r"Pass \['2020-21'\]"),
    "layer_styles_missing": (lambda t: styles.layer_styles(t / "no.gpkg"), MissingFileError,
                             "no GeoPackage"),
    "layer_styles_folder": (lambda t: styles.layer_styles(t / "dir"), MissingFileError,
                            "is a folder, not a GeoPackage"),
    "layer_styles_text": (lambda t: styles.layer_styles(t / "f.txt"), VectorError,
                          "is not a GeoPackage"),
    "add_style_sqlite": (lambda t: styles.add_layer_style(_sqlite(t), "a", styles.sample_qml()),
                         VectorError, "is not a GeoPackage .*gpkg_geometry_columns"),
    "add_style_bytes_qml": (lambda t: styles.add_layer_style(_gpkg(t), "s", b"<qgis/>"),
                            VectorError, "qml must be QML text"),
    "styled_layer_dataframe": (lambda t: styles.write_styled_layer(
        pd.DataFrame({"a": [1]}), t / "x.gpkg", layer="a", qml=styles.sample_qml()),
        VectorError, "needs a GeoDataFrame; got DataFrame"),
}  # fmt: skip


@pytest.mark.parametrize("case", STYLE_ERRORS, ids=list(STYLE_ERRORS))
def test_styles_bad_input(tmp_path, case):
    call, error, match = STYLE_ERRORS[case]
    with pytest.raises(error, match=match):
        call(_folders(tmp_path))


def test_styles_layer_styles_creates_nothing(tmp_path):
    with pytest.raises(MissingFileError):
        styles.layer_styles(tmp_path / "no.gpkg")
    assert not (tmp_path / "no.gpkg").exists()  # sqlite3.connect used to create it


def test_styles_valid_inputs_unchanged():
    assert styles.to_rgba((1, 0, 0)) == (1, 0, 0, 255)  # documented: ints are 0-255
    assert styles.to_rgba(np.array([1.0, 0.5, 0.0])) == (255, 128, 0, 255)
    cmap, names = styles.change_colormap(nodata=255)
    assert len(cmap) == len(names) == 9 and names[6] == "vegetation -> mines"


# ----------------------------------------------------------------------------- plotting

CUBE = IMG.isel(band=[0, 1, 2], y=slice(0, 4), x=slice(0, 4))
TILES = pd.DataFrame({"minx": [0.0], "miny": [0.0], "maxx": [10.0], "maxy": [10.0],
                      "split": ["train"]})  # fmt: skip
REF = grid(np.zeros((4, 4), "uint8"))

PLOT_ERRORS = {
    "savefig_formats_str": (lambda t: plotting.savefig(_fig(), t / "a.png", simulated=False,
                                                       formats="svg"),
                            ParamsError, "got the string 'svg'"),
    "savefig_dpi_nan": (lambda t: plotting.savefig(_fig(), t / "a.png", simulated=False,
                                                   dpi=float("nan")),
                        ParamsError, "dpi must be a finite number > 0"),
    "savefig_axes": (lambda t: plotting.savefig(plt.subplots()[1], t / "a.png", simulated=False),
                     ParamsError, "got Axes; pass ax.figure"),
    "savefig_jpg": (lambda t: plotting.savefig(_fig(), t / "a.jpg", simulated=False), ParamsError,
                    "path must end in .png"),
    "savefig_folder": (lambda t: (t / "d.png").mkdir() or plotting.savefig(
        _fig(), t / "d.png", simulated=False), ParamsError, "a folder of that name exists"),
    "savefig_simulated_str": (lambda t: plotting.savefig(_fig(), t / "a.png", simulated="no"),
                              ParamsError, "'simulated' must be True or False"),
    "stretch_1d": (lambda t: plotting.stretch(np.array([1.0, 2.0, 3.0])), DimensionError,
                   r"got shape \(3,\)"),
    "stretch_pct_inverted": (lambda t: plotting.stretch(np.ones((2, 2)), lower_pct=90,
                                                        upper_pct=10),
                             ParamsError, "lower_pct=90, upper_pct=10"),
    "stretch_complex": (lambda t: plotting.stretch(np.ones((2, 2), complex)), DimensionError,
                        "got dtype complex128"),
    "plot_rgb_missing_band": (lambda t: plotting.plot_rgb(CUBE, bands=("B08", "B04", "B03")),
                              BandError, r"lacks bands \['B08'\]"),
    "plot_rgb_time_dim": (lambda t: plotting.plot_rgb(CUBE.expand_dims(time=2)), DimensionError,
                          "cube.isel"),
    "plot_rgb_zero_size": (lambda t: plotting.plot_rgb(CUBE.isel(x=slice(0, 0))), DimensionError,
                           "no pixels"),
    "class_cmap_str": (lambda t: plotting.class_cmap("mines"), ParamsError, "letter by letter"),
    "plot_classes_probability": (lambda t: plotting.plot_classes(grid(np.array([[0.6, 2.0]]))),
                                 LabelError, r"non-integer class values, e.g. \[0.6\]"),
    "plot_classes_bool": (lambda t: plotting.plot_classes(grid(np.array([[True, False]]))),
                          DimensionError, "got dtype bool"),
    "prob_rgb_2d": (lambda t: plotting.prob_rgb(np.full((2, 2), 0.5)), DimensionError,
                    r"\(class, y, x\)"),
    "prob_rgb_negative_order": (lambda t: plotting.prob_rgb(np.ones((3, 1, 1)), order=(-1, 0, 1)),
                                ParamsError, "order must be 3 class indices"),
    "prob_rgb_percent": (lambda t: plotting.prob_rgb(np.array([[[80.0]], [[15.0]], [[5.0]]])),
                         ParamsError, "divide a percentage by 100"),
    "scale_bar_nan": (lambda t: plotting.add_scale_bar(plt.subplots()[1], length_m=float("nan")),
                      ParamsError, "length_m must be a finite number > 0"),
    "north_arrow_size_nan": (lambda t: plotting.add_north_arrow(plt.subplots()[1],
                                                                size=float("nan")),
                             ParamsError, "size must be a finite number in"),
    "class_distribution_empty": (lambda t: plotting.plot_class_distribution({}), ParamsError,
                                 "empty mapping"),
    "cooccurrence_1d": (lambda t: plotting.plot_cooccurrence(np.array([1, 2])), DimensionError,
                        "square"),
    "cooccurrence_nan": (lambda t: plotting.plot_cooccurrence(np.array([[1, np.nan], [1, 1]])),
                         ParamsError, "finite and >= 0"),
    "split_map_empty": (lambda t: plotting.plot_split_map(TILES.iloc[:0]), NoValidDataError,
                        "tile index is empty"),
    "split_map_no_split": (lambda t: plotting.plot_split_map(TILES.drop(columns="split")),
                           VectorError, r"lacks columns \['split'\]"),
    "benchmark_lengths": (lambda t: plotting.plot_benchmark_panel([CUBE], [REF, REF],
                                                                  {"rf": [REF, REF]}),
                          ParamsError, "references has 2, rgbs has 1"),
    "area_estimates_columns": (lambda t: plotting.plot_area_estimates(pd.DataFrame({"x": [1]})),
                               SampleError, "lacks columns"),
    "change_map_probability": (lambda t: plotting.plot_change_map(grid(np.array([[0.6, 4.0]]))),
                               LabelError, "non-integer"),
    "density_vmax_negative": (lambda t: plotting.plot_density(grid(np.ones((2, 2))), vmax=-1.0),
                              ParamsError, "vmax must be a finite number > 0"),
    "density_outlines_no_crs": (lambda t: plotting.plot_density(
        grid(np.ones((2, 2)), crs=None),
        outlines=gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=32630)),
        MissingCRSError, "outlines cannot be drawn"),
    "panels_misaligned": (lambda t: plotting.plot_prediction_panels(
        CUBE, REF, grid(np.ones((3, 4))), np.ones((3, 4, 4))), GridMismatchError,
        "share one"),
    "learning_curves_columns": (lambda t: plotting.plot_learning_curves(
        {"a": pd.DataFrame({"epoch": [1], "train_loss": [1.0]})}), ParamsError,
        r"history 'a' lacks columns \['val_loss'"),
}  # fmt: skip


@pytest.mark.parametrize("case", PLOT_ERRORS, ids=list(PLOT_ERRORS))
def test_plotting_bad_input(tmp_path, case):
    call, error, match = PLOT_ERRORS[case]
    with pytest.raises(error, match=match):
        call(tmp_path)


def _drawn(ax):
    im = ax.images[0].get_array()
    return np.ma.getmaskarray(im).tolist()


def test_plotting_no_data_is_drawn_as_no_data():
    # -1 and NaN are no data (they were drawn as mines); a (1, y, x) map is squeezed
    assert _drawn(plotting.plot_classes(grid(np.array([[-1, 2]])))) == [[True, False]]
    assert _drawn(plotting.plot_classes(grid(np.array([[np.nan, 0.0]])))) == [[True, False]]
    one_band = grid(np.array([[0, 255]], dtype="uint8")).expand_dims(band=1)
    assert _drawn(plotting.plot_classes(one_band)) == [[False, True]]
    # change maps: NaN (was cast to garbage) and the declared nodata 4 are grey
    grey = [0.87, 0.87, 0.87]
    for arr, nodata in ((np.array([[np.nan, 8.0]]), 255), (np.array([[4, 8]]), 4)):
        rgb = plotting.plot_change_map(grid(arr), nodata=nodata).images[0].get_array()
        assert np.allclose(rgb[0, 0], grey) and not np.allclose(rgb[0, 1], grey)
    # density: NaN / inf left out of the scale (was vmax = nan), title without bandwidth_m
    dens = grid(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    ax = plotting.plot_density(dens)
    assert ax.images[0].get_clim() == (0.0, 2.0)
    assert ax.get_title() == "kernel density (bandwidth ? m)"
    inf = grid(np.array([[0.0, np.inf], [1.0, 2.0]])).assign_attrs(bandwidth_m=5.0)
    assert plotting.plot_density(inf).images[0].get_clim() == (0.0, 2.0)
    # stretch: inf is out of the percentiles and shown as 1 / 0
    s = plotting.stretch(np.array([[0.0], [1.0], [np.inf], [-np.inf]]), lower_pct=0, upper_pct=100)
    assert s.ravel().tolist() == [0.0, 1.0, 1.0, 0.0]


# ----------------------------------------------------------------------------- webmap


def _page(tmp_path, **kw):
    return webmap.write_webmap(tmp_path / "m.html", **kw)


def _cfg(path):
    m = re.search(r"var cfg = (\{.*?\});\n", path.read_text())
    return json.loads(m.group(1).replace("<\\/", "</"))


ALERTS = gpd.GeoDataFrame({"area_ha": [1.0]}, geometry=[box(600000, 699950, 600050, 700000)],
                          crs=32630)  # fmt: skip

WEBMAP_ERRORS = {
    "probabilities_as_classes": (lambda t: _page(t, class_maps={"a": grid(np.full((3, 4), 0.6))}),
                                 LabelError, "non-integer values, e.g. \\[0.6"),
    "bool_class_map": (lambda t: _page(t, class_maps={"a": grid(np.ones((3, 4), bool))}),
                       DimensionError, "pass it in masks="),
    "complex_probability": (lambda t: _page(t, probability_maps={"a": grid(np.full((3, 4),
                                                                                   0.5 + 1j))}),
                            DimensionError, "got dtype complex128"),
    "zero_size_map": (lambda t: _page(t, class_maps={"a": CLASS_MAP.isel(x=slice(0, 0))}),
                      DimensionError, "has no pixels"),
    "classes_str": (lambda t: _page(t, class_maps={"a": CLASS_MAP}, classes="mines"),
                    ParamsError, "letter by letter"),
    "mask_color_name": (lambda t: _page(t, masks={"a": CLASS_MAP}, mask_color="red"),
                        ParamsError, "got 'red'"),
    "alerts_dataframe": (lambda t: _page(t, alerts=pd.DataFrame({"a": [1]})), VectorError,
                         "alerts must be a GeoDataFrame; got DataFrame"),
    "alert_columns_typo": (lambda t: _page(t, alerts=ALERTS, alert_columns=["area"]),
                           VectorError, r"alert_columns \['area'\] are not columns"),
    "alert_columns_str": (lambda t: _page(t, alerts=ALERTS, alert_columns="area_ha"),
                          ParamsError, r"Pass \['area_ha'\]"),
    "class_maps_not_mapping": (lambda t: _page(t, class_maps=CLASS_MAP), ParamsError,
                               r"class_maps=\{'2021': da\}"),
    "layer_name_twice": (lambda t: _page(t, class_maps={"x": CLASS_MAP}, masks={"x": CLASS_MAP}),
                         ParamsError, "'x' is used twice"),
    "path_is_folder": (lambda t: (t / "m.html").mkdir() or _page(t, class_maps={"a": CLASS_MAP}),
                       ParamsError, "a folder of that name exists"),
}  # fmt: skip


@pytest.mark.parametrize("case", WEBMAP_ERRORS, ids=list(WEBMAP_ERRORS))
def test_webmap_bad_input(tmp_path, case):
    call, error, match = WEBMAP_ERRORS[case]
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_webmap_correct_results(tmp_path):
    # a (x, y) map is drawn like its (y, x) original (it was drawn transposed)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight = _cfg(_page(tmp_path / "a", class_maps={"m": CLASS_MAP}))["rasters"]
    flipped = _cfg(_page(tmp_path / "b", class_maps={"m": CLASS_MAP.T}))["rasters"]
    assert flipped == straight
    # a title that looks like a placeholder stays text
    text = _page(tmp_path, class_maps={"m": CLASS_MAP}, title="__LEAFLET_JS__").read_text()
    assert "<title>__LEAFLET_JS__</title>" in text
    # alerts whose geometries are all empty no longer drop every district (NaN extent)
    empty = gpd.GeoDataFrame({"a": [1]}, geometry=[Point()], crs=32630)
    districts = gpd.GeoDataFrame({"ADM2_EN": ["d"]}, geometry=[box(599000, 699000, 601000, 701000)],
                                 crs=32630)  # fmt: skip
    cfg = _cfg(_page(tmp_path, class_maps={"m": CLASS_MAP}, alerts=empty, districts=districts))
    assert [f["properties"]["ADM2_EN"] for f in cfg["districts"]["features"]] == ["d"]
    # boolean masks stay valid masks (True = drawn)
    cfg = _cfg(_page(tmp_path, masks={"new": grid(np.eye(3, 4, dtype=bool))}))
    assert cfg["rasters"][0]["tiles"]


# ----------------------------------------------------------------------------- interpret


def _interp(tmp_path, *, sample=SAMPLE, images=None, path="i.html", **kw):
    kw.setdefault("chip_px", 16)
    return interpret.write_interpretation_page(
        sample, images if images is not None else {"2021": IMG}, tmp_path / path, **kw
    )


def _points(geoms):
    return gpd.GeoDataFrame({"point_id": ["p"], "map_class": ["mines"]}, geometry=geoms, crs=32630)


INTERPRET_ERRORS = {
    "chip_px_nan": (lambda t: _interp(t, chip_px=float("nan")), ParamsError,
                    "'chip_px' must be between 8 and 512"),
    "percentiles_three": (lambda t: _interp(t, percentiles=(1, 2, 3)), ParamsError,
                          "'percentiles' must be"),
    "jpeg_quality_float": (lambda t: _interp(t, jpeg_quality=50.5), ParamsError,
                           "'jpeg_quality' must be a whole number"),
    "map_pixel_nan": (lambda t: _interp(t, map_pixel_m=float("nan")), ParamsError,
                      "'map_pixel_m' must be a finite size > 0"),
    "seed_negative": (lambda t: _interp(t, seed=-1), ParamsError, "'seed' must be a whole number"),
    "classes_str": (lambda t: _interp(t, classes="mines"), ParamsError, "letter by letter"),
    "classes_cannot_tell": (lambda t: _interp(t, classes=["mines", "cannot tell"]), ParamsError,
                            "other than 'cannot tell'"),
    "polygon_sample": (lambda t: _interp(t, sample=_points([box(0, 0, 10, 10)])), SampleError,
                       r"\['Polygon'\]"),
    "empty_point": (lambda t: _interp(t, sample=_points([Point()])), SampleError,
                    "point geometry with finite coordinates"),
    "image_missing": (lambda t: _interp(t, images={"2021": t / "no.tif"}), MissingFileError,
                      "no file at"),
    "image_folder": (lambda t: _interp(t, images={"2021": t / "dir"}), MissingFileError,
                     "is a folder"),
    "image_not_raster": (lambda t: _interp(t, images={"2021": t / "f.txt"}), CorruptRasterError,
                         "not a GeoTIFF/COG"),
    "image_zero_size": (lambda t: _interp(t, images={"2021": IMG.isel(x=slice(0, 0))}),
                        DimensionError, "has no pixels"),
    "image_complex": (lambda t: _interp(t, images={"2021": IMG.astype("complex64")}),
                      DimensionError, "got dtype complex64"),
}  # fmt: skip


@pytest.mark.parametrize("case", INTERPRET_ERRORS, ids=list(INTERPRET_ERRORS))
def test_interpret_bad_input(tmp_path, case):
    call, error, match = INTERPRET_ERRORS[case]
    with pytest.raises(error, match=match):
        call(_folders(tmp_path))
    assert not (tmp_path / "i.html").exists()


def test_interpret_title_placeholder_stays_text(tmp_path):
    text = _interp(tmp_path, title="%JS%").read_text()
    assert "<title>%JS%</title>" in text and text.count("function svgMarks") == 1
