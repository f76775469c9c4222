"""Label files and rasters: read a researcher's polygons, burn them onto a grid, count classes.

A researcher brings their own files: a labels file (any polygon file with a class
column of their own vocabulary, :func:`read_labels` maps it to vitseg's classes), the
labelled extent (:func:`read_extent`, :func:`extent_mask`: inside it unlabelled
pixels are background, outside they are no-data) and hand-digitised reference tiles
(:func:`read_reference_tiles`, Gallwey et al. Tables 1-2).

Polygons (a GeoDataFrame with a class column) are burnt onto the grid of a template
raster (``like=cube``), so labels and imagery share shape, transform and CRS by
construction. No-data is kept as :data:`vitseg.constants.IGNORE_INDEX` (255), which
losses and metrics skip.

Class codes follow :data:`vitseg.constants.CLASSES`: 0 mines, 1 built, 2 vegetation
(Gallwey et al.'s three macro-classes). The binary scheme of VitSegh24 is 0 = not
mine, 1 = mine.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import BINARY_CLASSES, CLASSES, IGNORE_INDEX
from vitseg.errors import (
    DimensionError,
    LabelError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VectorError,
)

__all__ = [
    "class_distribution",
    "cooccurrence",
    "extent_mask",
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


def _class_codes(values: pd.Series, classes: Sequence[str], attribute: str) -> np.ndarray[Any, Any]:
    """Map a class column (names or integer codes) to integer codes in ``classes``."""
    lookup = {name: i for i, name in enumerate(classes)}
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
    gdf = _repair(gdf)
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
        if not isinstance(mask, xr.DataArray):
            mask = xr.DataArray(mask, dims=("y", "x"), coords=out.coords)
        if mask.shape != (ny, nx):
            raise DimensionError(
                f"'nodata_mask' must have shape {(ny, nx)} (the 'like' grid); got {mask.shape}"
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
    data = _label_array(labels).ravel().astype("int64")
    counts = _bincount(data, 256)
    n = len(classes)
    bad = [int(v) for v in np.flatnonzero(counts) if v >= n and v != IGNORE_INDEX]
    if bad:
        raise LabelError(
            f"labels hold codes {bad} outside 0..{n - 1} and {IGNORE_INDEX}; "
            f"classes given: {list(classes)}"
        )
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
    data = _label_array(labels)
    dy, dx = (int(v) for v in offset)
    ny, nx = data.shape[-2], data.shape[-1]
    if abs(dy) >= ny or abs(dx) >= nx:
        raise DimensionError(f"offset {offset} must be smaller than the image ({ny} x {nx} pixels)")

    def _sl(d: int, n: int) -> tuple[slice, slice]:
        return (slice(0, n - d), slice(d, n)) if d >= 0 else (slice(-d, n), slice(0, n + d))

    (ry0, ry1), (rx0, rx1) = _sl(dy, ny), _sl(dx, nx)
    first = data[..., ry0, rx0].astype("int64")
    second = data[..., ry1, rx1].astype("int64")
    n = len(classes)
    valid = (first != IGNORE_INDEX) & (second != IGNORE_INDEX)
    bad_first = (first >= n) & valid
    bad_second = (second >= n) & valid
    n_bad = bad_first.sum() + bad_second.sum()
    if int(n_bad):
        raise LabelError(
            f"labels hold codes outside 0..{n - 1} and {IGNORE_INDEX}; classes given: "
            f"{list(classes)}"
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


# ------------------------------------------------------------------ label files
_POLYGONAL = ("Polygon", "MultiPolygon")


def _check_path(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise MissingFileError(
            f"{what} {str(p)!r} is a folder; give the vector file itself "
            "(a .gpkg, .geojson or .shp inside it)"
        )
    if not p.exists():
        raise MissingFileError(
            f"{what} {str(p)!r} does not exist; check the path (relative paths are resolved "
            f"against {str(Path.cwd())!r})"
        )
    return p


def _layers(path: Path) -> list[str]:
    try:
        return [str(n) for n in gpd.list_layers(path)["name"]]
    except Exception as err:  # pyogrio raises DataSourceError and friends
        raise VectorError(
            f"cannot read {str(path)!r} as a vector file ({err}); give a GeoPackage, "
            "GeoJSON or shapefile"
        ) from err


def _pick_layer(path: Path, layer: str | None, preferred: str | None) -> str:
    names = _layers(path)
    if not names:
        raise VectorError(f"{str(path)!r} holds no vector layer")
    if layer is None:
        return preferred if preferred in names else names[0]
    if layer not in names:
        raise LabelError(
            f"{path.name} has no layer {layer!r}; its layers are {names}. Pass layer=<one of them>."
        )
    return layer


def _read_layer(path: Path, layer: str) -> gpd.GeoDataFrame:
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as err:
        raise VectorError(f"cannot read layer {layer!r} of {str(path)!r}: {err}") from err
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise VectorError(f"layer {layer!r} of {path.name} has no geometry column")
    return gdf


def _require_crs(gdf: gpd.GeoDataFrame, name: str) -> None:
    if gdf.crs is None:
        raise MissingCRSError(
            f"{name} has no CRS; give the file one (in QGIS: Layer > Set CRS, then Export > "
            "Save Features As; for a shapefile add the .prj) or in Python "
            "gpd.read_file(path).set_crs('EPSG:4326').to_file(path) (or the CRS it was "
            "digitised in)"
        )


def _polygonal_part(geom: Any) -> Any:
    """Return the polygonal part of a geometry (make_valid may also return lines, points)."""
    import shapely

    if geom is None or geom.geom_type in _POLYGONAL:
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in _POLYGONAL]
    polys = [p for g in parts for p in shapely.get_parts(g)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _clean_polygons(gdf: gpd.GeoDataFrame, name: str, *, stacklevel: int = 3) -> gpd.GeoDataFrame:
    """Reject non-polygons, repair invalid geometries (keeping polygonal parts), drop empties."""
    import shapely

    keep = ~(gdf.geometry.isna() | gdf.geometry.is_empty)
    gdf = gdf[keep]
    kinds = gdf.geometry.geom_type
    other = ~kinds.isin([*_POLYGONAL, "GeometryCollection"])
    if other.any():
        raise VectorError(
            f"{name} must hold polygons; {int(other.sum())} of {len(gdf)} features are "
            f"{sorted(set(kinds[other]))}. Buffer points or lines into polygons (in a metric "
            "CRS, e.g. gdf.geometry.buffer(5)) or drop them."
        )
    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms)
    collections = (kinds == "GeometryCollection").to_numpy()
    if invalid.any() or collections.any():
        if invalid.any():
            warnings.warn(
                f"{int(invalid.sum())} of {len(gdf)} geometries of {name} are invalid (e.g. "
                "self-intersecting); repaired with shapely.make_valid, keeping polygonal parts",
                UserWarning,
                stacklevel=stacklevel,
            )
        fixed = np.asarray(geoms, dtype=object).copy()
        fixed[invalid] = shapely.make_valid(fixed[invalid])
        fixed = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        name_ = gdf.geometry.name
        gdf = gdf.set_geometry(gpd.GeoSeries(fixed, index=gdf.index, crs=gdf.crs, name=name_))
        gdf = gdf[~gdf.geometry.is_empty]
    return gdf


def _value_key(value: Any) -> str:
    """Return a class value or class_map key as a string: 1, 1.0 and " 1 " all give "1"."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def _class_lookup(
    class_map: Mapping[Any, str | None] | None, classes: Sequence[str]
) -> dict[str, str | None]:
    lower = {c.lower(): c for c in classes}
    lookup: dict[str, str | None] = {}
    bad = []
    for key, target in (class_map or {}).items():
        if target is None or (isinstance(target, str) and target.strip() == ""):
            lookup[_value_key(key)] = None
        elif isinstance(target, str) and target.strip().lower() in lower:
            lookup[_value_key(key)] = lower[target.strip().lower()]
        else:
            bad.append(f"{key!r}: {target!r}")
    if bad:
        raise ParamsError(
            f"class_map maps to values that are not vitseg classes: {', '.join(bad)}; "
            f"each value must be one of {list(classes)}, or None (or '') to drop those polygons"
        )
    return lookup


def _map_classes(
    values: pd.Series,
    *,
    class_map: Mapping[Any, str | None] | None,
    classes: Sequence[str],
    column: str,
    source: str,
) -> pd.Series:
    """Vitseg class names of ``values`` (None where the class_map drops them)."""
    lookup = _class_lookup(class_map, classes)
    lower = {c.lower(): c for c in classes}
    keys = [_value_key(v) for v in values]
    out: list[str | None] = []
    unknown: Counter[str] = Counter()
    for key in keys:
        if key in lookup:
            out.append(lookup[key])
        elif key.lower() in lower:
            out.append(lower[key.lower()])
        else:
            unknown[key] += 1
            out.append(None)
    if unknown:
        listed = ", ".join(
            f"{k!r} ({n})" if k else f"blank ({n})" for k, n in sorted(unknown.items())
        )
        names = [k for k in sorted(unknown) if k][:3] or [""]
        example = {n: (classes[0] if i == 0 else None) for i, n in enumerate(names)}
        raise LabelError(
            f"column {column!r} of {source} has values that are not vitseg classes "
            f"{list(classes)}: {listed} (value (polygons)). Map them with class_map, e.g. "
            f"class_map={example} (YAML keys may be numbers; a value of None or '' drops "
            "those polygons)."
        )
    return pd.Series(out, index=values.index, dtype=object)


def read_labels(
    path: str | os.PathLike[str],
    *,
    class_column: str = "class",
    class_map: Mapping[Any, str | None] | None = None,
    layer: str | None = None,
    classes: Sequence[str] = CLASSES,
) -> gpd.GeoDataFrame:
    """Read a labels file of any vocabulary into polygons of vitseg classes.

    Parameters
    ----------
    path
        Any vector file GDAL reads (GeoPackage, GeoJSON, shapefile) with polygons and a
        class column.
    class_column
        Column holding each polygon's class, in the file's own vocabulary.
    class_map
        Maps the file's values to vitseg class names, e.g. ``{"galamsey": "mines",
        "farm": "vegetation"}`` or ``{1: "mines", 2: "built"}``. Keys are compared as
        strings (``1``, ``1.0`` and ``"1"`` are the same key), so mappings from YAML
        work. A value of None or ``""`` drops those polygons (key ``""`` matches
        polygons with no class). Values that are already vitseg class names (any
        case) need no entry; integer codes always do (a file's ``1`` is not assumed to
        be vitseg's code 1).
    layer
        Layer of a multi-layer file. None: the layer named ``"labels"`` if there is one,
        else the first layer.
    classes
        The vitseg class names (:data:`~vitseg.constants.CLASSES`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per polygon, in the file's CRS: a ``class`` column of vitseg class
        names plus the file's columns (a column of the file already named ``class``
        is kept as ``class_source``). Invalid geometries are repaired
        (``shapely.make_valid``, polygonal parts kept; ``UserWarning``), empty ones
        dropped.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    MissingCRSError
        The file has no CRS.
    LabelError
        No ``class_column`` (the message lists the columns), values neither mapped nor
        vitseg class names (listed with their counts and an example ``class_map``), an
        unknown ``layer``, or no polygon left.
    ParamsError
        ``class_map`` maps to something that is not a vitseg class.
    VectorError
        The file cannot be read, or holds points or lines.

    Examples
    --------
    >>> from vitseg.io import data_path
    >>> gdf = read_labels(data_path("asm_ground_truth_ghana.geojson"), class_column="label",
    ...                   class_map={0: "mines"})
    >>> gdf["class"].unique().tolist(), gdf.crs.to_epsg()
    (['mines'], 4326)
    """
    return _read_labels(
        _check_path(path, "labels file"),
        class_column=class_column,
        class_map=class_map,
        layer=layer,
        classes=classes,
        stacklevel=4,
    )


def _read_labels(
    p: Path,
    *,
    class_column: str,
    class_map: Mapping[Any, str | None] | None,
    layer: str | None,
    classes: Sequence[str],
    stacklevel: int,
) -> gpd.GeoDataFrame:
    """Do the work of :func:`read_labels`; ``stacklevel`` points warnings at the user's call."""
    name = _pick_layer(p, layer, "labels")
    gdf = _read_layer(p, name)
    source = p.name if len(_layers(p)) == 1 else f"{p.name} (layer {name!r})"
    if class_column not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise LabelError(
            f"{source} has no class column {class_column!r}; its columns are {cols}. "
            "Pass class_column=<the column holding each polygon's class>."
        )
    _require_crs(gdf, source)
    mapped = _map_classes(
        gdf[class_column], class_map=class_map, classes=classes, column=class_column, source=source
    )
    out = gdf.copy()
    if "class" in out.columns:
        out = out.rename(columns={"class": "class_source"})
    out.insert(0, "class", mapped)
    out = out[out["class"].notna()]
    out = _clean_polygons(out, source, stacklevel=stacklevel)
    if len(out) == 0:
        raise LabelError(
            f"{source} has no labelled polygon left (read {len(gdf)} features; dropped by "
            "class_map or empty geometries); check class_map and the file"
        )
    return out.reset_index(drop=True)


def read_extent(path: str | os.PathLike[str], *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read the labelled extent: the union of all polygons of a file (or one layer).

    Inside the extent, pixels no polygon labels are the background class; outside it
    they are no-data (:data:`~vitseg.constants.IGNORE_INDEX`); see :func:`extent_mask`.

    Parameters
    ----------
    path
        Vector file (GeoPackage, GeoJSON, shapefile).
    layer
        Layer to read. None: the layer named ``"extent"`` if there is one, else the
        first layer.

    Returns
    -------
    geopandas.GeoDataFrame
        One row, the union of the polygons (``geometry``), in the file's CRS.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    MissingCRSError
        The file has no CRS.
    VectorError
        The layer is empty, unreadable, or holds points or lines.
    LabelError
        An unknown ``layer``.

    Examples
    --------
    >>> from vitseg.io import data_path
    >>> ext = read_extent(data_path("ne_10m_ghana.geojson"))
    >>> len(ext), ext.crs.to_epsg()
    (1, 4326)
    """
    p = _check_path(path, "extent file")
    name = _pick_layer(p, layer, "extent")
    gdf = _read_layer(p, name)
    source = f"extent {p.name} (layer {name!r})"
    _require_crs(gdf, source)
    gdf = _clean_polygons(gdf, source)
    if len(gdf) == 0:
        raise VectorError(f"{source} holds no polygon; draw the labelled area as a polygon")
    union = gdf.geometry.union_all()
    return gpd.GeoDataFrame(geometry=[_polygonal_part(union)], crs=gdf.crs)


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


def read_reference_tiles(
    path: str | os.PathLike[str],
    *,
    class_column: str = "class",
    class_map: Mapping[Any, str | None] | None = None,
    tiles_layer: str = "tiles",
    polygons_layer: str = "polygons",
    tile_column: str = "tile",
    classes: Sequence[str] = CLASSES,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Read hand-digitised reference tiles (Gallwey et al. Tables 1-2) from one file.

    The file holds two layers: the tiles (square extents digitised in full, a name
    column) and the labelled polygons inside them. Within a tile, pixels no polygon
    covers are the background class.

    Parameters
    ----------
    path
        GeoPackage (or any multi-layer vector file) with both layers.
    class_column, class_map, classes
        Class column of the polygons layer and its mapping, as in :func:`read_labels`.
    tiles_layer, polygons_layer
        Layer names of the tiles and of the polygons.
    tile_column
        Column of the tiles layer naming each tile (names must be unique).

    Returns
    -------
    tuple of geopandas.GeoDataFrame
        ``(tiles, polygons)``: the tiles with ``tile_column`` in their own CRS, and the
        polygons with a ``class`` column of vitseg class names, reprojected to the
        tiles' CRS.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    LabelError
        A layer is missing (the message names the file's layers), no ``tile_column``,
        blank or duplicate tile names, or label problems as in :func:`read_labels`.
    MissingCRSError
        A layer has no CRS.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ref.gpkg"
    >>> gpd.GeoDataFrame({"tile": ["t1"]}, geometry=[shapely.box(0, 0, 640, 640)],
    ...                  crs="EPSG:32630").to_file(f, layer="tiles")
    >>> gpd.GeoDataFrame({"class": ["mines"]}, geometry=[shapely.box(0, 0, 50, 50)],
    ...                  crs="EPSG:32630").to_file(f, layer="polygons")
    >>> tiles, polys = read_reference_tiles(f)
    >>> tiles["tile"].tolist(), polys["class"].tolist()
    (['t1'], ['mines'])
    """
    p = _check_path(path, "reference tiles file")
    names = _layers(p)
    missing = [n for n in (tiles_layer, polygons_layer) if n not in names]
    if missing:
        raise LabelError(
            f"{p.name} lacks layers {missing}; its layers are {names}. Put the tile extents "
            f"in layer {tiles_layer!r} and the labelled polygons in {polygons_layer!r}, or "
            "pass tiles_layer=/polygons_layer= with the names used."
        )
    tiles = _read_layer(p, tiles_layer)
    source = f"{p.name} (layer {tiles_layer!r})"
    if tile_column not in tiles.columns:
        cols = [c for c in tiles.columns if c != tiles.geometry.name]
        raise LabelError(
            f"{source} has no tile-name column {tile_column!r}; its columns are {cols}. "
            "Pass tile_column=<the column naming each tile>."
        )
    _require_crs(tiles, source)
    tiles = _clean_polygons(tiles, source).reset_index(drop=True)
    if len(tiles) == 0:
        raise LabelError(f"{source} holds no tile polygon")
    keys = tiles[tile_column].map(_value_key)
    blank = int((keys == "").sum())
    dups = sorted(set(keys[keys.duplicated()]) - {""})
    if blank or dups:
        raise LabelError(
            f"{source}: tile names in {tile_column!r} must be unique and not blank; "
            f"got {blank} blank and duplicates {dups}. Rename the tiles."
        )
    polygons = _read_labels(
        p,
        class_column=class_column,
        class_map=class_map,
        layer=polygons_layer,
        classes=classes,
        stacklevel=4,
    )
    return tiles, polygons.to_crs(tiles.crs)
