"""Large-area prediction: tiled, blended, streamed inference and Cloud-Optimised GeoTIFFs.

:func:`predict_cube` turns a lazy ``(time, band, y, x)`` reflectance cube of any size
into per-class probabilities on exactly the cube's grid. It works chunk by chunk
(``dask.array`` blocks with a halo of half the overlap), and inside each block cuts
windows of at most ``tile`` x ``tile`` pixels that overlap by ``overlap`` pixels (as few
as full tiles would need, each no larger than that count requires:
:func:`window_layout`). By default the chunks follow one window lattice over the scene,
so that neighbouring blocks share just the overlap of their edge windows and a scene
costs no more windows than if it were one block. Overlapping windows are blended with a
smooth weight (zero in the outer quarter of the overlap, a raised-cosine ramp over the
middle half, one inside), so a model whose receptive field is no wider than a quarter of
the overlap gives exactly the whole-image answer; at a chunk boundary the map passes
from one window to the next mid-overlap, each at least half an overlap from its own
edge. Peak memory depends on the chunk and tile sizes, not on the area.

The model reaches dask workers once: it is serialised into a single graph key that all
block tasks depend on (once per module and weights, not per call), and each process
rebuilds it once (cached by content hash). On the CPU, block tasks running side by side
split the cores between their forward passes, so that reading, blending and writing one
block overlap the model's work on another instead of competing with it for cores.

No-data and cloud-masked pixels (NaN in any band) are NaN in the probabilities, 255 in
class maps (:func:`classify`). :func:`write_cog` writes valid COGs atomically (internal
tiles, overviews, ZSTD or DEFLATE, nodata, CRS), and :func:`write_scene_maps` writes one scene's
class, confidence and probability COGs in one pass over the probabilities, skipping
work already on disk (resume).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import operator
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import rioxarray
import xarray as xr

from vitseg.constants import BINARY_CLASSES, CLASSES, IGNORE_INDEX
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    DimensionError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VitsegError,
)
from vitseg.io import atomic_path, atomic_write_text

__all__ = [
    "blend_window",
    "classify",
    "norm_from_meta",
    "open_map",
    "predict_cube",
    "quantise_probs",
    "tile_starts",
    "window_layout",
    "write_cog",
    "write_scene_maps",
]

#: Names of the three per-scene outputs written by :func:`write_scene_maps`.
SCENE_LAYERS = ("probs", "class", "confidence")

#: Probabilities stored as uint8 (:func:`write_scene_maps` default): value = round(p / step),
#: 0..250, so that 0.004 steps decode exactly to 0, 0.004, ..., 1 (rounding error <= 0.002).
PROB_STEP = 0.004
#: No-data code of uint8 probability and confidence layers (the class maps' code too).
PROB_NODATA = IGNORE_INDEX

# ----------------------------------------------------------------------------- tiling


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Return the start offsets of windows of ``tile`` px covering ``size`` px.

    Windows advance by ``tile - overlap``; the last one is moved back so that it ends
    at ``size`` (its overlap with the previous one is then larger). One window at 0
    when ``size <= tile``.

    Examples
    --------
    >>> tile_starts(10, 4, 2)
    [0, 2, 4, 6]
    >>> tile_starts(11, 4, 2)
    [0, 2, 4, 6, 7]
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def window_layout(size: int, tile: int, overlap: int, *, align: int = 32) -> tuple[int, list[int]]:
    """Return ``(side, starts)``: the smallest windows that cover ``size`` px as tiles would.

    As many windows as :func:`tile_starts` needs with ``tile`` px windows, but each only
    as wide as that count requires (rounded up to a multiple of ``align``, never above
    ``tile`` nor below ``2 * overlap``), still overlapping by at least ``overlap``. A
    block narrower than a tile then costs a window of its own size, not a whole tile,
    and two tiles of 1024 px over 1056 px become two of 544. Windows keep ``tile`` px
    when ``tile`` is not a multiple of ``align`` (models with a fixed input size).

    Examples
    --------
    >>> window_layout(1024, 256, 32)  # five tiles are needed and used whole
    (256, [0, 224, 448, 672, 768])
    >>> window_layout(1056, 1024, 32)
    (544, [0, 512])
    >>> window_layout(150, 1024, 32)  # padded to 160 px
    (160, [0])
    """
    if tile % align:
        return tile, tile_starts(size, tile, overlap)
    n = len(tile_starts(size, tile, overlap))
    need = -(-(size + (n - 1) * overlap) // n)  # ceil: n windows overlapping by `overlap`
    side = min(tile, max(-(-need // align) * align, -(-2 * overlap // align) * align, align))
    return side, tile_starts(size, side, overlap)


def blend_window(
    tile: int, overlap: int, *, taper_start: bool = True, taper_end: bool = True
) -> np.ndarray[Any, Any]:
    """Return the 1-D blending weight of a window (float32, length ``tile``).

    The weight is 0 over the first quarter of ``overlap`` (where a model sees the
    window's artificial edge), rises as a raised cosine over the next half, and is 1
    from ``3/4 * overlap`` on; the end mirrors the start. A side that lies on the block
    edge is not tapered (``taper_start`` / ``taper_end`` False). Two neighbouring
    windows overlapping by at least ``overlap`` always leave every pixel with a positive
    total weight.

    Examples
    --------
    >>> blend_window(8, 4).astype(float).round(2).tolist()
    [0.0, 0.15, 0.85, 1.0, 1.0, 0.85, 0.15, 0.0]
    """
    w = np.ones(tile, dtype="float32")
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / max(ramp_len, 1)) ** 2
    prof = np.concatenate([np.zeros(margin), ramp]).astype("float32")
    if taper_start and prof.size:
        w[: prof.size] = prof
    if taper_end and prof.size:
        w[tile - prof.size :] = np.minimum(w[tile - prof.size :], prof[::-1])
    return w


# ----------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class _ModelPayload:
    """A model serialised once, identified by the hash of its bytes (or checkpoint)."""

    token: str
    blob: bytes = b""
    path: str | None = None

    def __repr__(self) -> str:  # keep dask dashboards / errors readable
        return f"_ModelPayload(token={self.token[:12]}, bytes={len(self.blob)}, path={self.path})"


_CACHE: dict[tuple[str, str, str], tuple[Any, Any, bool]] = {}
_CACHE_LOCK = threading.Lock()
#: Serialises forward passes on a GPU (one model's activations at a time).
_INFER_LOCK = threading.Lock()
#: Tasks busy in this process now (block reads and predictions, classification, window
#: writes), and torch's thread count before vitseg set any (see _share_cores).
_ACTIVE = 0
_ACTIVE_LOCK = threading.Lock()
_BASE_THREADS: int | None = None
#: Per thread: how deep inside _busy() it is (only such threads adjust torch's threads).
_LOCAL = threading.local()
#: How many times this process rebuilt a model from its payload (tests read it).
_LOADS = 0


#: Payloads of live modules, reused while the module's tensors are unchanged.
_PAYLOADS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], _ModelPayload]] = (
    weakref.WeakKeyDictionary()
)


def _fingerprint(model: Any) -> tuple[Any, ...] | None:
    """Return a cheap key that changes whenever the module's weights or structure change.

    Every parameter and buffer contributes its storage address, shape, dtype and
    in-place version counter (``load_state_dict``, optimiser steps and ``.to()`` all
    change one of them); module types and ``model.meta`` cover the rest. None when a
    tensor has no version counter (inference tensors): then nothing is cached.
    """
    try:
        tensors = tuple(
            (name, t.data_ptr(), tuple(t.shape), str(t.dtype), t._version)
            for name, t in model.state_dict(keep_vars=True).items()
        )
    except RuntimeError:
        return None
    kinds = tuple(type(m).__qualname__ for m in model.modules())
    return (tensors, kinds, repr(getattr(model, "meta", None)))


def _payload(model: Any) -> _ModelPayload:
    """Serialise ``model`` (an ``nn.Module`` or a checkpoint path) into a payload.

    A module is serialised (~0.3 s for a 100 MB U-Net) once, then reused for as long
    as :func:`_fingerprint` says it is unchanged: predicting scene after scene with the
    same model pays for it once.
    """
    import torch

    if isinstance(model, (str, os.PathLike)):
        from vitseg.io import sha256_file

        path = Path(model)
        if not path.exists():
            raise VitsegError(
                f"model checkpoint {str(path)!r} does not exist; pass an nn.Module or the "
                "path of a checkpoint written by vitseg.train (models/<arch>/best.pt)"
            )
        return _ModelPayload(token=sha256_file(path), path=str(path.resolve()))
    if not isinstance(model, torch.nn.Module):
        raise VitsegError(
            f"model must be a torch.nn.Module or a checkpoint path; got {type(model).__name__}"
        )
    key = _fingerprint(model)
    cached = _PAYLOADS.get(model)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    buf = io.BytesIO()
    torch.save(model, buf)
    blob = buf.getvalue()
    payload = _ModelPayload(token=hashlib.sha256(blob).hexdigest(), blob=blob)
    if key is not None:
        _PAYLOADS[model] = (key, payload)
    return payload


def _get_model(payload: _ModelPayload, device: str, bf16: str) -> tuple[Any, Any, bool]:
    """Return ``(model, torch_device, use_bf16)`` for ``payload``, built once per process."""
    global _LOADS
    key = (payload.token, device, bf16)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        import torch

        import vitseg.compat  # noqa: F401  (before any smp class is unpickled)
        from vitseg.models import prepare_model, select_device, use_bf16

        if payload.path is not None:
            from vitseg.train import load_model

            model = load_model(payload.path)[0]
        else:
            model = torch.load(io.BytesIO(payload.blob), map_location="cpu", weights_only=False)
        dev = select_device(device)
        flag: bool | Literal["auto"] = "auto" if bf16 == "auto" else bf16 == "true"
        use16 = use_bf16(dev, flag)
        model.eval()
        prepare_model(model, dev, bf16=use16)
        while len(_CACHE) >= 2:  # bounded: at most two models per process
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (model, dev, use16)
        _LOADS += 1
        return _CACHE[key]


@contextlib.contextmanager
def _busy() -> Iterator[None]:
    """Count this task among those busy in the process (see :func:`_share_cores`)."""
    global _ACTIVE
    with _ACTIVE_LOCK:
        _ACTIVE += 1
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1
        with _ACTIVE_LOCK:
            _ACTIVE -= 1


def _share_cores(torch: Any) -> None:
    """Give this thread's CPU forward passes its share of the cores.

    With one task busy, torch uses every core; with two (dask's threads reading,
    blending, classifying or writing one block while another is in the model), each
    forward gets half of them, so the model never competes with the other thread for a
    core (torch's OpenMP threads wait for their slowest member) and reading/writing
    overlaps inference. Thread counts are per thread in torch's OpenMP backend.
    """
    global _BASE_THREADS
    if _BASE_THREADS is None:
        _BASE_THREADS = max(1, int(torch.get_num_threads()))
    n = max(1, _BASE_THREADS // max(1, _ACTIVE))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _forward(
    model: Any, dev: Any, use16: bool, batch: np.ndarray[Any, Any], *, nhwc: bool = False
) -> np.ndarray[Any, Any]:
    """Softmax probabilities ``(N, K, H, W)`` float32 for a normalised batch.

    ``batch`` is ``(N, C, H, W)``, or ``(N, H, W, C)`` with ``nhwc`` (then it reaches a
    channels-last model without another copy).
    """
    import torch

    from vitseg.models import autocast_context, to_input

    if dev.type == "cpu" and getattr(_LOCAL, "depth", 0):  # a block task, not the caller
        _share_cores(torch)
    lock = _INFER_LOCK if dev.type != "cpu" else contextlib.nullcontext()
    with lock, torch.inference_mode():
        t = torch.from_numpy(batch)
        x = to_input(t.permute(0, 3, 1, 2) if nhwc else t, dev, bf16=use16)
        with autocast_context(dev, bf16=use16):
            logits = model(x)
        logits = logits.float()
        if logits.shape[1] == 1:
            p1 = torch.sigmoid(logits)
            probs = torch.cat([1 - p1, p1], dim=1)
        else:
            probs = torch.softmax(logits, dim=1)
        out: np.ndarray[Any, Any] = probs.cpu().numpy()
    return out


def _predict_block(
    block: np.ndarray[Any, Any],
    payload: _ModelPayload,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    mean: np.ndarray[Any, Any],
    std: np.ndarray[Any, Any],
    n_classes: int,
    device: str,
    bf16: str,
) -> np.ndarray[Any, Any]:
    """Blended tiled prediction of one ``(time, band, y, x)`` block (with its halo).

    For a channels-last model (bf16) the block is transposed once to ``(time, y, x,
    band)`` in the working copy, so that each batch is one plain copy of its windows and
    reaches the model as is (a channels-first batch costs a stack and then a transpose
    per batch: ~3x the copying).
    """
    from vitseg.models import channels_last

    n_t, _, h, w = block.shape
    valid = np.isfinite(block).all(axis=1)  # (t, y, x)
    if h == 0 or w == 0 or not valid.any():
        return np.full((n_t, n_classes, h, w), np.nan, dtype="float32")
    model, dev, use16 = _get_model(payload, device, bf16)
    nhwc = channels_last(dev, use16)
    # one working copy (bands last for a channels-last model), then in place
    x = np.array(np.moveaxis(block, 1, -1) if nhwc else block, dtype="float32", order="C")
    bshape = (1, 1, 1, -1) if nhwc else (1, -1, 1, 1)
    if mean.any():
        x -= mean.astype("float32").reshape(bshape)
    if (std != 1).any():
        x /= std.astype("float32").reshape(bshape)
    if not valid.all():
        np.copyto(x, np.float32(0.0), where=~np.isfinite(x))  # no-data = the band mean
    (ty, ys), (tx, xs) = window_layout(h, tile, overlap), window_layout(w, tile, overlap)
    hp, wp = max(h, ty), max(w, tx)
    if hp > h or wp > w:
        yx = ((0, hp - h), (0, wp - w))
        pad = ((0, 0), *yx, (0, 0)) if nhwc else ((0, 0), (0, 0), *yx)
        x = np.pad(x, pad, mode="reflect" if (hp - h < h and wp - w < w) else "edge")
        valid = np.pad(valid, ((0, 0), *yx), constant_values=False)
    wy = {y0: blend_window(ty, overlap, taper_start=y0 > 0, taper_end=y0 + ty < hp) for y0 in ys}
    wx = {x0: blend_window(tx, overlap, taper_start=x0 > 0, taper_end=x0 + tx < wp) for x0 in xs}
    acc = np.zeros((n_t, n_classes, hp, wp), dtype="float32")
    wsum = np.zeros((hp, wp), dtype="float32")
    for y0 in ys:
        for x0 in xs:
            wsum[y0 : y0 + ty, x0 : x0 + tx] += np.outer(wy[y0], wx[x0])
    jobs = [
        (t, y0, x0)
        for t in range(n_t)
        for y0 in ys
        for x0 in xs
        if valid[t, y0 : y0 + ty, x0 : x0 + tx].any()
    ]
    # As few batches as batch_size allows, of sizes differing by at most one: 25 windows
    # go as 7+6+6+6, not 8+8+8+1 (a batch of one costs ~2.7 windows' time on the CPU).
    n_batches = -(-len(jobs) // batch_size)
    for k in range(n_batches):
        chunk = jobs[k * len(jobs) // n_batches : (k + 1) * len(jobs) // n_batches]
        if nhwc:
            batch = np.empty((len(chunk), ty, tx, x.shape[-1]), dtype="float32")
            for i, (t, y0, x0) in enumerate(chunk):
                batch[i] = x[t, y0 : y0 + ty, x0 : x0 + tx]
        else:
            batch = np.stack([x[t, :, y0 : y0 + ty, x0 : x0 + tx] for t, y0, x0 in chunk])
        probs = _forward(model, dev, use16, batch, nhwc=nhwc)
        if probs.shape[1] != n_classes:
            raise VitsegError(
                f"the model returned {probs.shape[1]} channels but {n_classes} classes were "
                "given; pass classes= with one name per output channel"
            )
        for (t, y0, x0), p in zip(chunk, probs, strict=True):
            p *= np.outer(wy[y0], wx[x0])[None]
            acc[t, :, y0 : y0 + ty, x0 : x0 + tx] += p
    np.maximum(wsum, np.float32(1e-12), out=wsum)
    acc /= wsum  # in place: no second block-sized array (and its page faults)
    res = acc[:, :, :h, :w]  # (padding is not part of the block)
    if not valid[:, :h, :w].all():
        res[np.broadcast_to(~valid[:, None, :h, :w], res.shape)] = np.nan
    return res


def _lattice_chunks(size: int, tile: int, overlap: int, target: int = 1024) -> tuple[int, ...]:
    """Default chunk sizes along an axis: blocks of whole windows on one window lattice.

    Windows advance by ``stride = tile - overlap`` from the far edge of the axis, and
    chunk boundaries fall in the middle of the overlaps, so that a chunk plus its halo
    of ``overlap // 2`` on each inner side is exactly ``n`` windows (``n * stride`` about
    ``target``): neighbouring blocks share only the overlap of their edge windows, and
    an axis costs no more windows than one block covering it whole (2048 px of tile 256,
    overlap 32: 9 windows, not 5 + 5). The short remainder is the *first* chunk: dask
    starts with the last blocks, so the largest run first and the smallest last, and the
    workers finish together. A remainder no longer than a quarter chunk (or shorter than
    the halo) is merged into its neighbour (:func:`_halo_chunks`).

    Examples
    --------
    >>> _lattice_chunks(2048, 256, 32)  # blocks of 928 and 1152 px: 4 + 5 windows
    (912, 1136)
    >>> _lattice_chunks(4096, 256, 32)
    (720, 1120, 1120, 1136)
    >>> _lattice_chunks(1000, 256, 32), _lattice_chunks(2048, 1024, 32)
    ((1000,), (1040, 1008))
    """
    stride = max(tile - overlap, 1)
    half = overlap // 2
    core = max(1, round(target / stride)) * stride
    if size <= core + half:
        return (size,)
    # cores counted from the far edge, whose block has no outer halo: its n windows
    # reach half an overlap further, into the chunk itself
    sizes = list(_halo_chunks(size - half, core, half))
    sizes[0] += half
    return tuple(reversed(sizes))


def _halo_chunks(size: int, chunk: int, depth: int) -> tuple[int, ...]:
    """Chunk sizes of ``chunk`` px along an axis of ``size``, none narrower than ``depth``.

    A last chunk narrower than the halo (so that every halo comes from the immediate
    neighbour) or no wider than a quarter chunk (a sliver would cost a task, and model
    windows, of its own) is merged into the one before it.

    Examples
    --------
    >>> _halo_chunks(100, 32, 16), _halo_chunks(90, 40, 8)
    ((32, 32, 36), (40, 50))
    >>> _halo_chunks(100, 40, 16)
    (40, 40, 20)
    """
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    if len(sizes) > 1 and (sizes[-1] < depth or sizes[-1] <= chunk // 4):
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes) if sizes else (size,)


def _strip(block: np.ndarray[Any, Any], sy: slice, sx: slice) -> np.ndarray[Any, Any]:
    """Copy a halo strip out (a view would keep the whole neighbour chunk alive)."""
    return np.array(block[..., sy, sx], dtype="float32", copy=True)


def _haloed_task(
    parts: list[list[np.ndarray[Any, Any] | None]],
    payload: _ModelPayload,
    func: Any,
    top: int,
    left: int,
) -> np.ndarray[Any, Any]:
    """Assemble a chunk with its neighbours' strips, predict it, return the chunk's part."""
    present = [[p for p in row if p is not None] for row in parts]
    rows = [np.concatenate(row, axis=-1) if len(row) > 1 else row[0] for row in present if row]
    block = np.concatenate(rows, axis=-2) if len(rows) > 1 else rows[0]
    centre = parts[1][1]
    assert centre is not None
    del parts, rows
    with _busy():
        res: np.ndarray[Any, Any] = func(block, payload)
    h, w = centre.shape[-2:]
    return np.ascontiguousarray(res[..., top : top + h, left : left + w])


def _file_backed(arr: da.Array) -> bool:
    """Tell whether ``arr`` reads lazily from files through xarray (e.g. :func:`open_map`).

    Such a source can read any window cheaply (the slice reaches the file reader), so
    each block reads its own window with the halo instead of sharing neighbour chunks.
    """
    for layer in arr.dask.layers.values():
        for key, value in layer.items() if len(layer) == 1 else ():
            obj = getattr(value, "value", value)
            if str(key).startswith("original-") and not isinstance(obj, np.ndarray):
                return "xarray" in type(obj).__module__
    return False


@dataclasses.dataclass(frozen=True)
class _SourcePlan:
    """Element-wise dask layers over lazily read file sources, evaluable on any window.

    ``steps`` maps a layer name to its task and arguments ``(placeholder, kind, value)``:
    ``kind`` is ``"array"`` (``value`` names the layer below), ``"slices"`` (the window, for
    a source's ``getter``) or ``"const"`` (a scalar, or the lazily indexed file array).
    """

    top: str
    steps: Mapping[str, tuple[Any, tuple[tuple[str, str, Any], ...]]]
    shape: tuple[int, ...]

    def read(self, window: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        """Evaluate the layers on ``window`` only: the slice reaches the file reader.

        An arithmetic step whose float input is an intermediate used by it alone (say
        the ``* 1e-4`` after ``astype``) writes its result over that input: one
        window-sized array (and its page faults) less per step. Never over what a source
        returned, which may be a reader's cache.
        """
        from dask._task_spec import GraphNode, TaskRef

        uses: dict[str, int] = {}
        for _, args in self.steps.values():
            for _, k, v in args:
                if k == "array":
                    uses[v] = uses.get(v, 0) + 1
        sources = {
            n for n, (_, args) in self.steps.items() if any(k == "slices" for _, k, _ in args)
        }

        memo: dict[str, Any] = {}  # a step used twice (``where(x != nodata, x)``) runs once

        def value(name: str) -> Any:
            if name not in memo:
                memo[name] = evaluate(name)
            return memo[name]

        def evaluate(name: str) -> Any:
            task, args = self.steps[name]
            vals: dict[str, Any] = {
                p: window if k == "slices" else value(v) if k == "array" else v for p, k, v in args
            }
            ufunc = _UFUNCS.get(task.func, task.func)
            plain = all(isinstance(a, TaskRef) or not isinstance(a, GraphNode) for a in task.args)
            if isinstance(ufunc, np.ufunc) and ufunc.nout == 1 and not task.kwargs and plain:
                ops = [vals[a.key] if isinstance(a, TaskRef) else a for a in task.args]
                spare = {
                    id(vals[p])
                    for p, k, v in args
                    if k == "array" and uses[v] == 1 and v not in sources
                }
                for op in ops:
                    if (
                        id(op) in spare and isinstance(op, np.ndarray)
                        and np.issubdtype(op.dtype, np.floating)
                        and np.result_type(*ops) == op.dtype
                        and np.broadcast_shapes(*(np.shape(o) for o in ops)) == op.shape
                    ):  # fmt: skip
                        return ufunc(*ops, out=op)
            return task(vals)

        return np.asarray(value(self.top), dtype="float32")


# the operators of dask's element-wise arithmetic, as numpy ufuncs
_UFUNCS: dict[Any, np.ufunc] = {
    operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
    operator.truediv: np.true_divide, operator.floordiv: np.floor_divide,
    operator.mod: np.remainder, operator.pow: np.power, operator.neg: np.negative,
    operator.pos: np.positive, operator.abs: np.absolute, operator.invert: np.invert,
    operator.eq: np.equal, operator.ne: np.not_equal, operator.lt: np.less,
    operator.le: np.less_equal, operator.gt: np.greater, operator.ge: np.greater_equal,
    operator.and_: np.bitwise_and, operator.or_: np.bitwise_or, operator.xor: np.bitwise_xor,
}  # fmt: skip


def _pointwise(func: Any) -> bool:
    """Tell whether a blockwise function acts pixel by pixel (same result on any window)."""
    from dask.array.chunk import astype

    return isinstance(_UFUNCS.get(func, func), np.ufunc) or any(
        func is f for f in (astype, np.where, np.clip)
    )


def _source_plan(arr: da.Array) -> _SourcePlan | None:
    """Plan window reads of ``arr`` when it is element-wise ops over file-backed sources.

    ``open_map(path).astype("float32") * 1e-4`` is such an array. dask slices a window
    out of each whole chunk *after* the element-wise ops, so a window crossing chunk
    edges would read, convert and scale up to four whole chunks (2.25x the scene for
    2048 px in 1024 px chunks and four blocks); the plan instead applies the same tasks
    to a window read straight from the file. Only pixel-wise functions (:func:`_pointwise`:
    arithmetic, comparisons, ufuncs, ``where``, ``clip``, ``astype``) over sources read
    by dask's ``getter`` qualify; anything else (``map_blocks``, reductions,
    broadcasting, rechunking, indexing, in-memory sources) returns None, and the caller
    reads windows through the dask graph.
    """
    from dask._task_spec import DataNode, GraphNode, Task, TaskRef
    from dask.array.core import getter, getter_inline, getter_nofancy
    from dask.blockwise import Blockwise, blockwise_token
    from dask.layers import ArraySliceDep

    hlg = arr.dask
    steps: dict[str, tuple[Any, tuple[tuple[str, str, Any], ...]]] = {}
    n_sources = 0

    def visit(name: str) -> bool:
        nonlocal n_sources
        if name in steps:
            return True
        layer = hlg.layers.get(name)
        if (
            not isinstance(layer, Blockwise) or layer.concatenate or layer.new_axes
            or not isinstance(layer.task, Task) or layer.output_blocks is not None
        ):  # fmt: skip
            return False
        func = layer.task.func
        if not (
            _pointwise(func) or (layer.io_deps and func in (getter, getter_inline, getter_nofancy))
        ):
            return False
        placeholders = {blockwise_token(i) for i in range(len(layer.indices))}
        if not set(layer.task.dependencies) <= placeholders:
            return False
        out_ind, args = tuple(layer.output_indices), []
        for i, (ref, ind) in enumerate(layer.indices):
            ph = blockwise_token(i)
            if ind is None:  # passed whole: a scalar, or the file array of a source
                if isinstance(ref, TaskRef) and layer.io_deps:  # a source's file array
                    node = hlg.get(ref.key)
                    obj = node.value if isinstance(node, DataNode) else node
                    if "xarray" not in type(obj).__module__:
                        return False
                    args.append((ph, "const", obj))
                elif np.ndim(ref) == 0 and not isinstance(ref, (da.Array, GraphNode, TaskRef)):
                    args.append((ph, "const", ref))
                else:
                    return False
            elif tuple(ind) != out_ind:
                return False
            elif ref in layer.io_deps:
                dep = layer.io_deps[ref]
                if not isinstance(dep, ArraySliceDep) or tuple(dep.chunks) != arr.chunks:
                    return False
                n_sources += 1
                args.append((ph, "slices", None))
            elif visit(ref):
                args.append((ph, "array", ref))
            else:
                return False
        steps[name] = (layer.task, tuple(args))
        return True

    if not visit(arr.name) or not n_sources:
        return None
    return _SourcePlan(arr.name, steps, tuple(arr.shape))


def _plan_read(plan: _SourcePlan, window: tuple[slice, ...], expand: bool) -> np.ndarray[Any, Any]:
    """Read one window through ``plan`` (with a leading time axis added if ``expand``)."""
    block = plan.read(window)
    return block[None] if expand else block


def _read_window(dsk: Mapping[Any, Any], keys: list[Any]) -> np.ndarray[Any, Any]:
    """Compute one window of a lazy source from its own small graph (sync, in the task)."""
    from dask.array.core import concatenate3
    from dask.local import get_sync

    return np.asarray(concatenate3(get_sync(dict(dsk), keys)), dtype="float32")


def _halo_map(
    arr: da.Array,
    grid: tuple[tuple[int, ...], ...],
    model_key: Any,
    *,
    depth: int,
    n_classes: int,
    func: Any,
    plan: _SourcePlan | None = None,
) -> da.Array:
    """Apply ``func(haloed_block, payload)`` to every ``(1, band, y, x)`` block of ``grid``.

    Memory stays flat with the width of the scene, whatever order the scheduler runs the
    blocks in. A source that reads from files (:func:`_file_backed`) is read once per
    block, window plus halo, through a small graph of its own (GDAL's block cache makes
    the re-read halos cheap). Any other source is chunked on ``grid``; each block then
    depends on its own chunk and on *copied* strips (``depth`` px) of its eight
    neighbours, never on views that would pin whole neighbour chunks. With a ``plan``
    (:func:`_source_plan` of the cube's data, ``(band, y, x)`` or ``(time, band, y, x)``)
    each block's window is read through the plan instead of dask's slicing. The result
    is chunked on ``grid`` with ``n_classes`` along axis 1.
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    read = plan is not None or _file_backed(arr)
    tok = tokenize(arr.name, grid, model_key.key, depth, n_classes, func, plan is None)
    strip_name, out_name = f"vitseg-halo-{tok}", f"vitseg-predict-{tok}"
    ny, nx = len(grid[2]), len(grid[3])
    y_off, x_off = np.cumsum((0, *grid[2])), np.cumsum((0, *grid[3]))
    dsk: dict[Any, Any] = {}
    sides = {-1: slice(-depth, None), 0: slice(None), 1: slice(0, depth)}
    for t in range(len(grid[0])):
        for i in range(ny):
            for j in range(nx):
                top = depth if (depth and i > 0) else 0
                left = depth if (depth and j > 0) else 0
                if read:
                    bottom = depth if (depth and i < ny - 1) else 0
                    right = depth if (depth and j < nx - 1) else 0
                    h, w = grid[2][i], grid[3][j]
                    ys = slice(int(y_off[i] - top), int(y_off[i + 1] + bottom))
                    xs = slice(int(x_off[j] - left), int(x_off[j + 1] + right))
                    if plan is not None:
                        timed = len(plan.shape) == 4
                        lead = (slice(t, t + 1),) if timed else ()
                        window = (*lead, slice(0, plan.shape[-3]), ys, xs)
                        reader = functools.partial(_plan_read, plan, window, not timed)
                    else:
                        win = arr[t : t + 1, :, ys, xs]
                        sub = win.__dask_optimize__(win.__dask_graph__(), win.__dask_keys__())
                        reader = functools.partial(_read_window, dict(sub), win.__dask_keys__())
                    dsk[(out_name, t, 0, i, j)] = (
                        _read_task, reader, model_key.key, func, top, left, h, w,
                    )  # fmt: skip
                    continue
                parts: list[list[Any]] = [[None] * 3 for _ in range(3)]
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        ii, jj = i + di, j + dj
                        src = (arr.name, t, 0, ii, jj)
                        if (di, dj) == (0, 0):
                            parts[1][1] = src
                        elif depth and 0 <= ii < ny and 0 <= jj < nx:
                            key = (strip_name, t, i, j, di + 1, dj + 1)
                            dsk[key] = (_strip, src, sides[di], sides[dj])
                            parts[di + 1][dj + 1] = key
                dsk[(out_name, t, 0, i, j)] = (
                    _haloed_task, parts, model_key.key, func, top, left,
                )  # fmt: skip
    deps = [model_key] if read else [arr, model_key]
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=deps)
    chunks = (grid[0], (n_classes,), grid[2], grid[3])
    return da.Array(graph, out_name, chunks=chunks, dtype="float32")


def _read_task(
    reader: Any, payload: _ModelPayload, func: Any, top: int, left: int, h: int, w: int
) -> np.ndarray[Any, Any]:
    """Read a block with its halo, predict it, return the block's part."""
    with _busy():
        res: np.ndarray[Any, Any] = func(reader(), payload)
    return np.ascontiguousarray(res[..., top : top + h, left : left + w])


# ----------------------------------------------------------------------------- checks


def _check_crs(obj: xr.DataArray, name: str) -> None:
    if obj.rio.crs is None:
        raise MissingCRSError(
            f"{name} has no CRS; set it with {name}.rio.write_crs('EPSG:32630') (the cube "
            "builder does this for you)"
        )


def _norm_arrays(
    norm: Mapping[str, Any] | None, bands: Sequence[str]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], list[str] | None]:
    nb = len(bands)
    if hasattr(norm, "to_dict"):  # vitseg.datasets.BandStats
        norm = norm.to_dict()  # type: ignore[union-attr]
    if norm is None:
        return np.zeros(nb, "float32"), np.ones(nb, "float32"), None
    if "mean" not in norm or "std" not in norm:
        raise BandError(
            f"norm must be a mapping with 'mean' and 'std' (one value per band, optional "
            f"'bands'); got keys {sorted(norm)}"
        )
    want = [str(b) for b in norm["bands"]] if norm.get("bands") is not None else None
    mean = np.asarray(norm["mean"], dtype="float32").ravel()
    std = np.asarray(norm["std"], dtype="float32").ravel()
    n_expected = len(want) if want is not None else nb
    if mean.size != n_expected or std.size != n_expected:
        raise BandError(
            f"norm has {mean.size} means and {std.size} stds but the cube has {n_expected} "
            f"bands {list(want or bands)}; use the stats saved with the model"
        )
    names = list(want or bands)
    bad = [
        i for i in range(n_expected)
        if not (np.isfinite(mean[i]) and np.isfinite(std[i]) and std[i] > 0)
    ]  # fmt: skip
    if bad:
        shown = ", ".join(
            f"{names[i] if i < len(names) else i} (mean {float(mean[i])}, std {float(std[i])})"
            for i in bad
        )
        raise BandError(
            f"norm has unusable statistics for band(s) {shown}: every mean must be finite "
            "and every std finite and > 0 (NaN statistics turn every prediction into "
            "no-data). Recompute them with vitseg.datasets.band_stats on valid pixels, or "
            "load the stats saved with the model (norm_from_meta)."
        )
    return mean, std, want


def _model_in_channels(model: Any) -> int | None:
    """Bands a module expects: ``meta["in_channels"]``, else its first Conv2d's; None if unknown."""
    meta = getattr(model, "meta", None)
    if isinstance(meta, Mapping) and isinstance(meta.get("in_channels"), int):
        return int(meta["in_channels"])
    modules = getattr(model, "modules", None)
    if modules is None:  # a checkpoint path: not loaded just for this
        return None
    import torch

    for m in modules():
        if isinstance(m, torch.nn.Conv2d):
            return int(m.in_channels)
    return None


def _infer_classes(
    model: Any, payload: _ModelPayload, n_bands: int, tile: int, device: str, bf16: str
) -> list[str]:
    meta = getattr(model, "meta", None)
    n: int | None = None
    if isinstance(meta, Mapping) and isinstance(meta.get("classes"), int):
        n = int(meta["classes"])
    if n is None:
        # the same cache key as the prediction: one copy of the weights per process
        m, dev, use16 = _get_model(payload, device, bf16)
        side = min(tile, 64)
        n = _forward(m, dev, use16, np.zeros((1, n_bands, side, side), "float32")).shape[1]
    if n == len(CLASSES):
        return list(CLASSES)
    if n == len(BINARY_CLASSES):
        return list(BINARY_CLASSES)
    return [f"class_{i}" for i in range(n)]


# ----------------------------------------------------------------------------- public


def norm_from_meta(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """Find the band normalisation stored with a model (``vitseg.train.load_model`` meta).

    Looks for ``{"bands", "mean", "std"}`` in ``meta["data"]`` itself or under its
    ``"norm"`` / ``"band_stats"`` / ``"stats"`` key.

    Returns
    -------
    dict or None
        ``{"bands": [...] or None, "mean": [...], "std": [...]}``, or None when the
        checkpoint stores no statistics.

    Examples
    --------
    >>> norm_from_meta({"data": {"norm": {"bands": ["B02"], "mean": [0.1], "std": [0.2]}}})
    {'bands': ['B02'], 'mean': [0.1], 'std': [0.2]}
    """
    data = meta.get("data", meta)
    if not isinstance(data, Mapping):
        return None
    for cand in (data, *(data.get(k) for k in ("norm", "band_stats", "stats"))):
        if isinstance(cand, Mapping) and "mean" in cand and "std" in cand:
            bands = cand.get("bands", data.get("bands"))
            return {
                "bands": list(bands) if bands is not None else None,
                "mean": list(cand["mean"]),
                "std": list(cand["std"]),
            }
    return None


def predict_cube(
    model: Any,
    cube: xr.DataArray,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 8,
    norm: Mapping[str, Any] | None = None,
    device: str = "auto",
    bf16: bool | Literal["auto"] = "auto",
    chunk_size: int | None = None,
    classes: Sequence[str] | None = None,
) -> xr.DataArray:
    """Predict per-class probabilities over a cube of any size, lazily and tile by tile.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` returning logits ``(N, K, H, W)`` (softmax is applied; a
        single channel gets a sigmoid and becomes two classes), or the path of a
        checkpoint that :func:`vitseg.train.load_model` reads (workers must see the path).
    cube
        Reflectance, dims ``(time, band, y, x)`` or ``(band, y, x)``, numpy- or
        dask-backed, with a CRS. NaN in any band (no-data, cloud mask) means no-data.
    tile
        Largest window in pixels fed to the model (a multiple of 32 for vitseg models;
        windows shrink in steps of 32 where a block needs less, see
        :func:`window_layout`). Larger windows waste less on overlaps: a U-Net on the
        CPU runs as fast per pixel on 1024 px as on 256 px windows (``bench/predict.py``);
        a SegFormer's attention grows faster than its windows, so it keeps 256.
    overlap
        Pixels shared by neighbouring windows (``0 <= overlap <= tile // 2``); each dask
        chunk is read with a halo of ``overlap // 2``. Windows are blended (see
        :func:`blend_window`).
    batch_size
        Windows per forward pass (memory grows linearly with it).
    norm
        Band normalisation ``{"mean": [...], "std": [...], "bands": [...]}`` as saved
        with the model (or a :class:`vitseg.datasets.BandStats`); ``(x - mean) / std``.
        With ``"bands"``, the cube's bands are
        selected in that order. None feeds the cube unchanged.
    device
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``; resolved in
        each worker.
    bf16
        bfloat16 autocast: ``"auto"`` on CPUs with AMX or AVX-512 BF16 (with channels-last) and bf16 GPUs,
        fp32 otherwise.
    chunk_size
        Side in pixels of the dask chunks processed at once. Default: about 1024 px of
        whole windows on one lattice (:func:`_lattice_chunks`: 1120 for tile 256 / overlap
        32, a short remainder first, 2048 px as 912 + 1136), so that no window is wasted
        at chunk boundaries. Peak memory grows with it.
    classes
        Class names, one per output channel (default: vitseg's 3 classes for 3
        channels, the binary scheme for 2).

    Returns
    -------
    xarray.DataArray
        float32 probabilities, dims ``(time, class, y, x)`` (``(class, y, x)`` for a
        cube without ``time``), dask-backed, on the cube's grid: same ``y``/``x``
        coordinates, CRS and transform. NaN where the input is no-data.

    Raises
    ------
    DimensionError
        If the cube's dims are not ``(time, band, y, x)`` / ``(band, y, x)``, or its
        dtype is not floating point (e.g. uint16 digital numbers).
    MissingCRSError
        If the cube has no CRS.
    BandError
        If ``norm`` does not match the cube's bands or holds NaN, infinite or
        non-positive statistics, or (without ``norm``) the cube's band count differs
        from the model's input channels.
    VitsegError
        For a bad ``tile`` / ``overlap`` / ``batch_size``.

    Examples
    --------
    >>> import torch, numpy as np, xarray as xr, rioxarray
    >>> cube = xr.DataArray(np.ones((2, 40, 40), "float32"), dims=("band", "y", "x"),
    ...     coords={"band": ["B04", "B08"], "y": np.arange(40.0)[::-1], "x": np.arange(40.0)}
    ... ).rio.write_crs("EPSG:32630")
    >>> net = torch.nn.Conv2d(2, 3, 3, padding=1)
    >>> p = predict_cube(net, cube, tile=32, overlap=8, device="cpu", bf16=False)
    >>> p.dims, p.shape
    (('class', 'y', 'x'), (3, 40, 40))
    """
    if not isinstance(cube, xr.DataArray):
        raise DimensionError(f"cube must be an xarray.DataArray; got {type(cube).__name__}")
    dims = tuple(str(d) for d in cube.dims)
    if dims not in {("time", "band", "y", "x"), ("band", "y", "x")}:
        raise DimensionError(
            f"cube dims must be ('time', 'band', 'y', 'x') or ('band', 'y', 'x'); got {dims}. "
            "Use cube.transpose('time', 'band', 'y', 'x')."
        )
    _check_crs(cube, "cube")
    if not np.issubdtype(cube.dtype, np.floating):
        raise DimensionError(
            f"cube must hold float reflectance (NaN = no data); got dtype {cube.dtype}. "
            "Digital numbers? Build the cube with vitseg.cube.build_cube, or scale it: "
            "cube.astype('float32') * 1e-4."
        )
    if int(tile) < 1:
        raise VitsegError(f"tile must be a positive number of pixels; got {tile}")
    if not 0 <= int(overlap) <= int(tile) // 2:
        raise VitsegError(
            f"overlap must be in [0, tile // 2] = [0, {int(tile) // 2}]; got {overlap}"
        )
    if int(batch_size) < 1:
        raise VitsegError(f"batch_size must be >= 1; got {batch_size}")
    if getattr(model, "meta", None) is not None and int(tile) % 32:
        raise VitsegError(f"tile must be a multiple of 32 for vitseg models; got {tile}")
    has_time = "time" in cube.dims
    c4 = cube if has_time else cube.expand_dims("time", axis=0)
    bands = [str(b) for b in c4["band"].values] if "band" in c4.coords else []
    mean, std, want = _norm_arrays(norm, bands or [str(i) for i in range(c4.sizes["band"])])
    if want is not None:
        missing = [b for b in want if b not in bands]
        if missing:
            raise BandError(
                f"the model was trained on bands {want} but the cube lacks {missing} "
                f"(it has {bands}); build the cube with bands={want}"
            )
        if list(want) != bands:
            c4 = c4.sel(band=want)  # (a cube in another order gets no read plan below)
    if norm is None:
        n_model = _model_in_channels(model)
        if n_model is not None and n_model != c4.sizes["band"]:
            raise BandError(
                f"the model takes {n_model} bands but the cube has {c4.sizes['band']} "
                f"{bands}; build the cube with the model's bands, or pass norm= with its "
                "'bands' (norm_from_meta(meta)) so that they are selected in order"
            )
    payload = _payload(model)
    bf16_key = "auto" if bf16 == "auto" else ("true" if bf16 else "false")
    names = (
        [str(c) for c in classes]
        if classes is not None
        else _infer_classes(model, payload, c4.sizes["band"], int(tile), str(device), bf16_key)
    )
    data = c4.data
    arr = da.asarray(data) if isinstance(data, da.Array) else da.from_array(data, chunks=-1)
    arr = arr.astype("float32")
    depth = int(overlap) // 2  # halo: a block's edge windows reach half an overlap beyond it
    if chunk_size is not None:
        c = max(int(chunk_size), int(overlap), 1)
        ys, xs = (_halo_chunks(n, c, depth) for n in arr.shape[2:])
    else:
        ys, xs = (_lattice_chunks(n, int(tile), int(overlap)) for n in arr.shape[2:])
    grid = ((1,) * arr.shape[0], (arr.shape[1],), ys, xs)
    plan = None
    if isinstance(cube.data, da.Array) and (want is None or list(want) == bands):
        plan = _source_plan(cube.data)  # windows read straight from the files
    if plan is None and not _file_backed(arr):
        arr = arr.rechunk(grid)
    model_key = dask.delayed(payload, pure=True, name=f"vitseg-model-{payload.token[:32]}")
    out = _halo_map(
        arr,
        grid,
        model_key,
        depth=depth,
        n_classes=len(names),
        func=functools.partial(
            _predict_block,
            tile=int(tile),
            overlap=int(overlap),
            batch_size=int(batch_size),
            mean=mean,
            std=std,
            n_classes=len(names),
            device=str(device),
            bf16=bf16_key,
        ),
        plan=plan,
    )
    coords: dict[str, Any] = {
        "time": c4["time"].values if "time" in c4.coords else np.arange(c4.sizes["time"]),
        "class": names,
        "y": c4["y"],
        "x": c4["x"],
    }
    for name, coord in c4.coords.items():  # per-scene coords (item id, date, cloud cover)
        if coord.dims == ("time",) and name != "time":
            coords[str(name)] = ("time", coord.values)
    res = xr.DataArray(
        out,
        dims=("time", "class", "y", "x"),
        coords=coords,
        attrs={"long_name": tuple(names), "units": "probability", "tile": int(tile),
               "overlap": int(overlap)},
    )  # fmt: skip
    if "spatial_ref" in cube.coords:
        res = res.assign_coords(spatial_ref=cube["spatial_ref"])
    res = res.rio.write_crs(cube.rio.crs).rio.write_transform(cube.rio.transform())
    return res if has_time else res.isel(time=0, drop=True)


def classify(
    probs: xr.DataArray, *, nodata: int = IGNORE_INDEX
) -> tuple[xr.DataArray, xr.DataArray]:
    """Return the class map (argmax) and the confidence (highest probability).

    Parameters
    ----------
    probs
        Probabilities with a ``class`` dim (any other dims kept), numpy or dask.
    nodata
        Class value where the probabilities are NaN (default 255).

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        uint8 class codes (index along ``class``; ``nodata`` where no data) and float32
        confidence in [0, 1] (NaN where no data), lazily when ``probs`` is dask-backed.

    Raises
    ------
    DimensionError
        If ``probs`` has no ``class`` dim.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = xr.DataArray(np.array([[[0.2, np.nan]], [[0.8, np.nan]]]), dims=("class", "y", "x"))
    >>> cls, conf = classify(p)
    >>> cls.values.tolist(), conf.values.astype(float).round(1).tolist()
    ([[1, 255]], [[0.8, nan]])
    """
    if "class" not in probs.dims:
        raise DimensionError(f"probs must have a 'class' dim; got dims {tuple(probs.dims)}")
    # one pass over each block for both outputs (dask computes the pair once per chunk)
    cls, conf = xr.apply_ufunc(
        _classify_block, probs, kwargs={"nodata": nodata},
        input_core_dims=[["class"]], output_core_dims=[[], []],
        dask="parallelized", output_dtypes=["uint8", "float32"],
        dask_gufunc_kwargs={"allow_rechunk": True},
    )  # fmt: skip
    for out in (cls, conf):
        if "spatial_ref" in probs.coords:
            out.coords["spatial_ref"] = probs["spatial_ref"]
    cls.attrs = {"long_name": "class", "classes": ",".join(map(str, probs["class"].values))}
    conf.attrs = {"long_name": "confidence", "units": "probability"}
    if probs.rio.crs is not None:
        cls = cls.rio.write_crs(probs.rio.crs)
        conf = conf.rio.write_crs(probs.rio.crs)
    return cls, conf


def _classify_block(
    p: np.ndarray[Any, Any], *, nodata: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Argmax and max over the last axis; ``nodata`` / NaN where any value is NaN."""
    with _busy():
        best = np.array(p[..., 0], dtype=np.result_type(p.dtype, np.float32), copy=True)
        idx = np.zeros(best.shape, dtype="uint8")
        valid = np.isfinite(best)
        for k in range(1, p.shape[-1]):
            pk = p[..., k]
            valid &= np.isfinite(pk)
            higher = pk > best  # strict: ties keep the first class, as argmax does
            idx[higher] = k
            np.maximum(best, pk, out=best, where=higher)
        idx[~valid] = nodata
        best[~valid] = np.nan
        return idx, best.astype("float32", copy=False)


# ----------------------------------------------------------------------------- COGs


@dataclasses.dataclass(frozen=True)
class _Legend:
    """A single-band integer map's GDAL colour table and category names (index = code)."""

    colormap: dict[int, tuple[int, int, int, int]] | None = None
    names: tuple[str, ...] | None = None


def _make_legend(
    arr: xr.DataArray,
    colormap: Mapping[int, Any] | None,
    category_names: Sequence[str] | None,
) -> _Legend | None:
    """Check ``colormap`` / ``category_names`` against the array; None when neither is given."""
    from vitseg.styles import to_rgba

    if colormap is None and category_names is None:
        return None
    dtype = np.dtype(arr.dtype)
    if arr.ndim != 2 or dtype not in (np.dtype("uint8"), np.dtype("uint16")):
        raise VitsegError(
            "colormap / category_names need a single-band uint8 or uint16 class map "
            f"(GDAL colour tables); got dims {tuple(arr.dims)} of {dtype}. Write probabilities "
            "without them, or cast class codes with .astype('uint8')."
        )
    top = int(np.iinfo(dtype).max)
    cmap = None
    if colormap is not None:
        bad = [k for k in colormap if not 0 <= int(k) <= top]
        if bad:
            raise VitsegError(f"colormap codes must be in 0..{top} for {dtype}; got {bad}")
        cmap = {int(k): to_rgba(v) for k, v in sorted(colormap.items())}
    names = None
    if category_names is not None:
        if isinstance(category_names, str) or len(category_names) > top + 1:
            raise VitsegError(
                f"category_names must be a list of names, one per code from 0 (at most "
                f"{top + 1}); got {category_names!r}"
            )
        names = tuple(str(n) for n in category_names)
    return _Legend(colormap=cmap, names=names)


def _legend_aux_xml(legend: _Legend) -> str:
    """GDAL PAM sidecar (``.aux.xml``) with the category names and a thematic RAT.

    GeoTIFF has no tag for category names or attribute tables, so GDAL (and QGIS, which
    labels a colour table's entries with the category names) reads them from this file
    beside the COG; the colour table itself is inside the TIFF.
    """
    import xml.etree.ElementTree as ET

    names = legend.names or ()
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    cats = ET.SubElement(band, "CategoryNames")
    for n in names:
        ET.SubElement(cats, "Category").text = n
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    fields = [("value", 0, 5), ("class", 2, 2)]
    if legend.colormap:
        fields += [("red", 0, 6), ("green", 0, 7), ("blue", 0, 8), ("alpha", 0, 9)]
    for i, (name, kind, usage) in enumerate(fields):
        f = ET.SubElement(rat, "FieldDefn", index=str(i))
        ET.SubElement(f, "Name").text = name
        ET.SubElement(f, "Type").text = str(kind)  # 0 integer, 2 string
        ET.SubElement(f, "Usage").text = str(usage)  # 5 value, 2 name, 6-9 RGBA
    rows = [i for i, n in enumerate(names) if n]
    for r, code in enumerate(rows):
        row = ET.SubElement(rat, "Row", index=str(r))
        values: list[Any] = [code, names[code]]
        if legend.colormap:
            values += list(legend.colormap.get(code, (0, 0, 0, 0)))
        for v in values:
            ET.SubElement(row, "F").text = str(v)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


class _WindowWriter:
    """``dask.array.store`` target writing windows into a GeoTIFF (picklable: paths).

    With ``overviews`` (``(factor, path)`` pairs, factors rising) each window also
    writes its own pixels of every overview level into that level's GeoTIFF
    (:func:`_reduce_window`); the caller guarantees that windows start on multiples of
    the largest factor, so that no overview pixel draws on two windows.
    """

    def __init__(
        self,
        path: str,
        overviews: Sequence[tuple[int, str]] = (),
        resampling: str = "nearest",
        nodata: float | None = None,
    ) -> None:
        self.path = path
        self.overviews = tuple(overviews)
        self.resampling = resampling
        self.nodata = nodata

    def __setitem__(self, key: tuple[slice, ...], item: np.ndarray[Any, Any]) -> None:
        import rasterio
        from rasterio.windows import Window

        ys, xs = key[-2], key[-1]
        idx: list[int] | int = (
            list(range(key[0].start + 1, key[0].stop + 1)) if len(key) == 3 else 1
        )
        with _busy():
            levels = [(ys.start, xs.start, item, self.path)]
            if self.overviews:
                factors = [f for f, _ in self.overviews]
                reduced = _reduce_window(item, factors, self.resampling, self.nodata)
                for (f, path), arr in zip(self.overviews, reduced, strict=True):
                    levels.append((ys.start // f, xs.start // f, arr, path))
            for y0, x0, arr, path in levels:
                win = Window(x0, y0, arr.shape[-1], arr.shape[-2])
                with rasterio.open(path, "r+") as dst:
                    dst.write(arr, window=win, indexes=idx)


def _reduce_window(
    item: np.ndarray[Any, Any], factors: Sequence[int], resampling: str, nodata: float | None
) -> list[np.ndarray[Any, Any]]:
    """Overview pixels of a window at each of ``factors`` (rising, each dividing the next).

    ``"average"``: the mean of the valid pixels (not NaN, not ``nodata``) of each
    ``f x f`` group, rounded for integer layers, ``nodata`` (NaN for floats) where a
    group has none; a window edge that is the image edge may cut a group short (GDAL's
    overview sizes round up). ``"nearest"``: each group's first pixel.

    Examples
    --------
    >>> a = np.array([[1, 3, 255], [5, 7, 9]], dtype="uint8")
    >>> [o.tolist() for o in _reduce_window(a, [2], "average", 255)]
    [[[4, 9]]]
    >>> [o.tolist() for o in _reduce_window(a, [2], "nearest", 255)]
    [[[1, 255]]]
    """
    if resampling == "nearest":
        return [item[..., ::f, ::f] for f in factors]
    floating = np.issubdtype(item.dtype, np.floating)
    valid = np.isfinite(item) if floating else None
    if nodata is not None and not np.isnan(nodata):
        valid = item != nodata if valid is None else valid & (item != nodata)
    acc = np.float64 if floating or item.dtype.itemsize > 1 else np.float32  # uint8: exact
    counts: np.ndarray[Any, Any] | None = None
    if valid is None or valid.all():
        sums = item.astype(acc)
    else:
        sums, counts = np.where(valid, item, 0).astype(acc), valid.astype(np.float32)
    fill = np.nan if nodata is None else nodata
    h, w = item.shape[-2:]
    out, done = [], 1
    for f in factors:
        k = f // done
        sums, done = _sum_groups(sums, k), f
        if counts is not None:
            counts = _sum_groups(counts, k)
            mean = sums / np.maximum(counts, 1)
        else:  # every pixel valid: a group holds f x f of them, fewer at the image edge
            cy = np.minimum(f, h - f * np.arange(sums.shape[-2]))
            cx = np.minimum(f, w - f * np.arange(sums.shape[-1]))
            mean = sums / np.outer(cy, cx).astype(acc)
        if not floating:
            info = np.iinfo(item.dtype)
            mean = np.clip(np.rint(mean), info.min, info.max)
        if counts is not None:
            mean = np.where(counts > 0, mean, fill)
        out.append(mean.astype(item.dtype))
    return out


def _sum_groups(a: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Sum ``k x k`` groups of the last two axes (zero-padded at the far edges)."""
    h, w = a.shape[-2:]
    ph, pw = -h % k, -w % k
    if ph or pw:
        a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, ph), (0, pw)])
    out = a[..., ::k, ::k].copy()  # k * k strided adds: far faster than a reshaped sum
    for i in range(k):
        for j in range(k):
            if i or j:
                out += a[..., i::k, j::k]
    return out


def _store_lock() -> Any:
    """Return a lock for window writes: distributed when a client is active, else threading."""
    try:
        from distributed import Lock, get_client

        client = get_client()
    except (ImportError, ValueError):
        return threading.Lock()
    del client
    return Lock(f"vitseg-cog-{uuid.uuid4().hex}")


@contextlib.contextmanager
def _quiet_gdal() -> Iterator[None]:
    import rasterio

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_INTERNAL_MASK=True):
        yield


def _stage(
    arrays: Sequence[xr.DataArray],
    paths: Sequence[Path],
    nodatas: Sequence[float | None],
    overviews: Sequence[tuple[list[int], str]],
    legends: Sequence[_Legend | None] | None = None,
) -> list[bool]:
    """Write DataArrays to tiled GeoTIFFs chunk by chunk (one dask pass for all).

    ``overviews`` gives each array's overview factors and resampling. Where every inner
    chunk edge falls on a multiple of the largest factor and the resampling is
    ``"average"`` or ``"nearest"``, the overview levels are computed in the same pass,
    chunk by chunk, into ``<path>.ovr``, ``<path>.ovr.ovr``, ... (GDAL's chained external
    overviews), so that the conversion to a COG after the pass only compresses. Returns,
    per array, whether its overviews were written so. ``legends`` gives each single-band
    array's GDAL colour table and category names (or None), stored in the TIFF (colour
    table; names as the band tag ``categories``).
    """
    import rasterio
    from rasterio.transform import Affine

    sources, targets, built = [], [], []
    for arr, path, nodata, (factors, resampling), legend in zip(
        arrays, paths, nodatas, overviews, legends or [None] * len(arrays), strict=True
    ):
        a2 = arr if arr.ndim == 3 else arr.expand_dims("band_", axis=0)
        count, height, width = a2.shape
        profile = {
            "driver": "GTiff", "height": height, "width": width, "count": count,
            "dtype": str(a2.dtype), "crs": arr.rio.crs, "transform": arr.rio.transform(),
            "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
            "BIGTIFF": "IF_SAFER",  # uncompressed: 8x faster to stage, GDAL compresses once
        }  # fmt: skip
        names = arr.attrs.get("long_name")
        with rasterio.open(path, "w", **profile) as dst:
            if "scale_factor" in arr.attrs:  # stored codes decode as value * scale + offset
                dst.scales = (float(arr.attrs["scale_factor"]),) * count
                dst.offsets = (float(arr.attrs.get("add_offset", 0.0)),) * count
            if arr.ndim == 3:
                labels = [str(v) for v in arr[arr.dims[0]].values]
                for i, label in enumerate(labels, start=1):
                    dst.set_band_description(i, label)
            elif isinstance(names, str):
                dst.set_band_description(1, names)
            if legend is not None and legend.colormap:
                dst.write_colormap(1, legend.colormap)
            if legend is not None and legend.names:
                named = {str(i): n for i, n in enumerate(legend.names) if n}
                dst.update_tags(1, categories=json.dumps(named))
        data = (
            a2.data
            if isinstance(a2.data, da.Array)
            else da.from_array(a2.data, chunks=(-1, 1024, 1024))
        )
        edges = [int(e) for c in data.chunks[-2:] for e in np.cumsum(c[:-1])]
        levels: list[tuple[int, str]] = []
        if (
            factors and resampling in {"average", "nearest"}
            and all(e % factors[-1] == 0 for e in edges)
        ):  # fmt: skip
            ovr = str(path)
            for f in factors:
                ovr += ".ovr"
                shape = {"height": -(-height // f), "width": -(-width // f)}
                tf = profile["transform"] * Affine.scale(f)
                with rasterio.open(ovr, "w", **{**profile, **shape, "transform": tf}):
                    pass
                levels.append((f, ovr))
        built.append(bool(levels))
        sources.append(data if arr.ndim == 3 else data[0])
        targets.append(_WindowWriter(str(path), levels, resampling, nodata))
    da.store(sources, targets, lock=_store_lock(), compute=True)
    return built


def overview_factors(height: int, width: int, blocksize: int) -> list[int]:
    """Return the overview levels of a COG: halving until the image fits one block.

    Examples
    --------
    >>> overview_factors(2048, 1500, 512), overview_factors(512, 300, 512)
    ([2, 4], [])
    """
    factors, f = [], 1
    while max(height, width) / f > blocksize:
        f *= 2
        factors.append(f)
    return factors


def _codec(compress: str, dtype: Any) -> tuple[str, int]:
    """Return ``(GDAL codec, predictor)`` for ``compress`` and a band dtype.

    ``"auto"``: ZSTD with the floating-point predictor for float layers (as small as
    DEFLATE and ~1.8x faster to write: 0.35 vs 0.62 s for a 2048 px 3-band probability
    layer), DEFLATE with horizontal differencing for integer layers (class maps: small
    and read by every GeoTIFF reader). Level 1 either way (DEFLATE: ~2x faster than the
    default level 6, files ~5 % larger).
    """
    floating = bool(np.issubdtype(np.dtype(dtype), np.floating))
    if compress == "auto":
        compress = "zstd" if floating else "deflate"
    return compress.upper(), 3 if floating else 2


def _to_cog(
    stage: Path,
    dst: Path,
    *,
    factors: list[int],
    built: bool,
    resampling: str,
    blocksize: int,
    codec: str,
    predictor: int,
) -> None:
    """Convert a staging GeoTIFF to a COG; overviews at ``factors`` first, unless ``built``."""
    import rasterio.shutil
    from rasterio.enums import Resampling

    opts = {
        "COMPRESS": codec, "LEVEL": "1", "BLOCKSIZE": str(blocksize),
        "PREDICTOR": str(predictor), "OVERVIEWS": "FORCE_USE_EXISTING" if factors else "NONE",
        "RESAMPLING": resampling.upper(), "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS",
    }  # fmt: skip
    with _quiet_gdal():
        if factors and not built:
            # Overviews built in the uncompressed staging file, then copied: the COG
            # driver would build them into a compressed temporary file and recompress
            # them (same pixels, ~30 % more time for a probability layer).
            with rasterio.open(stage, "r+") as ds:
                ds.build_overviews(factors, Resampling[resampling])
        rasterio.shutil.copy(str(stage), str(dst), driver="COG", **opts)


def write_cog(
    da_: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    nodata: float | None = None,
    overviews: bool = True,
    resampling: Literal["nearest", "average", "mode"] = "nearest",
    blocksize: int = 512,
    compress: Literal["auto", "deflate", "zstd"] = "auto",
    colormap: Mapping[int, Any] | None = None,
    category_names: Sequence[str] | None = None,
) -> Path:
    """Write a 2-D or 3-D DataArray as a Cloud-Optimised GeoTIFF, atomically.

    The array is computed chunk by chunk into a tiled staging GeoTIFF beside ``path``
    (memory bounded by the chunk size, any dask scheduler; on a remote cluster the
    folder must be shared), then GDAL's COG driver writes internal tiles, overviews and
    compression. Nothing appears at ``path`` unless everything succeeded.

    Parameters
    ----------
    da_
        ``(y, x)`` or ``(band, y, x)`` (any name for the first dim; its labels become band
        descriptions), with a CRS.
    path
        Destination ``.tif``.
    nodata
        No-data value stored in the file (e.g. ``255`` for classes, ``nan`` for floats).
    overviews
        Build internal overviews (halving down to one block).
    resampling
        Overview resampling: ``"nearest"`` / ``"mode"`` for classes, ``"average"`` for
        probabilities.
    blocksize
        Internal tile size in pixels.
    compress
        ``"auto"``: ZSTD (floating-point predictor) for float arrays, as small as DEFLATE
        and ~1.8x faster to write, read by GDAL >= 2.3, rasterio and QGIS; DEFLATE for
        integer arrays. ``"deflate"`` for readers without ZSTD.
    colormap
        ``{code: colour}`` (``"#rrggbb"`` or an ``(r, g, b[, a])`` tuple) of a uint8 /
        uint16 class map, written as the band's GDAL colour table (inside the COG): QGIS
        and GDAL draw the map in these colours. :func:`vitseg.styles.class_colormap` and
        :func:`vitseg.styles.change_colormap` build them.
    category_names
        Name of each code from 0 (``""`` for unused codes), e.g. the class names: stored
        as the band tag ``categories`` inside the COG, and as GDAL category names and a
        raster attribute table in ``<path>.aux.xml`` beside it (GeoTIFF has no tag for
        them), which QGIS shows as the colour table's labels. Without names any
        ``<path>.aux.xml`` of an earlier file is removed.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DimensionError
        If the array is not 2-D or 3-D with ``y``/``x`` last.
    MissingCRSError
        If the array has no CRS.
    VitsegError
        ``colormap`` / ``category_names`` for anything but a single-band uint8 / uint16
        array, or codes outside its range.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr, rioxarray
    >>> a = xr.DataArray(np.zeros((64, 64), "uint8"), dims=("y", "x"),
    ...     coords={"y": np.arange(64.0)[::-1] * 10, "x": np.arange(64.0) * 10}
    ... ).rio.write_crs("EPSG:32630")
    >>> write_cog(a, tempfile.mkdtemp() + "/a.tif", nodata=255).name
    'a.tif'
    >>> from vitseg.styles import class_colormap
    >>> p = write_cog(a, tempfile.mkdtemp() + "/c.tif", nodata=255, colormap=class_colormap(),
    ...               category_names=["mines", "built", "vegetation"])
    >>> import rasterio
    >>> with rasterio.open(p) as src:
    ...     src.colormap(1)[0], src.tags(1)["categories"]
    ((217, 95, 2, 255), '{"0": "mines", "1": "built", "2": "vegetation"}')
    """
    if da_.ndim not in (2, 3) or tuple(da_.dims[-2:]) != ("y", "x"):
        raise DimensionError(
            f"write_cog needs dims (y, x) or (band, y, x); got {tuple(da_.dims)}. "
            "Select one time step first (e.g. probs.isel(time=0))."
        )
    _check_crs(da_, "the array")
    if resampling not in {"nearest", "average", "mode"}:
        raise VitsegError(f"resampling must be one of nearest/average/mode; got {resampling!r}")
    if compress not in {"auto", "deflate", "zstd"}:
        raise VitsegError(f"compress must be one of auto/deflate/zstd; got {compress!r}")
    legend = _make_legend(da_, colormap, category_names)
    _write_cogs([da_], [Path(path)], [nodata], [resampling], overviews=overviews,
                blocksize=int(blocksize), compress=compress, legends=[legend])  # fmt: skip
    return Path(path)


def _write_cogs(
    arrays: Sequence[xr.DataArray],
    paths: Sequence[Path],
    nodatas: Sequence[float | None],
    resamplings: Sequence[str],
    *,
    overviews: bool = True,
    blocksize: int = 512,
    compress: str = "auto",
    legends: Sequence[_Legend | None] | None = None,
) -> None:
    """Write several arrays on one grid as COGs in ONE dask pass (shared inputs computed once).

    Every array is staged chunk by chunk into a tiled GeoTIFF (with its overview levels
    where its chunk edges allow, see :func:`_stage`), then converted to a COG; each
    final path appears only if all of them succeeded. ``legends`` (one per array, or
    None) add colour tables and category names; the names' ``.aux.xml`` sidecar is
    written before its COG is renamed into place.
    """
    legends = list(legends or [None] * len(arrays))
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(p)) for p in paths]
        # All staging files beside the first output's temporary (one prefix to sweep).
        stages = [tmps[0].with_name(f"{tmps[0].stem}.{i}.stage.tif") for i in range(len(tmps))]
        try:
            plans = [
                (overview_factors(a.shape[-2], a.shape[-1], blocksize) if overviews else [], res)
                for a, res in zip(arrays, resamplings, strict=True)
            ]
            built = _stage(arrays, stages, nodatas, plans, legends)
            jobs = []
            for a, stage, tmp, (factors, res), done in zip(
                arrays, stages, tmps, plans, built, strict=True
            ):
                codec, predictor = _codec(compress, a.dtype)
                job = functools.partial(
                    _to_cog, stage, tmp, factors=factors, built=done, resampling=res,
                    blocksize=blocksize, codec=codec, predictor=predictor,
                )  # fmt: skip
                jobs.append(job)
            # GDAL releases the GIL: the conversions (overviews, compression) run side by side
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
                for fut in [pool.submit(job) for job in jobs]:
                    fut.result()
            for final, legend in zip(paths, legends, strict=True):
                aux = Path(f"{final}.aux.xml")  # names the COG's codes (see _legend_aux_xml)
                if legend is not None and legend.names:
                    atomic_write_text(aux, _legend_aux_xml(legend))
                else:  # an earlier file's names or statistics: they would describe this one
                    aux.unlink(missing_ok=True)
        finally:
            for tmp in tmps:  # PAM sidecars GDAL may leave beside the temporary COGs
                Path(f"{tmp}.aux.xml").unlink(missing_ok=True)
            for stage in stages:
                Path(f"{stage}.aux.xml").unlink(missing_ok=True)
                ovr = Path(f"{stage}.ovr")  # the chain of overview levels, if any
                while ovr.exists():
                    ovr.unlink()
                    ovr = Path(f"{ovr}.ovr")
                stage.unlink(missing_ok=True)
            _release_free_memory()


def _release_free_memory() -> None:
    """Hand memory that glibc's allocator keeps after a scene back to the system.

    Blocks, batches and GDAL's conversion buffers are freed into per-thread arenas that
    glibc trims only at their top, so without this a process mapping scene after scene
    grows: on bench/predict.py's scenes (U-Net, tile 256) peak RSS went 1.40 -> 1.54 ->
    1.63 GB over three 2048 px scenes and 1.71 -> 2.10 GB over two 8192 px ones (with
    it: 1.37 -> 1.41 -> 1.43 and 1.64 -> 1.82 GB). Once per written scene, not per
    block: trimming after each block cost the SegFormer path ~9 % (freed pages are
    faulted in again). No-op off glibc.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


def quantise_probs(probs: xr.DataArray, *, step: float = PROB_STEP) -> xr.DataArray:
    """Return probabilities as uint8 codes ``round(p / step)``; NaN becomes 255.

    The result carries ``scale_factor`` (``step``) and ``_FillValue`` (255), so that
    :func:`write_cog` stores them in the file, and :func:`open_map` (or any reader that
    applies the file's scale: rioxarray with ``mask_and_scale=True``, ``gdal_translate
    -unscale``) gives float probabilities back, within ``step / 2``. With the default
    step of 0.004 a probability layer is about a tenth of its float32 size and a third
    of the time to write.

    Parameters
    ----------
    probs
        Probabilities in [0, 1] (any dims), numpy or dask; NaN = no data.
    step
        Quantisation step, 1/n for a whole n up to 254 (codes 0..n; 255 is no-data).

    Returns
    -------
    xarray.DataArray
        uint8, same dims, coords and chunks.

    Raises
    ------
    VitsegError
        If ``step`` is not 1/n for a whole n from 1 to 254.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> quantise_probs(xr.DataArray(np.array([0.0, 0.3, 1.0, np.nan]))).values.tolist()
    [0, 75, 250, 255]
    """
    top = round(1.0 / step) if step > 0 else 0
    if not 0 < top < PROB_NODATA or abs(top * step - 1.0) > 1e-9:
        raise VitsegError(
            f"step must be 1/n for a whole n from 1 to 254 (e.g. 0.004 or 0.01), so that "
            f"1.0 has a code below {PROB_NODATA}; got {step!r}"
        )
    out = _per_block(probs, functools.partial(_quantise_block, inv=1.0 / step, top=top), "uint8")
    out.attrs.update(scale_factor=float(step), add_offset=0.0)
    out.attrs["_FillValue"] = np.uint8(PROB_NODATA)
    return out


def _quantise_block(p: np.ndarray[Any, Any], *, inv: float, top: int) -> np.ndarray[Any, Any]:
    with _busy():
        q = np.multiply(p, np.float32(inv), dtype="float32")
        q += np.float32(0.5)  # round half up, then truncate
        np.minimum(q, np.float32(top), out=q)  # NaN stays NaN
        np.maximum(q, np.float32(0.0), out=q)
        np.copyto(q, np.float32(PROB_NODATA), where=np.isnan(q))
        codes: np.ndarray[Any, Any] = q.astype("uint8")
        return codes


def _per_block(arr: xr.DataArray, func: Any, dtype: str) -> xr.DataArray:
    """``arr`` with ``func`` applied to each dask block (lazily), or to its numpy array."""
    data = (
        arr.data.map_blocks(func, dtype=dtype)
        if isinstance(arr.data, da.Array)
        else func(np.asarray(arr.data))
    )
    return arr.copy(data=data)


def _decode(arr: xr.DataArray, scale: float, offset: float, nodata: Any) -> xr.DataArray:
    """Scaled integer codes -> float32 ``code * scale + offset``, no-data -> NaN."""
    func = functools.partial(_decode_block, scale=scale, offset=offset, nodata=nodata)
    out = _per_block(arr, func, "float32")
    for key in ("scale_factor", "add_offset"):
        out.attrs.pop(key, None)
    out.attrs["_FillValue"] = np.float32(np.nan)
    return out


def _decode_block(
    codes: np.ndarray[Any, Any], *, scale: float, offset: float, nodata: Any
) -> np.ndarray[Any, Any]:
    if codes.dtype in (np.uint8, np.uint16):
        # a lookup table computed in float64: 250 * 0.004 decodes to exactly 1.0
        lut = (np.arange(np.iinfo(codes.dtype).max + 1) * scale + offset).astype("float32")
        if nodata is not None and 0 <= nodata < lut.size:
            lut[int(nodata)] = np.nan
        values: np.ndarray[Any, Any] = lut[codes]
        return values
    out = (codes.astype("float64") * scale + offset).astype("float32")
    if nodata is not None:
        out[codes == nodata] = np.nan
    return out


def _tile_multiple(chunk: int | None, block: int) -> int | None:
    """Round a chunk side larger than ``block`` to the nearest multiple of it.

    Examples
    --------
    >>> _tile_multiple(1088, 512), _tile_multiple(1024, 256), _tile_multiple(300, 512)
    (1024, 1024, 300)
    """
    if not chunk or chunk <= block:
        return chunk
    return round(chunk / block) * block  # chunk > block: at least one tile


def open_map(path: str | os.PathLike[str], *, chunks: int | None = 1024) -> xr.DataArray:
    """Open a map written by vitseg lazily; multi-band files get a ``class`` dim.

    Float no-data becomes NaN; integer maps keep their no-data value (e.g. 255). Layers
    stored as scaled integers (a GDAL scale or offset, as :func:`write_scene_maps` writes
    probabilities and confidence) are decoded to float32, no-data to NaN.

    Parameters
    ----------
    path
        A GeoTIFF / COG.
    chunks
        Dask chunk side (None loads into memory). A side larger than the file's internal
        tiles is rounded to a whole number of them (1088 -> 1024 for 512 px tiles): a
        chunk edge inside a tile makes GDAL decode that tile for both chunks, and such
        reads of a 10-band COG cost up to 4x more CPU here.

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` for single-band files, ``(class, y, x)`` (labels from the band
        descriptions) otherwise, with the file's CRS.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist.
    CorruptRasterError
        If the file cannot be opened, or is truncated (its last block cannot be read).
    """
    import rasterio
    from rasterio.windows import Window

    if not Path(path).is_file():
        raise MissingFileError(f"no map at {str(path)!r}; run the step that writes it first")
    try:
        with rasterio.open(path) as ds:  # a truncated file loses its last block first
            bh, bw = ds.block_shapes[0]
            r0, c0 = (ds.height - 1) // bh * bh, (ds.width - 1) // bw * bw
            ds.read(window=Window(c0, r0, ds.width - c0, ds.height - r0))
        spec = {"band": -1, "y": _tile_multiple(chunks, bh), "x": _tile_multiple(chunks, bw)}
        arr = rioxarray.open_rasterio(
            path, chunks=spec if chunks else None, mask_and_scale=False, lock=False
        )
    except rasterio.errors.RasterioError as exc:
        raise CorruptRasterError(
            f"cannot read raster {str(path)!r} ({exc}); it is truncated or corrupt. Delete it "
            "and re-run the step that wrote it."
        ) from exc
    if not isinstance(arr, xr.DataArray):  # a multi-subdataset file gives a list
        raise DimensionError(f"{path} holds several subdatasets; open one of them")
    nodata = arr.rio.nodata
    scale = float(arr.attrs.get("scale_factor", 1.0))
    offset = float(arr.attrs.get("add_offset", 0.0))
    if scale != 1.0 or offset != 0.0:  # e.g. uint8 probabilities (quantise_probs)
        arr = _decode(arr, scale, offset, nodata)
    elif np.issubdtype(arr.dtype, np.floating) and nodata is not None and not np.isnan(nodata):
        arr = arr.where(arr != nodata)
    names = arr.attrs.get("long_name")
    if arr.sizes["band"] == 1:
        return arr.isel(band=0, drop=True)
    labels = list(names) if isinstance(names, (tuple, list)) else list(range(arr.sizes["band"]))
    return arr.rename(band="class").assign_coords({"class": [str(v) for v in labels]})


def write_scene_maps(
    probs: xr.DataArray,
    folder: str | os.PathLike[str],
    *,
    prefix: str,
    exclude: xr.DataArray | None = None,
    overwrite: bool = False,
    dtype: Literal["uint8", "float32"] = "uint8",
) -> dict[str, Path]:
    """Write one scene's probability, class and confidence COGs; skip what exists.

    ``<folder>/<prefix>_probs.tif`` (one band per class, average overviews),
    ``<prefix>_class.tif`` (uint8 class codes, 255 no-data, from the unrounded
    probabilities; with the class colours of :data:`vitseg.constants.CLASS_COLORS` as its
    GDAL colour table and the class names as category names, see :func:`write_cog`) and ``<prefix>_confidence.tif`` (the highest probability). By default
    probabilities and confidence are stored as uint8 codes of 0.004 (255 no-data, the
    scale in the file; :func:`quantise_probs`): :func:`open_map` reads them back as
    float32 within 0.002, in a tenth of the float32 file size and about a third of the
    time to write. The probabilities are computed once, chunk by chunk, and each chunk
    feeds all three files (one dask pass). A run killed half-way resumes: files already
    present are kept unless ``overwrite``; missing class or confidence files are then
    derived from the probability COG on disk.

    Parameters
    ----------
    probs
        ``(class, y, x)`` probabilities of one scene (e.g. ``predict_cube(...)
        .isel(time=i)``), with a CRS.
    folder
        Output folder (created).
    prefix
        File name prefix, e.g. the STAC item id.
    exclude
        Optional boolean ``(y, x)`` mask on the same grid: True pixels become no-data
        (see :func:`vitseg.exclusions.exclusion_mask`).
    overwrite
        Recompute and replace existing files.
    dtype
        Storage of the probability and confidence layers: ``"uint8"`` (0.004 steps) or
        ``"float32"`` (NaN no-data, full precision, ~10x larger).

    Returns
    -------
    dict
        ``{"probs": Path, "class": Path, "confidence": Path}``.

    Raises
    ------
    DimensionError
        If ``probs`` is not ``(class, y, x)``.
    ParamsError
        If ``prefix`` holds a path separator or ``..`` (it would write outside ``folder``).
    VitsegError
        If ``dtype`` is neither ``"uint8"`` nor ``"float32"``, or ``probs`` are not
        probabilities (values outside [0, 1] or class sums away from 1 on a sample of each
        block: logits, say); raised while writing, and nothing is left at the paths.
    """
    if tuple(probs.dims) != ("class", "y", "x"):
        raise DimensionError(
            f"probs must be (class, y, x) for one scene; got {tuple(probs.dims)}. "
            "Use probs.isel(time=i)."
        )
    if dtype not in {"uint8", "float32"}:
        raise VitsegError(f"dtype must be 'uint8' or 'float32'; got {dtype!r}")
    seps = {"/", "\\", os.sep, os.altsep or "/"}
    if (
        not isinstance(prefix, str)
        or not prefix
        or ".." in prefix
        or any(c in prefix for c in seps)
    ):
        raise ParamsError(
            f"prefix must be a plain file-name prefix (no path separators, no '..'), so that "
            f"the maps stay inside {str(folder)!r}; got {prefix!r}. Put sub-folders in "
            "folder instead."
        )
    out = {name: Path(folder) / f"{prefix}_{name}.tif" for name in SCENE_LAYERS}
    if not overwrite and all(p.exists() for p in out.values()):
        return out
    todo = [k for k in SCENE_LAYERS if overwrite or not out[k].exists()]
    if "probs" in todo:  # one pass: each chunk of probabilities feeds all three files
        _check_crs(probs, "probs")
        if isinstance(probs.data, da.Array) and len(probs.data.chunks[0]) > 1:
            probs = probs.chunk({"class": -1})  # each block's class sums are checked
        probs = _per_block(probs, _check_probs_block, str(probs.dtype))
        if exclude is not None:
            probs = probs.where(~exclude.astype(bool))
    else:  # resume: class / confidence from the probabilities already written
        probs = open_map(out["probs"])
    cls, conf = classify(probs)
    fill: float = float("nan")
    if dtype == "uint8":  # quantised in the same pass, chunk by chunk
        probs, conf, fill = quantise_probs(probs), quantise_probs(conf), PROB_NODATA
    layers = {
        "probs": (probs, fill, "average"),
        "class": (cls, IGNORE_INDEX, "nearest"),
        "confidence": (conf, fill, "average"),
    }
    from vitseg.styles import class_colormap

    names = [str(c) for c in cls.attrs["classes"].split(",")]
    legend = _Legend(colormap=class_colormap(names), names=tuple(names))
    _write_cogs(
        [layers[k][0] for k in todo], [out[k] for k in todo],
        [layers[k][1] for k in todo], [layers[k][2] for k in todo],
        legends=[legend if k == "class" else None for k in todo],
    )  # fmt: skip
    return out


#: Tolerances of the probability check of :func:`write_scene_maps` (range, class sum).
_PROB_RANGE_TOL = 1e-3
_PROB_SUM_TOL = 0.02


def _check_probs_block(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return ``p`` (``(class, y, x)``) unchanged; raise if a sample of it is not probabilities.

    Every 7th row and column of the block is checked (a 2 % sample): values within
    [0, 1] and, where no class is NaN, class sums within 0.02 of 1. Logits (any real
    numbers) fail one of the two.
    """
    if not np.issubdtype(p.dtype, np.floating) or p.size == 0:
        return p
    sample = np.asarray(p[:, ::7, ::7], dtype="float64")
    valid = np.isfinite(sample).all(axis=0)
    if not valid.any():
        return p
    vals = sample[:, valid]
    lo, hi = float(vals.min()), float(vals.max())
    sums = vals.sum(axis=0)
    worst = float(sums[np.argmax(np.abs(sums - 1.0))])
    if lo < -_PROB_RANGE_TOL or hi > 1 + _PROB_RANGE_TOL or abs(worst - 1.0) > _PROB_SUM_TOL:
        raise VitsegError(
            f"probs must be class probabilities (each in [0, 1], summing to 1 over classes); "
            f"got values in [{lo:.4g}, {hi:.4g}] and a class sum of {worst:.4g}. Logits? "
            "Apply a softmax over 'class' first (predict_cube returns probabilities)."
        )
    return p
