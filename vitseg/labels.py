"""Label rasters: burn polygons onto a grid, mask the labelled extent, count classes.

Polygons (a GeoDataFrame with a class column) are burnt onto the grid of a template
raster (``like=cube``, :func:`rasterize_labels`), so labels and imagery share shape,
transform and CRS by construction. No-data is kept as
:data:`vitseg.constants.IGNORE_INDEX` (255), which losses and metrics skip.
:func:`extent_mask` marks the labelled extent (inside it unlabelled pixels are
background, outside they are no-data); :func:`class_distribution` and
:func:`cooccurrence` describe a label raster.

A researcher's own files (a labels file of any vocabulary, the extent, reference
tiles) are read by :mod:`vitseg.labelfiles`; its readers (:func:`read_labels`,
:func:`read_extent`, :func:`read_reference_tiles`) are importable from here too.

Class codes follow :data:`vitseg.constants.CLASSES`: 0 mines, 1 built, 2 vegetation
(Gallwey et al.'s three macro-classes). The binary scheme of VitSegh24 is 0 = not
mine, 1 = mine.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import BINARY_CLASSES, CLASSES, IGNORE_INDEX
from vitseg.errors import (
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    ParamsError,
    VectorError,
)
from vitseg.labelfiles import (
    _check_finite_coords,
    _clean_polygons,
    _polygonal_part,
    _require_crs,
    area_labels,
    labelled_extent,
    read_extent,
    read_labels,
    read_reference_tiles,
)

__all__ = [
    "area_labels",
    "class_distribution",
    "cooccurrence",
    "extent_mask",
    "labelled_extent",
    "rasterize_labels",
    "read_extent",
    "read_labels",
    "read_reference_tiles",
]


def _check_like(like: xr.DataArray) -> None:
    if not isinstance(like, xr.DataArray):
        raise DimensionError(
            f"'like' must be an xarray.DataArray with 'y' and 'x' dims; got {type(like).__name__}"
        )
    if "y" not in like.dims or "x" not in like.dims:
        raise DimensionError(
            f"'like' must have 'y' and 'x' dims; got dims {tuple(like.dims)}. "
            "Rename them, e.g. da.rename({'lat': 'y', 'lon': 'x'})."
        )
    if like.rio.crs is None:
        raise MissingCRSError(
            "template 'like' has no CRS; set it with like.rio.write_crs('EPSG:32630')"
        )
    for dim in ("y", "x"):
        n = like.sizes[dim]
        if n < 2 or dim not in like.coords:
            raise DimensionError(
                f"template 'like' has {n} pixel(s) along {dim!r}"
                f"{'' if dim in like.coords else ' and no coordinates'}; a grid needs >= 2 "
                "pixels with coordinates along y and x to fix its pixel size. Check the "
                "window or clip that made it."
            )
        step = np.diff(np.asarray(like[dim].values, dtype="float64"))
        if step[0] == 0 or not np.allclose(step, step[0], rtol=1e-6, atol=0.0):
            raise DimensionError(
                f"template 'like' has unevenly spaced {dim!r} coordinates (steps "
                f"{np.unique(step)[:3].tolist()}); labels need a regular grid. Reproject it "
                "first, e.g. like.rio.reproject(like.rio.crs, resolution=10)."
            )


def _repair(gdf: Any) -> Any:
    """Return ``gdf`` with invalid geometries made valid (warning once) and empties dropped."""
    import shapely

    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    if invalid.any():
        warnings.warn(
            f"{int(invalid.sum())} of {len(gdf)} label geometries are invalid "
            "(e.g. self-intersecting); repaired with shapely.make_valid",
            UserWarning,
            stacklevel=3,
        )
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = shapely.make_valid(geoms[invalid])
    keep = ~(gdf.geometry.is_empty | gdf.geometry.isna())
    return gdf[keep]


def _warn_if_outside(gdf: Any, like: xr.DataArray) -> None:
    """Warn when no label polygon touches the template grid (all labels = background)."""
    import shapely

    grid = shapely.box(*like.rio.bounds(recalc=True))
    if not gdf.geometry.intersects(grid).any():
        warnings.warn(
            f"none of the {len(gdf)} label polygons (bounds {tuple(round(v) for v in gdf.total_bounds)}"
            f" in {like.rio.crs}) overlaps the grid of 'like' (bounds "
            f"{tuple(round(v) for v in grid.bounds)}); every pixel gets the background class. "
            "Check the layer's CRS (gdf.crs) and that it covers the imagery's AOI.",
            UserWarning,
            stacklevel=3,
        )


def _check_classes(classes: Any) -> None:
    if isinstance(classes, str) or len(set(classes)) != len(classes) or len(classes) == 0:
        raise ParamsError(
            f"'classes' must be a non-empty list of distinct class names (the index is the "
            f"code), e.g. ('mines', 'built', 'vegetation'); got {classes!r}"
        )


def _class_codes(values: pd.Series, classes: Sequence[str], attribute: str) -> np.ndarray[Any, Any]:
    """Map a class column (names or integer codes) to integer codes in ``classes``."""
    lookup = {name: i for i, name in enumerate(classes)}
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_complex_dtype(values):
        raise LabelError(
            f"column {attribute!r} holds {values.dtype} values; it needs class names "
            f"{list(classes)} or integer codes 0..{len(classes) - 1}. Map it first, e.g. "
            f"gdf[{attribute!r}] = gdf[{attribute!r}].map({{True: 'mines', False: 'vegetation'}})"
        )
    if pd.api.types.is_numeric_dtype(values):
        arr = values.to_numpy()
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.mod(arr, 1) == 0):
            raise LabelError(f"column {attribute!r} holds non-integer codes {sorted(set(arr))[:5]}")
        codes = arr.astype("int64")
        bad = sorted({int(v) for v in codes if not 0 <= v < len(classes)})
    else:
        names = values.astype(str)
        bad = sorted(set(names) - set(lookup))
        codes = np.array([lookup.get(n, -1) for n in names], dtype="int64")
    if bad:
        raise LabelError(
            f"column {attribute!r} has unknown class values {bad}; expected names "
            f"{list(classes)} or codes 0..{len(classes) - 1}. Recode them, e.g. "
            f"gdf[{attribute!r}] = gdf[{attribute!r}].replace({{...}})."
        )
    return np.asarray(codes, dtype="int64")


def rasterize_labels(
    gdf: Any,
    *,
    like: xr.DataArray,
    attribute: str = "class",
    classes: Sequence[str] = CLASSES,
    mode: Literal["multiclass", "binary"] = "multiclass",
    background: str | None = "vegetation",
    nodata_mask: Any = None,
    all_touched: bool = False,
) -> xr.DataArray:
    """Burn labelled polygons onto the grid of a template raster.

    Parameters
    ----------
    gdf
        GeoDataFrame of polygons with a class column ``attribute`` holding class names
        (``"mines"``, ``"built"``) or integer codes (index in ``classes``). Any CRS: it
        is reprojected to ``like``'s CRS. Invalid geometries are repaired with
        ``shapely.make_valid`` (``UserWarning``).
    like
        Template DataArray with ``y``/``x`` dims and a CRS (``like.rio.crs``), e.g. a
        ``(time, band, y, x)`` cube. Only its grid is used (no data is read).
    attribute
        Column with the class of each polygon.
    classes
        Class names; the index is the code. Where polygons of different classes
        overlap, the class listed first wins (mines over built).
    mode
        ``"multiclass"``: codes of ``classes``. ``"binary"`` (VitSegh24): 1 where the
        polygon class is ``classes[0]`` (mines), 0 for every other labelled or
        background pixel.
    background
        Class given to pixels outside every polygon (``"vegetation"``, Gallwey), or
        None to leave them as ``IGNORE_INDEX``. In binary mode any non-None value
        makes them 0.
    nodata_mask
        Optional boolean ``(y, x)`` array or DataArray (numpy or dask), True where the
        imagery is no-data or cloud: those pixels become ``IGNORE_INDEX``.
    all_touched
        Burn every pixel a polygon touches (True) or only pixels whose centre lies
        inside it (False, default).

    Returns
    -------
    xarray.DataArray
        ``uint8`` ``(y, x)`` label raster on ``like``'s grid and CRS, named
        ``"labels"``, ``IGNORE_INDEX`` (255) as ``_FillValue``; ``attrs["classes"]``
        lists the class names of the codes.

    Raises
    ------
    MissingCRSError
        ``gdf`` or ``like`` has no CRS.
    VectorError
        ``gdf`` is empty (or only empty geometries), lacks ``attribute``, or holds
        points or lines. (A layer with no polygon over ``like``'s grid only warns:
        every pixel is background.)
    LabelError
        Unknown class values, or an unknown ``background`` or ``mode``.
    DimensionError
        ``like`` lacks ``y``/``x`` dims, or ``nodata_mask`` has another shape.

    Examples
    --------
    >>> import geopandas as gpd, shapely, xarray as xr, numpy as np
    >>> like = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"),
    ...     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ... ).rio.write_crs("EPSG:32630")
    >>> gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[shapely.box(0, 0, 20, 20)],
    ...     crs="EPSG:32630")
    >>> int((rasterize_labels(gdf, like=like) == 0).sum())
    4
    """
    from rasterio import features

    _check_like(like)
    if mode not in ("multiclass", "binary"):
        raise LabelError(f"'mode' must be one of {{'multiclass', 'binary'}}; got {mode!r}")
    if background is not None and background not in classes:
        raise LabelError(f"'background' must be one of {list(classes)} or None; got {background!r}")
    _check_classes(classes)
    if gdf is not None and not isinstance(gdf, gpd.GeoDataFrame):
        raise VectorError(
            f"labels must be a GeoDataFrame of polygons with a class column; got "
            f"{type(gdf).__name__}. Read them with vitseg.labels.read_labels(path)."
        )
    if gdf is None or len(gdf) == 0:
        raise VectorError(
            "label layer is empty (0 features); check the file and any filter applied to it"
        )
    if gdf.crs is None:
        raise MissingCRSError(
            "label GeoDataFrame has no CRS; set it with gdf.set_crs('EPSG:4326') "
            "(or the CRS it was digitised in)"
        )
    if attribute not in gdf.columns:
        raise VectorError(
            f"label layer has no column {attribute!r}; columns are {list(gdf.columns)}. "
            "Pass attribute=<name of the class column>."
        )
    kinds = gdf.geometry.geom_type
    other = kinds.notna() & ~kinds.isin(["Polygon", "MultiPolygon", "GeometryCollection"])
    if other.any():
        raise VectorError(
            f"label layer must hold polygons; {int(other.sum())} of {len(gdf)} features are "
            f"{sorted(set(kinds[other]))} (types: {sorted(set(kinds.dropna()))}). Buffer points "
            "or lines into polygons in a metric CRS (gdf.geometry.buffer(5)) or drop them: "
            "gdf[gdf.geom_type.isin(['Polygon', 'MultiPolygon'])]"
        )
    _check_finite_coords(gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)], "label layer")
    gdf = _repair(gdf)
    # a GeometryCollection burns its points and lines too: keep only its polygonal part
    collections = (gdf.geometry.geom_type == "GeometryCollection").to_numpy()
    if collections.any():
        gdf = gdf.copy()
        parts = [_polygonal_part(g) for g in gdf.geometry.values[collections]]
        gdf.loc[collections, gdf.geometry.name] = gpd.GeoSeries(
            parts, index=gdf.index[collections], crs=gdf.crs
        )
        gdf = gdf[~gdf.geometry.is_empty]
    if len(gdf) == 0:
        raise VectorError("label layer has only empty geometries; nothing to rasterise")
    codes = _class_codes(gdf[attribute], classes, attribute)
    gdf = gdf.to_crs(like.rio.crs)
    _warn_if_outside(gdf, like)

    if mode == "binary":
        codes = (codes == 0).astype("int64")
        fill = IGNORE_INDEX if background is None else 0
        names: tuple[str, ...] = BINARY_CLASSES
    else:
        fill = IGNORE_INDEX if background is None else classes.index(background)
        names = tuple(classes)
    # Burn high codes first so that lower codes (mines) overwrite them where they overlap.
    order = np.argsort(-codes, kind="stable")
    shapes = [(gdf.geometry.iloc[i], int(codes[i])) for i in order]
    ny, nx = int(like.sizes["y"]), int(like.sizes["x"])
    arr = features.rasterize(
        shapes,
        out_shape=(ny, nx),
        transform=like.rio.transform(recalc=True),
        fill=fill,
        all_touched=all_touched,
        dtype="uint8",
    )
    out = xr.DataArray(
        arr, dims=("y", "x"), coords={"y": like["y"].values, "x": like["x"].values}, name="labels"
    )
    if nodata_mask is not None:
        mask = nodata_mask
        if getattr(mask, "dtype", np.dtype(bool)).kind not in "bui":
            raise DimensionError(
                f"'nodata_mask' must be boolean (True = no data or cloud); got dtype "
                f"{mask.dtype}. From probabilities or a float mask, threshold it first, e.g. "
                "cloud_prob > 0.5."
            )
        if getattr(mask, "shape", None) != (ny, nx):
            raise DimensionError(
                f"'nodata_mask' must have shape {(ny, nx)} (the 'like' grid); got "
                f"{getattr(mask, 'shape', None)}"
            )
        if not isinstance(mask, xr.DataArray):
            mask = xr.DataArray(mask, dims=("y", "x"), coords=out.coords)
        if set(mask.dims) != {"y", "x"}:
            raise DimensionError(f"'nodata_mask' must have dims (y, x); got {mask.dims}")
        mask = mask.transpose("y", "x")
        for dim in ("y", "x"):
            if dim in mask.coords and not np.allclose(mask[dim].values, out[dim].values):
                raise GridMismatchError(
                    f"'nodata_mask' has other {dim!r} coordinates than 'like' (same shape, "
                    "shifted grid); build it from the same cube as 'like'"
                )
        mask = mask.assign_coords(y=out["y"], x=out["x"])
        out = xr.where(mask.astype(bool), np.uint8(IGNORE_INDEX), out).astype("uint8")
        out.name = "labels"
    out = out.rio.write_crs(like.rio.crs).rio.write_transform(like.rio.transform(recalc=True))
    out = out.rio.write_nodata(IGNORE_INDEX, encoded=False)
    out.attrs["classes"] = list(names)
    out.attrs["mode"] = mode
    return out


def _label_array(labels: Any) -> Any:
    data = labels.data if isinstance(labels, xr.DataArray) else labels
    if not hasattr(data, "ndim") or data.ndim < 2:
        raise DimensionError(
            f"labels must be an array with at least 2 dims (y, x); got {type(labels).__name__}"
        )
    return data


def _codes(data: Any) -> Any:
    """Integer codes of a label array (numpy or dask, lazily).

    NaN becomes ``IGNORE_INDEX`` (no data); fractions and infinities become -1, so that
    they are reported with negative codes and never truncated onto a class.
    """
    kind = np.dtype(data.dtype).kind
    if kind not in "biuf":
        raise DimensionError(
            f"labels must hold integer class codes (uint8, {IGNORE_INDEX} = no data); got "
            f"dtype {data.dtype}"
        )
    if kind == "f":
        whole = np.isfinite(data) & (data == np.round(data))
        data = np.where(np.isnan(data), IGNORE_INDEX, np.where(whole, data, -1))
    return data.astype("int64")


def _bincount(values: Any, minlength: int) -> np.ndarray[Any, Any]:
    if hasattr(values, "dask"):
        import dask.array as dsa

        return np.asarray(dsa.bincount(values, minlength=minlength).compute())
    return np.bincount(np.asarray(values), minlength=minlength)


def class_distribution(labels: Any, *, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Count pixels per class, ignoring ``IGNORE_INDEX``.

    Parameters
    ----------
    labels
        Integer label array or DataArray (numpy or dask), any shape.
    classes
        Class names (index = code). Defaults to ``labels.attrs["classes"]`` when
        present, else :data:`~vitseg.constants.CLASSES`.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``class``, ``code``, ``pixels`` and ``fraction`` (of the
        labelled pixels; NaN when none is labelled). ``attrs["ignored_pixels"]``
        counts the ``IGNORE_INDEX`` pixels.

    Raises
    ------
    LabelError
        Codes other than ``0..len(classes)-1`` and ``IGNORE_INDEX``.

    Examples
    --------
    >>> class_distribution(np.array([[0, 0, 1], [2, 255, 2]], dtype="uint8"))["pixels"].tolist()
    [2, 1, 2]
    """
    if classes is None:
        classes = tuple(getattr(labels, "attrs", {}).get("classes", CLASSES))
    _check_classes(classes)
    data = _codes(_label_array(labels).ravel())
    # bin 0: negative or non-whole values; bins 1..256: codes 0..255; bin 257: above 255
    counts = _bincount(np.clip(data, -1, 256) + 1, 258)
    n = len(classes)
    bad: list[Any] = [int(v) for v in np.flatnonzero(counts[1:257]) if v >= n and v != 255]
    bad += ["above 255"] * bool(counts[257]) + ["negative or not whole"] * bool(counts[0])
    if bad:
        raise LabelError(
            f"labels hold codes {bad} outside 0..{n - 1} and {IGNORE_INDEX}; "
            f"classes given: {list(classes)}. Labels are never rounded (NaN = no data)."
        )
    counts = counts[1:257]
    pixels = counts[:n]
    total = int(pixels.sum())
    frac = pixels / total if total else np.full(n, np.nan)
    out = pd.DataFrame(
        {"class": list(classes), "code": np.arange(n), "pixels": pixels, "fraction": frac}
    )
    out.attrs["ignored_pixels"] = int(counts[IGNORE_INDEX])
    return out


def cooccurrence(
    labels: Any,
    *,
    offset: tuple[int, int] = (0, 1),
    classes: Sequence[str] | None = None,
    normalize: bool = False,
) -> pd.DataFrame:
    """Class co-occurrence matrix of VitSegh24's appendix (its eq. 2).

    ``C[i, j]`` counts the pixel pairs where the label at ``(row, col)`` is ``i`` and
    the label at ``(row + dy, col + dx)`` is ``j``, summed over the image. Pairs whose
    second pixel falls outside the image, or where either pixel is ``IGNORE_INDEX``,
    are skipped. Leading dims (tiles, time) are summed over.

    Parameters
    ----------
    labels
        Integer labels with ``(..., y, x)`` as last two dims (numpy, dask or DataArray).
    offset
        ``(dy, dx)`` in pixels: ``(0, 1)`` pairs each pixel with its right-hand
        neighbour, ``(1, 0)`` with the one below. Negative values allowed.
    classes
        Class names (index = code); default from ``labels.attrs`` or ``CLASSES``.
    normalize
        Divide by the number of counted pairs (matrix sums to 1).

    Returns
    -------
    pandas.DataFrame
        Square matrix, index = first pixel's class, columns = offset pixel's class.

    Raises
    ------
    LabelError
        Codes outside the classes (other than ``IGNORE_INDEX``).
    DimensionError
        An offset as large as the image.

    Examples
    --------
    >>> m = cooccurrence(np.array([[0, 0, 1]]), classes=("a", "b"))
    >>> m.to_numpy().tolist()
    [[1, 1], [0, 0]]
    """
    if classes is None:
        classes = tuple(getattr(labels, "attrs", {}).get("classes", CLASSES))
    _check_classes(classes)
    data = _codes(_label_array(labels))
    ok = len(tuple(offset)) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in offset
    )
    if not ok:
        raise ParamsError(f"offset must be two integers (dy, dx) in pixels; got {offset!r}")
    dy, dx = (int(v) for v in offset)
    ny, nx = data.shape[-2], data.shape[-1]
    if abs(dy) >= ny or abs(dx) >= nx:
        raise DimensionError(f"offset {offset} must be smaller than the image ({ny} x {nx} pixels)")

    def _sl(d: int, n: int) -> tuple[slice, slice]:
        return (slice(0, n - d), slice(d, n)) if d >= 0 else (slice(-d, n), slice(0, n + d))

    (ry0, ry1), (rx0, rx1) = _sl(dy, ny), _sl(dx, nx)
    first = data[..., ry0, rx0]
    second = data[..., ry1, rx1]
    n = len(classes)
    valid = (first != IGNORE_INDEX) & (second != IGNORE_INDEX)
    bad_first = ((first >= n) | (first < 0)) & valid
    bad_second = ((second >= n) | (second < 0)) & valid
    n_bad = bad_first.sum() + bad_second.sum()
    if int(n_bad):
        raise LabelError(
            f"labels hold codes outside 0..{n - 1} and {IGNORE_INDEX} (negative, too large or "
            f"not whole; never rounded); classes given: {list(classes)}"
        )
    # Invalid pairs go to an overflow bin (n * n) that is dropped: no boolean indexing,
    # so dask arrays keep known chunks.
    pair = (first * n + second) * valid + (n * n) * ~valid
    counts = _bincount(pair.ravel(), n * n + 1)[: n * n].reshape(n, n)
    mat: np.ndarray[Any, Any] = counts
    if normalize:
        total = counts.sum()
        mat = counts / total if total else counts.astype("float64")
    index = pd.Index(list(classes), name="class")
    return pd.DataFrame(mat, index=index, columns=pd.Index(list(classes), name="neighbour"))


def extent_mask(extent: gpd.GeoDataFrame | gpd.GeoSeries, *, like: xr.DataArray) -> xr.DataArray:
    """Rasterise an extent onto a template grid: True where a pixel centre lies inside.

    Parameters
    ----------
    extent
        Polygons with a CRS (e.g. from :func:`read_extent`); reprojected to ``like``'s CRS.
    like
        Template DataArray with ``y``/``x`` dims and a CRS; only its grid is used (no
        data is read, so a lazy dask cube stays lazy).

    Returns
    -------
    xarray.DataArray
        ``bool`` ``(y, x)`` on ``like``'s grid and CRS, named ``"extent"``; chunked like
        ``like`` along ``y``/``x`` when ``like`` is dask-backed.

    Raises
    ------
    MissingCRSError
        ``extent`` or ``like`` has no CRS.
    VectorError
        ``extent`` is empty or holds points or lines.
    DimensionError
        ``like`` lacks ``y``/``x`` dims.

    Warns
    -----
    UserWarning
        The extent does not overlap the grid (every pixel is outside).

    Examples
    --------
    >>> import geopandas as gpd, shapely, xarray as xr, numpy as np
    >>> like = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"),
    ...     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ... ).rio.write_crs("EPSG:32630")
    >>> ext = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 30, 20)], crs="EPSG:32630")
    >>> int(extent_mask(ext, like=like).sum())
    6
    """
    from rasterio import features

    _check_like(like)
    if isinstance(extent, gpd.GeoSeries):
        extent = gpd.GeoDataFrame(geometry=extent)
    if not isinstance(extent, gpd.GeoDataFrame):
        raise VectorError(
            f"'extent' must be a GeoDataFrame or GeoSeries (e.g. from read_extent); "
            f"got {type(extent).__name__}"
        )
    _require_crs(extent, "'extent'")
    extent = _clean_polygons(extent, "'extent'")
    if len(extent) == 0:
        raise VectorError("'extent' holds no polygon; nothing to rasterise")
    extent = extent.to_crs(like.rio.crs)
    ny, nx = int(like.sizes["y"]), int(like.sizes["x"])
    transform = like.rio.transform(recalc=True)
    arr = features.rasterize(
        [(g, 1) for g in extent.geometry],
        out_shape=(ny, nx),
        transform=transform,
        fill=0,
        all_touched=False,
        dtype="uint8",
    ).astype(bool)
    if not arr.any():
        import shapely

        grid = shapely.box(*like.rio.bounds(recalc=True))
        warnings.warn(
            f"the extent (bounds {tuple(round(v, 6) for v in extent.total_bounds)} in "
            f"{like.rio.crs}) covers no pixel centre of the grid of 'like' (bounds "
            f"{tuple(round(v, 6) for v in grid.bounds)}); every pixel is outside. Check the "
            "extent's CRS and that it covers the imagery's AOI.",
            UserWarning,
            stacklevel=2,
        )
    out = xr.DataArray(
        arr, dims=("y", "x"), coords={"y": like["y"].values, "x": like["x"].values}, name="extent"
    )
    if like.chunks is not None:
        out = out.chunk({"y": like.chunksizes["y"], "x": like.chunksizes["x"]})
    return out.rio.write_crs(like.rio.crs).rio.write_transform(transform)
