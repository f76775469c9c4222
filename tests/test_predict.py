"""Tests for vitseg.predict: tiled == whole-array, grid alignment, no-data, COGs, resume."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import torch
import xarray as xr
from rio_cogeo.cogeo import cog_validate

from vitseg.errors import BandError, DimensionError, MissingCRSError, VitsegError
from vitseg.predict import (
    blend_window,
    classify,
    open_map,
    predict_cube,
    quantise_probs,
    tile_starts,
    window_layout,
    write_cog,
    write_scene_maps,
)

BANDS = ["B02", "B03", "B04", "B08"]
CRSS = {"EPSG:32630": (600_000.0, 700_000.0, 10.0), "EPSG:4326": (-1.8, 6.25, 0.0001)}


def tiny_net(n_bands: int = 4, n_classes: int = 3, seed: int = 0) -> torch.nn.Module:
    """Three 3x3 convolutions: receptive radius 3 px, translation-invariant, deterministic."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(n_bands, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, n_classes, 3, padding=1),
    ).eval()


def make_cube(
    values: np.ndarray, crs: str = "EPSG:32630", *, dask_chunks: int | None = None
) -> xr.DataArray:
    x0, y0, res = CRSS[crs]
    _, nb, h, w = values.shape
    data = (
        da.from_array(values, chunks=(1, -1, dask_chunks, dask_chunks)) if dask_chunks else values
    )
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(["2021-01-05", "2021-02-10"][: values.shape[0]], "datetime64[ns]"),
            "band": BANDS[:nb],
            "y": y0 - res * (np.arange(h) + 0.5),
            "x": x0 + res * (np.arange(w) + 0.5),
        },
    )
    return cube.rio.write_crs(crs)


def whole(net: torch.nn.Module, values: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = torch.softmax(net(torch.from_numpy(values)), dim=1)
    return out.numpy()


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

    import vitseg.predict as vp

    main_threads = torch.get_num_threads()
    seen: dict[str, int] = {}

    def task(name: str, others: int) -> None:
        with contextlib.ExitStack() as stack:
            for _ in range(others + 1):
                stack.enter_context(vp._busy())
            vp._share_cores(torch)
            seen[name] = torch.get_num_threads()

    for name, others in (("alone", 0), ("pair", 1)):
        th = threading.Thread(target=task, args=(name, others))
        th.start()
        th.join()
    base = vp._BASE_THREADS
    assert base is not None
    assert seen == {"alone": base, "pair": max(1, base // 2)}
    assert torch.get_num_threads() == main_threads and vp._ACTIVE == 0
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


def _grid_da(arr: np.ndarray, crs: str = "EPSG:32630") -> xr.DataArray:
    x0, y0, res = CRSS[crs]
    h, w = arr.shape[-2:]
    dims = ("y", "x") if arr.ndim == 2 else ("class", "y", "x")
    coords = {"y": y0 - res * (np.arange(h) + 0.5), "x": x0 + res * (np.arange(w) + 0.5)}
    if arr.ndim == 3:
        coords["class"] = ["mines", "built", "vegetation"][: arr.shape[0]]
    return xr.DataArray(arr, dims=dims, coords=coords).rio.write_crs(crs)


@pytest.mark.parametrize("crs", list(CRSS))
def test_write_cog_is_valid_cog(tmp_path, crs: str) -> None:
    rng = np.random.default_rng(1)
    cls = _grid_da(rng.integers(0, 3, (600, 520)).astype("uint8"), crs)
    cls[:50, :50] = 255
    path = write_cog(cls.chunk(200), tmp_path / "c" / "class.tif", nodata=255, blocksize=256)
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.nodata == 255 and src.crs.to_string() == crs
        assert src.overviews(1) and src.profile["blockxsize"] == 256
        assert src.compression.name.lower() == "deflate"
        np.testing.assert_array_equal(src.read(1), cls.values)
        assert src.transform.almost_equals(cls.rio.transform())
    assert sorted(p.name for p in path.parent.iterdir()) == ["class.tif"]  # no leftovers


def test_write_cog_probabilities_roundtrip(tmp_path) -> None:
    probs = _grid_da(np.random.default_rng(2).random((3, 300, 280)).astype("float32"))
    probs[:, :10] = np.nan
    path = write_cog(probs, tmp_path / "p.tif", nodata=float("nan"), resampling="average")
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:  # float layers: ZSTD with the floating-point predictor
        assert src.compression.name.lower() == "zstd"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    back = open_map(path, chunks=128)
    assert list(back["class"].values) == ["mines", "built", "vegetation"]
    xr.testing.assert_allclose(back.drop_vars("spatial_ref"), probs.drop_vars("spatial_ref"))
    old = write_cog(probs, tmp_path / "d.tif", nodata=float("nan"), compress="deflate")
    with rasterio.open(old) as src:
        assert src.compression.name.lower() == "deflate"
    xr.testing.assert_allclose(
        open_map(old).drop_vars("spatial_ref"), back.drop_vars("spatial_ref")
    )
    with pytest.raises(VitsegError, match="compress must be one of"):
        write_cog(probs, tmp_path / "e.tif", compress="lzw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "resampling"),
    [("codes", "average"), ("float", "average"), ("classes", "nearest")],
)
def test_overviews_built_in_the_pass_match_the_whole_image(
    tmp_path, monkeypatch, kind: str, resampling: str
) -> None:
    """Chunks on multiples of the largest factor: overview levels computed chunk by chunk
    equal those of the whole image, and GDAL's own (chunks off the factors) within a step."""
    import vitseg.predict as vp

    rng = np.random.default_rng(5)
    if kind == "float":
        arr = rng.random((2, 600, 520)).astype("float32")
        arr[:, 100:140, 30:90], nodata = np.nan, float("nan")
    else:
        top = 250 if kind == "codes" else 3
        arr, nodata = rng.integers(0, top, (2, 600, 520)).astype("uint8"), 255
        arr[:, 100:140, 30:90] = 255
        arr[0, 598:, 515:] = 255  # a ragged edge group with no valid pixel
    img = _grid_da(arr)
    calls = []
    real = vp._reduce_window
    monkeypatch.setattr(vp, "_reduce_window", lambda *a: calls.append(1) or real(*a))
    path = write_cog(img.chunk({"y": 200, "x": 200}), tmp_path / "in_[pass].tif",
                     nodata=nodata, resampling=resampling, blocksize=256)  # fmt: skip
    assert calls and cog_validate(str(path))[0]
    n = len(calls)
    gdal = write_cog(img.chunk({"y": 199, "x": 199}), tmp_path / "gdal.tif",
                     nodata=nodata, resampling=resampling, blocksize=256)  # fmt: skip
    assert len(calls) == n  # 199 px chunks: GDAL builds the overviews after the pass
    # no staging file or overview level left behind (a glob would miss "[pass]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gdal.tif", "in_[pass].tif"]
    want = real(arr, [2, 4], resampling, nodata)
    for level, expected in enumerate(want):
        with rasterio.open(path, overview_level=level) as src:
            got = src.read()
        with rasterio.open(gdal, overview_level=level) as src:
            theirs = src.read()
        np.testing.assert_array_equal(got, expected)
        assert got.shape == theirs.shape == (2, -(-600 // 2 ** (level + 1)), 260 // 2**level)
        if kind == "classes":  # both take each group's first pixel
            np.testing.assert_array_equal(got, theirs)
        elif kind == "codes":  # GDAL averages level 4 from level 2's rounded codes and
            np.testing.assert_array_equal(got == 255, theirs == 255)  # their no-data count
            clean = vp._sum_groups((arr == 255).astype("float32"), 2 ** (level + 1)) == 0
            diff = np.abs(got.astype(int) - theirs.astype(int))
            assert clean.mean() > 0.9 and diff[clean].max() <= level + 1
        else:
            np.testing.assert_allclose(got, theirs, atol=1e-6, equal_nan=True)


def test_a_failed_write_leaves_no_staging_or_overview_levels(tmp_path) -> None:
    img = _grid_da(np.zeros((600, 520), "uint8")).chunk({"y": 200, "x": 200})

    def boom(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info and block_info[0]["chunk-location"] == (2, 2):
            raise RuntimeError("disk full")
        return block

    bad = img.copy(data=img.data.map_blocks(boom, dtype="uint8"))
    with pytest.raises(RuntimeError, match="disk full"):
        write_cog(bad, tmp_path / "c.tif", nodata=255, blocksize=256)
    assert not list(tmp_path.iterdir())


def test_open_map_chunks_follow_the_file_tiles(tmp_path) -> None:
    """A chunk side is rounded to whole internal tiles (no tile decoded for two chunks)."""
    cls = _grid_da(np.zeros((1100, 1030), "uint8"))
    path = write_cog(cls, tmp_path / "c.tif", nodata=255, overviews=False, blocksize=512)
    assert open_map(path, chunks=1088).chunks == ((1024, 76), (1024, 6))
    assert open_map(path, chunks=300).chunks == ((300, 300, 300, 200), (300, 300, 300, 130))


def test_write_cog_errors(tmp_path) -> None:
    a = _grid_da(np.zeros((4, 4), "uint8"))
    with pytest.raises(DimensionError, match="write_cog needs dims"):
        write_cog(a.expand_dims(t=2, b=1), tmp_path / "a.tif")
    with pytest.raises(MissingCRSError):
        write_cog(a.drop_vars("spatial_ref"), tmp_path / "a.tif")
    assert not list(tmp_path.iterdir())


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


def test_quantise_probs_rounds_and_keeps_nan() -> None:
    p = xr.DataArray(np.array([0.0, 0.0019, 0.0021, 0.5, 0.999, 1.0, np.nan], "float32"))
    q = quantise_probs(p)
    assert q.dtype == "uint8" and q.values.tolist() == [0, 0, 1, 125, 250, 250, 255]
    assert q.attrs["scale_factor"] == 0.004
    lazy = quantise_probs(p.chunk(3))
    assert isinstance(lazy.data, da.Array) and lazy.values.tolist() == q.values.tolist()
    assert quantise_probs(p, step=0.01).values.tolist()[:4] == [0, 0, 0, 50]
    for bad in (0.001, 0.0, -0.1, 0.003):
        with pytest.raises(VitsegError, match="step must be 1/n"):
            quantise_probs(p, step=bad)


def test_write_scene_maps_dims_error(tmp_path) -> None:
    with pytest.raises(DimensionError, match="one scene"):
        write_scene_maps(_grid_da(np.zeros((4, 4))), tmp_path, prefix="x")


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


@pytest.mark.parametrize("crs", list(CRSS))
def test_file_backed_cube_reads_windows_and_equals_in_memory(tmp_path, crs: str) -> None:
    from vitseg.predict import _file_backed

    vals = np.random.default_rng(3).normal(size=(1, 4, 100, 90)).astype("float32")
    vals[0, :, 3:9, 40:50] = np.nan
    mem = make_cube(vals, crs).isel(time=0)
    path = write_cog(mem, tmp_path / "cube.tif", nodata=float("nan"), overviews=False)
    lazy = open_map(path, chunks=17).rename({"class": "band"})
    assert _file_backed(lazy.data) and not _file_backed(mem.chunk(40).data)
    kw = {"tile": 32, "overlap": 16, "chunk_size": 40, "device": "cpu", "bf16": False}
    got = predict_cube(tiny_net(), lazy, **kw)
    # one task per output block, each reading its own window: no shared input chunks
    assert got.data.chunks == ((3,), (40, 40, 20), (40, 50))
    assert not any("open_rasterio" in str(n) for n in got.data.dask.layers)
    want = predict_cube(tiny_net(), mem, **kw)
    np.testing.assert_allclose(got.values, want.values, atol=1e-6)
    assert np.isnan(got.values[:, 3:9, 40:50]).all()


def test_scaled_digital_numbers_from_a_file_read_each_window_once(tmp_path, monkeypatch) -> None:
    """``open_map(dn).astype("float32") * 1e-4``: each block reads only its own window.

    dask would slice the window out of whole scaled chunks (here up to 4 per block); the
    plan applies the same element-wise tasks to the window as read from the file.
    """
    import rioxarray._io as rio_io

    from vitseg.predict import _source_plan

    dn = np.random.default_rng(4).integers(1, 10_000, size=(1, 4, 100, 90)).astype("uint16")
    path = write_cog(make_cube(dn).isel(time=0), tmp_path / "dn.tif", nodata=0, overviews=False)
    lazy = open_map(path, chunks=32).rename({"class": "band"})
    cube = (lazy.astype("float32") * 1e-4 - 0.1).clip(0.0, 1.0)
    plan = _source_plan(cube.data)
    assert plan is not None and plan.shape == (4, 100, 90)
    window = (slice(0, 4), slice(20, 70), slice(25, 61))
    np.testing.assert_array_equal(plan.read(window), cube.data[window].compute())
    reads: list[int] = []
    getitem = rio_io.RasterioArrayWrapper._getitem

    def spy(self, key):  # count the pixels each read asks the file for
        _, win, _, _ = self._get_indexer(key)
        reads.append((win[0][1] - win[0][0]) * (win[1][1] - win[1][0]))
        return getitem(self, key)

    monkeypatch.setattr(rio_io.RasterioArrayWrapper, "_getitem", spy)
    kw = {"tile": 32, "overlap": 16, "chunk_size": 40, "device": "cpu", "bf16": False}
    got = predict_cube(tiny_net(), cube, **kw)
    assert got.data.chunks == ((3,), (40, 40, 20), (40, 50))
    out = got.values
    # six blocks, one read each, of the block plus its 8 px halo on inner sides
    assert sorted(reads) == sorted(h * w for h in (48, 56, 28) for w in (48, 58))
    want = predict_cube(tiny_net(), cube.compute(), **kw)
    np.testing.assert_allclose(out, want.values, atol=1e-6)
    # arithmetic on an intermediate writes over it: the uint16 read and ONE float32 array
    import tracemalloc

    scaled = _source_plan((lazy.astype("float32") * 1e-4).data)
    assert scaled is not None
    full = (slice(0, 4), slice(0, 100), slice(0, 90))
    tracemalloc.start()
    try:
        arr = scaled.read(full)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(arr, dn[0] * np.float32(1e-4), rtol=1e-6)
    assert peak < 2 * arr.nbytes  # (a new array for the product: 2.5x)
    # ... but never over what a source returned (a reader may hand out its cache)
    monkeypatch.setattr(rio_io.RasterioArrayWrapper, "_getitem", getitem)
    fpath = write_cog(make_cube(dn.astype("float32")).isel(time=0), tmp_path / "f.tif",
                      nodata=float("nan"), overviews=False)  # fmt: skip
    flt = open_map(fpath, chunks=32).rename({"class": "band"})
    handed: list[np.ndarray] = []

    def keep(self, key):
        out = getitem(self, key)
        handed.append(out)
        return out

    monkeypatch.setattr(rio_io.RasterioArrayWrapper, "_getitem", keep)
    doubled = _source_plan((flt * 2.0).data)
    assert doubled is not None
    np.testing.assert_array_equal(doubled.read(full), 2 * dn[0])
    assert len(handed) == 1 and np.array_equal(handed[0], dn[0])
    # a finite no-data value: open_map masks with where(x != nodata, x, nan), x read once
    npath = write_cog(make_cube(dn.astype("float32")).isel(time=0), tmp_path / "n.tif",
                      nodata=-9999.0, overviews=False)  # fmt: skip
    masked = _source_plan(open_map(npath, chunks=32).data)
    assert masked is not None and len(masked.steps) >= 3
    handed.clear()
    np.testing.assert_array_equal(masked.read(full), dn[0])
    assert len(handed) == 1
    # what the plan does not take: a per-chunk function, an in-memory operand, a rechunk
    assert _source_plan(lazy.data.map_blocks(lambda b: b * 2)) is None
    assert _source_plan((lazy * da.ones((4, 1, 1), chunks=1)).data) is None
    assert _source_plan(lazy.data.rechunk(50)) is None
    assert _source_plan(make_cube(dn.astype("float32"), dask_chunks=32).data) is None


@pytest.mark.parametrize("size", [1000, 1500, 2048, 2100, 4096, 5000, 8192])
def test_default_chunks_put_the_blocks_on_one_window_lattice(size: int) -> None:
    from vitseg.predict import _lattice_chunks

    sizes = _lattice_chunks(size, 256, 32)
    assert sum(sizes) == size and min(sizes) > 256 // 4
    blocks = [c + 16 * (i > 0) + 16 * (i < len(sizes) - 1) for i, c in enumerate(sizes)]
    layouts = [window_layout(b, 256, 32) for b in blocks]
    # every block but the short first one is five whole 256 px windows, overlapping by 32
    assert all(lay == (256, [0, 224, 448, 672, 896]) for lay in layouts[1:])
    # so blocks share only their edge windows' overlap: as many windows as one block over
    # the whole axis would need (the old 1088 px chunks with 32 px halos: 10 for 2048)
    assert sum(len(starts) for _, starts in layouts) == len(tile_starts(size, 256, 32))


def test_predict_cube_default_chunks_remainder_first() -> None:
    arr = da.zeros((1, 4, 2048, 2100), chunks=(1, 4, 1024, 1024), dtype="float32")
    cube = make_cube(np.zeros((1, 4, 1, 1), "float32")).isel(y=[0] * 2048, x=[0] * 2100)
    cube = cube.copy(data=arr)
    probs = predict_cube(tiny_net(), cube, tile=256, overlap=32, classes=["a", "b", "c"])
    assert probs.data.chunks[2:] == ((912, 1136), (964, 1136))


def test_halo_strips_are_copies_and_short_last_chunk_is_merged(values: np.ndarray) -> None:
    from vitseg.predict import _halo_chunks, _strip

    assert _halo_chunks(100, 32, 16) == (32, 32, 36) and _halo_chunks(100, 40, 16) == (40, 40, 20)
    assert _halo_chunks(90, 40, 8) == (40, 50)  # a quarter-chunk sliver is merged
    assert _halo_chunks(10, 32, 16) == (10,)
    block = np.zeros((1, 4, 50, 50), "float32")
    strip = _strip(block, slice(-16, None), slice(None))
    assert strip.shape == (1, 4, 16, 50) and strip.base is None  # owns its memory
    cube = make_cube(values[:, :, :, :70], dask_chunks=48)  # 70 = 32 + 32 + 6 < overlap
    probs = predict_cube(
        tiny_net(), cube, tile=32, overlap=16, chunk_size=32, device="cpu", bf16=False
    )
    assert probs.data.chunks[3] == (32, 38)
    want = whole(tiny_net(), values[:, :, :, :70])
    np.testing.assert_allclose(probs.values[..., 4:-4, 4:-4], want[..., 4:-4, 4:-4], atol=2e-5)


def test_a_file_backed_cube_is_fed_in_the_models_band_order(tmp_path) -> None:
    dn = np.random.default_rng(5).integers(1, 10_000, size=(1, 4, 40, 40)).astype("uint16")
    path = write_cog(make_cube(dn).isel(time=0), tmp_path / "dn.tif", nodata=0, overviews=False)
    cube = open_map(path, chunks=32).rename({"class": "band"}).astype("float32") * 1e-4
    order = [str(b) for b in cube["band"].values[::-1]]
    kw = {"tile": 32, "overlap": 16, "chunk_size": 40, "device": "cpu", "bf16": False,
          "norm": {"mean": [0.0] * 4, "std": [1.0] * 4, "bands": order}}  # fmt: skip
    got = predict_cube(tiny_net(), cube, **kw).values
    want = predict_cube(tiny_net(), cube.compute(), **kw).values
    np.testing.assert_allclose(got, want, atol=1e-6)
    same = predict_cube(tiny_net(), cube, **{**kw, "norm": None}).values
    assert np.abs(got - same).max() > 1e-3  # the order matters to this network


def test_free_memory_is_handed_back_once_per_write(tmp_path, monkeypatch, values) -> None:
    import vitseg.predict as vp

    calls = []
    monkeypatch.setattr(vp, "_release_free_memory", lambda: calls.append(1))
    probs = predict_cube(tiny_net(), make_cube(values, dask_chunks=40).isel(time=0),
                         tile=32, overlap=16, device="cpu", bf16=False)  # fmt: skip
    write_scene_maps(probs, tmp_path, prefix="s")
    assert calls == [1]  # one pass for the three layers, one release
    monkeypatch.undo()
    vp._release_free_memory()  # the real one: glibc's malloc_trim here, a no-op elsewhere
    assert vp._MALLOC_TRIM is not None


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


def test_write_cog_colour_table_and_category_names_survive_the_cog(tmp_path) -> None:
    import json

    from vitseg.styles import change_colormap

    codes = np.arange(40 * 48, dtype="uint8").reshape(40, 48) % 9
    codes[:4, :4] = 255
    cmap, names = change_colormap()
    path = write_cog(_grid_da(codes), tmp_path / "change.tif", nodata=255, colormap=cmap,
                     category_names=names)  # fmt: skip
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        assert src.colorinterp[0] == rasterio.enums.ColorInterp.palette
        assert src.colormap(1)[6] == (228, 26, 28, 255)  # vegetation -> mines: red
        assert src.colormap(1)[8] == cmap[8]
        assert json.loads(src.tags(1)["categories"])["6"] == "vegetation -> mines"
        assert src.nodata == 255
        np.testing.assert_array_equal(src.read(1), codes)
    assert _aux_categories(path) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif", "change.tif.aux.xml"]
    # rewritten without names: the old sidecar would mislabel the new file, so it goes
    write_cog(_grid_da(codes), path, nodata=255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif"]


@pytest.mark.parametrize(
    ("arr", "kwargs", "match"),
    [
        (np.zeros((2, 8, 8), "float32"), {"colormap": {0: "#000000"}}, "single-band uint8"),
        (np.zeros((8, 8), "float32"), {"category_names": ["a"]}, "single-band uint8"),
        (np.zeros((8, 8), "uint8"), {"colormap": {256: "#000000"}}, r"0\.\.255"),
        (np.zeros((8, 8), "uint8"), {"colormap": {0: "black"}}, "a colour must be"),
        (np.zeros((8, 8), "uint8"), {"category_names": "mines"}, "a list of names"),
    ],
)
def test_write_cog_legend_errors(tmp_path, arr: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(VitsegError, match=match):
        write_cog(_grid_da(arr), tmp_path / "x.tif", **kwargs)
    assert not list(tmp_path.iterdir())


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
    arr = _grid_da(logits)
    if chunks:
        arr = arr.chunk({"y": chunks, "x": chunks})
    with pytest.raises(VitsegError, match=r"must be class probabilities.*softmax"):
        write_scene_maps(arr, tmp_path, prefix="logits")
    # values within [0, 1] that do not sum to 1 are caught too
    with pytest.raises(VitsegError, match=r"class sum of 0\.6"):
        write_scene_maps(_grid_da(np.full((3, 48, 48), 0.2, "float32")), tmp_path, prefix="p")
    assert not list(tmp_path.iterdir())
    # true probabilities (with no-data) pass
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    p[:, :3] = np.nan
    write_scene_maps(_grid_da(p), tmp_path, prefix="ok")


@pytest.mark.parametrize("prefix", ["../x", "a/b", "a\\b", "..", ""])
def test_write_scene_maps_refuses_prefixes_leaving_the_folder(tmp_path, prefix: str) -> None:
    from vitseg.errors import ParamsError

    probs = _grid_da(np.full((3, 8, 8), 1 / 3, "float32"))
    with pytest.raises(ParamsError, match="plain file-name prefix"):
        write_scene_maps(probs, tmp_path / "maps", prefix=prefix)
    assert not list(tmp_path.iterdir())
