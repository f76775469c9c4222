"""New-mining alerts: polygons of newly mined pixels with area, season, district and centroid.

VitSegh24 aims at an alert system; here an alert is one connected patch of pixels that
became mining in a season. :func:`first_seen` finds, for each pixel, the first season in
which it turned to mine; :func:`make_alerts` vectorises that map with
:func:`rasterio.features.shapes`, drops patches under ``min_area_ha``, and tags each with the
district (P-code and name) that holds its representative point. :func:`write_alerts` writes
GeoJSON (EPSG:4326, RFC 7946) or GeoPackage (with a QGIS style), atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vitseg.change import AREA_CRS, ClassMaps, _as_seasons, _class_codes, _same_grid
from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import DimensionError, MissingCRSError, ParamsError, VectorError
from vitseg.grid import _is_real, _polygons
from vitseg.zonal import _class_args

__all__ = ["assign_districts", "first_seen", "make_alerts", "write_alerts"]

ALERT_COLUMNS = (
    "alert_id", "first_seen", "area_ha", "n_pixels", "district_pcode", "district_name",
    "region_name", "lon", "lat",
)  # fmt: skip


def first_seen(
    maps: ClassMaps,
    *,
    mine_class: int | str = "mines",
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
) -> xr.DataArray:
    """Index of the first season in which each pixel became mine (lazy).

    Parameters
    ----------
    maps
        Two or more class maps in time order (``{season: map}``, a list, or a DataArray with
        a ``season``/``time`` dim), one grid.
    mine_class, classes, nodata
        As in :func:`vitseg.change.new_mining`.

    Returns
    -------
    xarray.DataArray
        ``uint8``: ``k >= 1`` when the pixel was a valid non-mine class in the season before
        ``k`` and mine in season ``k`` (the first such ``k``); 0 otherwise (never new, or mine
        from the start); attr ``seasons`` lists the season names.

    Raises
    ------
    ParamsError
        Fewer than two or more than 255 seasons, a season name with a comma, or a
        ``nodata`` that is a class code.
    DimensionError
        A map has no pixels or is not of an integer or float dtype (boolean, string).
    LabelError
        A float map holds non-integer class values; ``mine_class`` is not a class.

    Notes
    -----
    No data is read as in :func:`vitseg.change.change_map` (``nodata``, NaN, +/-inf, the
    map's declared no-data, values outside ``0..n-1``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = [xr.DataArray(np.array(v, "uint8"), dims=("y", "x")) for v in
    ...      ([[2, 2, 0]], [[0, 2, 0]], [[0, 0, 0]])]
    >>> first_seen(s).values.tolist()
    [[1, 2, 0]]
    """
    seasons = _as_seasons(maps)
    names = list(seasons)
    if len(names) < 2:
        raise ParamsError(f"first_seen needs at least two seasons; got {names}")
    if len(names) > 255:
        raise ParamsError(
            f"first_seen holds season indices in uint8: at most 255 seasons; got {len(names)}"
        )
    commas = [s for s in names if "," in s]
    if commas:
        raise ParamsError(
            f"season names must not hold commas (attr 'seasons' is comma-separated); got "
            f"{commas}. Use e.g. '2020-21'."
        )
    first = seasons[names[0]]
    if first.size == 0:
        raise DimensionError(
            f"class map {names[0]!r} has no pixels (shape {first.shape}); check the window or "
            "clip that made it"
        )
    for s in names[1:]:
        _same_grid(first, seasons[s], (names[0], s))
    k, nodata, _ = _class_args(mine_class, classes, nodata)
    n = len(classes)
    codes = [_class_codes(seasons[s], s, n, nodata).variable for s in names]  # -1 = no data
    out = xr.zeros_like(first, dtype="uint8").variable
    for i in range(1, len(names)):
        prev, cur = codes[i - 1], codes[i]
        became = (cur == k) & (prev != k) & (prev >= 0)
        out = xr.where((out == 0) & became, np.uint8(i), out)
    res = xr.DataArray(out.astype("uint8"), coords=first.coords, name="first_seen")
    res.attrs = {"seasons": ",".join(names), "long_name": "first season of new mining"}
    if first.rio.crs is not None:
        res = res.rio.write_crs(first.rio.crs).rio.write_transform(first.rio.transform())
    return res


def _check_districts(districts: Any, id_col: str, name_col: str) -> Any:
    """Districts as a GeoDataFrame of valid polygons with the id and name columns."""
    import geopandas as gpd

    if not isinstance(districts, gpd.GeoDataFrame):
        raise VectorError(f"districts must be a GeoDataFrame; got {type(districts).__name__}")
    if districts.crs is None:
        raise MissingCRSError("districts have no CRS; set it with gdf.set_crs('EPSG:4326').")
    missing = [c for c in (id_col, name_col) if c not in districts.columns]
    if missing:
        raise VectorError(
            f"districts lack columns {missing}; available: {list(districts.columns)}. "
            "Pass id_col=/name_col= (OCHA layers use ADM2_PCODE and ADM2_EN)."
        )
    geoms = _polygons(districts.geometry, "districts")
    if len(geoms) == 0:
        raise VectorError(
            "districts layer has no polygons (empty); every alert would be outside every district"
        )
    if len(geoms) < len(districts) or not geoms.equals(districts.geometry):
        districts = districts.loc[geoms.index].copy()
        districts[districts.geometry.name] = geoms
    return districts


def assign_districts(
    polygons: Any,
    districts: Any,
    *,
    id_col: str = "ADM2_PCODE",
    name_col: str = "ADM2_EN",
    region_col: str | None = "ADM1_EN",
) -> Any:
    """Add ``district_pcode``, ``district_name`` (and ``region_name``) to each polygon.

    The district is the one that contains the polygon's representative point (a point always
    inside the polygon), so a polygon straddling a border goes to one district only. Polygons
    outside every district get missing values.

    Raises
    ------
    MissingCRSError
        A layer has no CRS.
    VectorError
        A layer is not a GeoDataFrame; ``districts`` is empty, holds points or lines, or
        lacks ``id_col`` or ``name_col``.

    Notes
    -----
    Invalid (self-intersecting) district polygons are repaired with ``make_valid``.
    """
    import geopandas as gpd

    if not isinstance(polygons, gpd.GeoDataFrame):
        raise VectorError(f"polygons must be a GeoDataFrame; got {type(polygons).__name__}")
    if polygons.crs is None:
        raise MissingCRSError("polygons have no CRS; set it with gdf.set_crs('EPSG:4326').")
    districts = _check_districts(districts, id_col, name_col)
    cols = [id_col, name_col] + ([region_col] if region_col in districts.columns else [])
    pts = gpd.GeoDataFrame(
        {"_i": np.arange(len(polygons))},
        geometry=polygons.geometry.representative_point().values,
        crs=polygons.crs,
    ).to_crs(districts.crs)
    joined = gpd.sjoin(pts, districts[[*cols, "geometry"]], how="left", predicate="within")
    joined = joined.drop_duplicates("_i").set_index("_i").sort_index()
    out = polygons.copy()
    out["district_pcode"] = joined[id_col].to_numpy()
    out["district_name"] = joined[name_col].to_numpy()
    out["region_name"] = joined[region_col].to_numpy() if region_col in cols else None
    return out


def make_alerts(
    maps: ClassMaps,
    *,
    districts: Any = None,
    min_area_ha: float = 0.5,
    mine_class: int | str = "mines",
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
    connectivity: int = 8,
    id_col: str = "ADM2_PCODE",
    name_col: str = "ADM2_EN",
) -> Any:
    """Vectorise new mining into alert polygons (computes).

    Parameters
    ----------
    maps
        Two or more seasonal class maps (see :func:`first_seen`), in a CRS; or one ``(y, x)``
        ``uint8`` first-seen map from :func:`first_seen` (attr ``seasons`` names the seasons).
    districts
        Optional district polygons (e.g. the OCHA ADM2 layer) for :func:`assign_districts`.
    min_area_ha
        Patches smaller than this (hectares) are dropped.
    mine_class, classes, nodata
        As in :func:`vitseg.change.new_mining`.
    connectivity
        4 or 8: pixel connectivity of a patch.
    id_col, name_col
        District id and name columns.

    Returns
    -------
    geopandas.GeoDataFrame
        In the maps' CRS, largest first, columns ``alert_id`` (``"<season>-<n>"``),
        ``first_seen`` (season name), ``area_ha``, ``n_pixels``, ``district_pcode``,
        ``district_name``, ``region_name``, ``lon``/``lat`` (WGS84 centroid) and geometry.

    Raises
    ------
    ParamsError
        ``connectivity`` not the integer 4 or 8, ``min_area_ha`` not a finite number >= 0,
        or the seasons refused by :func:`first_seen`.
    MissingCRSError
        The maps or ``districts`` have no CRS.
    DimensionError
        A first-seen map that does not hold integer season indices of its ``seasons``.
    VectorError
        ``districts`` refused by :func:`assign_districts` (checked before any compute).
    """
    import geopandas as gpd
    import rasterio.features
    import shapely.geometry

    from vitseg.change import pixel_area_m2

    if (
        not isinstance(connectivity, (int, np.integer))
        or isinstance(connectivity, (bool, np.bool_))
        or connectivity not in (4, 8)
    ):
        raise ParamsError(f"'connectivity' must be the integer 4 or 8; got {connectivity!r}")
    if not _is_real(min_area_ha) or not np.isfinite(min_area_ha) or min_area_ha < 0:
        raise ParamsError(
            f"'min_area_ha' must be a finite number of hectares >= 0; got {min_area_ha!r}"
        )
    if districts is not None:
        districts = _check_districts(districts, id_col, name_col)
    if isinstance(maps, xr.DataArray) and "seasons" in maps.attrs and maps.ndim == 2:
        fs = maps
        if fs.dtype.kind not in "iu":
            raise DimensionError(
                f"a first-seen map holds integer season indices (uint8 from first_seen); got "
                f"dtype {fs.dtype}"
            )
    else:
        fs = first_seen(maps, mine_class=mine_class, classes=classes, nodata=nodata)
    names = str(fs.attrs["seasons"]).split(",")
    crs = fs.rio.crs
    if crs is None:
        raise MissingCRSError("class maps have no CRS; set it with da.rio.write_crs(...).")
    if fs.dims != ("y", "x"):
        raise DimensionError(f"first-seen map must have dims ('y', 'x'); got {fs.dims}")
    arr = np.asarray(fs.values)
    if arr.size and (arr.min() < 0 or arr.max() >= len(names)):
        raise DimensionError(
            f"first-seen map holds season indices {int(arr.min())}..{int(arr.max())} but its "
            f"attr 'seasons' names {len(names)} seasons {names} (valid indices 0.."
            f"{len(names) - 1}); make it with vitseg.alerts.first_seen"
        )
    arr = arr.astype("uint8")
    transform = fs.rio.transform()
    px_m2 = float(pixel_area_m2(fs).mean())
    recs: list[dict[str, Any]] = []
    geoms = []
    for geom, val in rasterio.features.shapes(
        arr, mask=arr > 0, connectivity=connectivity, transform=transform
    ):
        shape = shapely.geometry.shape(geom)
        n_px = round(shape.area / abs(transform.a * transform.e))
        recs.append({"season_index": int(val), "n_pixels": n_px})
        geoms.append(shape)
    gdf = gpd.GeoDataFrame(recs, geometry=geoms, crs=crs)
    if len(gdf):
        if crs.is_projected:
            gdf["area_ha"] = gdf.area / 1e4
        else:
            gdf["area_ha"] = gdf["n_pixels"] * px_m2 / 1e4
        gdf = gdf[gdf["area_ha"] >= min_area_ha].copy()
    if len(gdf) == 0:
        return gpd.GeoDataFrame({c: [] for c in ALERT_COLUMNS}, geometry=[], crs=crs)
    gdf["first_seen"] = [names[i] for i in gdf["season_index"]]
    gdf = gdf.sort_values(["season_index", "area_ha"], ascending=[True, False])
    rank = gdf.groupby("first_seen").cumcount()
    gdf["alert_id"] = [f"{s}-{j + 1:04d}" for s, j in zip(gdf["first_seen"], rank, strict=True)]
    metric = gdf.geometry if crs.is_projected else gdf.geometry.to_crs(AREA_CRS)
    cent = metric.centroid.to_crs("EPSG:4326")
    gdf["lon"] = cent.x.round(6)
    gdf["lat"] = cent.y.round(6)
    if districts is not None:
        gdf = assign_districts(gdf, districts, id_col=id_col, name_col=name_col)
    else:
        gdf["district_pcode"] = None
        gdf["district_name"] = None
        gdf["region_name"] = None
    gdf = gdf.reset_index(drop=True)
    return gdf[[*ALERT_COLUMNS, "geometry"]]


def write_alerts(alerts: Any, path: str | os.PathLike[str]) -> Path:
    """Write alerts to ``.geojson`` (reprojected to EPSG:4326) or ``.gpkg``, atomically.

    The GeoPackage's layer ``alerts`` carries a default QGIS style (polygons coloured by
    ``first_seen``, labelled with ``alert_id``; :func:`vitseg.styles.alerts_qml`) in its
    ``layer_styles`` table, which QGIS applies when the layer is opened.

    Parameters
    ----------
    alerts
        GeoDataFrame from :func:`make_alerts` (or any GeoDataFrame with a CRS).
    path
        Destination ending in ``.geojson``/``.json`` or ``.gpkg``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParamsError
        Unknown file suffix, or ``path`` is a folder.
    MissingCRSError
        ``alerts`` has no CRS.
    VectorError
        ``alerts`` is not a GeoDataFrame.

    Notes
    -----
    NaN and +/-inf numbers are written as null (JSON has no NaN or Infinity).
    """
    import geopandas as gpd

    from vitseg.io import atomic_path, atomic_write_text

    path = Path(path)
    if not isinstance(alerts, gpd.GeoDataFrame):
        raise VectorError(f"alerts must be a GeoDataFrame; got {type(alerts).__name__}")
    if alerts.crs is None:
        raise MissingCRSError("alerts have no CRS; set it with gdf.set_crs(...).")
    if path.is_dir():
        raise ParamsError(
            f"alerts path {path} is a folder; give a file such as {path / 'alerts.gpkg'}"
        )
    suffix = path.suffix.lower()
    out = alerts.copy()
    for c in out.columns:
        if c != "geometry" and out[c].dtype == object:
            out[c] = out[c].where(pd.notna(out[c]), None)
        elif out[c].dtype.kind == "f":
            out[c] = out[c].where(np.isfinite(out[c]))  # inf -> NaN -> null
    if suffix in (".geojson", ".json"):
        text = out.to_crs("EPSG:4326").to_json(drop_id=True, na="null")
        return atomic_write_text(path, text)
    if suffix == ".gpkg":
        from vitseg.styles import add_layer_style, alerts_qml

        seasons = list(dict.fromkeys(out["first_seen"].dropna())) if "first_seen" in out else []
        with atomic_path(path) as tmp:
            out.to_file(tmp, driver="GPKG", layer="alerts")
            add_layer_style(tmp, "alerts", alerts_qml([str(s) for s in seasons]))
        return path
    raise ParamsError(f"alerts path must end in .geojson, .json or .gpkg; got {path.name!r}")
