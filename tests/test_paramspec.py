"""Every notebook parameter has one spec; defaults and params/*.yaml pass; wrong values fail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vitseg.errors import ParamsError
from vitseg.io import REPO_ROOT
from vitseg.paramspec import (
    OVERRIDES,
    SPECS,
    Spec,
    check_parameter,
    check_parameters,
    spec_for,
)
from vitseg.runner import _default_value, find_notebooks, notebook_parameters

PARAMS_DIR = REPO_ROOT / "params"


@pytest.fixture(scope="module")
def declared() -> dict[str, dict[str, Any]]:
    """``{notebook: {key: default value}}`` as papermill sees the parameters cells."""
    return {
        name: {k: _default_value(v) for k, v in notebook_parameters(path).items()}
        for name, path in find_notebooks().items()
    }


def test_notebooks_found(declared: dict[str, dict[str, Any]]) -> None:
    assert len(declared) >= 8
    assert "cloud_method" in declared["02_build_cube"]


def test_every_parameter_has_a_spec_and_its_default_passes(
    declared: dict[str, dict[str, Any]],
) -> None:
    missing = [(nb, k) for nb, ps in declared.items() for k in ps if k not in SPECS]
    assert missing == []
    for nb, params in declared.items():
        for key, default in params.items():
            check_parameter(nb, key, default)
        check_parameters(nb, params)


def test_no_stale_specs(declared: dict[str, dict[str, Any]]) -> None:
    used = {k for ps in declared.values() for k in ps}
    assert sorted(set(SPECS) - used) == []
    for nb, key in OVERRIDES:
        assert key in declared[nb], (nb, key)


@pytest.mark.parametrize("yaml_path", sorted(PARAMS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_params_files_pass(yaml_path: Path, declared: dict[str, dict[str, Any]]) -> None:
    if (
        yaml_path.stem == "ci_real"
    ):  # its input files are the stand-ins tests/test_real_path.py makes
        from vitseg import standin, synthetic
        from vitseg.io import REPO_ROOT

        catalog = REPO_ROOT / "data" / "synthetic" / "ci_real"
        seasons = ("2020-21", "2021-22")
        synthetic.write_catalog(
            catalog, boxes=["kibi"], seasons=seasons, dates_per_season=2, size_px=256, seed=0
        )
        standin.write_standin(catalog, REPO_ROOT / "data" / "standin" / "ci_real", box="kibi",
                              seasons=seasons)  # fmt: skip
    raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    common = raw.get("common") or {}
    checked = 0
    for nb, defaults in declared.items():
        given = {k: v for k, v in common.items() if k in defaults}
        given.update(raw.get(nb) or {})
        for key, value in given.items():
            check_parameter(nb, key, value)
            checked += 1
        check_parameters(nb, {**defaults, **given})
    assert checked > 0


def test_same_name_same_spec_unless_overridden() -> None:
    assert spec_for("02_build_cube", "cloud_method") is spec_for("06_predict", "cloud_method")
    assert spec_for("03_labels_tiles", "tile_px") is SPECS["tile_px"]
    assert spec_for("06_predict", "tile_px") is OVERRIDES[("06_predict", "tile_px")]
    check_parameter("03_labels_tiles", "tile_px", 100)  # tiles: any side
    with pytest.raises(ParamsError, match="multiple of 32"):
        check_parameter("06_predict", "tile_px", 100)  # the network's window


def test_undeclared_key() -> None:
    with pytest.raises(
        ParamsError, match=r"04_train: parameter 'unet_epoch' has no spec.*'unet_epochs'"
    ):
        spec_for("04_train", "unet_epoch")
    with pytest.raises(ParamsError, match="no spec"):
        check_parameter("04_train", "nonsense", 1)


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (Spec((float,), minimum=0, maximum=1), "a number in [0, 1]"),
        (Spec((float,), minimum=0, maximum=1, exclusive_minimum=True), "a number in (0, 1]"),
        (Spec((int,), minimum=0, exclusive_minimum=True, multiple_of=32), "an int > 0 and a multiple of 32"),
        (Spec((str,), choices=("a", "b")), "one of 'a', 'b'"),
        (Spec((list,), min_length=1, items=Spec((str,))), "a list of at least 1 item, each a str"),
        (Spec((dict,), keys=Spec((str,)), values=Spec((float,), minimum=0)), "a mapping of a str to a number >= 0"),
    ],
)  # fmt: skip
def test_describe(spec: Spec, text: str) -> None:
    assert spec.describe() == text


@pytest.mark.parametrize(
    ("notebook", "key", "value"),
    [
        ("02_build_cube", "size_px", 0),  # 0 = the whole box
        ("05_benchmark", "n_jobs", -1),
        ("05_benchmark", "n_jobs", 2),
        ("04_train", "bf16", True),
        ("04_train", "bf16", False),
        ("01_grid_aoi", "aoi", "cells"),
        ("01_grid_aoi", "aoi", "data/any/polygons.gpkg"),  # files are not resolved here
        ("01_grid_aoi", "aoi", [-1.8, 6.1, -1.7, 6.2]),
        ("02_build_cube", "aoi", ["Obuasi"]),
        ("02_build_cube", "seasons", ["2020", "2021-01-01/2021-06-30", 2019]),
        ("07_accuracy", "season", ""),
        ("07_accuracy", "season", "2021-22"),
        ("07_accuracy", "reference_file", "reports/x/not_written_yet.csv"),
        ("02_build_cube", "labels_file", "vitseg/data/asm_ground_truth_ghana.geojson"),
        ("02_build_cube", "stac_source", "https://earth-search.aws.element84.com/v1"),
        ("02_build_cube", "stac_source", "tests/data"),  # an existing local path
        ("02_build_cube", "dask_scheduler", "tcp://10.0.0.5:8786"),
        ("02_build_cube", "dask_scheduler", "threads"),
        ("02_build_cube", "crs", "auto"),
        ("02_build_cube", "crs", "EPSG:32631"),
        ("02_build_cube", "max_cloud_pct", 20),  # an int is a number
        ("01_grid_aoi", "labels_class_map", {0: "mines", "town": "Built", "x": None, 2.0: ""}),
        ("06_predict", "exclusion_buffer_m", {"lakes": 100, "mines": 50.5}),
        ("06_predict", "exclusion_files", {"lakes": "vitseg/data/ne_10m_ghana.geojson"}),
        ("08_monitoring", "basemap", ""),
        ("04_train", "archs", ["segformer"]),
        ("04_train", "unet_loss", "focal"),
    ],
)
def test_accepted(notebook: str, key: str, value: Any) -> None:
    check_parameter(notebook, key, value)


@pytest.mark.parametrize(
    ("notebook", "key", "value", "allowed"),
    [
        ("02_build_cube", "cloud_method", "bothh", "one of 'scl', 'bright', 'both'"),
        ("02_build_cube", "composite_method", "medoid", "one of 'median', 'mean'"),
        ("07_accuracy", "allocation", "neyman", "one of 'gallwey', 'proportional', 'equal'"),
        ("06_predict", "mosaic_method", "max", "one of 'max_class', 'mean_prob'"),
        ("08_monitoring", "mode", "live", "one of 'demo', 'earthrise'"),
        ("08_monitoring", "class_map_source", "maps", "one of 'auto', 'ensemble', 'truth'"),
        ("04_train", "device", "gpu", "one of 'auto', 'cpu', 'cuda'"),
        ("04_train", "bf16", "yes", "one of 'auto', True, False"),
        ("04_train", "bf16", 1, "one of 'auto', True, False"),
        ("04_train", "unet_loss", "crossentropy", "one of 'ce', 'dice', 'tversky', 'focal'"),
        ("06_predict", "arch", "unett", "one of 'unet', 'segformer'"),
        ("04_train", "archs", ["unet", "deeplab"], "one of 'unet', 'segformer'"),
        ("04_train", "archs", [], "a list of at least 1 item"),
        ("04_train", "archs", "unet", "a list of at least 1 item"),
        ("02_build_cube", "min_valid_frac", 1.5, "a number in [0, 1]"),
        ("04_train", "tversky_alpha", -0.1, "a number in [0, 1]"),
        ("02_build_cube", "max_cloud_pct", 101.0, "a number in [0, 100]"),
        ("02_build_cube", "bright_threshold", 0.0, "a number in (0, 1]"),
        ("02_build_cube", "max_cloud_pct", float("nan"), "a number in [0, 100]"),
        ("02_build_cube", "size_px", -1, "an int >= 0"),
        ("02_build_cube", "chunks_px", 0, "an int > 0"),
        ("02_build_cube", "chunks_px", 512.0, "an int > 0"),
        ("02_build_cube", "chunks_px", True, "an int > 0"),
        ("04_train", "unet_epochs", "10", "an int > 0"),
        ("02_build_cube", "seed", -3, "an int >= 0"),
        ("05_benchmark", "cnn_tile", 100, "an int > 0 and a multiple of 32"),
        ("04_train", "patch_px", 100, "an int > 0 and a multiple of 32"),
        ("06_predict", "overlap_px", -8, "an int >= 0"),
        ("05_benchmark", "n_jobs", 0, "-1 (all cores)"),
        ("04_train", "unet_lr", 0.0, "a number > 0"),
        ("07_accuracy", "oversample", 0.9, "a number >= 1"),
        ("03_labels_tiles", "split_fractions", [0.6, 0.3, 0.2], "that sum to 1"),
        ("03_labels_tiles", "split_fractions", [0.5, 0.5], "a list of 3 numbers in [0, 1]"),
        ("03_labels_tiles", "split_fractions", [1.2, -0.1, -0.1], "a number in [0, 1]"),
        ("07_accuracy", "expected_users_accuracy", [0.85, 0.85], "a list of 3 items"),
        ("03_labels_tiles", "cooccurrence_offset", [0, 1.5], "an int"),
        ("02_build_cube", "seasons", ["2020-22"], "the second year must follow the first"),
        ("02_build_cube", "seasons", ["2020", "2020-21"], "overlap"),
        ("02_build_cube", "seasons", [], "a list of at least 1 item"),
        ("07_accuracy", "season", "spring", "cannot read period"),
        ("02_build_cube", "aoi", ["obuasi", "kibbi"], "the box names are 'obuasi', 'kibi'"),
        ("02_build_cube", "aoi", [10, 6.1, -1.7, 6.2], "-180 <= west < east <= 180"),
        ("02_build_cube", "aoi", [1, "kibi"], "a lon/lat bbox"),
        ("02_build_cube", "aoi", 5, "a box name, 'cells'"),
        ("02_build_cube", "crs", "EPSG:4326", "not projected in metres"),
        ("02_build_cube", "crs", "utm30", "'auto' or a projected CRS"),
        ("02_build_cube", "labels_file", "data/no/such.gpkg", "the path of an existing file"),
        ("05_benchmark", "reference_tiles_file", "nope.gpkg", "the path of an existing file"),
        ("02_build_cube", "stac_source", "earth-search", "an http(s) URL"),
        ("02_build_cube", "dask_scheduler", "cluster", "'local' (LocalCluster)"),
        ("02_build_cube", "dask_scheduler", "tcp://", "'local' (LocalCluster)"),
        (
            "01_grid_aoi",
            "labels_class_map",
            {0: "mine"},
            "a vitseg class ('mines', 'built', 'vegetation'), or null",
        ),
        ("01_grid_aoi", "labels_class_map", ["mines"], "a mapping of a class value"),
        ("06_predict", "exclusion_buffer_m", {"lakes": -5}, "a number >= 0"),
        (
            "06_predict",
            "exclusion_files",
            {"lakes": "no/lakes.gpkg"},
            "the path of an existing file",
        ),
        (
            "01_grid_aoi",
            "outline_data",
            "ghana.geojson",
            "one of 'asm_ground_truth_extent.geojson'",
        ),
        ("08_monitoring", "basemap", "google", "one of '', 'osm'"),
        ("08_monitoring", "top_n_districts", 0, "an int > 0"),
        ("02_build_cube", "simulated", "yes", "true or false"),
        ("02_build_cube", "report_dir", "", "a non-empty str"),
    ],
)
def test_rejected(notebook: str, key: str, value: Any, allowed: str) -> None:
    with pytest.raises(ParamsError) as info:
        check_parameter(notebook, key, value)
    msg = str(info.value)
    assert msg.startswith(f"{notebook}: parameter {key!r}"), msg
    assert allowed in msg, msg
    assert "; got " in msg and repr(value) in msg, msg


def test_message_of_a_wrong_choice() -> None:
    with pytest.raises(ParamsError) as info:
        check_parameter("02_build_cube", "cloud_method", "bothh")
    assert str(info.value) == (
        "02_build_cube: parameter 'cloud_method' must be one of 'scl', 'bright', 'both'; "
        "got 'bothh'"
    )


def test_message_names_the_item() -> None:
    with pytest.raises(
        ParamsError,
        match=re.escape("04_train: parameter 'archs' item 1 must be one of 'unet', 'segformer'; "
                        "got 'deeplab' (in ['unet', 'deeplab'])"),
    ):  # fmt: skip
        check_parameter("04_train", "archs", ["unet", "deeplab"])
    with pytest.raises(ParamsError, match=r"parameter 'exclusion_buffer_m'\['lakes'\] must be"):
        check_parameter("06_predict", "exclusion_buffer_m", {"lakes": -5})


@pytest.mark.parametrize(
    ("notebook", "params", "match"),
    [
        ("06_predict", {"tile_px": 128, "overlap_px": 128}, r"'overlap_px' must be < tile_px \(128\); got 128"),
        ("05_benchmark", {"cnn_tile": 64, "cnn_overlap": 96}, r"'cnn_overlap' must be < cnn_tile \(64\); got 96"),
        ("06_predict", {"tile_px": 96, "overlap_px": -1}, r"'overlap_px' must be an int >= 0; got -1"),
    ],
)  # fmt: skip
def test_check_parameters_relations(notebook: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        check_parameters(notebook, params)


def test_check_parameters_accepts_overlap_below_tile() -> None:
    check_parameters("06_predict", {"tile_px": 128, "overlap_px": 16})
    check_parameters("03_labels_tiles", {"tile_px": 64, "stride_px": 64})
