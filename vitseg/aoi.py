"""Areas of interest named in a run's YAML, as lon/lat polygons, and their metric CRS.

A researcher names the area of a run in one line of YAML; :func:`resolve_aoi` turns it into
a GeoDataFrame of named areas in EPSG:4326 that every notebook can use, and
:func:`choose_crs` picks the metric CRS (a UTM zone by default) to grid and tile them in.
The ``aoi`` value may be

* a box name of :data:`vitseg.synthetic.BOXES` (``"obuasi"``, ``"kibi"``), or a list of them;
* a lon/lat bounding box ``[west, south, east, north]``;
* the path of a vector file (GeoPackage, GeoJSON, Shapefile) in any CRS;
* ``"cells"``: the grid cells notebook 01 selected (``cells_file``), grouped into connected
  blocks.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from vitseg.errors import MissingCRSError, VitsegError

__all__ = ["AOIError", "choose_crs", "resolve_aoi", "run_areas"]


class AOIError(VitsegError, ValueError):
    """An area of interest given in a form vitseg cannot read, or holding no polygon."""


def _boxes() -> dict[str, tuple[float, float, float, float]]:
    from vitseg.synthetic import BOXES  # lazy: vitseg.synthetic imports xarray

    return dict(BOXES)


def _forms() -> str:
    names = ", ".join(repr(n) for n in _boxes())
    return (
        f"accepted forms: a box name ({names}) or a list of them; a lon/lat bbox "
        "[west, south, east, north]; the path of an existing vector file (.gpkg, .geojson, "
        ".shp); or 'cells' with cells_file=<grid_cells.gpkg written by notebook 01>"
    )


def _slug(value: Any) -> str:
    """Lowercase, ASCII, ``[a-z0-9_-]`` only; ``"area"`` when nothing is left."""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9_-]+", "_", text).strip("_-")
    return text or "area"


def _unique(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        new, k = name, 2
        while new in out:
            new, k = f"{name}_{k}", k + 1
        out.append(new)
    return out


def _polygonal(geom: Any) -> Any:
    """Return the polygonal part of a (repaired) geometry, or None."""
    import shapely

    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [p for p in (_polygonal(g) for g in geom.geoms) if p is not None]
        return shapely.union_all(parts) if parts else None
    return None


def _frame(rows: list[dict[str, Any]], crs: Any = "EPSG:4326") -> Any:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs("EPSG:4326")
    gdf["area"] = _unique(list(gdf["area"]))
    extra = [c for c in gdf.columns if c not in ("area", "source", "geometry")]
    return gdf[["area", "source", *extra, "geometry"]].reset_index(drop=True)


def _from_boxes(names: Sequence[str], original: Any) -> Any:
    from shapely.geometry import box

    boxes = _boxes()
    rows, seen = [], set()
    for name in names:
        key = name.strip().lower()
        if key not in boxes:
            close = difflib.get_close_matches(key, list(boxes), n=3)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise AOIError(f"aoi {original!r}: {name!r} is not a box name.{hint} {_forms()}")
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {"area": key, "source": f"box {key} (vitseg.synthetic.BOXES)",
             "geometry": box(*boxes[key])}
        )  # fmt: skip
    return _frame(rows)


def _from_bbox(values: Sequence[Any]) -> Any:
    from shapely.geometry import box

    west, south, east, north = (float(v) for v in values)
    ok = all(math.isfinite(v) for v in (west, south, east, north))
    if not (ok and -180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise AOIError(
            f"aoi bbox {list(values)!r} is not [west, south, east, north] in degrees with "
            "-180 <= west < east <= 180 and -90 <= south < north <= 90; e.g. "
            "[-1.82, 6.14, -1.69, 6.27] (lon/lat, EPSG:4326)"
        )
    bounds = [west, south, east, north]
    return _frame([{"area": "bbox", "source": f"bbox {bounds}", "geometry": box(*bounds)}])


def _read(path: Path, what: str) -> Any:
    """Read a single-layer vector file, check its CRS and keep repaired polygons only."""
    import geopandas as gpd
    import pyogrio
    import shapely

    if path.is_dir():
        inside = sorted(
            q.name for q in path.iterdir() if q.suffix.lower() in (".gpkg", ".geojson", ".shp")
        )
        raise AOIError(
            f"{what} {str(path)!r} is a folder; pass the vector file itself (vector files in "
            f"it: {inside[:5]})"
        )
    try:
        layers = pyogrio.list_layers(path)
        if len(layers) > 1:
            raise AOIError(
                f"{what} {str(path)!r} holds {len(layers)} layers "
                f"({', '.join(repr(str(n)) for n in layers[:, 0])}); vitseg reads one: save "
                "the area's layer to a file of its own"
            )
        gdf = gpd.read_file(path)
    except AOIError:
        raise
    except Exception as exc:
        raise AOIError(
            f"cannot read {what} {str(path)!r} as a vector file ({exc}); pass a GeoPackage, "
            "GeoJSON or Shapefile"
        ) from exc
    if gdf.crs is None:
        raise MissingCRSError(
            f"{what} {str(path)!r} has no CRS; set it and save it again, e.g. "
            f"gdf = geopandas.read_file({str(path)!r}).set_crs('EPSG:4326'); "
            f"gdf.to_file({str(path)!r}) (use the CRS the coordinates are really in)"
        )
    geoms = shapely.make_valid(np.asarray(gdf.geometry.values, dtype=object))
    polys = gpd.GeoSeries([_polygonal(g) for g in geoms], index=gdf.index, crs=gdf.crs)
    gdf = gpd.GeoDataFrame(gdf.drop(columns=gdf.geometry.name), geometry=polys)
    gdf = gdf[gdf.geometry.notna()]
    if gdf.empty:
        raise AOIError(
            f"{what} {str(path)!r} holds no polygon (after repairing invalid geometries "
            "and dropping empty, point and line features); draw the area as polygons"
        )
    return gdf


def _from_file(path: Path, name_column: str | None) -> Any:
    import shapely

    gdf = _read(path, "aoi file")
    rows = []
    if name_column is not None and name_column in gdf.columns:
        values = gdf[name_column]
        if values.isna().any():
            raise AOIError(
                f"aoi file {str(path)!r}: {int(values.isna().sum())} polygon(s) have no "
                f"value in column {name_column!r}; fill them in, or pass name_column=None "
                "to use the union of all polygons"
            )
        for value, part in gdf.groupby(values.astype(str), sort=False):
            rows.append(
                {"area": _slug(value),
                 "source": f"{path.name}: {name_column}={value} ({len(part)} features)",
                 "geometry": shapely.union_all(list(part.geometry))}
            )  # fmt: skip
        rows.sort(key=lambda r: (r["area"], r["source"]))
    else:
        rows.append(
            {"area": _slug(path.stem), "source": f"{path.name} (union of {len(gdf)} features)",
             "geometry": shapely.union_all(list(gdf.geometry))}
        )  # fmt: skip
    return _frame(rows, crs=gdf.crs)


def _groups(geoms: Sequence[Any]) -> list[list[int]]:
    """Group ``geoms`` that touch or overlap, transitively: lists of indices."""
    import shapely

    tree = shapely.STRtree(list(geoms))
    left, right = tree.query(list(geoms), predicate="intersects")
    parent = list(range(len(geoms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(len(geoms)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _from_cells(cells_file: str | os.PathLike[str] | None) -> Any:
    import shapely

    how = (
        "run notebook 01 (01_grid_aoi) first and pass its output, "
        "cells_file='<report_dir>/data/grid_cells.gpkg'"
    )
    if cells_file is None or not os.fspath(cells_file).strip():
        raise AOIError(f"aoi 'cells' needs cells_file=...; got {cells_file!r}; {how}")
    path = Path(cells_file)
    if not path.exists():
        raise AOIError(f"aoi 'cells': cells_file {str(path)!r} does not exist; {how}")
    gdf = _read(path, "cells_file")
    geoms = list(gdf.geometry)
    groups = [(shapely.union_all([geoms[i] for i in idx]), len(idx)) for idx in _groups(geoms)]
    groups.sort(key=lambda g: g[0].bounds[:2])  # west to east, then south to north
    rows = [
        {"area": f"cells_{k:02d}", "source": f"{path.name}: {n} connected cells",
         "n_cells": n, "geometry": union}
        for k, (union, n) in enumerate(groups, start=1)
    ]  # fmt: skip
    return _frame(rows, crs=gdf.crs)


def resolve_aoi(
    aoi: Any,
    *,
    cells_file: str | os.PathLike[str] | None = None,
    name_column: str | None = "name",
) -> Any:
    """Turn the ``aoi`` of a run's YAML into named lon/lat polygons.

    Parameters
    ----------
    aoi
        One of

        * a box name of :data:`vitseg.synthetic.BOXES` (case-insensitive) or a list of
          them: one row each, ``area`` = the name;
        * ``[west, south, east, north]`` in degrees (EPSG:4326): one row, ``area="bbox"``;
        * the path (str or PathLike; relative paths are used as given) of an existing
          single-layer vector file in any CRS. Invalid geometries are repaired
          (``shapely.make_valid``, polygonal parts kept), empty ones dropped. With a
          ``name_column`` column: one row per distinct value (its polygons dissolved),
          ``area`` = the value slugified; else one row, the union of all features, named
          after the file stem;
        * ``"cells"``: the cells of ``cells_file`` (written by notebook 01), dissolved into
          groups of cells that touch or overlap (corners count); one row per group named
          ``"cells_01"``, ``"cells_02"``... ordered by the groups' west edge then south
          edge (in the file's CRS), with a column ``n_cells``.
    cells_file
        Grid cells GeoPackage, for ``aoi="cells"``.
    name_column
        Column naming the areas of a vector file; None to always take the union.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, index ``0..n-1``, columns ``area`` (unique str of ``[a-z0-9_-]``, safe
        in file names), ``source`` (where the row came from), ``geometry``
        (Polygon/MultiPolygon), and ``n_cells`` for ``"cells"``. Named areas are sorted by
        ``area``; box names keep the order given.

    Raises
    ------
    AOIError
        An unknown box name (close matches are suggested), a path that does not exist,
        a bbox out of range, a file with no polygon, ``"cells"`` without ``cells_file``,
        an empty text, a folder where a vector file is expected, or a value of another
        type.
    MissingCRSError
        The vector file has no CRS.

    Examples
    --------
    >>> areas = resolve_aoi(["obuasi", "Kibi"])
    >>> areas[["area", "source"]].values.tolist()
    [['obuasi', 'box obuasi (vitseg.synthetic.BOXES)'], ['kibi', 'box kibi (vitseg.synthetic.BOXES)']]
    >>> resolve_aoi([-1.8, 6.1, -1.7, 6.2]).total_bounds.tolist()
    [-1.8, 6.1, -1.7, 6.2]
    """
    if isinstance(aoi, (str, os.PathLike)):
        text = os.fspath(aoi)
        if not text.strip():
            raise AOIError(f"aoi is empty ({aoi!r}); name an area. {_forms()}")
        if isinstance(aoi, str):
            key = text.strip().lower()
            if key == "cells":
                return _from_cells(cells_file)
            if key in _boxes():
                return _from_boxes([key], aoi)
        path = Path(text)
        if path.exists():
            return _from_file(path, name_column)
        close = difflib.get_close_matches(text.strip().lower(), [*_boxes(), "cells"], n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise AOIError(
            f"aoi {text!r} is neither a box name nor 'cells', and no file exists at that "
            f"path (relative to {str(Path.cwd())!r}).{hint} {_forms()}"
        )
    if isinstance(aoi, (list, tuple, np.ndarray)):
        items = list(np.asarray(aoi, dtype=object).ravel()) if isinstance(aoi, np.ndarray) else aoi
        numbers = [isinstance(v, Real) and not isinstance(v, bool) for v in items]
        if len(items) == 4 and all(numbers):
            return _from_bbox(items)
        if items and all(isinstance(v, str) for v in items):
            return _from_boxes([str(v) for v in items], aoi)
        raise AOIError(
            f"aoi {aoi!r} is neither a bbox of 4 numbers [west, south, east, north] nor a "
            f"list of box names. {_forms()}"
        )
    raise AOIError(f"aoi {aoi!r} ({type(aoi).__name__}) is not an area vitseg reads. {_forms()}")


def choose_crs(areas: Any, crs: Any = "auto") -> str:
    """Choose the metric CRS to grid and tile ``areas`` in.

    Parameters
    ----------
    areas
        GeoDataFrame or GeoSeries with a CRS, e.g. from :func:`resolve_aoi`.
    crs
        ``"auto"``: the WGS 84 / UTM zone holding the centroid of the union of
        ``areas`` (``GeoSeries.estimate_utm_crs``). Anything else (``"EPSG:32630"``,
        ``32630``, a WKT or PROJ string) must be a projected CRS in metres.

    Returns
    -------
    str
        ``"EPSG:326zz"`` / ``"EPSG:327zz"`` for ``"auto"``; the given CRS as
        ``"EPSG:NNNN"`` when it has an EPSG code, else its PROJ/WKT string.

    Raises
    ------
    MissingCRSError
        ``areas`` has no CRS, or ``crs`` is not a valid CRS, is geographic or not in
        metres.
    AOIError
        ``areas`` is not a GeoDataFrame/GeoSeries, is empty, or no UTM zone covers its
        centroid.

    Examples
    --------
    >>> choose_crs(resolve_aoi(["obuasi", "kibi"]))
    'EPSG:32630'
    >>> choose_crs(resolve_aoi("obuasi"), "epsg:32631")
    'EPSG:32631'
    """
    import geopandas as gpd
    from pyproj import CRS

    if not isinstance(areas, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise AOIError(
            f"areas must be a GeoDataFrame or GeoSeries with a CRS; got {type(areas).__name__}. "
            "Build them with vitseg.aoi.resolve_aoi, or wrap a geometry: "
            "geopandas.GeoSeries([geom], crs='EPSG:4326')."
        )
    if getattr(areas, "crs", None) is None:
        raise MissingCRSError(
            "areas have no CRS; build them with vitseg.aoi.resolve_aoi or call "
            "areas.set_crs('EPSG:4326')"
        )
    if isinstance(crs, str) and crs.strip().lower() == "auto":
        geoms = areas.geometry if hasattr(areas, "geometry") else areas
        geoms = geoms[~(geoms.isna() | geoms.is_empty)].to_crs("EPSG:4326")
        if len(geoms) == 0:
            raise AOIError("areas hold no geometry; cannot choose a UTM zone for them")
        centroid = geoms.union_all().centroid  # shapely: no geographic-CRS warning
        try:
            utm = gpd.GeoSeries([centroid], crs="EPSG:4326").estimate_utm_crs()
        except RuntimeError as exc:
            raise AOIError(
                f"no UTM zone covers the areas' centroid ({centroid.x:.4f}, {centroid.y:.4f}); "
                "pass a projected metric crs=..."
            ) from exc
        return f"EPSG:{utm.to_epsg()}"
    try:
        out = CRS.from_user_input(crs)
    except Exception as exc:
        raise MissingCRSError(
            f"crs {crs!r} is not a valid CRS; pass 'auto' (UTM zone of the areas) or e.g. "
            "'EPSG:32630'"
        ) from exc
    unit = out.axis_info[0].unit_name if out.axis_info else ""
    if not out.is_projected or unit not in ("metre", "meter", "m"):
        kind = "geographic (degrees)" if out.is_geographic else f"not in metres ({unit!r})"
        raise MissingCRSError(
            f"crs {crs!r} is {kind}; grids and tiles need a projected CRS in metres. Pass "
            "'auto' (UTM zone of the areas) or e.g. 'EPSG:32630'"
        )
    epsg = out.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else str(out.to_string())


def run_areas(
    aoi: Any, *, crs: str = "auto", report_dir: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], str]:
    """Resolve a run's ``aoi`` and ``crs`` parameters, as every notebook does.

    Parameters
    ----------
    aoi
        Any form :func:`resolve_aoi` accepts; ``"cells"`` reads
        ``<report_dir>/data/grid_cells.gpkg`` (written by notebook 01).
    crs
        ``"auto"`` or a metric CRS (see :func:`choose_crs`).
    report_dir
        The run's report folder (for ``"cells"``).

    Returns
    -------
    (dict, str)
        ``{area name: shapely geometry in lon/lat}`` in the order of :func:`resolve_aoi`,
        and the run's output CRS as ``"EPSG:NNNN"``.

    Examples
    --------
    >>> geoms, crs = run_areas(["obuasi", "kibi"])
    >>> list(geoms), crs
    (['obuasi', 'kibi'], 'EPSG:32630')
    """
    cells = Path(report_dir) / "data" / "grid_cells.gpkg" if report_dir is not None else None
    areas = resolve_aoi(aoi, cells_file=cells)
    return dict(zip(areas["area"], areas.geometry, strict=True)), choose_crs(areas, crs)
