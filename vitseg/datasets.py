"""Torch datasets and band statistics (chip folders and downloaders re-exported).

- :class:`PatchDataset`: random ``patch_px`` crops (256 by default) from large labelled
  scenes or chips, with random X/Y flips and 90-degree rotations every epoch
  (Gallwey et al. §2.2), per-band normalisation, NaN -> 0 in the image and
  ``IGNORE_INDEX`` in the label there. Each sample depends only on
  ``(seed, epoch, index)``, so a resumed training run sees the same patches.
- :class:`TileDataset`: whole tiles, no augmentation (validation and test are scored
  on whole tiles, never random crops).
- :func:`band_stats`: per-band mean and standard deviation from training tiles only.

Chip folders (:class:`~vitseg.chips.ChipFolder`, :func:`~vitseg.chips.load_chip_folder`,
:func:`~vitseg.chips.load_smallminesds`) live in :mod:`vitseg.chips`; the downloaders (:func:`~vitseg.downloads.download_file`,
:func:`~vitseg.downloads.fetch_smallminesds`, :func:`~vitseg.downloads.fetch_mining_polygons`,
:func:`~vitseg.downloads.cache_dir` and their URL constants) live in :mod:`vitseg.downloads`
and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vitseg.chips import (
    SMALLMINESDS_BANDS,
    ChipFolder,
    _mask_codes,
    load_chip_folder,
    load_smallminesds,
)
from vitseg.constants import IGNORE_INDEX
from vitseg.downloads import (
    MINING_POLYGONS,
    SMALLMINESDS_FILES,
    SMALLMINESDS_URL,
    cache_dir,
    download_file,
    fetch_mining_polygons,
    fetch_smallminesds,
)
from vitseg.errors import (
    BandError,
    DimensionError,
    NoValidDataError,
    ParamsError,
)

__all__ = [
    "MINING_POLYGONS",
    "SMALLMINESDS_BANDS",
    "SMALLMINESDS_FILES",
    "SMALLMINESDS_URL",
    "BandStats",
    "ChipFolder",
    "PatchDataset",
    "TileDataset",
    "band_stats",
    "cache_dir",
    "download_file",
    "fetch_mining_polygons",
    "fetch_smallminesds",
    "load_chip_folder",
    "load_smallminesds",
]

# --------------------------------------------------------------------------------------
# Band statistics
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BandStats:
    """Per-band mean and standard deviation used to normalise images.

    Attributes
    ----------
    bands
        Band names, in image order.
    mean, std
        float64 arrays of shape ``(n_bands,)``; a band with zero spread gets std 1.
    """

    bands: tuple[str, ...]
    mean: np.ndarray[Any, Any]
    std: np.ndarray[Any, Any]

    def to_dict(self) -> dict[str, list[Any]]:
        """Plain lists (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return {
            "bands": list(self.bands),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BandStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(d["bands"]), np.asarray(d["mean"], "float64"), np.asarray(d["std"], "float64")
        )


def band_stats(
    source: Any,
    *,
    split: str | None = "train",
    bands: Sequence[str] | None = None,
) -> BandStats:
    """Per-band mean and std over training images, ignoring NaN.

    Parameters
    ----------
    source
        A :class:`ChipFolder` (or a path to one) whose ``index.csv`` has a ``split``
        column, or a sequence of ``(band, y, x)`` arrays/DataArrays (all used).
    split
        Which split of a chip folder to use (``"train"``; None = all chips). Using
        only training tiles keeps validation and test data out of the model.
    bands
        Band names (default: the folder's band names or ``band`` coordinate).

    Returns
    -------
    BandStats

    Raises
    ------
    BandError
        Images with different band counts.
    NoValidDataError
        A band has no finite pixel in any image.

    Examples
    --------
    >>> s = band_stats([np.array([[[1.0, 3.0]], [[0.0, np.nan]]])])
    >>> s.mean.tolist(), s.std.tolist()
    ([2.0, 0.0], [1.0, 1.0])
    """
    if isinstance(source, (str, os.PathLike)):
        source = load_chip_folder(source)
    if isinstance(source, ChipFolder):
        folder = source.subset(split) if split is not None else source
        names = tuple(bands or folder.bands)
        arrays: Any = (folder.read_image(i) for i in range(len(folder)))
    else:
        names = tuple(bands) if bands is not None else ()
        first = source[0] if len(source) else None
        if not names and first is not None and hasattr(first, "coords") and "band" in first.coords:
            names = tuple(str(b) for b in first["band"].values)
        arrays = (np.asarray(getattr(a, "values", a)) for a in source)
    n = s1 = s2 = None
    for arr in arrays:
        a = np.asarray(arr, dtype="float64").reshape(arr.shape[0], -1)
        if n is None:
            n, s1, s2 = np.zeros(a.shape[0]), np.zeros(a.shape[0]), np.zeros(a.shape[0])
        if a.shape[0] != n.shape[0]:
            raise BandError(f"images have {n.shape[0]} and {a.shape[0]} bands; use one band set")
        ok = np.isfinite(a)
        n += ok.sum(axis=1)
        s1 += np.where(ok, a, 0.0).sum(axis=1)
        s2 += np.where(ok, a * a, 0.0).sum(axis=1)
    if n is None or s1 is None or s2 is None:
        raise ParamsError(f"no images to compute band statistics from (split={split!r})")
    if not (n > 0).all():
        empty = [names[i] if i < len(names) else f"band_{i + 1}" for i in np.flatnonzero(n == 0)]
        raise NoValidDataError(
            f"band(s) {empty} have no finite pixel in any image (all NaN/inf: no-data or "
            f"clouds everywhere, split={split!r}); drop those images or bands before "
            "computing statistics"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
        var = np.maximum(np.where(n > 0, s2 / np.maximum(n, 1) - mean**2, 0.0), 0.0)
    std = np.sqrt(var)
    std[std == 0] = 1.0
    if not names:
        names = tuple(f"band_{i + 1}" for i in range(len(mean)))
    return BandStats(names, mean, std)


# --------------------------------------------------------------------------------------
# Torch datasets
# --------------------------------------------------------------------------------------


def _pairs(source: Any) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Load ``source`` into a list of (float32 image, uint8 mask) arrays."""
    if isinstance(source, (str, os.PathLike)):
        source = load_chip_folder(source)
    if isinstance(source, ChipFolder):
        if not len(source):
            raise ParamsError(f"chip folder {source.root} holds no chips (after the split)")
        return [source.read(i) for i in range(len(source))]
    out = []
    for k, item in enumerate(source):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DimensionError(
                f"item {k} of the sources must be an (image, mask) pair; got {type(item).__name__}"
            )
        raw_img = np.asarray(getattr(item[0], "values", item[0]))
        if raw_img.dtype.kind not in "biuf":
            raise DimensionError(
                f"pair {k}: image must hold real numbers (float reflectance, NaN = no data); "
                f"got dtype {raw_img.dtype}"
            )
        img = raw_img.astype("float32")
        msk = np.asarray(getattr(item[1], "values", item[1]))
        if img.ndim != 3 or msk.ndim != 2 or img.shape[1:] != msk.shape or img.shape[0] < 1:
            raise DimensionError(
                f"pair {k}: image must be (band, y, x) with >= 1 band and mask (y, x) of the "
                f"same size; got {img.shape} and {msk.shape}"
            )
        if msk.dtype.kind == "b":
            msk = msk.astype("uint8")
        out.append((img, _mask_codes(msk, None, None, f"of pair {k}")))
    if not out:
        raise ParamsError("no (image, mask) pairs given")
    counts = {p[0].shape[0] for p in out}
    if len(counts) > 1:
        raise BandError(f"images have different band counts {sorted(counts)}")
    return out


def _prepare(
    img: np.ndarray[Any, Any], msk: np.ndarray[Any, Any], stats: BandStats | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Normalise, NaN -> 0 in the image and IGNORE_INDEX in the mask."""
    bad = ~np.isfinite(img).all(axis=0)
    if stats is not None:
        if stats.mean.shape[0] != img.shape[0]:
            raise BandError(
                f"band statistics have {stats.mean.shape[0]} bands but images have {img.shape[0]}"
            )
        img = (img - stats.mean[:, None, None].astype("float32")) / stats.std[:, None, None].astype(
            "float32"
        )
    img = np.where(bad[None], np.float32(0), img).astype("float32")
    msk = np.where(bad, np.uint8(IGNORE_INDEX), msk).astype("uint8")
    return img, msk


def _to_tensors(
    img: np.ndarray[Any, Any], msk: np.ndarray[Any, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(img)), torch.from_numpy(
        np.ascontiguousarray(msk).astype("int64")
    )


class PatchDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random augmented patches from labelled scenes or chips (Gallwey et al. §2.2).

    Each item is a random ``patch_px`` crop of one source (sources are drawn in
    proportion to their area), randomly flipped in X and Y and rotated by a multiple
    of 90 degrees, normalised per band with ``stats``. The random draw depends only on
    ``(seed, epoch, index)``: call :meth:`set_epoch` each epoch; a resumed run gets
    the same patches as an uninterrupted one, whatever the number of workers.

    Parameters
    ----------
    sources
        A :class:`ChipFolder`, a path to one, or a sequence of ``(image, mask)`` pairs
        (``(band, y, x)`` float and ``(y, x)`` uint8 arrays or DataArrays). Loaded into
        memory once.
    patch_px
        Patch side (256, Gallwey). Sources smaller than a patch are padded with
        no-data (label ``IGNORE_INDEX``).
    samples_per_epoch
        Length of the dataset (patches per epoch).
    stats
        Band statistics from the training tiles (:func:`band_stats`); None = raw.
    augment
        Random flips and 90-degree rotations.
    seed, epoch
        Reproducibility.
    min_labelled_frac
        Redraw a patch (up to 10 times, deterministically) while fewer than this
        fraction of its pixels is labelled (not ``IGNORE_INDEX``).

    Examples
    --------
    >>> img = np.random.default_rng(0).random((3, 40, 40), dtype="float32")
    >>> ds = PatchDataset([(img, np.zeros((40, 40), "uint8"))], patch_px=16, samples_per_epoch=4)
    >>> x, y = ds[0]
    >>> tuple(x.shape), tuple(y.shape), str(y.dtype)
    ((3, 16, 16), (16, 16), 'torch.int64')
    """

    def __init__(
        self,
        sources: Any,
        *,
        patch_px: int = 256,
        samples_per_epoch: int = 1000,
        stats: BandStats | None = None,
        augment: bool = True,
        seed: int = 0,
        epoch: int = 0,
        min_labelled_frac: float = 0.0,
    ) -> None:
        if patch_px < 1 or samples_per_epoch < 1:
            raise ParamsError(
                f"patch_px and samples_per_epoch must be >= 1; got {patch_px}, {samples_per_epoch}"
            )
        if not 0.0 <= float(min_labelled_frac) <= 1.0:  # NaN fails too
            raise ParamsError(f"min_labelled_frac must be in [0, 1]; got {min_labelled_frac}")
        self.patch_px = int(patch_px)
        self.samples_per_epoch = int(samples_per_epoch)
        self.stats = stats
        self.augment = augment
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.min_labelled_frac = float(min_labelled_frac)
        self.bands: tuple[str, ...] = (
            source_bands
            if (source_bands := getattr(sources, "bands", None)) is not None
            else (stats.bands if stats is not None else ())
        )
        prepared = []
        for img, msk in _pairs(sources):
            img, msk = _prepare(img, msk, stats)
            ph, pw = max(0, patch_px - img.shape[1]), max(0, patch_px - img.shape[2])
            if ph or pw:
                img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
                msk = np.pad(msk, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
            prepared.append((img, msk))
        # One contiguous pixel-major store (pixel, band) of every source: a patch is a
        # strided view of it (flips and rotations are views too), copied once into the
        # batch; on a GPU the whole store is uploaded once and patches are gathered there.
        shapes = np.array([m.shape for _, m in prepared], dtype="int64")
        sizes = shapes[:, 0] * shapes[:, 1]
        self._shapes = shapes
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
        n_bands = int(prepared[0][0].shape[0])
        self._x = np.empty((int(sizes.sum()), n_bands), dtype="float32")
        self._y = np.empty(int(sizes.sum()), dtype="uint8")
        for (img, msk), off, size in zip(prepared, self._offsets, sizes, strict=True):
            self._x[off : off + size] = img.reshape(n_bands, -1).T
            self._y[off : off + size] = msk.ravel()
        del prepared
        # Transposed copies (x, y, band) make odd rotations plain strided copies too (a
        # rot90 view of the store copies about 5x slower); skipped for stores > 2 GiB.
        self._xt: np.ndarray[Any, Any] | None = None
        self._yt: np.ndarray[Any, Any] | None = None
        if augment and self._x.nbytes <= 2 * 2**30:
            self._xt, self._yt = np.empty_like(self._x), np.empty_like(self._y)
            for src in range(len(shapes)):
                img, msk = self._source(src)
                off, size = int(self._offsets[src]), int(sizes[src])
                self._xt[off : off + size] = img.transpose(1, 0, 2).reshape(size, n_bands)
                self._yt[off : off + size] = msk.T.ravel()
        self._cum_weights = np.cumsum(sizes / sizes.sum())
        self._labelled_cache: dict[int, np.ndarray[Any, Any]] = {}
        self._device_store: tuple[Any, ...] | None = None
        #: Largest store (bytes) :meth:`load_batch` uploads to a GPU to cut patches there.
        self.device_cache_bytes = 8 * 2**30

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_device_store"] = None  # never ship GPU tensors to data-loader workers
        return state

    @property
    def in_channels(self) -> int:
        """Number of bands."""
        return int(self._x.shape[1])

    def _source(
        self, src: int, *, transposed: bool = False
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Return views ``(y, x, band)`` and ``(y, x)`` of source ``src`` in the store.

        ``transposed``: views ``(x, y, band)`` and ``(x, y)`` of the transposed copy.
        """
        (ny, nx), off = (int(v) for v in self._shapes[src]), int(self._offsets[src])
        xs, ys = (self._xt, self._yt) if transposed else (self._x, self._y)
        assert xs is not None and ys is not None
        if transposed:
            ny, nx = nx, ny
        n = ny * nx
        return xs[off : off + n].reshape(ny, nx, -1), ys[off : off + n].reshape(ny, nx)

    def _labelled(self, src: int) -> np.ndarray[Any, Any]:
        if src not in self._labelled_cache:
            self._labelled_cache[src] = np.flatnonzero(self._source(src)[1] != IGNORE_INDEX)
        return self._labelled_cache[src]

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _draw(self, index: int, epoch: int) -> tuple[int, int, int, int, int, int]:
        """``(source, row, col, flip_y, flip_x, rot90)`` of ``index`` in ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch, int(index)])
        p = self.patch_px
        n_src = len(self._shapes)
        for _ in range(10):
            src = min(int(np.searchsorted(self._cum_weights, rng.random(), "right")), n_src - 1)
            ny, nx = (int(v) for v in self._shapes[src])
            if self.min_labelled_frac <= 0:
                row = int(rng.integers(0, ny - p + 1))
                col = int(rng.integers(0, nx - p + 1))
                break
            # Anchor the patch on a random labelled pixel, so sparse labels are found.
            labelled = self._labelled(src)
            if labelled.size == 0:
                row = int(rng.integers(0, ny - p + 1))
                col = int(rng.integers(0, nx - p + 1))
                continue
            py, px = divmod(int(labelled[rng.integers(0, labelled.size)]), nx)
            row = int(np.clip(py - rng.integers(0, p), 0, ny - p))
            col = int(np.clip(px - rng.integers(0, p), 0, nx - p))
            win = self._source(src)[1][row : row + p, col : col + p]
            if np.mean(win != IGNORE_INDEX) >= self.min_labelled_frac:
                break
        if not self.augment:
            return src, row, col, 0, 0, 0
        flips = rng.integers(0, 2, size=2)
        return src, row, col, int(flips[0]), int(flips[1]), int(rng.integers(0, 4))

    def sample_params(self, index: int, *, epoch: int | None = None) -> dict[str, int]:
        """Return the source, row, col, flips and rotation drawn for ``index`` this epoch."""
        s = self._draw(index, self.epoch if epoch is None else epoch)
        keys = ("source", "row", "col", "flip_y", "flip_x", "rot90")
        return dict(zip(keys, s, strict=True))

    def _cut(
        self, s: Sequence[int] | np.ndarray[Any, Any], x_out: np.ndarray[Any, Any],
        y_out: np.ndarray[Any, Any],
        channels_last: bool,
    ) -> None:  # fmt: skip
        """Copy patch ``s`` (a :meth:`_draw` tuple) into ``x_out`` and ``y_out``."""
        src, row, col, flip_y, flip_x, rot = (int(v) for v in s)
        p = self.patch_px
        if rot % 2 == 1 and self._xt is not None:
            # rot90 by 1 (3) of the flipped crop == the crop of the transposed store,
            # flipped in rows unless (if) flip_x and in columns if (unless) flip_y
            img, msk = self._source(src, transposed=True)
            x, y = img[col : col + p, row : row + p], msk[col : col + p, row : row + p]
            flip_rows, flip_cols = (not flip_x, flip_y) if rot == 1 else (flip_x, not flip_y)
            if flip_rows:
                x, y = x[::-1], y[::-1]
            if flip_cols:
                x, y = x[:, ::-1], y[:, ::-1]
        else:
            img, msk = self._source(src)
            x, y = img[row : row + p, col : col + p], msk[row : row + p, col : col + p]
            if flip_y:
                x, y = x[::-1], y[::-1]
            if flip_x:
                x, y = x[:, ::-1], y[:, ::-1]
            if rot:
                x, y = np.rot90(x, rot, axes=(0, 1)), np.rot90(y, rot)
        np.copyto(x_out, x if channels_last else x.transpose(2, 0, 1))
        np.copyto(y_out, y, casting="safe")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"index {index} out of range 0..{self.samples_per_epoch - 1}")
        p = self.patch_px
        x = np.empty((self.in_channels, p, p), dtype="float32")
        y = np.empty((p, p), dtype="int64")
        self._cut(self._draw(index, self.epoch), x, y, False)
        return torch.from_numpy(x), torch.from_numpy(y)

    def load_batch(
        self,
        indices: Sequence[int],
        *,
        epoch: int | None = None,
        device: torch.device | str | None = None,
        channels_last: bool = False,
        pin_memory: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut a whole batch at once: what ``torch.stack`` of ``self[i]`` gives, faster.

        The patches are copied straight into one batch tensor (no per-sample tensors, no
        collation). With a CUDA ``device`` the pixel store is uploaded once (when it is
        smaller than :attr:`device_cache_bytes` and half the free GPU memory) and the
        patches are gathered on the GPU by index arithmetic; otherwise they are cut on
        the CPU (into pinned memory with ``pin_memory``) and copied without blocking.

        Parameters
        ----------
        indices
            Sample indices (``0 <= i < len(self)``).
        epoch
            Epoch of the draws (default: the one set by :meth:`set_epoch`).
        device
            Where the batch goes (default: CPU).
        channels_last
            Return images in channels-last memory format (the values are the same).
        pin_memory
            Cut CPU batches into page-locked memory (for fast copies to a GPU).

        Returns
        -------
        x : torch.Tensor
            ``(N, C, patch_px, patch_px)`` float32.
        y : torch.Tensor
            ``(N, patch_px, patch_px)`` int64 (``IGNORE_INDEX`` = no-data).

        Examples
        --------
        >>> img = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8)
        >>> ds = PatchDataset([(img, np.zeros((8, 8), "uint8"))], patch_px=4, samples_per_epoch=3)
        >>> x, y = ds.load_batch([2, 0])
        >>> bool(torch.equal(x[1], ds[0][0])), tuple(y.shape)
        (True, (2, 4, 4))
        """
        ep = self.epoch if epoch is None else int(epoch)
        for i in indices:
            if not 0 <= int(i) < self.samples_per_epoch:
                raise IndexError(f"index {i} out of range 0..{self.samples_per_epoch - 1}")
        plan = np.array([self._draw(int(i), ep) for i in indices], dtype="int64").reshape(-1, 6)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        if dev.type != "cpu" and self._fits_on(dev):
            return self._gather(plan, dev, channels_last=channels_last)
        n, c, p = len(plan), self.in_channels, self.patch_px
        pin = pin_memory and torch.cuda.is_available()
        # cut channels-last (the band axis is innermost in the store: plain strided
        # copies); torch transposes to NCHW when asked (faster than numpy's copy)
        x = torch.empty((n, p, p, c), dtype=torch.float32, pin_memory=pin and channels_last)
        y = torch.empty((n, p, p), dtype=torch.int64, pin_memory=pin)
        xa, ya = x.numpy(), y.numpy()
        for k, s in enumerate(plan):
            self._cut(s, xa[k], ya[k], True)
        x = x.permute(0, 3, 1, 2)
        if not channels_last:
            x = x.contiguous().pin_memory() if pin else x.contiguous()
        if dev.type != "cpu":
            x, y = x.to(dev, non_blocking=pin), y.to(dev, non_blocking=pin)
        return x, y

    def _fits_on(self, device: torch.device) -> bool:
        if self._device_store is not None and self._device_store[0] == device:
            return True
        nbytes = self._x.nbytes + self._y.nbytes
        if nbytes > self.device_cache_bytes:
            return False
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return nbytes < free // 2
        return True

    def _gather(
        self, plan: np.ndarray[Any, Any], device: torch.device, *, channels_last: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut the patches of ``plan`` from a copy of the store on ``device``."""
        if self._device_store is None or self._device_store[0] != device:
            self._device_store = (
                device,
                torch.from_numpy(self._x).to(device),
                torch.from_numpy(self._y).to(device),
                torch.from_numpy(np.stack([self._offsets, self._shapes[:, 1]], 1)).to(device),
                torch.arange(self.patch_px, device=device),
            )
        _, xs, ys, geo, ar = self._device_store
        n, p = len(plan), self.patch_px
        t = torch.from_numpy(plan)
        if device.type == "cuda":
            t = t.pin_memory()
        t = t.to(device, non_blocking=True).view(n, 6, 1, 1)
        src, row, col, flip_y, flip_x, rot = t.unbind(1)
        i, j, last = ar.view(1, p, 1), ar.view(1, 1, p), p - 1
        # output pixel (i, j) <- pixel (a, b) of the flipped crop (np.rot90's convention)
        a = torch.where(
            rot == 0, i, torch.where(rot == 1, j, torch.where(rot == 2, last - i, last - j))
        )
        b = torch.where(
            rot == 0, j, torch.where(rot == 1, last - i, torch.where(rot == 2, last - j, i))
        )
        u = torch.where(flip_y == 1, last - a, a)
        v = torch.where(flip_x == 1, last - b, b)
        g = geo[src.view(n)].view(n, 2, 1, 1)
        lin = g[:, 0] + (row + u) * g[:, 1] + col + v  # (N, p, p) pixel numbers
        x = xs[lin].permute(0, 3, 1, 2)  # (N, p, p, C) gathered -> channels-last view
        if not channels_last:
            x = x.contiguous()
        return x, ys[lin].long()


class TileDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Whole tiles without augmentation, for validation and test.

    Parameters
    ----------
    sources
        A :class:`ChipFolder`, a path to one, or ``(image, mask)`` pairs.
    stats
        Band statistics from the training tiles.
    split
        With a chip folder: only the chips of this split (``"val"``, ``"test"``).

    Examples
    --------
    >>> ds = TileDataset([(np.ones((2, 8, 8), "float32"), np.ones((8, 8), "uint8"))])
    >>> len(ds), tuple(ds[0][0].shape)
    (1, (2, 8, 8))
    """

    def __init__(
        self, sources: Any, *, stats: BandStats | None = None, split: str | None = None
    ) -> None:
        if isinstance(sources, (str, os.PathLike)):
            sources = load_chip_folder(sources)
        if split is not None:
            if not isinstance(sources, ChipFolder):
                raise ParamsError("'split' needs a chip folder with an index.csv")
            sources = sources.subset(split)
        self.ids: tuple[str, ...] = (
            sources.ids
            if isinstance(sources, ChipFolder)
            else tuple(str(i) for i in range(len(sources)))
        )
        self.stats = stats
        self._pairs = [_prepare(img, msk, stats) for img, msk in _pairs(sources)]

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_tensors(*self._pairs[index])
