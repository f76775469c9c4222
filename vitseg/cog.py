"""Maps on disk: Cloud-Optimised GeoTIFFs written atomically, and read back lazily.

:func:`write_cog` writes a ``(y, x)`` or ``(band, y, x)`` DataArray (numpy or dask) as a
valid COG: internal tiles, overviews, ZSTD or DEFLATE, nodata, CRS, and for class maps
a GDAL colour table and category names. The array is computed once, chunk by chunk,
into an uncompressed tiled staging GeoTIFF (:func:`_stage`); where chunk edges allow,
each chunk also writes its own pixels of every overview level in the same pass
(:func:`_reduce_window`), so that GDAL's COG driver then only compresses. Several
layers on one grid share the pass (:func:`_write_cogs`), and nothing appears at a final
path unless every layer succeeded.

Probabilities are usually stored as uint8 codes of 0.004 (:func:`quantise_probs`: a
tenth of the float32 size) with the scale in the file; :func:`open_map` opens any map
written here lazily and decodes such layers back to float32 (no-data to NaN).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import math
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np
import rioxarray
import xarray as xr

from vitseg._daskplan import _busy
from vitseg.constants import IGNORE_INDEX
from vitseg.errors import (
    CorruptRasterError,
    DimensionError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VitsegError,
)
from vitseg.io import atomic_path, atomic_write_text

__all__ = [
    "PROB_NODATA",
    "PROB_STEP",
    "open_map",
    "overview_factors",
    "quantise_probs",
    "write_cog",
]

#: Probabilities stored as uint8 (:func:`vitseg.predict.write_scene_maps` default): value =
#: round(p / step), 0..250, so that 0.004 steps decode exactly to 0, 0.004, ..., 1 (rounding error <= 0.002).
PROB_STEP = 0.004
#: No-data code of uint8 probability and confidence layers (the class maps' code too).
PROB_NODATA = IGNORE_INDEX


def _check_crs(obj: xr.DataArray, name: str) -> None:
    if obj.rio.crs is None:
        raise MissingCRSError(
            f"{name} has no CRS; set it with {name}.rio.write_crs('EPSG:32630') (the cube "
            "builder does this for you)"
        )


def _check_grid(obj: xr.DataArray, name: str) -> None:
    """Refuse a zero-size array, or ``y``/``x`` coordinates that are not one regular grid.

    Cheap (coordinates only, never the data): an empty selection, unsorted or unevenly
    spaced coordinates (the transform would place the pixels wrongly), or a one-pixel
    wide array without a stored transform (its pixel size is unknown: it would be
    written at (0, 0) with 1-unit pixels).
    """
    if 0 in obj.shape:
        raise DimensionError(
            f"{name} has no pixels (sizes {dict(obj.sizes)}); check the window, clip or "
            "selection that made it"
        )
    for dim in ("y", "x"):
        if dim not in obj.coords or obj.sizes.get(dim, 0) < 2:
            continue
        step = np.diff(np.asarray(obj[dim].values, dtype="float64"))
        if not (np.all(step > 0) or np.all(step < 0)) or np.any(
            np.abs(step - step[0]) > 0.01 * abs(step[0])
        ):
            raise DimensionError(
                f"{name}'s {dim!r} coordinates are not one regular grid (steps from "
                f"{step.min():g} to {step.max():g}): its pixels would be written in the wrong "
                f"place. Sort them (e.g. .sortby({dim!r}, ascending={dim == 'x'})) or reproject "
                "onto a regular grid (rio.reproject)"
            )
    if min(obj.sizes.get("y", 2), obj.sizes.get("x", 2)) < 2 and obj.rio.transform().is_identity:
        raise DimensionError(
            f"{name} is one pixel wide and stores no transform, so its pixel size and place "
            "are unknown (it would be written at (0, 0)); select a wider window, or write "
            f"the transform first: {name}.rio.write_transform(full.rio.transform())"
        )


def _check_out_file(path: str | os.PathLike[str], what: str, *, example: bool = True) -> Path:
    """Refuse an output path that is a folder, or lies under a file (ParamsError)."""
    p = Path(path)
    if p.is_dir():
        raise ParamsError(
            f"{what} {str(p)!r} is a folder, where a file is to be written; "
            + (f"give a file path such as {str(p / 'map.tif')!r}" if example else
               "remove or rename that folder, or write elsewhere")
        )  # fmt: skip
    blocker = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        raise ParamsError(
            f"cannot write {str(p)!r}: {str(blocker)!r} is a file, not a folder; choose "
            "another folder or move the file"
        )
    return p


def _check_count(name: str, value: Any, low: int) -> int:
    """Return ``value`` if an integer >= ``low`` (not a bool nor a float: 2.5 px); else ParamsError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParamsError(
            f"{name} must be an integer >= {low}; got {value!r} ({type(value).__name__})"
        )
    if value < low:
        raise ParamsError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


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
        bad = [
            k for k in colormap
            if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating))
            or not math.isfinite(k) or not float(k).is_integer() or not 0 <= k <= top
        ]  # fmt: skip
        if bad:
            raise ParamsError(
                f"colormap codes must be whole numbers in 0..{top} for {dtype}; got {bad}"
            )
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
    tmp_paths: Sequence[Path],
    nodatas: Sequence[float | None],
    overviews: Sequence[tuple[list[int], str]],
    legends: Sequence[_Legend | None] | None = None,
) -> list[bool]:
    """Write DataArrays to tiled staging GeoTIFFs chunk by chunk (one dask pass for all).

    ``tmp_paths`` are temporary files inside the caller's :func:`vitseg.io.atomic_path`
    (:func:`_write_cogs`), never final paths.

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
    for arr, tmp, nodata, (factors, resampling), legend in zip(
        arrays, tmp_paths, nodatas, overviews, legends or [None] * len(arrays), strict=True
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
        with rasterio.open(tmp, "w", **profile) as dst:
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
            tmp_ovr = str(tmp)
            for f in factors:
                tmp_ovr += ".ovr"
                shape = {"height": -(-height // f), "width": -(-width // f)}
                tf = profile["transform"] * Affine.scale(f)
                with rasterio.open(tmp_ovr, "w", **{**profile, **shape, "transform": tf}):
                    pass
                levels.append((f, tmp_ovr))
        built.append(bool(levels))
        sources.append(data if arr.ndim == 3 else data[0])
        targets.append(_WindowWriter(str(tmp), levels, resampling, nodata))
    da.store(sources, targets, lock=_store_lock(), compute=True)
    return built


def overview_factors(height: int, width: int, blocksize: int) -> list[int]:
    """Return the overview levels of a COG: halving until the image fits one block.

    Raises
    ------
    ParamsError
        If a size is not an integer >= 1 (a negative block size would never stop halving).

    Examples
    --------
    >>> overview_factors(2048, 1500, 512), overview_factors(512, 300, 512)
    ([2, 4], [])
    """
    for name, value in (("height", height), ("width", width), ("blocksize", blocksize)):
        _check_count(name, value, 1)
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
        If the array is not 2-D or 3-D with ``y``/``x`` last, has no pixels, its ``y``/``x``
        are not one regular grid, or its dtype cannot be a GeoTIFF band (bool, float16,
        complex, strings).
    MissingCRSError
        If the array has no CRS.
    ParamsError
        ``path`` is a folder or lies under a file; ``nodata`` the dtype cannot hold (256 or
        NaN for uint8); ``blocksize`` not a multiple of 16; colormap codes that are not
        whole numbers in the dtype's range.
    VitsegError
        ``colormap`` / ``category_names`` for anything but a single-band uint8 / uint16
        array.

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
    _check_grid(da_, "the array")
    _check_writable(da_.dtype, nodata)
    if not isinstance(overviews, bool):
        raise ParamsError(f"overviews must be True or False; got {overviews!r}")
    if _check_count("blocksize", blocksize, 16) % 16:
        raise ParamsError(
            f"blocksize must be a multiple of 16 (GeoTIFF tiles), e.g. 256 or 512; got {blocksize}"
        )
    _check_out_file(path, "path")
    if resampling not in {"nearest", "average", "mode"}:
        raise VitsegError(f"resampling must be one of nearest/average/mode; got {resampling!r}")
    if compress not in {"auto", "deflate", "zstd"}:
        raise VitsegError(f"compress must be one of auto/deflate/zstd; got {compress!r}")
    legend = _make_legend(da_, colormap, category_names)
    _write_cogs([da_], [Path(path)], [nodata], [resampling], overviews=overviews,
                blocksize=int(blocksize), compress=compress, legends=[legend])  # fmt: skip
    return Path(path)


def _check_writable(dtype: Any, nodata: Any) -> None:
    """Refuse dtypes GeoTIFF cannot hold and a ``nodata`` the dtype cannot (ParamsError)."""
    dt = np.dtype(dtype)
    if not (dt.kind in "ui" or dt in (np.dtype("float32"), np.dtype("float64"))):
        hint = {
            "b": "a boolean mask? Write mask.astype('uint8')",
            "f": "cast it with .astype('float32')",
            "c": "write the real part or the magnitude (abs) instead",
        }.get(dt.kind, "convert it to numbers first")
        raise DimensionError(
            f"a COG holds integer or float32/float64 pixels; got dtype {dt}: {hint}"
        )
    if nodata is None:
        return
    if isinstance(nodata, bool) or not isinstance(nodata, (int, float, np.integer, np.floating)):
        raise ParamsError(f"nodata must be a number or None; got {nodata!r}")
    if dt.kind in "ui":
        info = np.iinfo(dt)
        if not (
            math.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max
        ):
            raise ParamsError(
                f"nodata must be a whole number in {info.min}..{info.max} for a {dt} array; got "
                f"{nodata!r}. Use e.g. 255 for uint8 class maps, or NaN after .astype('float32')"
            )


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
    DimensionError
        If ``probs`` is not a DataArray of real numbers, or (when computed) holds finite
        values outside [0, 1]: logits or percentages are refused, never clipped into
        "probabilities". +/-inf is no data (255), as NaN.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> quantise_probs(xr.DataArray(np.array([0.0, 0.3, 1.0, np.nan]))).values.tolist()
    [0, 75, 250, 255]
    """
    if not isinstance(probs, xr.DataArray):
        raise DimensionError(f"probs must be an xarray.DataArray; got {type(probs).__name__}")
    if np.dtype(probs.dtype).kind not in "biuf":
        raise DimensionError(
            f"probs must hold real probabilities in [0, 1]; got dtype {probs.dtype}"
        )
    real = not isinstance(step, bool) and isinstance(step, (int, float, np.integer, np.floating))
    top = round(1.0 / step) if real and step > 0 and math.isfinite(step) else 0
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
        np.copyto(q, np.float32(np.nan), where=np.isinf(q))  # inf is no data, as NaN
        if q.size:  # fmin/fmax skip NaN without a warning
            lo, hi = float(np.fmin.reduce(q, axis=None)), float(np.fmax.reduce(q, axis=None))
            if lo < -_PROB_RANGE_TOL * inv or hi > (1 + _PROB_RANGE_TOL) * inv:
                raise DimensionError(
                    f"probs must be probabilities in [0, 1] to be quantised; got values from "
                    f"{lo / inv:.4g} to {hi / inv:.4g}. Logits? Apply a softmax over 'class' "
                    "first; percentages? Divide by 100 (values are never clipped into range)."
                )
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
    stored as scaled integers (a GDAL scale or offset, as :func:`vitseg.predict.write_scene_maps` writes
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
        If ``path`` does not exist or is a folder.
    ParamsError
        If ``chunks`` is not None or an integer >= 1.
    CorruptRasterError
        If the file cannot be opened, or is truncated (its last block cannot be read).
    """
    import rasterio
    from rasterio.windows import Window

    if Path(path).is_dir():
        tifs = sorted(p.name for p in Path(path).glob("*.tif"))[:5]
        raise MissingFileError(
            f"{str(path)!r} is a folder, not a map file; give the path of a GeoTIFF in it "
            f"(.tif files there: {tifs})"
        )
    if not Path(path).is_file():
        raise MissingFileError(f"no map at {str(path)!r}; run the step that writes it first")
    if chunks is not None:
        _check_count("chunks", chunks, 1)
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


#: Tolerances of the probability check of :func:`vitseg.predict.write_scene_maps`
#: (range, class sum).
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
