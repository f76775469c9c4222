"""Bad input, round 2 (issue 22): predict, cog, models, checkpoints, train, runner, CLI.

Each test attacks a public function with input it cannot handle (NaN, zero sizes, wrong
dtypes, folders where files go, paths leaving their folder) and checks the VitsegError
that names it, or the correct result where the input is legitimate (inf = no data).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from _predict_helpers import grid_da, make_cube, tiny_net

from vitseg.__main__ import main
from vitseg.checkpoints import CHECKPOINT_FORMAT
from vitseg.errors import (
    BandError,
    CorruptFileError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    ParamsError,
    UnknownModelError,
    VitsegError,
)
from vitseg.models import (
    amx_available,
    autocast_context,
    bf16_decision,
    channels_last,
    cpu_flags,
    create_model,
    predict_logits,
    prepare_model,
    to_input,
)
from vitseg.predict import (
    blend_window,
    classify,
    norm_from_meta,
    open_map,
    overview_factors,
    predict_classes,
    predict_cube,
    quantise_probs,
    tile_starts,
    window_layout,
    write_cog,
    write_scene_maps,
)
from vitseg.runner import (
    find_notebooks,
    library_digest,
    load_experiment,
    notebook_parameters,
    parse_overrides,
    resolve_parameters,
    run_experiment,
)
from vitseg.train import TrainConfig, evaluate, fit, mine_class

CPU = {"device": "cpu", "bf16": False}


@pytest.fixture(scope="module")
def cube() -> xr.DataArray:
    v = np.random.default_rng(0).normal(size=(1, 4, 40, 40)).astype("float32")
    return make_cube(v)


def probs3(h: int = 8, w: int = 8) -> xr.DataArray:
    return grid_da(np.full((3, h, w), 1 / 3, "float32"))


# ----------------------------------------------------------------------------- predict


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tile": float("nan")}, r"tile must be an integer >= 1; got nan \(float\)"),
        ({"tile": 32.7}, r"tile must be an integer >= 1; got 32\.7"),
        ({"tile": "64"}, r"tile must be an integer >= 1; got '64' \(str\)"),
        ({"batch_size": float("nan")}, r"batch_size must be an integer >= 1; got nan"),
        ({"chunk_size": 0}, r"chunk_size must be an integer >= 1; got 0"),
        ({"chunk_size": -5}, r"chunk_size must be an integer >= 1; got -5"),
        ({"bf16": "false"}, r"bf16 must be True, False or 'auto'; got 'false'"),
        ({"classes": "abc"}, r"classes must be a list of class names.*got 'abc'"),
        ({"classes": ["a", "a", "b"]}, r"1\.\.255 distinct class names.*\['a'\] more than once"),
    ],
    ids=[
        "tile_nan",
        "tile_fraction",
        "tile_str",
        "batch_nan",
        "chunk_0",
        "chunk_negative",
        "bf16_str",
        "classes_str",
        "classes_twice",
    ],
)
def test_predict_cube_options_must_be_whole_and_named(
    cube: xr.DataArray, kwargs: dict, match: str
) -> None:
    args = {"tile": 32, "overlap": 8, "device": "cpu", "bf16": False, **kwargs}
    with pytest.raises(ParamsError, match=match):
        predict_cube(tiny_net(), cube, **args)


@pytest.mark.parametrize(
    ("select", "match"),
    [
        ({"y": slice(0, 0)}, r"cube has no pixels \(sizes .*'y': 0"),
        ({"time": slice(0, 0)}, r"cube has no pixels \(sizes .*'time': 0"),
        ({"band": slice(0, 0)}, r"cube has no pixels \(sizes .*'band': 0"),
        ({"y": [1, 0, *range(2, 40)]}, r"cube's 'y' coordinates are not one regular grid"),
        ({"x": [*range(0, 20), *range(21, 40), 20]}, r"'x' coordinates are not one regular"),
        ({"x": slice(0, 1)}, r"cube is one pixel wide and stores no transform"),
    ],
    ids=["no_rows", "no_time", "no_bands", "unsorted_y", "irregular_x", "one_pixel_wide"],
)
def test_predict_cube_refuses_empty_cubes_and_broken_grids(
    cube: xr.DataArray, select: dict, match: str
) -> None:
    with pytest.raises(DimensionError, match=match):
        predict_cube(tiny_net(), cube.isel(select), tile=32, overlap=8, **CPU)


@pytest.mark.parametrize(
    ("norm", "match"),
    [
        ({"mean": "abcd", "std": [1] * 4}, r"'mean' and 'std' must be lists of numbers"),
        (
            {"bands": ["B02", "B02", "B03", "B04"], "mean": [0] * 4, "std": [1] * 4},
            r"norm lists bands \['B02'\] more than once",
        ),
    ],
    ids=["mean_strings", "band_twice"],
)
def test_norm_that_is_not_numbers_or_repeats_a_band(
    cube: xr.DataArray, norm: dict, match: str
) -> None:
    with pytest.raises(BandError, match=match):
        predict_cube(tiny_net(), cube, tile=32, overlap=8, norm=norm, **CPU)


def test_norm_from_meta_input() -> None:
    with pytest.raises(ParamsError, match=r"meta must be the mapping .*load_model returns"):
        norm_from_meta(None)  # type: ignore[arg-type]
    # one band's statistics given as numbers (was: TypeError 'float' object is not iterable)
    assert norm_from_meta({"mean": 0.1, "std": 0.2, "bands": "B02"}) == {
        "bands": ["B02"], "mean": [0.1], "std": [0.2],
    }  # fmt: skip


def _checkpoint(path: Path, in_channels: int) -> Path:
    """A vitseg checkpoint as written before checksums (loads unchecked), made in code."""
    torch.manual_seed(0)
    model = create_model("segformer", in_channels=in_channels, classes=2)
    torch.save(
        {"format": CHECKPOINT_FORMAT, "model": model.meta, "model_state": model.state_dict(),
         "data": {}, "config": {}, "epoch": 1, "best": {}, "history": []},
        path,
    )  # fmt: skip
    return path


def test_model_path_that_is_a_folder_or_takes_other_bands(
    cube: xr.DataArray, tmp_path: Path
) -> None:
    (tmp_path / "run").mkdir()
    _checkpoint(tmp_path / "run" / "best.pt", in_channels=3)
    with pytest.raises(MissingFileError, match=r"is a folder, not a checkpoint file.*best\.pt"):
        predict_cube(tmp_path / "run", cube, tile=32, overlap=8, **CPU)
    # no norm: a checkpoint of 3 bands meets a cube of 4 (was a raw torch RuntimeError)
    with pytest.raises(BandError, match=r"model takes 3 bands but the input has 4"):
        predict_cube(tmp_path / "run" / "best.pt", cube, tile=32, overlap=8, **CPU)


def test_predict_classes_needs_one_model_class_per_channel(cube: xr.DataArray) -> None:
    scene = cube.isel(time=0)
    # a 3-channel model given 2 names: class 2 was silently mapped onto 'built'
    with pytest.raises(ParamsError, match=r"model returns 3 classes but model_classes names 2"):
        predict_classes(tiny_net(), scene, tile=32, model_classes=["mines", "built"])
    with pytest.raises(ParamsError, match=r"\['mines'\] more than once"):
        predict_classes(tiny_net(), scene, tile=32, model_classes=["mines", "mines", "built"])
    with pytest.raises(ParamsError, match=r"tile must be an integer >= 1; got nan"):
        predict_classes(tiny_net(), scene, tile=float("nan"))
    with pytest.raises(DimensionError, match=r"scene must be a \(band, y, x\) DataArray"):
        predict_classes(tiny_net(), scene.rename(y="row"))


@pytest.mark.parametrize(
    ("tiling", "match"),
    [
        (lambda: tile_starts(100, 0, 0), r"tile must be an integer >= 1; got 0"),
        (lambda: tile_starts(100, 32, 32), r"overlap must be smaller than the tile"),
        (lambda: tile_starts(100.5, 32, 8), r"size must be an integer >= 0; got 100\.5"),
        (lambda: window_layout(100, 256, 32, align=0), r"align must be an integer >= 1"),
        (lambda: blend_window(8, 20), r"overlap must be at most the tile \(8 px\); got 20"),
        (lambda: blend_window(-4, 2), r"tile must be an integer >= 1; got -4"),
    ],
    ids=["tile_0", "overlap_is_tile", "size_float", "align_0", "overlap_over_tile", "tile_neg"],
)
def test_tiling_helpers_refuse_impossible_windows(tiling, match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        tiling()


# ----------------------------------------------------------------------------- classify


def test_classify_refuses_logits_and_codes_but_reads_inf_as_nodata() -> None:
    logits = grid_da(np.random.default_rng(1).normal(scale=3, size=(3, 8, 8)).astype("float32"))
    with pytest.raises(DimensionError, match=r"class probabilities in \[0, 1\].*Logits"):
        classify(logits)  # numpy: at once
    cls, _ = classify(logits.chunk(4))  # dask: lazily, where the values are seen
    with pytest.raises(DimensionError, match=r"class probabilities in \[0, 1\].*Logits"):
        cls.values  # noqa: B018
    with pytest.raises(DimensionError, match=r"float probabilities .*got dtype uint8.*open_map"):
        classify(quantise_probs(probs3()))
    # inf is no data, like NaN: class 255 and confidence NaN (hand-computed)
    p = xr.DataArray(np.array([[[0.2, np.inf]], [[0.8, 0.5]]]), dims=("class", "y", "x"))
    cls, conf = classify(p)
    assert cls.values.tolist() == [[1, 255]]
    assert conf.values[0, 0] == np.float32(0.8) and np.isnan(conf.values[0, 1])


@pytest.mark.parametrize(
    ("probs", "nodata", "error", "match"),
    [
        (probs3(), 1, ParamsError, r"nodata must be an integer in 3\.\.255 .*got nodata=1"),
        (probs3(), 256, ParamsError, r"in 3\.\.255 .*got nodata=256"),
        (probs3(), float("nan"), ParamsError, r"got nodata=nan"),
        (probs3().isel({"class": slice(0, 0)}), 255, DimensionError, r"0 classes along"),
        (probs3().isel({"class": [0] * 300}), 255, DimensionError, r"300 classes along"),
    ],
    ids=["nodata_is_a_class", "nodata_256", "nodata_nan", "no_classes", "300_classes"],
)
def test_classify_nodata_and_class_count(probs, nodata, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        classify(probs, nodata=nodata)


# ----------------------------------------------------------------------------- scene maps


@pytest.mark.parametrize("prefix", ["a\0b", ".", ".hidden"])
def test_write_scene_maps_refuses_nul_and_hidden_prefixes(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ParamsError, match="plain file-name prefix"):
        write_scene_maps(probs3(), tmp_path, prefix=prefix)
    assert not list(tmp_path.iterdir())


def test_write_scene_maps_folder_of_the_wrong_kind(tmp_path: Path) -> None:
    afile = tmp_path / "maps.txt"
    afile.write_text("not a folder")
    with pytest.raises(ParamsError, match=r"maps\.txt' is a file, not a folder"):
        write_scene_maps(probs3(), afile, prefix="s1")
    # a folder where a map file goes was read as "no map at ..." (resume)
    (tmp_path / "maps" / "s1_probs.tif").mkdir(parents=True)
    with pytest.raises(ParamsError, match=r"s1_probs\.tif' is a folder, where a file is to be"):
        write_scene_maps(probs3(), tmp_path / "maps", prefix="s1")


@pytest.mark.parametrize(
    ("probs", "error", "match"),
    [
        (quantise_probs(probs3()), DimensionError, r"float probabilities .*got dtype uint8"),
        (probs3().astype("int64"), DimensionError, r"got dtype int64"),
        (probs3(0, 8), DimensionError, r"probs has no pixels"),
        (probs3().assign_coords({"class": ["a", "a", "b"]}), DimensionError, r"distinct classes"),
        (probs3().isel(y=[1, 0, 2, 3, 4, 5, 6, 7]), DimensionError, r"not one regular grid"),
    ],
    ids=["uint8_codes", "int_probs", "zero_size", "class_twice", "unsorted_y"],
)
def test_write_scene_maps_refuses_what_is_not_a_probability_map(
    tmp_path: Path, probs, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        write_scene_maps(probs, tmp_path, prefix="s1")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("exclude", "error", "match"),
    [
        (xr.DataArray(np.zeros((4, 4), bool), dims=("y", "x")), GridMismatchError,
         r"exclude must be a \(y, x\) mask on the grid of probs \(8, 8\)"),
        (grid_da(np.zeros((8, 8), bool)).assign_coords(x=probs3().x + 30), GridMismatchError,
         r"exclude's 'x' coordinates differ"),
        (np.zeros((8, 9), bool), GridMismatchError, r"mask of shape \(8, 8\)"),
        (grid_da(np.full((8, 8), np.nan)), DimensionError, r"boolean mask .*got dtype float64"),
        (grid_da(np.full((8, 8), 2)), DimensionError, r"boolean mask .*got dtype int64"),
    ],
    ids=["other_shape", "shifted_grid", "numpy_other_shape", "float_nan", "int_2"],
)  # fmt: skip
def test_write_scene_maps_exclude_must_be_a_mask_on_the_grid(
    tmp_path: Path, exclude, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        write_scene_maps(probs3(), tmp_path, prefix="s1", exclude=exclude)


def test_write_scene_maps_class_names_with_a_comma_label_the_right_codes(tmp_path: Path) -> None:
    probs = probs3().assign_coords({"class": ["mines, open pit", "built", "vegetation"]})
    out = write_scene_maps(probs, tmp_path, prefix="s1")
    with rasterio.open(out["class"]) as src:  # was split at the comma: 4 names, shifted
        names = json.loads(src.tags(1)["categories"])
    assert names == {"0": "mines, open pit", "1": "built", "2": "vegetation"}
    # a numpy mask of the right shape stays accepted: the top two rows become no data
    mask = np.zeros((8, 8), bool)
    mask[:2] = True
    out = write_scene_maps(probs3(), tmp_path / "m", prefix="s1", exclude=mask)
    cls = open_map(out["class"], chunks=None).values
    assert (cls[:2] == 255).all() and (cls[2:] == 0).all()


# ----------------------------------------------------------------------------- cog


def test_write_cog_paths_of_the_wrong_kind(tmp_path: Path) -> None:
    a = grid_da(np.zeros((8, 8), "float32"))
    with pytest.raises(ParamsError, match=r"is a folder, where a file is to be written.*map\.tif"):
        write_cog(a, tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ParamsError, match=r"afile' is a file, not a folder"):
        write_cog(a, tmp_path / "afile" / "x.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize(
    ("array", "kwargs", "error", "match"),
    [
        ("uint8", {"nodata": 256}, ParamsError, r"whole number in 0\.\.255 for a uint8 .*256"),
        ("uint8", {"nodata": -1}, ParamsError, r"0\.\.255 .*got -1"),
        ("uint8", {"nodata": float("nan")}, ParamsError, r"0\.\.255 .*got nan"),
        ("uint8", {"nodata": 0.5}, ParamsError, r"0\.\.255 .*got 0\.5"),
        ("float32", {"nodata": "x"}, ParamsError, r"nodata must be a number or None"),
        ("float32", {"blocksize": 0}, ParamsError, r"blocksize must be an integer >= 16"),
        ("float32", {"blocksize": -16}, ParamsError, r"blocksize must be an integer >= 16"),
        ("float32", {"blocksize": 100}, ParamsError, r"multiple of 16"),
        ("float32", {"overviews": "no"}, ParamsError, r"overviews must be True or False"),
        ("uint8", {"colormap": {1.5: "#ff0000"}}, ParamsError, r"whole numbers in 0\.\.255"),
        ("uint8", {"colormap": {"a": "#ff0000"}}, ParamsError, r"colormap codes .*\['a'\]"),
        ("bool", {}, DimensionError, r"got dtype bool: a boolean mask\? .*astype\('uint8'\)"),
        ("float16", {}, DimensionError, r"got dtype float16: cast it with .astype\('float32'\)"),
        ("complex64", {}, DimensionError, r"got dtype complex64"),
        ("<U8", {}, DimensionError, r"got dtype <U8"),
    ],
    ids=[
        "nodata_256",
        "nodata_negative",
        "nodata_nan_uint8",
        "nodata_fraction",
        "nodata_str",
        "blocksize_0",
        "blocksize_negative",
        "blocksize_100",
        "overviews_str",
        "colormap_key_fraction",
        "colormap_key_str",
        "bool",
        "float16",
        "complex",
        "str",
    ],
)
def test_write_cog_refuses_what_a_geotiff_cannot_hold(
    tmp_path: Path, array: str, kwargs: dict, error: type, match: str
) -> None:
    a = grid_da(np.arange(64).reshape(8, 8)).astype(array)
    with pytest.raises(error, match=match):
        write_cog(a, tmp_path / "a.tif", **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("select", "match"),
    [
        ({"y": slice(0, 0)}, r"the array has no pixels"),
        ({"y": slice(0, 1)}, r"one pixel wide and stores no transform.*written at \(0, 0\)"),
        ({"y": [1, 0, 2, 3, 4, 5, 6, 7]}, r"'y' coordinates are not one regular grid"),
    ],
    ids=["zero_rows", "one_row_no_transform", "unsorted_y"],
)
def test_write_cog_refuses_arrays_it_would_misplace(
    tmp_path: Path, select: dict, match: str
) -> None:
    a = grid_da(np.zeros((8, 8), "float32"))
    with pytest.raises(DimensionError, match=match):
        write_cog(a.isel(select), tmp_path / "a.tif")
    # a row of a map whose transform is stored keeps its place
    row = a.rio.write_transform(a.rio.transform()).isel(y=slice(2, 3))
    with rasterio.open(write_cog(row, tmp_path / "row.tif")) as src:
        assert src.transform.c == 600_000.0 and src.transform.f == 700_000.0 - 20.0


@pytest.mark.parametrize(
    ("args", "match"),
    [((100, 100, -5), r"blocksize must be an integer >= 1"),
     ((-10, 10, 512), r"height must be an integer >= 1"),
     ((float("nan"), 10, 512), r"height must be an integer >= 1; got nan")],
    ids=["blocksize_negative", "height_negative", "height_nan"],
)  # fmt: skip
def test_overview_factors_never_loop_forever(args: tuple, match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        overview_factors(*args)


def test_quantise_probs_refuses_logits_and_codes_inf_as_nodata() -> None:
    a = grid_da(np.linspace(-3, 3, 64).reshape(8, 8).astype("float32"))
    codes = quantise_probs(a.chunk(4))  # lazy for dask: raised where the values are seen
    with pytest.raises(DimensionError, match=r"probabilities in \[0, 1\] to be quantised.*Logits"):
        codes.values  # noqa: B018
    with pytest.raises(DimensionError, match=r"from 0 to 63.*percentages\? Divide by 100"):
        quantise_probs(grid_da(np.arange(64).reshape(8, 8)))
    with pytest.raises(DimensionError, match=r"must be an xarray\.DataArray; got ndarray"):
        quantise_probs(np.ones(3))  # type: ignore[arg-type]
    with pytest.raises(VitsegError, match=r"step must be 1/n .*got '0\.004'"):
        quantise_probs(grid_da(np.zeros((8, 8))), step="0.004")  # type: ignore[arg-type]
    # +/-inf is no data (255) like NaN; 0.3 -> 75 (was: inf clipped to 1.0, code 250)
    p = xr.DataArray(np.array([0.0, 0.3, np.inf, -np.inf, np.nan], "float32"))
    assert quantise_probs(p).values.tolist() == [0, 75, 255, 255, 255]


def test_quantise_probs_refuses_logits_eagerly_for_numpy() -> None:
    a = grid_da(np.linspace(-3, 3, 64).reshape(8, 8).astype("float32"))
    with pytest.raises(DimensionError, match=r"values from -3 to 3"):
        quantise_probs(a)


def test_open_map_folder_and_chunks(tmp_path: Path) -> None:
    path = write_cog(grid_da(np.zeros((8, 8), "float32")), tmp_path / "maps" / "a.tif")
    with pytest.raises(MissingFileError, match=r"maps' is a folder, not a map file.*\['a\.tif'\]"):
        open_map(tmp_path / "maps")
    for chunks in (0, -5, float("nan"), True, 2.5):
        with pytest.raises(ParamsError, match=r"chunks must be an integer >= 1"):
            open_map(path, chunks=chunks)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_channels": 2.5}, ParamsError, r"in_channels must be an integer; got 2\.5"),
        ({"in_channels": float("nan")}, ParamsError, r"in_channels must be an integer; got nan"),
        ({"in_channels": "3"}, ParamsError, r"in_channels must be an integer; got '3'"),
        ({"classes": 2.7}, ParamsError, r"classes must be an integer; got 2\.7"),
        ({"decoder_segmentation_chanels": 64}, ParamsError,
         r"unknown option\(s\) \['decoder_segmentation_chanels'\].*silently ignore"),
        ({"encoder": "resnet999"}, UnknownModelError, r"encoder='resnet999'.*Wrong encoder name"),
        ({"encoder_weights": "imagenet2"}, UnknownModelError, r"Wrong pretrained weights"),
    ],
    ids=["in_fraction", "in_nan", "in_str", "classes_fraction", "typo_option", "encoder",
         "weights"],
)  # fmt: skip
def test_create_model_refuses_fractions_typos_and_unknown_encoders(
    kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        create_model("segformer", **{"in_channels": 3, **kwargs})


@pytest.fixture(scope="module")
def segformer() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("segformer", in_channels=3, classes=2).eval()


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.zeros(1, 4, 32, 32), BandError, r"model takes 3 bands but the input has 4"),
        (torch.zeros(3, 32, 32), DimensionError, r"non-empty batch \(N, C, H, W\).*x\[None\]"),
        (torch.zeros(0, 3, 32, 32), DimensionError, r"non-empty batch .*\(0, 3, 32, 32\)"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), DimensionError, r"torch\.uint8"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.float64), DimensionError, r"x\.float\(\)"),
        (np.zeros((1, 3, 32, 32), "float32"), DimensionError, r"torch\.from_numpy"),
    ],
    ids=["bands", "no_batch_dim", "empty_batch", "uint8", "float64", "numpy"],
)
def test_model_inputs_are_checked_before_torch_sees_them(
    segformer: torch.nn.Module, x, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        segformer(x)
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float64:
        with pytest.raises(error, match=match):
            predict_logits(segformer, x, bf16=False)


def test_device_helpers_and_models_without_weights() -> None:
    with pytest.raises(VitsegError, match=r"device 'tpu' is not a torch device"):
        bf16_decision("tpu", False)
    with pytest.raises(VitsegError, match=r"model must be a torch\.nn\.Module; got str"):
        prepare_model("unet", "cpu")  # type: ignore[arg-type]
    with pytest.raises(DimensionError, match=r"must be a torch\.Tensor"):
        to_input(np.zeros((1, 3, 8, 8)), torch.device("cpu"))  # type: ignore[arg-type]
    with pytest.raises(VitsegError, match=r"device 'gpu' is not a torch device"):
        autocast_context("gpu")
    with pytest.raises(VitsegError, match=r"'bf16' must be True, False or 'auto'; got 'x'"):
        channels_last(torch.device("cpu"), bf16="x")  # type: ignore[arg-type]
    # a folder as the cpuinfo file: unreadable, so no flags (documented), never an error
    assert cpu_flags(str(Path(__file__).parent)) == frozenset()
    assert amx_available(str(Path(__file__).parent)) is False
    # a model without parameters runs where x is (was StopIteration); padding cropped back
    x = torch.arange(2 * 40 * 40, dtype=torch.float32).reshape(1, 2, 40, 40)
    torch.testing.assert_close(predict_logits(torch.nn.Identity(), x, bf16=False), x)


# ----------------------------------------------------------------------------- train


@pytest.mark.parametrize("classes", [1, 0, float("nan"), "2", True])
def test_mine_class_needs_a_class_count(classes) -> None:
    with pytest.raises(ParamsError, match=r"classes must be an integer >= 2"):
        mine_class(classes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": float("nan")}, r"epochs must be an integer; got nan \(float\)"),
        ({"progress": "no"}, r"progress must be True or False; got 'no'"),
        ({"loss": 5}, r"loss must be a loss name"),
        ({"loss_kwargs": [1]}, r"loss_kwargs must be a mapping"),
        ({"bf16": 1}, r"bf16 must be True, False or 'auto'; got 1"),
    ],
    ids=["epochs_nan", "progress_str", "loss_int", "loss_kwargs_list", "bf16_int"],
)
def test_train_config_types(kwargs: dict, match: str) -> None:
    with pytest.raises(ParamsError, match=match):
        TrainConfig(**kwargs)
    with pytest.raises(ParamsError, match=r"built from a mapping of its keys.*NoneType"):
        TrainConfig.from_dict(None)  # type: ignore[arg-type]


def _tiles(n: int = 2, size: int = 32, value: float = 0.5) -> list:
    rng = np.random.default_rng(0)
    return [
        (torch.from_numpy(rng.normal(size=(3, size, size)).astype("float32")),
         torch.from_numpy(rng.integers(0, 2, (size, size))))
        for _ in range(n)
    ]  # fmt: skip


def test_evaluate_ignores_nan_pixels_and_refuses_fractional_masks(
    segformer: torch.nn.Module,
) -> None:
    ((x, y),) = _tiles(1)
    holed = x.clone()
    holed[0, :8] = float("nan")  # no data in one band of the top 8 rows
    got = evaluate(segformer, [(holed, y)], bf16=False)
    assert got["confusion"].sum() == 24 * 32  # the 256 no-data pixels are not scored
    filled = x.clone()
    filled[0, :8] = 0.0  # what the model sees there (no data = 0); those labels ignored
    want = evaluate(segformer, [(filled, y.masked_fill(torch.arange(32)[:, None] < 8, 255))],
                    bf16=False)  # fmt: skip
    np.testing.assert_array_equal(got["confusion"], want["confusion"])
    with pytest.raises(LabelError, match=r"not whole codes, e\.g\. \[0\.6"):
        evaluate(segformer, [(x, torch.full((32, 32), 0.6))], bf16=False)
    with pytest.raises(ParamsError, match=r"batch_size must be an integer >= 1; got 0"):
        evaluate(segformer, [(x, y)], batch_size=0)
    with pytest.raises(BandError, match=r"model takes 3 bands but the input has 4"):
        evaluate(segformer, [(torch.zeros(4, 32, 32), y)], bf16=False)


CFG = {"epochs": 1, "batch_size": 2, "progress": False, "device": "cpu", "bf16": False}


def test_fit_stops_before_saving_nan_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("segformer", in_channels=3, classes=2)
    nan_tiles = [(torch.full((3, 32, 32), float("nan")), y) for _, y in _tiles(2)]
    with pytest.raises(VitsegError, match=r"training loss of epoch 1 is nan.*NaN/inf"):
        fit(model, nan_tiles, _tiles(1), config=CFG, run_dir=tmp_path)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


def test_fit_labels_and_validation_sequence(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("segformer", in_channels=3, classes=2)
    sevens = [(x, torch.full_like(y, 7)) for x, y in _tiles(2)]
    with pytest.raises(LabelError, match=r"\[7\] outside 0\.\.1"):
        fit(model, sevens, _tiles(1), config=CFG, run_dir=tmp_path / "a")
    with pytest.raises(VitsegError, match=r"val must be a sequence .*list_iterator"):
        fit(model, _tiles(2), iter(_tiles(1)), config=CFG, run_dir=tmp_path / "b")


# ----------------------------------------------------------------------------- runner


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    d = tmp_path / "notebooks"
    d.mkdir()
    (d / "01_make_a.py").write_text(
        '# %% tags=["parameters"]\nreport_dir = "reports/tiny"\nseed = 0\n\n# %%\nprint(seed)\n'
    )
    return d


def test_notebook_folders_and_files_of_the_wrong_kind(nbdir: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("common: {seed: 1}\n")
    # was: "common keys ['seed'] are declared by none of the notebooks []"
    with pytest.raises(MissingFileError, match=r"notebook folder .*nope' does not exist"):
        load_experiment(exp, notebook_dir=tmp_path / "nope")
    with pytest.raises(MissingFileError, match=r"01_make_a\.py' is a file, not a folder"):
        find_notebooks(nbdir / "01_make_a.py")
    with pytest.raises(MissingFileError, match=r"nope\.py' does not exist"):
        notebook_parameters(nbdir / "nope.py")
    (nbdir / "02_folder.py").mkdir()
    with pytest.raises(MissingFileError, match=r"02_folder\.py' is a folder, not a notebook"):
        notebook_parameters(nbdir / "02_folder.py")
    (nbdir / "03_latin1.py").write_bytes(b'# %% tags=["parameters"]\nx = 1\n# R\xe9gion\n')
    with pytest.raises(ParamsError, match=r"03_latin1\.py' is not UTF-8 text \(byte b'\\xe9'"):
        notebook_parameters(nbdir / "03_latin1.py")
    exp.write_text("notebooks: []\n")
    with pytest.raises(ParamsError, match=r"'notebooks' is empty, so nothing would run"):
        load_experiment(exp, notebook_dir=nbdir)
    with pytest.raises(MissingFileError, match=r"library folder .*nope' does not exist"):
        library_digest(tmp_path / "nope")  # was the hash of nothing: everything up to date


def test_resolve_parameters_checks_the_report_dir_override(nbdir: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("common: {seed: 1}\n")
    declared = {"01_make_a": notebook_parameters(nbdir / "01_make_a.py")}
    for bad in (5, ""):
        with pytest.raises(ParamsError, match=r"'report_dir' must be a non-empty str"):
            resolve_parameters(load_experiment(exp, notebook_dir=nbdir), declared=declared,
                               report_dir=bad)  # type: ignore[arg-type]  # fmt: skip


def test_overrides_given_twice_or_as_one_string() -> None:
    with pytest.raises(ParamsError, match=r"--set seed is given twice \(1, then '2'\)"):
        parse_overrides(["seed=1", "seed=2"])
    with pytest.raises(ParamsError, match=r"list of 'KEY=VALUE' strings.*got the string"):
        parse_overrides("seed=1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layout", "error", "match"),
    [
        ({"manifest.json": '{"notebooks": []}'}, CorruptFileError,
         r"'notebooks' section is not a mapping of notebook records \(got list"),
        ({"manifest.json": '{"notebooks": {"01_make_a": "ok"}}'}, CorruptFileError,
         r"manifest is unreadable.*Delete"),
        ({"executed": "a file"}, ParamsError, r"executed is a file where a folder is needed"),
    ],
    ids=["notebooks_list", "record_str", "executed_is_a_file"],
)  # fmt: skip
def test_report_folders_that_are_not_what_the_runner_wrote(
    nbdir: Path, tmp_path: Path, layout: dict, error: type, match: str
) -> None:
    report = tmp_path / "report"
    report.mkdir()
    for name, text in layout.items():
        (report / name).write_text(text)
    exp = tmp_path / "exp.yaml"
    exp.write_text("notebooks: [01_make_a]\n")
    with pytest.raises(error, match=match):
        run_experiment(exp, notebook_dir=nbdir, report_dir=str(report))
    assert not (report / "executed" / "01_make_a.ipynb").exists()


def test_only_given_as_one_string_is_one_name(nbdir: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("notebooks: [01_make_a]\n")
    with pytest.raises(ParamsError, match=r"--only '99' names no notebook"):  # was '9'
        run_experiment(exp, notebook_dir=nbdir, only="99", report_dir=str(tmp_path / "r"))


def test_cli_on_a_manifest_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("notebooks: [01_grid_aoi]\n")
    report = tmp_path / "report"
    report.mkdir()
    (report / "manifest.json").write_text('{"notebooks": ["01_grid_aoi"]}')
    assert main(["run", str(exp), "--report-dir", str(report)]) == 3
    err = capsys.readouterr().err
    assert "vitseg: error: CorruptFileError: the report's manifest is unreadable" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- leftovers


@pytest.mark.parametrize("bad", [5, None, "", "a\0b.pt"], ids=["int", "none", "empty", "nul"])
def test_load_model_refuses_what_is_not_a_path(bad: object) -> None:
    from vitseg.checkpoints import load_model

    with pytest.raises(ParamsError, match="load_model takes the path of a checkpoint file"):
        load_model(bad)  # type: ignore[arg-type]


def test_fit_refuses_a_run_dir_that_is_not_a_path(tmp_path: Path) -> None:
    from vitseg.train import fit

    with pytest.raises(ParamsError, match="run_dir must be a folder path"):
        fit(None, [], None, config={"epochs": 1}, run_dir="a\0b")  # type: ignore[arg-type]


def test_mps_is_refused_alike_by_select_device_trainconfig_and_load_model(tmp_path: Path) -> None:
    # select_device supports cpu and cuda only; TrainConfig and load_model accepted "mps"
    from vitseg.checkpoints import load_model
    from vitseg.models import select_device
    from vitseg.train import TrainConfig

    with pytest.raises(VitsegError, match="'mps'"):
        select_device("mps")
    with pytest.raises(ParamsError, match="device 'mps' is not one of 'auto', 'cpu', 'cuda'"):
        TrainConfig(device="mps")
    with pytest.raises(ParamsError, match="device 'mps' is not one of 'auto', 'cpu', 'cuda'"):
        load_model(tmp_path / "best.pt", device="mps")
