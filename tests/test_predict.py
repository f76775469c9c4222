"""Tests for vitseg.predict: tiled == whole-array, grid, no-data, models, classes, scene maps.

COG writing and reading are tested in test_cog.py, halo chunks and read plans in
test_daskplan.py.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import torch
import xarray as xr
from _predict_helpers import BANDS, CRSS, grid_da, make_cube, tiny_net, whole
from rio_cogeo.cogeo import cog_validate

from vitseg.errors import BandError, DimensionError, MissingCRSError, VitsegError
from vitseg.predict import (
    blend_window,
    classify,
    open_map,
    predict_cube,
    tile_starts,
    window_layout,
    write_scene_maps,
)


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 4, 96, 80)).astype("float32")


def test_tile_starts_cover_everything() -> None:
    assert tile_starts(32, 32, 8) == [0]
    assert tile_starts(20, 32, 8) == [0]
    starts = tile_starts(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 68 and np.all(np.diff(starts) <= 24)


@pytest.mark.parametrize("tile", [64, 96, 256, 1024])
@pytest.mark.parametrize("overlap", [0, 8, 32])
def test_window_layout_covers_with_the_overlap_and_no_more_windows(tile: int, overlap: int) -> None:
    for size in [*range(1, 300, 7), 959, 960, 992, 1024, 1056, 1088, 1120, 2048]:
        side, starts = window_layout(size, tile, overlap)
        assert side <= tile and side % 32 == 0
        assert len(starts) == len(tile_starts(size, tile, overlap))  # never more windows
        assert starts[0] == 0 and starts[-1] + side >= size  # every pixel covered
        gaps = np.diff(starts)
        assert (side - gaps >= overlap).all()  # neighbours share at least the overlap
        if len(starts) > 1:
            assert side >= 2 * overlap


def test_window_layout_saves_pixels_and_keeps_odd_tiles() -> None:
    assert window_layout(1056, 1024, 32) == (544, [0, 512])
    assert window_layout(150, 1024, 32) == (160, [0])
    assert window_layout(1152, 256, 32) == (256, tile_starts(1152, 256, 32))
    assert window_layout(70, 48, 12) == (48, tile_starts(70, 48, 12))  # 48 % 32: fixed size


def test_blend_window_shape() -> None:
    w = blend_window(32, 16)
    assert w[:4].tolist() == [0, 0, 0, 0] and w[12:20].tolist() == [1.0] * 8
    assert np.all(np.diff(w[:16]) >= 0)
    assert blend_window(8, 4, taper_start=False)[0] == 1.0
    assert blend_window(8, 0).tolist() == [1.0] * 8


@pytest.mark.parametrize(
    ("tile", "overlap", "chunk"),
    [
        (32, 16, 40),
        (32, 16, None),
        (48, 12, 64),
        (32, 16, 1000),
        (64, 32, 30),
        (128, 16, None),  # windows shrink to the blocks
        (128, 16, 40),
        (96, 16, 60),
    ],
)
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_tiled_equals_whole_away_from_border(
    values: np.ndarray, tile: int, overlap: int, chunk: int | None, backing: str
) -> None:
    net = tiny_net()
    cube = make_cube(values, dask_chunks=48 if backing == "dask" else None)
    probs = predict_cube(
        net, cube, tile=tile, overlap=overlap, batch_size=3, chunk_size=chunk,
        device="cpu", bf16=False,
    )  # fmt: skip
    assert isinstance(probs.data, da.Array)
    assert probs.dims == ("time", "class", "y", "x") and probs.shape == (2, 3, 96, 80)
    got = probs.values
    want = whole(net, values)
    b = 4  # the net's receptive radius is 3 px
    np.testing.assert_allclose(got[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=2e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_no_overlap_tiles_still_cover_every_pixel(values: np.ndarray) -> None:
    probs = predict_cube(
        tiny_net(), make_cube(values), tile=32, overlap=0, device="cpu", bf16=False
    )
    assert np.isfinite(probs.values).all()


@pytest.mark.parametrize("crs", list(CRSS))
def test_output_on_exact_input_grid_and_bright_square(crs: str) -> None:
    vals = np.zeros((1, 4, 90, 70), "float32")
    vals[0, 2, 37:45, 29:51] = 1.0  # bright square in B04, crossing chunk and tile edges
    net = torch.nn.Conv2d(4, 3, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.weight[0, 2] = 10.0  # class 0 ("mines") logit = 10 * B04
        net.bias[1] = 5.0  # class 1 ("built") elsewhere
    cube = make_cube(vals, crs, dask_chunks=32)
    probs = predict_cube(net, cube, tile=32, overlap=16, device="cpu", bf16=False)
    cls, conf = classify(probs.isel(time=0))
    square = np.zeros((90, 70), bool)
    square[37:45, 29:51] = True
    np.testing.assert_array_equal(cls.values == 0, square)
    xr.testing.assert_equal(probs["x"], cube["x"])
    xr.testing.assert_equal(probs["y"], cube["y"])
    assert probs.rio.crs == cube.rio.crs
    assert probs.rio.transform() == cube.rio.transform()
    assert cls.rio.crs == cube.rio.crs
    assert float(conf.min()) > 0.33


def test_nan_stays_nan(values: np.ndarray) -> None:
    vals = values.copy()
    vals[0, 1, 10:20, 30:60] = np.nan  # one band missing = no-data
    vals[1, :, :, :40] = np.nan  # half a scene (e.g. swath edge), whole chunks empty
    cube = make_cube(vals, dask_chunks=32)
    probs = predict_cube(tiny_net(), cube, tile=32, overlap=16, device="cpu", bf16=False).values
    nodata = ~np.isfinite(vals).all(axis=1)
    assert np.isnan(probs).all(axis=1)[nodata].all()
    assert np.isfinite(probs).all(axis=1)[~nodata].all()
    cls, conf = classify(xr.DataArray(probs, dims=("time", "class", "y", "x")))
    assert (cls.values[nodata] == 255).all() and np.isnan(conf.values[nodata]).all()


def test_three_dim_cube_and_norm_with_band_order(values: np.ndarray) -> None:
    net = tiny_net()
    cube3 = make_cube(values).isel(time=0)
    mean, std = [0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 0.5, 4.0]
    norm = {"bands": ["B08", "B04", "B03", "B02"], "mean": mean, "std": std}
    probs = predict_cube(net, cube3, tile=32, overlap=16, norm=norm, device="cpu", bf16=False)
    assert probs.dims == ("class", "y", "x")
    assert list(probs["class"].values) == ["mines", "built", "vegetation"]
    x = (values[:1, ::-1] - np.array(mean)[None, :, None, None]) / np.array(std)[
        None, :, None, None
    ]
    want = whole(net, x.astype("float32"))[0]
    np.testing.assert_allclose(probs.values[:, 4:-4, 4:-4], want[:, 4:-4, 4:-4], atol=2e-5)


def test_bf16_autocast_close_to_fp32(values: np.ndarray) -> None:
    cube = make_cube(values)
    p32 = predict_cube(tiny_net(), cube, tile=32, overlap=16, device="cpu", bf16=False).values
    p16 = predict_cube(tiny_net(), cube, tile=32, overlap=16, device="cpu", bf16=True).values
    np.testing.assert_allclose(p16, p32, atol=0.05)


def test_channels_last_batches_equal_channels_first(monkeypatch, values: np.ndarray) -> None:
    """The bands-last working copy (bf16 CPUs) gives the channels-first answer (fp32 here)."""
    import vitseg.models

    vals = values.copy()
    vals[0, 2, 5:9, 60:70] = np.nan
    cube = make_cube(vals).isel(x=slice(0, 20))  # narrower than a tile: padded
    norm = {"mean": [0.1, 0.2, 0.3, 0.4], "std": [1.0, 2.0, 0.5, 4.0]}
    kw = {"tile": 32, "overlap": 16, "norm": norm, "device": "cpu", "bf16": False}
    want = predict_cube(tiny_net(), cube, **kw).values
    monkeypatch.setattr(vitseg.models, "channels_last", lambda *a, **k: True)
    got = predict_cube(tiny_net(), cube, **kw).values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_batches_are_balanced(monkeypatch) -> None:
    """25 windows with batch_size 8 go as 7 + 6 + 6 + 6 (no batch of one)."""
    import vitseg.predict as vp

    sizes: list[int] = []
    forward = vp._forward

    def spy(model, dev, use16, batch, **kw):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return forward(model, dev, use16, batch, **kw)

    monkeypatch.setattr(vp, "_forward", spy)
    vals = np.random.default_rng(5).normal(size=(1, 4, 128, 128)).astype("float32")
    probs = predict_cube(
        tiny_net(), make_cube(vals), tile=32, overlap=8, batch_size=8, chunk_size=128,
        classes=["mines", "built", "vegetation"], device="cpu", bf16=False,
    )  # fmt: skip
    assert np.isfinite(probs.values).all()
    assert sorted(sizes, reverse=True) == [7, 6, 6, 6]


def test_model_weights_are_one_graph_key(values: np.ndarray) -> None:
    probs = predict_cube(
        tiny_net(), make_cube(values, dask_chunks=32), tile=32, overlap=16, chunk_size=32
    )
    keys = [k for k in dict(probs.data.__dask_graph__()) if "vitseg-model" in str(k)]
    assert len(keys) == 1
    assert probs.data.npartitions == 2 * 3 * 3


def test_model_is_serialised_once_until_its_weights_change(monkeypatch) -> None:
    import vitseg.predict as vp

    net = tiny_net()
    first = vp._payload(net)
    saves: list[int] = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda *a, **k: (saves.append(1), real_save(*a, **k)))
    assert vp._payload(net) is first and not saves  # cached: no second torch.save
    with torch.no_grad():
        net[0].bias.add_(1.0)  # an in-place change (as an optimiser step makes)
    changed = vp._payload(net)
    assert changed.token != first.token and len(saves) == 1
    net.load_state_dict(tiny_net(seed=0).state_dict())  # back to the first weights
    assert vp._payload(net).token == first.token


def test_classify_matches_numpy_argmax_with_ties_and_nan() -> None:
    rng = np.random.default_rng(3)
    p = rng.integers(0, 4, size=(2, 3, 17, 19)).astype("float32") / 4  # many ties
    p[0, 1, 3, 4] = np.nan
    p[1, :, 5:9, 2] = np.nan
    arr = xr.DataArray(da.from_array(p, chunks=(1, 3, 8, 8)), dims=("time", "class", "y", "x"))
    cls, conf = classify(arr)
    valid = np.isfinite(p).all(axis=1)
    filled = np.nan_to_num(p, nan=-1)
    want = np.where(valid, filled.argmax(axis=1), 255)
    np.testing.assert_array_equal(cls.values, want)
    np.testing.assert_array_equal(conf.values, np.where(valid, filled.max(axis=1), np.nan))
    assert (
        cls.dtype == np.uint8
        and conf.dtype == np.float32
        and cls.dims == arr.dims[:1] + arr.dims[2:]
    )


def test_concurrent_block_tasks_share_the_cores() -> None:
    import contextlib
    import threading

    import vitseg._daskplan as dp
    import vitseg.predict as vp

    main_threads = torch.get_num_threads()
    seen: dict[str, int] = {}

    def task(name: str, others: int) -> None:
        with contextlib.ExitStack() as stack:
            for _ in range(others + 1):
                stack.enter_context(dp._busy())
            dp._share_cores(torch)
            seen[name] = torch.get_num_threads()

    for name, others in (("alone", 0), ("pair", 1)):
        th = threading.Thread(target=task, args=(name, others))
        th.start()
        th.join()
    base = dp._BASE_THREADS
    assert base is not None
    assert seen == {"alone": base, "pair": max(1, base // 2)}
    assert torch.get_num_threads() == main_threads and dp._ACTIVE == 0
    # a forward outside any block task (the caller's thread) leaves its thread count alone
    torch.set_num_threads(1)
    try:
        vp._forward(tiny_net(), torch.device("cpu"), False, np.zeros((1, 4, 8, 8), "float32"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(main_threads)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tile": 32, "overlap": 20}, VitsegError, "overlap must be in"),
        ({"batch_size": 0}, VitsegError, "batch_size"),
        ({"norm": {"mean": [0.0]}}, BandError, "'mean' and 'std'"),
        ({"norm": {"mean": [0.0], "std": [1.0]}}, BandError, "1 means"),
        ({"norm": {"bands": ["B11"] * 4, "mean": [0] * 4, "std": [1] * 4}}, BandError, "lacks"),
    ],
)
def test_predict_errors(values: np.ndarray, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        predict_cube(tiny_net(), make_cube(values), **{"tile": 32, "overlap": 16, **kwargs})


def test_predict_dim_and_crs_errors(values: np.ndarray) -> None:
    cube = make_cube(values)
    with pytest.raises(DimensionError, match="cube dims"):
        predict_cube(tiny_net(), cube.transpose("band", "time", "y", "x"))
    with pytest.raises(MissingCRSError, match="no CRS"):
        predict_cube(tiny_net(), cube.drop_vars("spatial_ref"))
    with pytest.raises(VitsegError, match=r"nn\.Module or a checkpoint"):
        predict_cube(object(), cube)


def test_classify_errors() -> None:
    with pytest.raises(DimensionError, match="'class' dim"):
        classify(xr.DataArray(np.zeros((2, 2)), dims=("y", "x")))


def _poisoned(shape: tuple[int, ...]) -> da.Array:
    def boom(block: np.ndarray) -> np.ndarray:
        raise RuntimeError("recomputed a finished scene")

    return da.zeros(shape, chunks=shape, dtype="float32").map_blocks(boom, dtype="float32")


def test_write_scene_maps_and_resume(tmp_path, values: np.ndarray) -> None:
    probs = predict_cube(
        tiny_net(), make_cube(values), tile=32, overlap=16, device="cpu", bf16=False
    )
    scene = probs.isel(time=0)
    exclude = xr.zeros_like(scene.isel({"class": 0}), dtype=bool).compute()
    exclude[:5, :] = True
    out = write_scene_maps(scene, tmp_path, prefix="S2A_1", exclude=exclude)
    assert {k: p.name for k, p in out.items()} == {
        "probs": "S2A_1_probs.tif", "class": "S2A_1_class.tif",
        "confidence": "S2A_1_confidence.tif",
    }  # fmt: skip
    for p in out.values():
        assert cog_validate(str(p))[0]
    cls = open_map(out["class"], chunks=None)
    assert (cls.values[:5] == 255).all() and (cls.values[5:] < 3).all()
    want_cls, _ = classify(scene)
    np.testing.assert_array_equal(cls.values[5:], want_cls.values[5:])
    mtimes = {k: p.stat().st_mtime_ns for k, p in out.items()}
    # Resume: finished scene is not recomputed (the poisoned array would raise).
    poisoned = scene.copy(data=_poisoned(scene.shape))
    again = write_scene_maps(poisoned, tmp_path, prefix="S2A_1")
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == mtimes
    # A killed run that wrote only the probabilities: class/confidence come from that file.
    out["class"].unlink()
    write_scene_maps(poisoned, tmp_path, prefix="S2A_1")
    assert out["class"].exists() and out["probs"].stat().st_mtime_ns == mtimes["probs"]
    with pytest.raises(RuntimeError, match="recomputed"):
        write_scene_maps(poisoned, tmp_path, prefix="S2A_1", overwrite=True)
    assert out["probs"].stat().st_mtime_ns == mtimes["probs"]  # failed write left it intact


@pytest.mark.parametrize("chunks", [None, 40])
def test_scene_maps_store_uint8_probabilities_that_decode_within_half_a_step(
    tmp_path, values: np.ndarray, chunks: int | None
) -> None:
    probs = predict_cube(
        tiny_net(), make_cube(values), tile=32, overlap=16, device="cpu", bf16=False
    ).isel(time=0)
    want = probs.compute()
    exclude = xr.zeros_like(want.isel({"class": 0}), dtype=bool)
    exclude[:, :7] = True
    out = write_scene_maps(probs, tmp_path / "q", prefix="s", exclude=exclude)
    full = write_scene_maps(probs, tmp_path / "f", prefix="s", exclude=exclude, dtype="float32")
    for name in ("probs", "confidence"):
        with rasterio.open(out[name]) as src:
            assert src.dtypes[0] == "uint8" and src.nodata == 255
            assert set(src.scales) == {0.004} and set(src.offsets) == {0.0}
            codes = src.read()
        assert (codes[..., :7] == 255).all()
        assert codes[..., 7:].max() <= 250
        with rasterio.open(full[name]) as src:
            assert src.dtypes[0] == "float32"
        assert cog_validate(str(out[name]))[0]
    back = open_map(out["probs"], chunks=chunks)
    assert back.dtype == "float32" and list(back["class"].values) == list(want["class"].values)
    assert isinstance(back.data, da.Array) == (chunks is not None)
    got, exact = back.values, open_map(full["probs"], chunks=chunks).values
    assert np.isnan(got[..., :7]).all() and np.isnan(exact[..., :7]).all()
    np.testing.assert_allclose(got[..., 7:], want.values[..., 7:], rtol=0, atol=0.002 + 1e-6)
    np.testing.assert_array_equal(exact[..., 7:], want.values[..., 7:])
    np.testing.assert_allclose(
        got[..., 7:] * 250, np.round(got[..., 7:] * 250), atol=1e-4
    )  # on the grid
    conf = open_map(out["confidence"], chunks=chunks).values
    np.testing.assert_array_equal(conf[:, 7:], got[:, :, 7:].max(axis=0))  # max of the codes
    cls_q, cls_f = (open_map(o["class"], chunks=None).values for o in (out, full))
    np.testing.assert_array_equal(cls_q, cls_f)  # classes from the unrounded probabilities
    assert (open_map(out["class"], chunks=None).values[:, :7] == 255).all()
    with pytest.raises(VitsegError, match="dtype must be"):
        write_scene_maps(probs, tmp_path / "e", prefix="s", dtype="float16")  # type: ignore[arg-type]


def test_write_scene_maps_dims_error(tmp_path) -> None:
    with pytest.raises(DimensionError, match="one scene"):
        write_scene_maps(grid_da(np.zeros((4, 4))), tmp_path, prefix="x")


def test_checkpoint_path_model(tmp_path, values: np.ndarray) -> None:
    with pytest.raises(VitsegError, match="does not exist"):
        predict_cube(tmp_path / "missing.pt", make_cube(values))


def test_predict_with_threads_scheduler_is_deterministic(values: np.ndarray) -> None:
    cube = make_cube(values, dask_chunks=40)
    p = predict_cube(tiny_net(), cube, tile=32, overlap=16, device="cpu", bf16=False)
    with dask.config.set(scheduler="threads", num_workers=2):
        a = p.values
    with dask.config.set(scheduler="sync"):
        b = p.values
    np.testing.assert_array_equal(a, b)


def test_free_memory_is_handed_back_once_per_write(tmp_path, monkeypatch, values) -> None:
    import vitseg.cog as vc

    calls = []
    monkeypatch.setattr(vc, "_release_free_memory", lambda: calls.append(1))
    probs = predict_cube(tiny_net(), make_cube(values, dask_chunks=40).isel(time=0),
                         tile=32, overlap=16, device="cpu", bf16=False)  # fmt: skip
    write_scene_maps(probs, tmp_path, prefix="s")
    assert calls == [1]  # one pass for the three layers, one release
    monkeypatch.undo()
    vc._release_free_memory()  # the real one: glibc's malloc_trim here, a no-op elsewhere
    assert vc._MALLOC_TRIM is not None


def test_write_scene_maps_computes_probabilities_once(tmp_path, values: np.ndarray) -> None:
    calls = []

    def count(block: np.ndarray) -> np.ndarray:
        if block.size:  # not dask's meta probe
            calls.append(block.shape)
        return block

    probs = predict_cube(
        tiny_net(), make_cube(values), tile=32, overlap=16, chunk_size=48, device="cpu",
        bf16=False,
    ).isel(time=0)  # fmt: skip
    counted = probs.copy(data=probs.data.map_blocks(count, dtype="float32"))
    out = write_scene_maps(counted, tmp_path, prefix="once")
    assert len(calls) == probs.data.npartitions == 4  # each chunk once for all three files
    assert all(cog_validate(str(p))[0] for p in out.values())
    # the three COGs, and the class map's category names (GDAL PAM sidecar), nothing else
    expected = [p.name for p in out.values()] + [f"{out['class'].name}.aux.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)


# --- GIS-ready COGs and input checks (issues 19 and 22) ----------------------------------


def _aux_categories(path) -> list[str]:
    """Category names GDAL reads from the COG's PAM sidecar (``<path>.aux.xml``)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(f"{path}.aux.xml").getroot()
    return [c.text or "" for c in root.iter("Category")]


def test_scene_class_map_has_class_colours_and_named_bands(tmp_path, values: np.ndarray) -> None:
    probs = predict_cube(
        tiny_net(), make_cube(values), tile=32, overlap=16, device="cpu", bf16=False
    ).isel(time=0)
    out = write_scene_maps(probs, tmp_path, prefix="s")
    with rasterio.open(out["class"]) as src:
        cmap = src.colormap(1)
        assert [cmap[i] for i in range(3)] == [(217, 95, 2, 255), (117, 112, 179, 255),
                                               (27, 158, 119, 255)]  # fmt: skip
        assert src.descriptions == ("class",)
    assert _aux_categories(out["class"]) == ["mines", "built", "vegetation"]
    with rasterio.open(out["probs"]) as src:
        assert src.descriptions == ("mines", "built", "vegetation")
    with rasterio.open(out["confidence"]) as src:
        assert src.descriptions == ("confidence",)


@pytest.mark.parametrize(
    ("mean", "std", "match"),
    [
        ([0.0, np.nan, 0.0, 0.0], [1.0] * 4, r"band\(s\) B03 \(mean nan"),
        ([0.0] * 4, [1.0, 1.0, 1.0, np.nan], r"B08 \(mean 0\.0, std nan\)"),
        ([0.0] * 4, [1.0, np.inf, 1.0, 1.0], r"B03 .*std inf"),
        ([0.0] * 4, [1.0, 1.0, 0.0, 1.0], r"B04 .*std 0\.0.*finite and > 0"),
    ],
)
def test_nan_or_zero_norm_statistics_are_refused(
    values: np.ndarray, mean: list, std: list, match: str
) -> None:
    norm = {"bands": BANDS, "mean": mean, "std": std}
    with pytest.raises(BandError, match=match):
        predict_cube(tiny_net(), make_cube(values), tile=32, overlap=16, norm=norm)


def test_band_count_differs_from_the_model(values: np.ndarray) -> None:
    with pytest.raises(BandError, match=r"model takes 5 bands but the cube has 4"):
        predict_cube(tiny_net(n_bands=5), make_cube(values), tile=32, overlap=16)
    # with norm the bands are selected by name: 3 of the cube's 4 bands
    norm = {"bands": ["B04", "B03", "B02"], "mean": [0.0] * 3, "std": [1.0] * 3}
    p = predict_cube(tiny_net(n_bands=3), make_cube(values), tile=32, overlap=16, norm=norm,
                     device="cpu", bf16=False)  # fmt: skip
    assert p.sizes["class"] == 3


@pytest.mark.parametrize("chunks", [None, 40])
def test_write_scene_maps_refuses_logits(tmp_path, chunks: int | None) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(3, 48, 48)).astype("float32")
    arr = grid_da(logits)
    if chunks:
        arr = arr.chunk({"y": chunks, "x": chunks})
    with pytest.raises(VitsegError, match=r"must be class probabilities.*softmax"):
        write_scene_maps(arr, tmp_path, prefix="logits")
    # values within [0, 1] that do not sum to 1 are caught too
    with pytest.raises(VitsegError, match=r"class sum of 0\.6"):
        write_scene_maps(grid_da(np.full((3, 48, 48), 0.2, "float32")), tmp_path, prefix="p")
    assert not list(tmp_path.iterdir())
    # true probabilities (with no-data) pass
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    p[:, :3] = np.nan
    write_scene_maps(grid_da(p), tmp_path, prefix="ok")


@pytest.mark.parametrize("prefix", ["../x", "a/b", "a\\b", "..", ""])
def test_write_scene_maps_refuses_prefixes_leaving_the_folder(tmp_path, prefix: str) -> None:
    from vitseg.errors import ParamsError

    probs = grid_da(np.full((3, 8, 8), 1 / 3, "float32"))
    with pytest.raises(ParamsError, match="plain file-name prefix"):
        write_scene_maps(probs, tmp_path / "maps", prefix=prefix)
    assert not list(tmp_path.iterdir())


def test_predict_classes_maps_the_model_classes_onto_vitseg_codes() -> None:
    from vitseg.predict import predict_classes

    vals = np.random.default_rng(5).normal(size=(1, 4, 70, 90)).astype("float32")
    scene = make_cube(vals).isel(time=0)
    net = tiny_net(n_classes=2)
    plain = classify(predict_cube(net, scene, tile=64, overlap=16))[0].values
    got = predict_classes(net, scene, tile=256, overlap=16, model_classes=["mines", "vegetation"])
    assert got.dtype == np.uint8 and got.shape == (70, 90)
    np.testing.assert_array_equal(got.values, np.where(plain == 1, 2, plain))  # vegetation = 2
    with pytest.raises(VitsegError, match=r"\['forest'\] are not among"):
        predict_classes(net, scene, model_classes=["mines", "forest"])
