"""Large-area prediction: tiled, blended, streamed inference, class maps and scene maps.

:func:`predict_cube` turns a lazy ``(time, band, y, x)`` reflectance cube of any size
into per-class probabilities on exactly the cube's grid. It works chunk by chunk
(``dask.array`` blocks with a halo of half the overlap, built in :mod:`vitseg._daskplan`),
and inside each block cuts windows of at most ``tile`` x ``tile`` pixels that overlap by
``overlap`` pixels (as few as full tiles would need, each no larger than that count
requires: :func:`window_layout`). By default the chunks follow one window lattice over
the scene, so that neighbouring blocks share just the overlap of their edge windows and
a scene costs no more windows than if it were one block. Overlapping windows are blended
with a smooth weight (zero in the outer quarter of the overlap, a raised-cosine ramp
over the middle half, one inside), so a model whose receptive field is no wider than a
quarter of the overlap gives exactly the whole-image answer; at a chunk boundary the map
passes from one window to the next mid-overlap, each at least half an overlap from its
own edge. Peak memory depends on the chunk and tile sizes, not on the area.

The model reaches dask workers once: it is serialised into a single graph key that all
block tasks depend on (once per module and weights, not per call), and each process
rebuilds it once (cached by content hash). On the CPU, block tasks running side by side
split the cores between their forward passes, so that reading, blending and writing one
block overlap the model's work on another instead of competing with it for cores.

No-data and cloud-masked pixels (NaN in any band) are NaN in the probabilities, 255 in
class maps (:func:`classify`). :func:`write_scene_maps` writes one scene's class,
confidence and probability COGs in one pass over the probabilities, skipping work
already on disk (resume). Writing and reading maps (:func:`write_cog`,
:func:`open_map`, :func:`quantise_probs`) live in :mod:`vitseg.cog` and are re-exported
here.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from vitseg._daskplan import (
    _LOCAL,
    _busy,
    _file_backed,
    _halo_chunks,
    _halo_map,
    _lattice_chunks,
    _share_cores,
    _source_plan,
)
from vitseg._modelship import (
    _INFER_LOCK,
    _get_model,
    _model_node,
    _ModelPayload,
    _payload,
)
from vitseg.cog import (
    _PROB_RANGE_TOL,
    _check_count,
    _check_crs,
    _check_grid,
    _check_out_file,
    _check_probs_block,
    _Legend,
    _per_block,
    _write_cogs,
    open_map,
    quantise_probs,
    write_cog,
)
from vitseg.cog import PROB_NODATA as PROB_NODATA  # re-exported: maps live in vitseg.cog
from vitseg.cog import PROB_STEP as PROB_STEP
from vitseg.cog import overview_factors as overview_factors
from vitseg.constants import BINARY_CLASSES, CLASSES, IGNORE_INDEX
from vitseg.errors import (
    BandError,
    DimensionError,
    GridMismatchError,
    MissingFileError,
    ParamsError,
    VitsegError,
)

__all__ = [
    "blend_window",
    "classify",
    "norm_from_meta",
    "open_map",
    "predict_classes",
    "predict_cube",
    "quantise_probs",
    "tile_starts",
    "window_layout",
    "write_cog",
    "write_scene_maps",
]

#: Names of the three per-scene outputs written by :func:`write_scene_maps`.
SCENE_LAYERS = ("probs", "class", "confidence")

# ----------------------------------------------------------------------------- tiling


def _check_tiling(size: int, tile: int, overlap: int) -> None:
    """``size >= 0``, ``tile >= 1`` and ``0 <= overlap < tile``, all integers (ParamsError)."""
    _check_count("size", size, 0)
    _check_count("tile", tile, 1)
    if _check_count("overlap", overlap, 0) >= tile:
        raise ParamsError(
            f"overlap must be smaller than the tile ({tile} px), or windows never advance; "
            f"got {overlap}"
        )


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
    _check_tiling(size, tile, overlap)
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
    _check_tiling(size, tile, overlap)
    _check_count("align", align, 1)
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
    if _check_count("overlap", overlap, 0) > _check_count("tile", tile, 1):
        raise ParamsError(f"overlap must be at most the tile ({tile} px); got {overlap}")
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
# serialising, scattering and rebuilding the model lives in vitseg._modelship


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


# ----------------------------------------------------------------------------- checks


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
    try:
        mean = np.asarray(norm["mean"], dtype="float32").ravel()
        std = np.asarray(norm["std"], dtype="float32").ravel()
    except (TypeError, ValueError) as err:
        raise BandError(
            f"norm 'mean' and 'std' must be lists of numbers, one per band; got mean "
            f"{norm['mean']!r} and std {norm['std']!r} ({err})"
        ) from None
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


def _check_class_names(names: Any, what: str) -> list[str]:
    """1..255 distinct names (a class map is uint8 with 255 = no data), or ParamsError."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ParamsError(
            f"{what} must be a list of class names, one per model output channel; got {names!r}"
        )
    out = [str(c) for c in names]
    twice = sorted({c for c in out if out.count(c) > 1})
    if not 1 <= len(out) <= 255 or twice:
        raise ParamsError(
            f"{what} must hold 1..255 distinct class names (uint8 codes, 255 = no data); got "
            f"{len(out)} names" + (f", {twice} more than once" if twice else "")
        )
    return out


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

    Raises
    ------
    ParamsError
        ``meta`` is not a mapping.

    Examples
    --------
    >>> norm_from_meta({"data": {"norm": {"bands": ["B02"], "mean": [0.1], "std": [0.2]}}})
    {'bands': ['B02'], 'mean': [0.1], 'std': [0.2]}
    """
    if not isinstance(meta, Mapping):
        raise ParamsError(
            f"meta must be the mapping vitseg.train.load_model returns (or its 'data'); got "
            f"{type(meta).__name__}"
        )
    data = meta.get("data", meta)
    if not isinstance(data, Mapping):
        return None
    for cand in (data, *(data.get(k) for k in ("norm", "band_stats", "stats"))):
        if isinstance(cand, Mapping) and "mean" in cand and "std" in cand:
            bands = cand.get("bands", data.get("bands"))
            return {  # a single number is one band's statistic (checked by predict_cube)
                "bands": [bands] if isinstance(bands, str) else (
                    list(bands) if bands is not None else None
                ),
                "mean": np.ravel(cand["mean"]).tolist(),
                "std": np.ravel(cand["std"]).tolist(),
            }  # fmt: skip
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
    DimensionError
        Also for a cube without pixels (an empty time, band, y or x selection) or whose
        ``y``/``x`` are not one regular grid (unsorted rows would feed the model a
        shuffled image).
    MissingFileError
        If ``model`` is the path of a folder, not a checkpoint file.
    ParamsError
        For ``tile`` / ``overlap`` / ``batch_size`` / ``chunk_size`` that are not integers
        (NaN, 2.5, "64") or below their minimum (1, 0, 1, 1), ``bf16`` not True / False / "auto", or ``classes`` that are not
        1..255 distinct names.
    VitsegError
        For an ``overlap`` above ``tile // 2``, or a ``tile`` that is not a multiple of 32
        for a vitseg model.

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
    _check_grid(cube, "cube")
    for name, value, low in (
        ("tile", tile, 1),
        ("overlap", overlap, 0),
        ("batch_size", batch_size, 1),
    ):
        _check_count(name, value, low)
    if chunk_size is not None:
        _check_count("chunk_size", chunk_size, 1)
    if bf16 not in (True, False, "auto") or not isinstance(bf16, (bool, str)):
        raise ParamsError(f"bf16 must be True, False or 'auto'; got {bf16!r}")
    if classes is not None:
        _check_class_names(classes, "classes")
    if isinstance(model, (str, os.PathLike)) and Path(model).is_dir():
        found = sorted(p.name for p in Path(model).glob("*.pt"))
        raise MissingFileError(
            f"model {str(model)!r} is a folder, not a checkpoint file; give a file such as "
            f"{str(Path(model) / 'best.pt')!r} (.pt files in it: {found})"
        )
    if not 0 <= int(overlap) <= int(tile) // 2:
        raise VitsegError(
            f"overlap must be in [0, tile // 2] = [0, {int(tile) // 2}]; got {overlap}"
        )
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
        if len(set(want)) != len(want):
            twice = sorted({b for b in want if want.count(b) > 1})
            raise BandError(
                f"norm lists bands {twice} more than once ({want}); each band is one model "
                "input, once: use the stats saved with the model (norm_from_meta)"
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
    model_key = _model_node(payload)
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


def predict_classes(
    model: Any,
    scene: xr.DataArray,
    *,
    tile: int = 256,
    overlap: int = 32,
    norm: Mapping[str, Any] | None = None,
    model_classes: Sequence[str] | None = None,
    classes: Sequence[str] = CLASSES,
) -> xr.DataArray:
    """Predict one small ``(band, y, x)`` scene or tile and return its class map, computed.

    The window is the largest multiple of 32 up to ``tile`` that fits the scene; the class
    codes are those of ``classes`` (vitseg's), whatever subset of them the model learnt
    (``model_classes``, e.g. ``["mines", "vegetation"]`` from a checkpoint's metadata).

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` uint8 codes of ``classes``; :data:`IGNORE_INDEX` where no data.

    Raises
    ------
    VitsegError
        A model class that is not in ``classes``.
    ParamsError
        ``tile`` / ``overlap`` that are not integers >= 1 / >= 0; ``classes`` or
        ``model_classes`` that are not 1..255 distinct names; ``model_classes`` whose count
        differs from the model's output channels (a class would be mapped onto another).
    DimensionError
        A scene without ``y`` and ``x`` dims (see :func:`predict_cube` for the rest).
    """
    if not isinstance(scene, xr.DataArray) or not {"y", "x"} <= set(scene.dims):
        dims = tuple(scene.dims) if isinstance(scene, xr.DataArray) else type(scene).__name__
        raise DimensionError(f"scene must be a (band, y, x) DataArray; got {dims}")
    _check_count("tile", tile, 1)
    _check_count("overlap", overlap, 0)
    classes = _check_class_names(classes, "classes")
    learnt = (
        _check_class_names(model_classes, "model_classes")
        if model_classes is not None
        else list(classes)
    )
    unknown = [c for c in learnt if c not in classes]
    if unknown:
        raise VitsegError(f"model classes {unknown} are not among {list(classes)}")
    side = max(32, min(int(tile), (min(scene.sizes["y"], scene.sizes["x"]) // 32) * 32))
    probs = predict_cube(model, scene, tile=side, overlap=min(int(overlap), side // 4), norm=norm)
    if probs.sizes["class"] != len(learnt):
        raise ParamsError(
            f"the model returns {probs.sizes['class']} classes but model_classes names "
            f"{len(learnt)} ({learnt}); give one name per output channel, in order"
        )
    cls = classify(probs)[0].compute()
    to_codes = np.array([list(classes).index(c) for c in learnt], dtype="uint8")
    values = cls.values
    codes = to_codes[np.minimum(values, len(to_codes) - 1)]
    return cls.copy(data=np.where(values == IGNORE_INDEX, IGNORE_INDEX, codes).astype("uint8"))


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
        If ``probs`` is not a DataArray with a ``class`` dim of 1..255 entries (fewer than
        ``nodata``), its dtype is not floating point (uint8 codes of a quantised map: read
        it with :func:`open_map`, which decodes them), or (when computed) it holds finite
        values outside [0, 1]: logits are refused, not given a "confidence" below 0.
    ParamsError
        If ``nodata`` is not an integer in ``n_classes..255`` (a code of a class, or one
        that wraps in uint8, would mix no data with that class).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = xr.DataArray(np.array([[[0.2, np.nan]], [[0.8, np.nan]]]), dims=("class", "y", "x"))
    >>> cls, conf = classify(p)
    >>> cls.values.tolist(), conf.values.astype(float).round(1).tolist()
    ([[1, 255]], [[0.8, nan]])
    """
    return _classify(probs, nodata=nodata, check=True)


def _classify(
    probs: xr.DataArray, *, nodata: int, check: bool
) -> tuple[xr.DataArray, xr.DataArray]:
    """:func:`classify`; ``check=False`` skips the value range (already checked upstream)."""
    if not isinstance(probs, xr.DataArray) or "class" not in probs.dims:
        dims = tuple(probs.dims) if isinstance(probs, xr.DataArray) else type(probs).__name__
        raise DimensionError(f"probs must have a 'class' dim; got dims {dims}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise DimensionError(
            f"probs must hold float probabilities (NaN = no data); got dtype {probs.dtype}. "
            "Quantised uint8 codes? Read the map with vitseg.predict.open_map, which decodes "
            "them to probabilities."
        )
    n = probs.sizes["class"]
    if not 1 <= n <= 255:
        raise DimensionError(
            f"probs has {n} classes along 'class'; a class map (uint8 codes, 255 = no data) "
            "holds 1..255 classes"
        )
    if (
        isinstance(nodata, bool)
        or not isinstance(nodata, (int, np.integer))
        or not n <= nodata <= 255
    ):
        raise ParamsError(
            f"nodata must be an integer in {n}..255 for {n} classes (uint8 codes 0..{n - 1} "
            f"are the classes); got nodata={nodata!r}"
        )
    # one pass over each block for both outputs (dask computes the pair once per chunk)
    cls, conf = xr.apply_ufunc(
        _classify_block, probs, kwargs={"nodata": int(nodata), "check": check},
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
    p: np.ndarray[Any, Any], *, nodata: int, check: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Argmax and max over the last axis; ``nodata`` / NaN where any value is NaN or inf.

    With ``check``, finite values outside [0, 1] (logits) raise a DimensionError.
    """
    if check and p.size:  # fmin/fmax skip NaN without a warning; inf is no data
        lo, hi = float(np.fmin.reduce(p, axis=None)), float(np.fmax.reduce(p, axis=None))
        if np.isinf(lo) or np.isinf(hi):  # rare: a copy without the infinities
            finite = np.where(np.isfinite(p), p, np.nan)
            lo, hi = (
                float(np.fmin.reduce(finite, axis=None)),
                float(np.fmax.reduce(finite, axis=None)),
            )
        if lo < -_PROB_RANGE_TOL or hi > 1 + _PROB_RANGE_TOL:
            raise DimensionError(
                f"probs must be class probabilities in [0, 1]; got values from {lo:.4g} to "
                f"{hi:.4g}. Logits? Apply a softmax over 'class' first (predict_cube returns "
                "probabilities)."
            )
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


# ----------------------------------------------------------------------------- scene maps


def _check_exclude(exclude: Any, probs: xr.DataArray) -> Any:
    """``exclude`` as a boolean mask on the grid of ``probs`` (GridMismatchError otherwise).

    A DataArray must be ``(y, x)`` with the coordinates of ``probs`` (xarray would
    otherwise align the two and silently cut the maps to their overlap); a plain array
    must have the ``(y, x)`` shape.
    """
    shape = (probs.sizes["y"], probs.sizes["x"])
    if isinstance(exclude, xr.DataArray):
        if set(exclude.dims) != {"y", "x"} or exclude.transpose("y", "x").shape != shape:
            raise GridMismatchError(
                f"exclude must be a (y, x) mask on the grid of probs {shape}; got dims "
                f"{tuple(exclude.dims)} and shape {exclude.shape}. Build it with "
                "vitseg.exclusions.exclusion_mask(..., like=probs)"
            )
        for dim in ("y", "x"):
            ours = np.asarray(probs[dim].values, dtype="float64")
            tol = 0.01 * (abs(ours[1] - ours[0]) if ours.size > 1 else 1.0)
            if dim in exclude.coords and not np.allclose(
                np.asarray(exclude[dim].values, dtype="float64"), ours, rtol=0, atol=tol
            ):
                raise GridMismatchError(
                    f"exclude's {dim!r} coordinates differ from those of probs (the two "
                    "would be aligned and the maps cut to their overlap); build the mask "
                    "with vitseg.exclusions.exclusion_mask(..., like=probs)"
                )
    elif np.shape(exclude) != shape:
        raise GridMismatchError(
            f"exclude must be a (y, x) mask of shape {shape} like probs; got shape "
            f"{np.shape(exclude)}"
        )
    if np.dtype(getattr(exclude, "dtype", object)) != np.dtype(bool):
        raise DimensionError(
            f"exclude must be a boolean mask (True = excluded); got dtype "
            f"{getattr(exclude, 'dtype', type(exclude).__name__)}. NaN or 2 would read as "
            "True: build it with vitseg.exclusions.exclusion_mask, or compare, e.g. "
            "mask == 1"
        )
    if isinstance(exclude, xr.DataArray):
        return (
            exclude.transpose("y", "x")
            .drop_vars([c for c in exclude.coords if c not in ("y", "x")])
            .assign_coords(y=probs["y"], x=probs["x"])
        )
    return xr.DataArray(np.asarray(exclude), dims=("y", "x"),
                        coords={"y": probs["y"], "x": probs["x"]})  # fmt: skip


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
        If ``probs`` is not ``(class, y, x)`` of 1..254 distinct classes, not floating
        point (uint8 codes: read them with :func:`open_map`), without pixels or not on one
        regular grid; or if ``exclude`` is not boolean.
    GridMismatchError
        If ``exclude`` is not on the grid of ``probs`` (other shape or coordinates).
    ParamsError
        If ``prefix`` holds a path separator, ``..``, a NUL byte or starts with ``.`` (it
        would write outside ``folder``, or hidden files), ``folder`` is a file (or lies
        under one), or a map's path is a folder.
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
    seps = {"/", "\\", "\0", os.sep, os.altsep or "/"}
    if (
        not isinstance(prefix, str)
        or not prefix
        or ".." in prefix
        or prefix.startswith(".")
        or any(c in prefix for c in seps)
    ):
        raise ParamsError(
            f"prefix must be a plain file-name prefix (no path separators, no '..', no NUL, "
            f"not starting with '.'), so that the maps stay inside {str(folder)!r} and are "
            f"not hidden; got {prefix!r}. Put sub-folders in folder instead."
        )
    if (
        probs.sizes["class"] > 254
        or len(set(map(str, probs["class"].values))) < probs.sizes["class"]
    ):
        raise DimensionError(
            f"probs must hold 1..254 distinct classes along 'class' (their names label the "
            f"maps); got {[str(c) for c in probs['class'].values][:10]}"
            f"{' ...' if probs.sizes['class'] > 10 else ''} ({probs.sizes['class']} classes)"
        )
    out = {
        name: _check_out_file(Path(folder) / f"{prefix}_{name}.tif", "map path", example=False)
        for name in SCENE_LAYERS
    }
    if not overwrite and all(p.exists() for p in out.values()):
        return out
    todo = [k for k in SCENE_LAYERS if overwrite or not out[k].exists()]
    if "probs" in todo:  # one pass: each chunk of probabilities feeds all three files
        _check_crs(probs, "probs")
        _check_grid(probs, "probs")
        if not np.issubdtype(probs.dtype, np.floating):
            raise DimensionError(
                f"probs must hold float probabilities (NaN = no data); got dtype {probs.dtype}. "
                "Quantised uint8 codes? Read the map with open_map, which decodes them."
            )
        mask = _check_exclude(exclude, probs) if exclude is not None else None
        if isinstance(probs.data, da.Array) and len(probs.data.chunks[0]) > 1:
            probs = probs.chunk({"class": -1})  # each block's class sums are checked
        probs = _per_block(probs, _check_probs_block, str(probs.dtype))
        if mask is not None:
            probs = probs.where(~mask)
    else:  # resume: class / confidence from the probabilities already written
        probs = open_map(out["probs"])
    cls, conf = _classify(probs, nodata=IGNORE_INDEX, check=False)  # checked per block above
    fill: float = float("nan")
    if dtype == "uint8":  # quantised in the same pass, chunk by chunk
        probs, conf, fill = quantise_probs(probs), quantise_probs(conf), PROB_NODATA
    layers = {
        "probs": (probs, fill, "average"),
        "class": (cls, IGNORE_INDEX, "nearest"),
        "confidence": (conf, fill, "average"),
    }
    from vitseg.styles import class_colormap

    names = [str(c) for c in probs["class"].values]  # (a name may hold a comma)
    legend = _Legend(colormap=class_colormap(names), names=tuple(names))
    _write_cogs(
        [layers[k][0] for k in todo], [out[k] for k in todo],
        [layers[k][1] for k in todo], [layers[k][2] for k in todo],
        legends=[legend if k == "class" else None for k in todo],
    )  # fmt: skip
    return out
