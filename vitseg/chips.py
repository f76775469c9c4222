"""Chip folders: image and mask GeoTIFFs exported from a GIS, checked pair by pair.

- :class:`ChipFolder` / :func:`load_chip_folder`: image GeoTIFFs and matching mask
  GeoTIFFs as a researcher exports them from a GIS (any band count), checked pair by
  pair (grid, CRS, band count) and mask by mask (whole class codes, values vitseg
  knows or an explicit ``mask_values`` recoding).
- :func:`load_smallminesds`: one year of SmallMinesDS (fetched with
  :func:`vitseg.downloads.fetch_smallminesds`) as a :class:`ChipFolder`.

No torch here: :mod:`vitseg.datasets` turns chip folders into torch datasets.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import (
    BandError,
    CorruptRasterError,
    GridMismatchError,
    LabelError,
    MissingFileError,
    ParamsError,
)

__all__ = ["SMALLMINESDS_BANDS", "ChipFolder", "load_chip_folder", "load_smallminesds"]


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
        ok = isinstance(split, str) or (
            isinstance(split, Sequence | set | frozenset) and all(isinstance(v, str) for v in split)
        )
        if not ok:
            raise ParamsError(
                f"split must be a split name or a list of them, e.g. 'train' or ['train', "
                f"'val']; got {split!r}"
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

    def _check_i(self, i: Any) -> int:
        n = len(self.ids)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise ParamsError(
                f"chip index must be an integer in 0..{n - 1} (negative counts from the end) "
                f"for the {n} chips of {self.root}; got {i!r}"
            )
        return int(i)

    def read_image(self, i: int) -> np.ndarray[Any, Any]:
        """Image ``i`` as float32 ``(band, y, x)``, file no-data as NaN."""
        import rasterio

        i = self._check_i(i)
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

        i = self._check_i(i)
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
    if not isinstance(path, (str, os.PathLike)):
        raise ParamsError(f"chip folder must be a path (str or pathlib.Path); got {path!r}")
    if not callable(mask_name):
        raise ParamsError(
            f"mask_name must be a function from an image stem to a mask stem, e.g. "
            f"lambda s: s.replace('IMG_', 'MASK_'); got {mask_name!r}"
        )
    if not isinstance(pattern, str) or not pattern or os.path.isabs(pattern):
        raise ParamsError(f"pattern must be a relative file glob such as '*.tif'; got {pattern!r}")
    if mask_values is not None and not isinstance(mask_values, Mapping):
        raise ParamsError(
            f"mask_values must be a mapping {{file value: class code}}, e.g. {{0: 2, 255: 0}}; "
            f"got {type(mask_values).__name__}"
        )
    if band_names is not None:
        names = list(band_names) if not isinstance(band_names, str) else None
        if names is None or not all(isinstance(b, str) and b for b in names):
            raise BandError(f"band_names must be a list of band names (str); got {band_names!r}")
        if len(set(names)) != len(names):
            dup = sorted({b for b in names if names.count(b) > 1})
            raise BandError(f"band_names {names} repeats {dup}; give each band its own name")
    root = Path(path)
    if root.is_file():
        raise MissingFileError(
            f"{root} is a file; load_chip_folder needs the folder holding {images}/ and {masks}/"
        )
    if not root.exists():
        raise MissingFileError(f"chip folder {root} does not exist")
    mapping = _check_mask_mapping(mask_values) if mask_values is not None else None
    img_dir, mask_dir = root / images, root / masks
    if os.path.normpath(img_dir) == os.path.normpath(mask_dir):
        raise LabelError(
            f"images={images!r} and masks={masks!r} are the same folder {img_dir}; every "
            "image would be read as its own mask. Give the two sub-folders"
        )
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
        stem = mask_name(img.stem)
        if not isinstance(stem, str) or not stem:
            raise ParamsError(
                f"mask_name({img.stem!r}) returned {stem!r}; it must return a mask file stem (str)"
            )
        mpath = mask_dir / (stem + img.suffix)
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
# SmallMinesDS
# --------------------------------------------------------------------------------------

#: Band names of SmallMinesDS images, in file order.
SMALLMINESDS_BANDS: tuple[str, ...] = (
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "VV", "VH", "DEM",
)  # fmt: skip


def _find_image_dir(top: Path, year: int) -> Path | None:
    for p in sorted(top.rglob("IMAGE")):
        if p.is_dir() and any(p.glob(f"IMG_*_{year}.tif")):
            return p
    return None


def load_smallminesds(root: str | os.PathLike[str], *, year: int = 2016) -> ChipFolder:
    """Open one year of SmallMinesDS as a :class:`ChipFolder` (13 bands, binary masks).

    ``root`` is what :func:`vitseg.downloads.fetch_smallminesds` returned, or any folder holding the
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
