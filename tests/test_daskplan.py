"""Tests for vitseg._daskplan: halo chunking, window reads from files, and the plain-dask fallback."""

from __future__ import annotations

import sys
import types

import dask.array as da
import numpy as np
import pytest
import rioxarray  # noqa: F401
from _predict_helpers import CRSS, make_cube, tiny_net, whole

from vitseg._daskplan import (
    _file_backed,
    _halo_chunks,
    _lattice_chunks,
    _source_plan,
    _SourcePlan,
    _strip,
)
from vitseg.cog import open_map, write_cog
from vitseg.predict import predict_cube, tile_starts, window_layout


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 4, 96, 80)).astype("float32")


@pytest.mark.parametrize("crs", list(CRSS))
def test_file_backed_cube_reads_windows_and_equals_in_memory(tmp_path, crs: str) -> None:
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
    # a regular 10 m grid (predict_cube refuses repeated coordinates since issue 22)
    cube = cube.copy(data=arr).assign_coords(
        y=700_000.0 - 10.0 * np.arange(2048), x=600_000.0 + 10.0 * np.arange(2100)
    )
    probs = predict_cube(tiny_net(), cube, tile=256, overlap=32, classes=["a", "b", "c"])
    assert probs.data.chunks[2:] == ((912, 1136), (964, 1136))


def test_halo_strips_are_copies_and_short_last_chunk_is_merged(values: np.ndarray) -> None:
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


def _break_dask(m: pytest.MonkeyPatch, change: str, arr: da.Array) -> None:
    """Make dask look like a release whose internals moved (only what the plan reads)."""
    import dask._task_spec
    import dask.array.core

    if change == "module":  # dask.layers reorganised: ArraySliceDep no longer there
        m.setitem(sys.modules, "dask.layers", types.ModuleType("dask.layers"))
    elif change == "attribute":  # blockwise layers without .output_blocks
        from dask.blockwise import Blockwise

        for layer in arr.dask.layers.values():
            if isinstance(layer, Blockwise):
                m.delattr(layer, "output_blocks")
    elif change == "call":  # tasks called another way

        def call(self, values=()):  # type: ignore[no-untyped-def]
            raise TypeError("Task.__call__() takes another argument now")

        m.setattr(dask._task_spec.Task, "__call__", call)
    else:  # "graph": file sources read by a function the plan does not know
        m.setattr(dask.array.core, "getter", lambda *a, **k: None)


@pytest.mark.parametrize("change", ["module", "attribute", "call", "graph"])
def test_read_plans_fall_back_to_plain_dask_when_its_internals_change(
    tmp_path, monkeypatch, change: str
) -> None:
    dn = np.random.default_rng(6).integers(1, 10_000, size=(1, 4, 60, 50)).astype("uint16")
    path = write_cog(make_cube(dn).isel(time=0), tmp_path / "dn.tif", nodata=0, overviews=False)
    cube = open_map(path, chunks=32).rename({"class": "band"}).astype("float32") * 1e-4
    kw = {"tile": 32, "overlap": 16, "chunk_size": 40, "device": "cpu", "bf16": False}
    reads: list[int] = []
    real = _SourcePlan.read
    monkeypatch.setattr(_SourcePlan, "read", lambda self, w: reads.append(1) or real(self, w))
    want = predict_cube(tiny_net(), cube.compute(), **kw).values
    fast = predict_cube(tiny_net(), cube, **kw)
    assert fast.data.chunks[1:] == ((40, 20), (50,))
    np.testing.assert_allclose(fast.values, want, atol=1e-6)
    assert len(reads) == 2  # as released: each block reads its window through a plan
    with monkeypatch.context() as m:
        _break_dask(m, change, cube.data)
        assert _source_plan(cube.data) is None
        lazy = predict_cube(tiny_net(), cube, **kw)  # the graph is built under the change
    reads.clear()
    got = lazy.values
    assert not reads  # the plain dask path, no plan
    np.testing.assert_allclose(got, want, atol=1e-6)
