"""Hectares per zone: classes, new mining and cumulative mining per district or reserve.

Gallwey et al. report mined area per district (Fig. 8) and new mining inside forest reserves
(Fig. 10). :func:`zonal_areas` does both for any polygon layer: zones are reprojected to the
raster's CRS, each zone is rasterised (pixel centres) in its own bounding window, so
overlapping zones (reserves) are each counted in full and memory stays bounded, and pixel
areas come from :func:`vitseg.change.pixel_area_m2`. Zones partly outside the map, or over
no-data, carry their ``covered_fraction``. :func:`zonal_polygon_areas` does the same for
vector layers (e.g. detector polygons) by overlay in an equal-area CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from vitseg.change import (
    AREA_CRS,
    ClassMaps,
    _as_seasons,
    _class_codes,
    _same_grid,
    class_index,
    pixel_area_m2,
)
from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import DimensionError, LabelError, MissingCRSError, ParamsError, VectorError
from vitseg.grid import _check_metric, _polygons

__all__ = ["zonal_areas", "zonal_polygon_areas"]


def _check_zones(zones: Any, zone_id: str) -> Any:
    import geopandas as gpd

    if not isinstance(zones, gpd.GeoDataFrame):
        raise VectorError(f"zones must be a GeoDataFrame; got {type(zones).__name__}")
    if zones.crs is None:
        raise MissingCRSError("zones have no CRS; set it with zones.set_crs('EPSG:4326').")
    if zone_id not in zones.columns:
        raise VectorError(
            f"zones have no column {zone_id!r}; available: {list(zones.columns)}. "
            "Pass zone_id='<the id column>'."
        )
    if len(zones) == 0:
        raise VectorError("zones layer is empty")
    if zones[zone_id].isna().any():
        raise VectorError(
            f"{int(zones[zone_id].isna().sum())} zones have no id in {zone_id!r}; give every "
            "zone an id (or drop those rows)"
        )
    if zones[zone_id].duplicated().any():
        dups = zones.loc[zones[zone_id].duplicated(), zone_id].tolist()[:5]
        raise VectorError(f"zone ids in {zone_id!r} must be unique; duplicated: {dups}")
    geoms = _polygons(zones.geometry, "zones")  # repaired; empty/None zones left out here
    if len(geoms) < len(zones) or not geoms.equals(zones.geometry.loc[geoms.index]):
        zones = zones.copy()
        zones.loc[geoms.index, zones.geometry.name] = geoms
    return zones


def _class_args(mine_class: Any, class_names: Sequence[str], nodata: Any) -> tuple[int, int, str]:
    """Check the class options shared with vitseg.alerts: (mine code, nodata, mine name)."""
    if isinstance(class_names, str) or not 1 <= len(class_names) <= 255:
        raise ParamsError(
            f"class names must be a list of 1..255 names (index = code); got {class_names!r}"
        )
    if isinstance(mine_class, (bool, np.bool_)) or not isinstance(
        mine_class, (str, int, np.integer)
    ):
        raise LabelError(
            f"mine_class must be a class name or an integer code from {tuple(class_names)}; "
            f"got {mine_class!r}"
        )
    k = class_index(mine_class if isinstance(mine_class, str) else int(mine_class), class_names)
    n = len(class_names)
    if (
        not isinstance(nodata, (int, np.integer))
        or isinstance(nodata, (bool, np.bool_))
        or 0 <= nodata < n
    ):
        raise ParamsError(
            f"nodata must be an integer that is no class code (codes 0..{n - 1}), e.g. 255; "
            f"got {nodata!r}"
        )
    return k, int(nodata), class_names[k]


def zonal_areas(
    classes: ClassMaps,
    zones: Any,
    *,
    zone_id: str = "ADM2_PCODE",
    keep_columns: Sequence[str] = ("ADM2_EN",),
    class_names: Sequence[str] = CLASSES,
    mine_class: int | str = "mines",
    nodata: int = IGNORE_INDEX,
    all_touched: bool = False,
    drop_empty: bool = True,
) -> pd.DataFrame:
    """Hectares of each class, of new and cumulative mining, per zone and season (computes).

    Parameters
    ----------
    classes
        One class map ``(y, x)`` or several seasons (``{season: map}`` in time order, a list,
        or a DataArray with a ``season``/``time`` dim), all on one grid with a CRS.
    zones
        GeoDataFrame of polygons (districts, forest reserves; any CRS, overlaps allowed).
    zone_id
        Unique id column of ``zones``.
    keep_columns
        Other ``zones`` columns copied to the result (missing ones are ignored).
    class_names
        Class names (index = code).
    mine_class
        The class whose new and cumulative area is tracked.
    nodata
        No-data value of the maps.
    all_touched
        Rasterise zones with every touched pixel (default: pixel centres inside).
    drop_empty
        Leave out zones that do not overlap the map at all.

    Returns
    -------
    pandas.DataFrame
        One row per (zone, season): ``zone_id``, the kept columns (a single name may be
        given as a string), ``season``, one
        ``<class>_ha`` column per class, ``no_data_ha``, ``zone_ha`` (zone area measured in
        the map's CRS, or geodesic for a geographic map), ``mapped_ha`` (valid pixels inside
        the zone), ``covered_fraction`` (``mapped_ha / zone_ha``, at most 1), and for the
        mine class: ``new_<mine>_ha`` (pixels that became mine since the previous season),
        ``<mine>_change_ha`` (net change since the previous season) and
        ``cumulative_new_<mine>_ha`` (new mining summed since the first season); these are
        0 in the first season.

    Raises
    ------
    MissingCRSError
        A map or the zones have no CRS.
    VectorError
        ``zones`` is not a GeoDataFrame, is empty, holds points or lines, lacks
        ``zone_id``, or has missing or duplicate ids.
    GridMismatchError, CRSMismatchError
        Seasons are not on one grid.
    DimensionError
        A map has no pixels or is not of an integer or float dtype (boolean, string).
    LabelError
        A float map holds non-integer class values; ``mine_class`` is not a class.
    ParamsError
        ``nodata`` is a class code or not an integer.

    Notes
    -----
    No data in a map is: ``nodata``, NaN or +/-inf, the map's declared no-data
    (``rio.nodata``/``rio.encoded_nodata``) and any value outside ``0..n-1``, as in
    :func:`vitseg.change.change_map`. Invalid (self-intersecting) zones are repaired with
    ``make_valid``; zones with no (or an empty) geometry are always left out.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray, geopandas as gpd  # noqa: F401
    >>> from shapely.geometry import box
    >>> m = xr.DataArray(np.zeros((4, 4), "uint8"), dims=("y", "x"),
    ...                  coords={"y": [35.0, 25, 15, 5], "x": [5.0, 15, 25, 35]})
    >>> m = m.rio.write_crs("EPSG:32630")
    >>> z = gpd.GeoDataFrame({"id": ["a"]}, geometry=[box(0, 0, 20, 40)], crs=32630)
    >>> zonal_areas(m, z, zone_id="id", keep_columns=())["mines_ha"].tolist()
    [0.08]
    """
    import rasterio.errors
    import rasterio.features
    import rasterio.windows

    seasons = _as_seasons(classes)
    names = list(seasons)
    first = seasons[names[0]]
    if first.size == 0:
        raise DimensionError(
            f"class map {names[0]!r} has no pixels (shape {first.shape}); check the window or "
            "clip that made it"
        )
    for s in names[1:]:
        _same_grid(first, seasons[s], (names[0], s))
    crs = first.rio.crs
    if crs is None:
        raise MissingCRSError("class map has no CRS; set it with da.rio.write_crs('EPSG:32630').")
    k, nodata, mine = _class_args(mine_class, class_names, nodata)
    n = len(class_names)
    codes = {s: _class_codes(seasons[s], s, n, nodata) for s in names}  # -1 = no data
    zones = _check_zones(zones, zone_id)
    if isinstance(keep_columns, str):
        keep_columns = [keep_columns]  # one column, not its letters
    kept = [c for c in keep_columns if c in zones.columns and c != zone_id]
    z = zones.to_crs(crs)
    transform = first.rio.transform()
    ny, nx = first.shape
    row_area_ha = pixel_area_m2(first) / 1e4
    if crs.is_projected:
        zone_ha = z.area.to_numpy() / 1e4
    else:
        zone_ha = z.to_crs(AREA_CRS).area.to_numpy() / 1e4

    records: list[dict[str, Any]] = []
    for i, (_, zone) in enumerate(z.iterrows()):
        geom = zone.geometry
        if geom is None or geom.is_empty:
            continue
        win = rasterio.windows.from_bounds(*geom.bounds, transform=transform)
        win = win.round_offsets(op="floor").round_lengths(op="ceil")
        try:
            win = win.intersection(rasterio.windows.Window(0, 0, nx, ny))
        except rasterio.errors.WindowError:
            win = None
        inside = None
        if win is not None and win.width > 0 and win.height > 0:
            r0, c0 = int(win.row_off), int(win.col_off)
            h, w = int(win.height) + 1, int(win.width) + 1
            h, w = min(h, ny - r0), min(w, nx - c0)
            inside = rasterio.features.geometry_mask(
                [geom],
                out_shape=(h, w),
                transform=rasterio.windows.transform(
                    rasterio.windows.Window(c0, r0, w, h), transform
                ),
                invert=True,
                all_touched=all_touched,
            )
            if not inside.any():
                inside = None
        if inside is None:
            if drop_empty:
                continue
        base = {zone_id: zone[zone_id], **{c: zone[c] for c in kept}}
        prev_mine = None
        prev_vals = None
        cumulative = 0.0
        for s in names:
            rec: dict[str, Any] = {**base, "season": s}
            if inside is None:
                ha: np.ndarray[Any, Any] = np.zeros(n + 1)  # [no data, class 0, class 1, ...]
                new_ha = 0.0
                vals = None
            else:
                window = codes[s].isel(y=slice(r0, r0 + h), x=slice(c0, c0 + w))
                vals = np.asarray(window.values).astype("int64")  # -1 = no data
                weights = np.broadcast_to(row_area_ha[r0 : r0 + h, None], vals.shape)[inside]
                ha = np.bincount(vals[inside] + 1, weights=weights, minlength=n + 1)
                new_ha = 0.0
                if prev_vals is not None:
                    became = ((vals == k) & (prev_vals != k) & (prev_vals >= 0))[inside]
                    new_ha = float(weights[became].sum())
            no_data, ha = float(ha[0]), ha[1:]
            for j, c in enumerate(class_names):
                rec[f"{c}_ha"] = float(ha[j])
            mapped = float(ha.sum())
            rec["no_data_ha"] = no_data
            rec["zone_ha"] = float(zone_ha[i])
            rec["mapped_ha"] = mapped
            rec["covered_fraction"] = min(1.0, mapped / zone_ha[i]) if zone_ha[i] > 0 else 0.0
            cumulative += new_ha
            rec[f"new_{mine}_ha"] = new_ha
            rec[f"{mine}_change_ha"] = 0.0 if prev_mine is None else float(ha[k]) - prev_mine
            rec[f"cumulative_new_{mine}_ha"] = cumulative
            records.append(rec)
            prev_mine = float(ha[k])
            prev_vals = vals
    cols = [
        zone_id, *kept, "season", *(f"{c}_ha" for c in class_names), "no_data_ha", "zone_ha",
        "mapped_ha", "covered_fraction", f"new_{mine}_ha", f"{mine}_change_ha",
        f"cumulative_new_{mine}_ha",
    ]  # fmt: skip
    return pd.DataFrame.from_records(records, columns=cols)


def zonal_polygon_areas(
    features: Any,
    zones: Any,
    *,
    zone_id: str = "ADM2_PCODE",
    keep_columns: Sequence[str] = ("ADM2_EN",),
    by: str | None = None,
    area_crs: str = AREA_CRS,
) -> pd.DataFrame:
    """Hectares of a polygon layer inside each zone, by overlay in an equal-area CRS.

    Parameters
    ----------
    features
        GeoDataFrame (or GeoSeries) of polygons (e.g. mine detections); overlapping features of one group
        are dissolved first, so no area is counted twice.
    zones
        GeoDataFrame of zone polygons with a unique ``zone_id``.
    zone_id, keep_columns
        As in :func:`zonal_areas`.
    by
        Optional column of ``features`` to group by (e.g. ``"year"``); one column per value.
    area_crs
        Equal-area CRS of the overlay (default Africa Albers Equal Area Conic).

    Returns
    -------
    pandas.DataFrame
        One row per zone that holds any feature: ``zone_id``, kept columns, ``zone_ha`` and
        ``area_ha`` (or one ``area_ha_<value>`` column per ``by`` value), sorted by the
        largest area first. Feature area outside every zone is in ``df.attrs['outside_ha']``.

    Raises
    ------
    MissingCRSError
        A layer lacks a CRS, or ``area_crs`` is not a valid CRS.
    CRSMismatchError
        ``area_crs`` is geographic or not in metres.
    VectorError
        ``features`` is not a GeoDataFrame/GeoSeries or holds points or lines, ``zones``
        fails the checks of :func:`zonal_areas`, or ``by`` is not a column, has missing
        values or mixes types (e.g. 2020 and "2021").

    Notes
    -----
    Invalid (self-intersecting) features and zones are repaired with ``make_valid``.
    An empty ``features`` layer gives an empty table.
    """
    import geopandas as gpd

    zones = _check_zones(zones, zone_id)
    if isinstance(features, gpd.GeoSeries):
        features = gpd.GeoDataFrame(geometry=features)
    if not isinstance(features, gpd.GeoDataFrame):
        raise VectorError(
            f"features must be a GeoDataFrame or GeoSeries of polygons; got "
            f"{type(features).__name__}"
        )
    if features.crs is None:
        raise MissingCRSError("features have no CRS; set it with gdf.set_crs('EPSG:4326').")
    _check_metric(
        area_crs,
        "zonal_polygon_areas needs area_crs=..., an equal-area CRS",
        f"areas need a projected equal-area CRS in metres, e.g. {AREA_CRS!r} (Africa Albers).",
    )
    if by is not None and by not in features.columns:
        raise VectorError(f"features have no column {by!r}; available: {list(features.columns)}")
    if isinstance(keep_columns, str):
        keep_columns = [keep_columns]  # one column, not its letters
    kept = [c for c in keep_columns if c in zones.columns and c != zone_id]
    if zones.geometry.name != "geometry":  # e.g. "geom" from PostGIS: one name below
        zones = zones.rename_geometry("geometry")
    z = zones[[zone_id, *kept, "geometry"]].to_crs(area_crs)
    z["zone_ha"] = z.area / 1e4
    f = features.to_crs(area_crs)
    f = f[~(f.geometry.isna() | f.geometry.is_empty)]
    f = f.assign(geometry=_polygons(f.geometry, "features"))
    if by is not None:
        if f[by].isna().any():
            raise VectorError(
                f"{int(f[by].isna().sum())} features have no value in {by!r}; their area would "
                f"be left out. Fill them (e.g. features[{by!r}].fillna(...)) or drop them."
            )
        kinds = sorted({type(v).__name__ for v in f[by]})
        if len(kinds) > 1:
            raise VectorError(
                f"column {by!r} mixes types {kinds} (e.g. 2020 and '2020' would be two groups); "
                f"convert it to one type, e.g. features[{by!r}].astype(int)"
            )
    groups = [(None, f)] if by is None else [(v, f[f[by] == v]) for v in sorted(f[by].unique())]
    out = z.drop(columns="geometry").set_index(zone_id)
    if len(f) == 0:  # nothing to measure: an empty table with the usual columns
        out = out.iloc[:0].assign(area_ha=0.0) if by is None else out.iloc[:0]
        out = out.reset_index()
        out.attrs["outside_ha"] = {}
        return out
    outside: dict[str, float] = {}
    for value, g in groups:
        col = "area_ha" if value is None else f"area_ha_{value}"
        dissolved = gpd.GeoDataFrame(geometry=[g.union_all()], crs=area_crs)
        inter = gpd.overlay(
            z[[zone_id, "geometry"]], dissolved, how="intersection", keep_geom_type=True
        )
        ha = (inter.area / 1e4).groupby(inter[zone_id]).sum()
        out[col] = ha.reindex(out.index).fillna(0.0)
        outside[col] = float(dissolved.area.sum() / 1e4 - ha.sum())
    area_cols = [c for c in out.columns if c.startswith("area_ha")]
    out = out[(out[area_cols] > 0).any(axis=1)]
    out = out.sort_values(area_cols[-1], ascending=False).reset_index()
    out.attrs["outside_ha"] = outside
    return out
