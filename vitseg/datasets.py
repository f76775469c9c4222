"""Torch datasets, chip folders, band statistics, and downloaders for public data sets.

- :class:`PatchDataset`: random ``patch_px`` crops (256 by default) from large labelled
  scenes or chips, with random X/Y flips and 90-degree rotations every epoch
  (Gallwey et al. §2.2), per-band normalisation, NaN -> 0 in the image and
  ``IGNORE_INDEX`` in the label there. Each sample depends only on
  ``(seed, epoch, index)``, so a resumed training run sees the same patches.
- :class:`TileDataset`: whole tiles, no augmentation (validation and test are scored
  on whole tiles, never random crops).
- :class:`ChipFolder` / :func:`load_chip_folder`: image GeoTIFFs and matching mask
  GeoTIFFs as a researcher exports them from a GIS (any band count), checked pair by
  pair (grid, CRS, band count).
- :func:`band_stats`: per-band mean and standard deviation from training tiles only.
- :func:`fetch_smallminesds`, :func:`load_smallminesds`, :func:`fetch_mining_polygons`:
  download (streamed, sha256-checked, cached, bounded retries) and read SmallMinesDS
  and the global mining polygons. URLs and checksums are module constants to verify
  when online; tests run the download code against a local HTTP server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    DimensionError,
    DownloadError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    NoValidDataError,
    ParamsError,
    VectorError,
)
from vitseg.io import atomic_path, atomic_write_text

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
# Chip folders
# --------------------------------------------------------------------------------------


def _raster_meta(path: Path, *, values: bool = False) -> dict[str, Any]:
    """Grid of ``path``; with ``values``, also its band-1 value counts (one read)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            meta = {
                "count": src.count, "shape": (src.height, src.width), "transform": src.transform,
                "crs": src.crs, "descriptions": src.descriptions, "nodata": src.nodata,
            }  # fmt: skip
            if values and src.count == 1:
                raw = src.read(1)
                _check_mask_numbers(raw, path)
                vals, counts = np.unique(raw, return_counts=True)
                meta["values"] = {
                    _as_number(v): int(c)
                    for v, c in zip(vals.tolist(), counts.tolist(), strict=True)
                    if not (isinstance(v, float) and np.isnan(v))
                }
            return meta
    except rasterio.errors.RasterioError as exc:
        raise CorruptRasterError(f"cannot read {path} as a raster ({exc}); re-export it") from exc


def _as_number(v: Any) -> int | float:
    """Return a whole float as int (255.0 -> 255), so mask values print plainly."""
    return int(v) if float(v).is_integer() else float(v)


def _shown_counts(counts: Mapping[Any, int], limit: int = 12) -> str:
    items = sorted(counts.items(), key=lambda kv: float(kv[0]))
    text = ", ".join(f"{k}: {v} px" for k, v in items[:limit])
    return "{" + text + (", ..." if len(items) > limit else "") + "}"


def _check_mask_numbers(raw: np.ndarray[Any, Any], path: Any) -> None:
    """Refuse masks that are not whole numbers: fractions, inf, complex, bool."""
    if raw.dtype.kind not in "iuf":
        raise LabelError(
            f"mask {path} has dtype {raw.dtype}; masks hold integer class codes (uint8, "
            "255 = no data). Re-export it as uint8."
        )
    if raw.dtype.kind != "f":
        return
    finite = np.isfinite(raw)
    bad = (~finite & ~np.isnan(raw)) | (finite & (raw != np.round(raw)))
    if bad.any():
        vals, counts = np.unique(raw[bad], return_counts=True)
        shown = _shown_counts(dict(zip(vals.tolist(), counts.tolist(), strict=True)), 5)
        raise LabelError(
            f"mask {path} ({raw.dtype}) holds {int(bad.sum())} pixels that are not whole class "
            f"codes, e.g. {shown}; masks hold integer codes (0 mines, 1 built, 2 vegetation, "
            "255 no data) and are never rounded. Re-export the mask as uint8 class codes "
            "(nearest-neighbour resampling, NaN or 255 for no data)."
        )


def _mask_codes(
    raw: np.ndarray[Any, Any],
    nodata: float | None,
    mask_values: Mapping[int, int] | None,
    path: Any,
) -> np.ndarray[Any, Any]:
    """Class codes (uint8, ``IGNORE_INDEX`` = no data) of a mask read by its values."""
    _check_mask_numbers(raw, path)
    nod = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(raw.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        if mask_values is None or nodata not in mask_values:  # an explicit mapping wins
            nod |= raw == nodata
    if mask_values is not None:
        out = np.full(raw.shape, IGNORE_INDEX, dtype="int64")
        for k, v in mask_values.items():
            out[raw == k] = v
    else:
        out = np.where(nod, 0, raw).astype("int64")
        if out.size and (out.min() < 0 or out.max() > IGNORE_INDEX):
            vals, counts = np.unique(out[(out < 0) | (out > IGNORE_INDEX)], return_counts=True)
            raise LabelError(
                f"mask {path} holds values outside 0..255: "
                f"{_shown_counts(dict(zip(vals.tolist(), counts.tolist(), strict=True)), 5)}; "
                "pass mask_values={file value: class code} to load_chip_folder"
            )
    out[nod] = IGNORE_INDEX
    return np.asarray(out.astype("uint8"))


#: Mask values vitseg reads without a mapping: its class codes and no data.
_VITSEG_MASK_VALUES = frozenset({0, 1, 2, IGNORE_INDEX})
#: Columns of an ``index.csv`` written by :func:`vitseg.tiles.write_tiles`.
_WRITE_TILES_COLUMNS = frozenset({"tile_id", "row_off", "col_off", "nodata_frac", "target_frac"})


def _check_mask_mapping(mask_values: Mapping[Any, Any]) -> dict[int, int]:
    out: dict[int, int] = {}
    for k, v in mask_values.items():
        ok_k = isinstance(k, (int, float, np.integer, np.floating)) and not isinstance(k, bool)
        ok_v = isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        if not ok_k or not np.isfinite(k) or float(k) != round(float(k)):
            raise LabelError(
                f"mask_values keys are whole file values; got {k!r} in {dict(mask_values)}"
            )
        if not ok_v or not 0 <= int(v) <= IGNORE_INDEX:
            raise LabelError(
                f"mask_values maps file values to class codes 0..{IGNORE_INDEX} (255 = no "
                f"data); got {k!r}: {v!r} in {dict(mask_values)}"
            )
        out[int(k)] = int(v)
    return out


def _check_folder_values(
    root: Path,
    counts: Mapping[Any, int],
    nodata_counts: Mapping[Any, int],
    mask_values: Mapping[int, int] | None,
    vitseg_tiles: bool,
) -> None:
    """Check the mask values of a whole folder against the classes vitseg expects.

    ``counts``: pixels per value that is not the file's declared no-data;
    ``nodata_counts``: pixels per declared no-data value.
    """
    found = set(counts)
    every = {**nodata_counts, **counts}
    if mask_values is not None:
        keys = set(mask_values)
        unlisted = {v: c for v, c in counts.items() if v not in keys}
        never = sorted(k for k in keys if k not in every)
        if unlisted and never:
            raise LabelError(
                f"mask_values={dict(mask_values)} maps values {never} that no mask in "
                f"{root} holds, while the masks hold values {_shown_counts(unlisted)} that "
                f"it does not map (they would all become no data). The masks hold "
                f"{_shown_counts(every)}; map those values, e.g. mask_values="
                f"{ {v: 0 for v in sorted(unlisted)} } with the right class codes."
            )
        return
    unknown = {v: c for v, c in counts.items() if v not in _VITSEG_MASK_VALUES}
    if unknown:
        raise LabelError(
            f"masks in {root} hold values {_shown_counts(unknown)} outside vitseg's class "
            f"codes (0 mines, 1 built, 2 vegetation, 255 no data); all values found: "
            f"{_shown_counts(every)}. Map them to class codes with load_chip_folder(..., "
            "mask_values={file value: class code}), e.g. mask_values={1: 0, 2: 1, 3: 2} for "
            "1-based codes (values not listed become no data)."
        )
    raw_values = found | set(nodata_counts)
    others = raw_values - {IGNORE_INDEX}
    if not vitseg_tiles and IGNORE_INDEX in raw_values and len(others) == 1:
        (other,) = others
        raise LabelError(
            f"masks in {root} hold only the values {_shown_counts(every)}: 255 together with "
            f"one other value is ambiguous (a 0/255 export would read as {other} = "
            f"{'mines' if other == 0 else 'class ' + str(other)} everywhere and 255 = no data), "
            "and the folder has no index.csv written by vitseg.tiles.write_tiles. Say what "
            f"the values mean: mask_values={{{other}: 2, 255: 0}} (255 = mines, {other} = "
            f"vegetation/background), mask_values={{{other}: 0, 255: 1}} for the binary "
            f"scheme (background, mines), or mask_values={{{other}: {other}}} if 255 really "
            "is no data."
        )


def _default_mask_name(stem: str) -> str:
    return stem


@dataclasses.dataclass(frozen=True)
class ChipFolder:
    """Matched image and mask GeoTIFFs (one chip = one image + one mask).

    Build it with :func:`load_chip_folder`, which checks every pair.

    Attributes
    ----------
    root
        Folder.
    ids
        Chip ids (image file stems).
    image_paths, mask_paths
        Paths, in ``ids`` order.
    bands
        Band names (image band descriptions, else ``band_1``...).
    index
        ``index.csv`` rows in ``ids`` order (None when the folder has no index).
    mask_values
        The ``{file value: class code}`` recoding of the masks (None = read as is).
    mask_counts
        Pixels per raw mask value over every mask of the folder when it was loaded
        (NaN and each file's declared no-data left out): what the masks hold.
    """

    root: Path
    ids: tuple[str, ...]
    image_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]
    bands: tuple[str, ...]
    index: pd.DataFrame | None = None
    mask_values: Mapping[int, int] | None = None
    mask_counts: Mapping[int | float, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, split: str | Sequence[str]) -> ChipFolder:
        """Chips of one split (or several), from ``index.csv``'s ``split`` column.

        A split name other than ``train``/``val``/``test`` that the index lacks is a
        :class:`~vitseg.errors.ParamsError` (a typo would give an empty dataset).
        """
        if self.index is None or "split" not in self.index.columns:
            raise ParamsError(
                f"chip folder {self.root} has no index.csv with a 'split' column; "
                "pass split=None or write the folder with vitseg.tiles.write_tiles"
            )
        wanted = {split} if isinstance(split, str) else set(split)
        known = set(self.index["split"].dropna().astype(str))
        # a standard split may be empty (a small run without test tiles); another name
        # that the index lacks is a typo ('vall'), which would give an empty dataset
        unknown = wanted - known - {"train", "val", "test"}
        if unknown:
            raise ParamsError(
                f"chip folder {self.root} has no chip of split {sorted(unknown)}; its "
                f"index.csv has splits {sorted(known)}"
            )
        keep = self.index["split"].isin(wanted).to_numpy()
        sel = np.flatnonzero(keep)
        return dataclasses.replace(
            self,
            ids=tuple(self.ids[i] for i in sel),
            image_paths=tuple(self.image_paths[i] for i in sel),
            mask_paths=tuple(self.mask_paths[i] for i in sel),
            index=self.index.iloc[sel].reset_index(drop=True),
        )

    def read_image(self, i: int) -> np.ndarray[Any, Any]:
        """Image ``i`` as float32 ``(band, y, x)``, file no-data as NaN."""
        import rasterio

        try:
            with rasterio.open(self.image_paths[i]) as src:
                arr = src.read(out_dtype="float32")
                nodata = src.nodata
        except rasterio.errors.RasterioError as exc:
            raise CorruptRasterError(
                f"cannot read image {self.image_paths[i]} ({exc}); it is truncated or "
                "corrupt: re-export it"
            ) from exc
        if nodata is not None and not np.isnan(nodata):
            arr[arr == nodata] = np.nan
        return np.asarray(arr)

    def read_mask(self, i: int) -> np.ndarray[Any, Any]:
        """Mask ``i`` as uint8 ``(y, x)`` class codes, read by value.

        File no-data and NaN become ``IGNORE_INDEX``; with ``mask_values`` each file
        value is recoded (values not listed become ``IGNORE_INDEX``; a listed value wins
        over the file's declared no-data). Float masks must hold whole numbers (never
        truncated: 0.6 is an error, not class 0).
        """
        import rasterio

        try:
            with rasterio.open(self.mask_paths[i]) as src:
                raw = src.read(1)
                nodata = src.nodata
        except rasterio.errors.RasterioError as exc:
            raise CorruptRasterError(
                f"cannot read mask {self.mask_paths[i]} ({exc}); it is truncated or "
                "corrupt: re-export it"
            ) from exc
        return _mask_codes(raw, nodata, self.mask_values, self.mask_paths[i])

    def read(self, i: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """``(image, mask)`` of chip ``i``."""
        return self.read_image(i), self.read_mask(i)


def load_chip_folder(
    path: str | os.PathLike[str],
    *,
    images: str = "images",
    masks: str = "masks",
    mask_name: Callable[[str], str] = _default_mask_name,
    pattern: str = "*.tif",
    mask_values: Mapping[int, int] | None = None,
    band_names: Sequence[str] | None = None,
) -> ChipFolder:
    """Open a folder of image GeoTIFFs and matching mask GeoTIFFs, checking every pair.

    Parameters
    ----------
    path
        Folder holding ``images/`` and ``masks/`` (names configurable) and optionally
        ``index.csv`` (from :func:`vitseg.tiles.write_tiles`; a ``split`` column lets
        :meth:`ChipFolder.subset` pick train/val/test).
    images, masks
        Sub-folder names.
    mask_name
        Maps an image file stem to its mask stem (default: the same stem), e.g.
        ``lambda s: s.replace("IMG_", "MASK_")``.
    pattern
        Glob of image files (``*.tif``; ``*.tiff`` also works).
    mask_values
        Optional recoding ``{file value: class code}`` of the masks (values not
        listed become ``IGNORE_INDEX``; a listed value wins over the file's declared
        no-data), e.g. ``{0: 2, 255: 0}`` for a 0/255 export whose 255 marks mines.
    band_names
        Override band names (default: descriptions of the first image).

    Notes
    -----
    Every mask is read once here and the values it holds are counted
    (:attr:`ChipFolder.mask_counts`). Without ``mask_values`` the values must be
    vitseg's codes ``{0, 1, 2, 255}`` (0 mines, 1 built, 2 vegetation, 255 no data).
    A folder whose masks hold 255 together with only one other value (a typical
    0/255 export, which would read as "everything is mines") needs ``mask_values``
    unless its ``index.csv`` was written by :func:`vitseg.tiles.write_tiles` (whose
    masks use 255 for no data). With ``mask_values``, a mapping that lists values no
    mask holds while leaving found values unmapped is an error. Float masks must hold
    whole numbers (NaN = no data).

    Returns
    -------
    ChipFolder

    Raises
    ------
    LabelError
        No images, an image without a mask, a mask path outside the folder, an
        ``index.csv`` missing chips or listing one twice, masks with values other
        than the classes expected (or non-whole float values), or a ``mask_values``
        that does not fit the values found.
    GridMismatchError
        An image and its mask differ in shape, transform or CRS.
    BandError
        Images with different band counts, a mask with more than one band, or
        ``band_names`` of the wrong length.

    Examples
    --------
    >>> import tempfile
    >>> load_chip_folder(tempfile.mkdtemp())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    vitseg.errors.LabelError: no image files ...
    """
    root = Path(path)
    if root.is_file():
        raise MissingFileError(
            f"{root} is a file; load_chip_folder needs the folder holding {images}/ and {masks}/"
        )
    if not root.exists():
        raise MissingFileError(f"chip folder {root} does not exist")
    mapping = _check_mask_mapping(mask_values) if mask_values is not None else None
    img_dir, mask_dir = root / images, root / masks
    for sub, what in ((img_dir, "images"), (mask_dir, "masks")):
        if not _inside(sub, root):
            raise LabelError(
                f"{what}={sub.relative_to(root)!s} points outside the chip folder {root}; "
                "give a sub-folder name"
            )
    img_paths = sorted(
        p for p in img_dir.glob(pattern) if not p.name.startswith(".") and p.is_file()
    )
    outside = [p for p in img_paths if not _inside(p, img_dir)]
    if outside:
        raise LabelError(
            f"pattern {pattern!r} matches {outside[0]}, outside {img_dir}; use a file pattern "
            "such as '*.tif'"
        )
    if not img_paths:
        raise LabelError(
            f"no image files matching {pattern!r} in {img_dir}; a chip folder holds "
            f"{images}/<id>.tif and {masks}/<id>.tif"
        )
    ids, mask_paths = [], []
    bands: tuple[str, ...] | None = None
    count0: int | None = None
    first_img: Path | None = None
    counts: dict[int | float, int] = {}
    nodata_counts: dict[int | float, int] = {}
    for img in img_paths:
        mpath = mask_dir / (mask_name(img.stem) + img.suffix)
        if not _inside(mpath, mask_dir):
            raise LabelError(
                f"mask_name maps image {img.name} to {mpath}, outside the mask folder "
                f"{mask_dir}; return a file name, e.g. lambda s: s + '_mask'"
            )
        if not mpath.is_file():
            raise LabelError(
                f"image {img} has no matching mask; expected {mpath}. Export one mask per "
                "image with the same grid."
            )
        im, mk = _raster_meta(img), _raster_meta(mpath, values=True)
        if mk["count"] != 1:
            raise BandError(f"mask {mpath} has {mk['count']} bands; a mask has exactly 1")
        nd = mk["nodata"]
        for v, c in mk["values"].items():
            tally = nodata_counts if nd is not None and v == nd else counts
            tally[v] = tally.get(v, 0) + c
        problems = []
        if im["shape"] != mk["shape"]:
            problems.append(f"shape {im['shape']} vs {mk['shape']}")
        if not im["transform"].almost_equals(mk["transform"]):
            problems.append(
                f"transform {tuple(im['transform'])[:6]} vs {tuple(mk['transform'])[:6]}"
            )
        if im["crs"] != mk["crs"]:
            problems.append(f"CRS {im['crs']} vs {mk['crs']}")
        if problems:
            raise GridMismatchError(
                f"image {img} and mask {mpath} are on different grids: {'; '.join(problems)}. "
                "Export the mask snapped to the image (same extent, resolution and CRS)."
            )
        if count0 is None:
            count0, first_img = im["count"], img
            desc = im["descriptions"]
            if band_names is not None:
                if len(band_names) != count0:
                    raise BandError(
                        f"band_names has {len(band_names)} names but {img} has {count0} bands"
                    )
                bands = tuple(band_names)
            elif all(desc):
                bands = tuple(str(d) for d in desc)
            else:
                bands = tuple(f"band_{i + 1}" for i in range(count0))
        elif im["count"] != count0:
            raise BandError(
                f"image {img} has {im['count']} bands but {first_img} has {count0}; all "
                "images of a chip folder need the same bands"
            )
        ids.append(img.stem)
        mask_paths.append(mpath)
    index = None
    csv = root / "index.csv"
    if csv.is_file():
        raw_table = pd.read_csv(csv, dtype={"tile_id": str})
        if "tile_id" not in raw_table.columns:
            raise LabelError(
                f"{csv} has no 'tile_id' column (columns: {list(raw_table.columns)}); an "
                "index names each chip by its file stem in 'tile_id'"
            )
        dup = sorted(set(raw_table["tile_id"][raw_table["tile_id"].duplicated()]))
        if dup:
            raise LabelError(
                f"{csv} lists chips {dup[:5]} more than once; keep one row per tile_id"
            )
        table = raw_table.set_index("tile_id")
        missing = [i for i in ids if i not in table.index]
        if missing:
            raise LabelError(f"{csv} lacks rows for chips {missing[:5]}; rewrite the index")
        index = table.loc[ids].reset_index()
    vitseg_tiles = index is not None and _WRITE_TILES_COLUMNS <= set(index.columns)
    _check_folder_values(mask_dir, counts, nodata_counts, mapping, vitseg_tiles)
    return ChipFolder(
        root, tuple(ids), tuple(img_paths), tuple(mask_paths), bands or (), index,
        mapping, dict(sorted(counts.items(), key=lambda kv: float(kv[0]))),
    )  # fmt: skip


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder``, lexically (``..`` resolved, symlinks kept)."""
    a, b = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(folder))
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


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


# --------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Download cache: ``$VITSEG_CACHE`` or ``~/.cache/vitseg``."""
    return Path(os.environ.get("VITSEG_CACHE", Path.home() / ".cache" / "vitseg"))


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
    backoff_s: float = 2.0,
    chunk_bytes: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` (streamed, checksummed, atomic, cached).

    If ``dest`` already exists and matches ``sha256`` (or no checksum is given) it is
    returned without network access. The body is streamed to a temporary file beside
    ``dest`` while its SHA-256 is computed; a body shorter than ``Content-Length`` or
    a connection error is retried up to ``retries`` times with exponential backoff;
    only a complete, matching file is renamed to ``dest``.

    Parameters
    ----------
    url
        HTTP(S) URL.
    dest
        Final path.
    sha256
        Expected hex digest; None skips the check (the digest is then written to
        ``<dest>.sha256`` so a later run can pin it).
    retries
        Attempts in all (>= 1).
    timeout_s
        Connect/read timeout per attempt.
    backoff_s
        First wait between attempts (doubled each time).
    chunk_bytes
        Stream chunk size.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        Every attempt failed (HTTP error, truncated body, connection error), or the
        checksum differs (not retried: the file on the server is not the expected one).
    """
    import requests

    final = Path(dest)
    if final.is_dir():
        raise ParamsError(
            f"dest {final} is a folder; download_file needs a file path, e.g. "
            f"{final / Path(url.split('?')[0]).name}"
        )
    if final.exists() and (sha256 is None or _sha256(final) == sha256.lower()):
        return final
    if retries < 1:
        raise ParamsError(f"'retries' must be >= 1; got {retries}")
    if not (timeout_s > 0 and backoff_s >= 0 and chunk_bytes >= 1):  # NaN fails too
        raise ParamsError(
            f"timeout_s must be > 0, backoff_s >= 0 and chunk_bytes >= 1; got {timeout_s}, "
            f"{backoff_s}, {chunk_bytes}"
        )
    last: Exception | None = None
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with atomic_path(final) as tmp:
                digest = hashlib.sha256()
                got = 0
                with requests.get(url, stream=True, timeout=timeout_s) as resp:
                    resp.raise_for_status()
                    expected = resp.headers.get("Content-Length")
                    with open(tmp, "wb") as fh:
                        for block in resp.iter_content(chunk_size=chunk_bytes):
                            fh.write(block)
                            digest.update(block)
                            got += len(block)
                if expected is not None and got != int(expected):
                    raise _Truncated(f"got {got} of {expected} bytes")
                hexd = digest.hexdigest()
                if sha256 is not None and hexd != sha256.lower():
                    raise _Checksum(hexd)
            if sha256 is None:
                atomic_write_text(final.parent / (final.name + ".sha256"), hexd + "\n")
            return final
        except _Checksum as exc:
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {exc.args[0]}. "
                "The file on the server changed or is corrupt; verify the URL and update the "
                "checksum constant if the new file is the right one."
            ) from None
        except (_Truncated, requests.RequestException, OSError) as exc:
            last = exc
    raise DownloadError(
        f"download of {url} failed after {retries} attempt(s): {last}. Check the network "
        f"(or a proxy), or download it by hand to {final}."
    ) from last


class _Truncated(Exception):
    pass


class _Checksum(Exception):
    pass


def _sha256(path: Path) -> str:
    from vitseg.io import sha256_file

    return sha256_file(path)


def _safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a zip into ``dest`` (atomically), refusing paths that escape it."""
    if dest.exists():
        return dest
    try:
        with zipfile.ZipFile(archive) as zf, atomic_path(dest, suffix="") as tmp:
            tmp.mkdir()
            for name in zf.namelist():
                target = (tmp / name).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise DownloadError(f"archive {archive} holds an unsafe path {name!r}")
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a valid zip ({exc}); delete it and retry") from exc
    return dest


# SmallMinesDS (Ofori-Ampofo et al. 2025), Hugging Face dataset ``ellaampy/SmallMinesDS``,
# CC BY-SA 4.0. Layout per its dataset card: <year>/IMAGE/IMG_<id>_<year>.tif (13 bands,
# 128 x 128: S2 L2A B02 B03 B04 B05 B06 B07 B08 B8A B11 B12, S1 VV VH, DEM) and
# <year>/MASK/MASK_<id>_<year>.tif (1 band, 0 = not mine, 1 = mine); years 2016 and 2022.
# ASSUMPTION (verify when online): each year is published as one zip archive named below
# at the repository root; checksums are None until pinned from a real download (the
# computed digest is written beside the file).
SMALLMINESDS_URL = "https://huggingface.co/datasets/ellaampy/SmallMinesDS/resolve/main"
SMALLMINESDS_FILES: dict[int, tuple[str, str | None]] = {
    2016: ("2016.zip", None),
    2022: ("2022.zip", None),
}
#: Band names of SmallMinesDS images, in file order.
SMALLMINESDS_BANDS: tuple[str, ...] = (
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "VV", "VH", "DEM",
)  # fmt: skip


def fetch_smallminesds(
    root: str | os.PathLike[str] | None = None,
    *,
    years: Sequence[int] = (2016, 2022),
    base_url: str = SMALLMINESDS_URL,
    files: Mapping[int, tuple[str, str | None]] = SMALLMINESDS_FILES,
    retries: int = 3,
    backoff_s: float = 2.0,
) -> Path:
    """Download and unpack SmallMinesDS into ``root`` (default ``cache_dir()/smallminesds``).

    Returns
    -------
    pathlib.Path
        ``root``; pass it to :func:`load_smallminesds`.

    Raises
    ------
    DownloadError
        A failed or corrupt download.
    ParamsError
        A year without an entry in ``files``.
    """
    base = Path(root) if root is not None else cache_dir() / "smallminesds"
    for year in years:
        if year not in files:
            raise ParamsError(f"SmallMinesDS has no year {year}; known: {sorted(files)}")
        name, digest = files[year]
        archive = download_file(
            f"{base_url.rstrip('/')}/{name}", base / "archives" / name, sha256=digest,
            retries=retries, backoff_s=backoff_s,
        )  # fmt: skip
        _safe_extract(archive, base / "extracted" / str(year))
    return base


def _find_image_dir(top: Path, year: int) -> Path | None:
    for p in sorted(top.rglob("IMAGE")):
        if p.is_dir() and any(p.glob(f"IMG_*_{year}.tif")):
            return p
    return None


def load_smallminesds(root: str | os.PathLike[str], *, year: int = 2016) -> ChipFolder:
    """Open one year of SmallMinesDS as a :class:`ChipFolder` (13 bands, binary masks).

    ``root`` is what :func:`fetch_smallminesds` returned, or any folder holding the
    year's ``IMAGE`` and ``MASK`` folders (searched recursively under
    ``root/extracted/<year>``, then ``root/<year>``, then ``root``).

    Raises
    ------
    LabelError
        No ``IMAGE``/``MASK`` folders, or an image without a mask.
    """
    base = Path(root)
    for top in (base / "extracted" / str(year), base / str(year), base):
        if top.exists() and (img_dir := _find_image_dir(top, year)) is not None:
            break
    else:
        raise LabelError(
            f"no SmallMinesDS IMAGE folder for {year} under {base}; run fetch_smallminesds()"
        )
    folder = img_dir.parent
    return load_chip_folder(
        folder, images="IMAGE", masks="MASK", pattern=f"IMG_*_{year}.tif",
        mask_name=lambda s: re.sub(r"^IMG_", "MASK_", s), band_names=SMALLMINESDS_BANDS,
    )  # fmt: skip


# Global mining polygons. Verify when online; checksums None until pinned.
# - maus2022: Maus et al. 2022, "An update on global mining land use", PANGAEA
#   doi:10.1594/PANGAEA.942325, GeoPackage global_mining_polygons_v2.gpkg (EPSG:4326).
# - tang2023: Tang & Werner 2023, "Global mining footprint mapped from high-resolution
#   satellite imagery", Communications Earth & Environment, doi:10.1038/s43247-023-00805-6;
#   data on Zenodo (ASSUMPTION: record 7894216, a zip with a GeoPackage/shapefile inside).
MINING_POLYGONS: dict[str, dict[str, str | None]] = {
    "maus2022": {
        "url": "https://download.pangaea.de/dataset/942325/files/global_mining_polygons_v2.gpkg",
        "file": "global_mining_polygons_v2.gpkg",
        "sha256": None,
        "licence": "CC BY-SA 4.0",
    },
    "tang2023": {
        "url": "https://zenodo.org/records/7894216/files/74548_projected.zip",
        "file": "tang_werner_2023.zip",
        "sha256": None,
        "licence": "CC BY 4.0",
    },
}


def fetch_mining_polygons(
    source: Literal["maus2022", "tang2023"] = "maus2022",
    *,
    bbox: tuple[float, float, float, float] | None = None,
    root: str | os.PathLike[str] | None = None,
    url: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
) -> Any:
    """Download (once) and read a global mining-polygon layer, optionally clipped to ``bbox``.

    Parameters
    ----------
    source
        ``"maus2022"`` (PANGAEA GeoPackage) or ``"tang2023"`` (Zenodo archive).
    bbox
        ``(minx, miny, maxx, maxy)`` in the layer's CRS (EPSG:4326 degrees), read with
        a spatial filter so the global file is never fully loaded.
    root
        Cache folder (default ``cache_dir()/mining_polygons``).
    url, sha256
        Override the module constants (mirrors, pinned checksums).
    retries, backoff_s
        Passed to :func:`download_file`.

    Returns
    -------
    geopandas.GeoDataFrame
        The polygons with a ``class`` column set to ``"mines"`` (ready for
        :func:`vitseg.labels.rasterize_labels`) and ``source``.

    Raises
    ------
    DownloadError
        Failed or corrupt download.
    VectorError
        No vector layer in the download, or no polygon in ``bbox``.
    """
    import geopandas as gpd

    if source not in MINING_POLYGONS:
        raise ParamsError(f"'source' must be one of {sorted(MINING_POLYGONS)}; got {source!r}")
    meta = MINING_POLYGONS[source]
    base = Path(root) if root is not None else cache_dir() / "mining_polygons"
    path = download_file(
        url or str(meta["url"]), base / str(meta["file"]), sha256=sha256 or meta["sha256"],
        retries=retries, backoff_s=backoff_s,
    )  # fmt: skip
    if path.suffix == ".zip":
        folder = _safe_extract(path, base / f"{source}_extracted")
        layers = sorted([*folder.rglob("*.gpkg"), *folder.rglob("*.shp")])
        if not layers:
            raise VectorError(f"no .gpkg or .shp inside {path}; check the archive")
        path = layers[0]
    gdf = gpd.read_file(path, bbox=bbox)
    if len(gdf) == 0:
        raise VectorError(
            f"no {source} polygons in bbox {bbox}; check the bbox is (minx, miny, maxx, maxy) "
            "in EPSG:4326 degrees"
        )
    gdf["class"] = "mines"
    gdf["source"] = source
    return gdf
