"""Read a researcher's label files: polygons of their own vocabulary, the extent, reference tiles.

A researcher brings their own files: a labels file (any polygon file with a class
column of their own vocabulary; :func:`read_labels` maps it to vitseg's classes), the
labelled extent (:func:`read_extent`: inside it unlabelled pixels are background,
outside they are no-data; :func:`vitseg.labels.extent_mask` burns it onto a grid) and
hand-digitised reference tiles (:func:`read_reference_tiles`, Gallwey et al. Tables
1-2). Each is checked as it is read: the path, the layer, the CRS, the geometry types
(invalid polygons are repaired, with a warning) and every class value, each problem
with a message saying how to fix it.

Every public name here is also importable from :mod:`vitseg.labels`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from vitseg.constants import CLASSES
from vitseg.errors import LabelError, MissingCRSError, MissingFileError, ParamsError, VectorError

__all__ = ["area_labels", "labelled_extent", "read_extent", "read_labels", "read_reference_tiles"]

_POLYGONAL = ("Polygon", "MultiPolygon")


def _check_path(path: str | os.PathLike[str], what: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ParamsError(f"{what} must be a path (str or pathlib.Path); got {path!r}")
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


def _require_column(
    gdf: gpd.GeoDataFrame, column: str, source: str, what: str, holds: str, option: str
) -> None:
    if column not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise LabelError(
            f"{source} has no {what} {column!r}; its columns are {cols}. "
            f"Pass {option}=<the column holding {holds}>."
        )


def _require_crs(gdf: gpd.GeoDataFrame, name: str) -> None:
    if gdf.crs is None:
        raise MissingCRSError(
            f"{name} has no CRS; give the file one (in QGIS: Layer > Set CRS, then Export > "
            "Save Features As; for a shapefile add the .prj) or in Python "
            "gpd.read_file(path).set_crs('EPSG:4326').to_file(path) (or the CRS it was "
            "digitised in)"
        )


def _check_finite_coords(gdf: gpd.GeoDataFrame, name: str) -> None:
    """Refuse geometries with NaN or infinite coordinates (GEOS cannot handle them)."""
    import shapely

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    coords = [shapely.get_coordinates(g) for g in geoms]
    bad = [i for i, c in enumerate(coords) if c.size and not np.isfinite(c).all()]
    if bad:
        raise VectorError(
            f"{name} has {len(bad)} of {len(geoms)} geometries with NaN or infinite coordinates "
            f"(rows {bad[:5]}); fix or drop them, e.g. in QGIS (Vector > Geometry Tools > "
            "Check Validity)"
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
    _check_finite_coords(gdf, name)
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
    if class_map is not None and not isinstance(class_map, Mapping):
        raise ParamsError(
            f"class_map must be a mapping {{file value: vitseg class}}, e.g. "
            f"{{'galamsey': 'mines'}}; got {type(class_map).__name__} {class_map!r}"
        )
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
    _require_column(
        gdf, class_column, source, "class column", "each polygon's class", "class_column"
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


def area_labels(
    labels_file: str | os.PathLike[str],
    *,
    areas: Mapping[str, Any],
    class_column: str = "class",
    class_map: Mapping[Any, Any] | None = None,
    extent_file: str | os.PathLike[str] | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame]]:
    """Read a run's labels once and the labelled extent of each of its areas.

    Parameters
    ----------
    labels_file, class_column, class_map
        As :func:`read_labels` (an empty ``class_map`` means none).
    areas
        ``{area name: lon/lat geometry}`` (:func:`vitseg.aoi.run_areas`).
    extent_file
        As :func:`labelled_extent` (empty: the labels file's ``extent`` layer, else the area).

    Returns
    -------
    (GeoDataFrame, dict)
        The labels (``class`` column of vitseg classes) and ``{area: extent}``.
    """
    if not isinstance(areas, Mapping):
        raise ParamsError(
            f"areas must be a mapping {{area name: lon/lat geometry}} (vitseg.aoi.run_areas); "
            f"got {type(areas).__name__}"
        )
    polys = read_labels(labels_file, class_column=class_column, class_map=class_map or None)
    extents = {
        name: labelled_extent(labels_file, extent_file=extent_file or None, area=geom)
        for name, geom in areas.items()
    }
    return polys, extents


def labelled_extent(
    labels_file: str | os.PathLike[str],
    *,
    extent_file: str | os.PathLike[str] | None = None,
    area: Any = None,
) -> gpd.GeoDataFrame:
    """Return where a labels file's absence of a polygon means "background", not "unknown".

    In order: ``extent_file`` (its ``extent`` layer, else its first); the labels file's own
    layer named ``extent``; else ``area`` (a lon/lat geometry, e.g. the run's area or
    cells). A labels file without an extent never makes its own polygons the extent (that
    would leave no background at all).

    Raises
    ------
    LabelError
        No extent file, no ``extent`` layer and no ``area``.
    ParamsError, VectorError
        ``area`` is not a shapely geometry, not a non-empty polygon, or not in lon/lat
        degrees (projected coordinates would be read as degrees).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> from vitseg.io import data_path
    >>> ext = labelled_extent(data_path("asm_ground_truth_ghana.geojson"), area=box(0, 0, 1, 1))
    >>> ext.total_bounds.tolist(), ext.crs.to_epsg()
    ([0.0, 0.0, 1.0, 1.0], 4326)
    """
    if extent_file:
        return read_extent(extent_file)
    p = _check_path(labels_file, "labels file")
    if "extent" in _layers(p):
        return read_extent(p, layer="extent")
    if area is None:
        raise LabelError(
            f"{p.name} has no 'extent' layer and no labelled extent was given: pass "
            "labels_extent_file (the area the labellers covered) or the run's area"
        )
    return gpd.GeoDataFrame(geometry=[_check_area(area)], crs="EPSG:4326")


def _check_area(area: Any) -> Any:
    """Refuse an ``area`` that is not a non-empty lon/lat polygon."""
    import shapely

    if not isinstance(area, shapely.Geometry):
        raise ParamsError(
            f"area must be a shapely polygon in lon/lat (EPSG:4326), e.g. from "
            f"vitseg.aoi.run_areas; got {type(area).__name__} {area!r}"
        )
    if area.is_empty or area.geom_type not in _POLYGONAL:
        raise VectorError(
            f"area must be a non-empty Polygon or MultiPolygon in lon/lat; got "
            f"{'an empty ' if area.is_empty else 'a '}{area.geom_type}"
        )
    minx, miny, maxx, maxy = area.bounds
    if not (np.isfinite(area.bounds).all() and -180 <= minx and maxx <= 180):
        raise VectorError(
            f"area bounds {tuple(round(v, 3) for v in area.bounds)} are not lon/lat degrees "
            "(or not finite); give the area in EPSG:4326, e.g. gdf.to_crs(4326).union_all()"
        )
    if not (-90 <= miny and maxy <= 90):
        raise VectorError(
            f"area bounds {tuple(round(v, 3) for v in area.bounds)} are not lon/lat degrees; "
            "give the area in EPSG:4326, e.g. gdf.to_crs(4326).union_all()"
        )
    return area


def read_extent(path: str | os.PathLike[str], *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read the labelled extent: the union of all polygons of a file (or one layer).

    Inside the extent, pixels no polygon labels are the background class; outside it
    they are no-data (:data:`~vitseg.constants.IGNORE_INDEX`); see
    :func:`vitseg.labels.extent_mask`.

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
    _require_column(
        tiles, tile_column, source, "tile-name column", "each tile's name", "tile_column"
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
