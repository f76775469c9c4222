"""Change maps between seasonal class maps, class and transition areas in hectares.

Gallwey et al. (§2.7) turn yearly class maps into change maps with an integer code per
(from, to) pair; this module does the same with one documented scheme:

``code = from_class * n_classes + to_class``

so with the three classes of :data:`vitseg.constants.CLASSES` (0 mines, 1 built,
2 vegetation) code 0 is "mines -> mines", 2 is "mines -> vegetation", 6 is
"vegetation -> mines" (new mining on vegetation) and 8 is "vegetation -> vegetation".
A pixel that is no-data in either season gets the no-data code (255); a code outside
``0..n_classes-1`` that is no declared no-data value is an error, never read as no data.
:func:`change_legend` lists every code.

Areas come from the raster's own grid: in a projected CRS a pixel is ``|a*e - b*d|`` m²
from the affine transform; in a geographic CRS (a north-up lon/lat grid) each row's pixel
area is the geodesic area on the WGS84 ellipsoid, so no categorical map ever needs
resampling just to be measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    ParamsError,
    VectorError,
)

__all__ = [
    "change_legend",
    "change_map",
    "class_areas",
    "class_index",
    "new_mining",
    "new_mining_polygons",
    "pixel_area_m2",
    "polygon_area_ha",
    "transition_areas",
    "union_area_ha",
]

#: Default equal-area CRS for vector areas over Ghana: Africa Albers Equal Area Conic.
AREA_CRS = "ESRI:102022"

ClassMaps: TypeAlias = "xr.DataArray | Sequence[xr.DataArray] | Mapping[str, xr.DataArray]"


def _check_2d(da: Any, name: str) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise DimensionError(
            f"{name!r} must be an xarray.DataArray with dims ('y', 'x'); got {type(da).__name__}. "
            "Open a class map with rioxarray.open_rasterio(path).squeeze('band', drop=True)."
        )
    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.squeeze("band", drop=True)
    if da.dims != ("y", "x"):
        raise DimensionError(
            f"{name!r} must have dims ('y', 'x'); got {da.dims}. "
            "Select one season/band first, e.g. da.isel(time=0)."
        )
    return da


def class_index(cls: int | str, classes: Sequence[str] = CLASSES) -> int:
    """Return the integer code of class ``cls`` (a name or a code) in ``classes``.

    Examples
    --------
    >>> class_index("mines"), class_index(2)
    (0, 2)
    """
    if isinstance(cls, str):
        if cls not in classes:
            raise LabelError(f"unknown class {cls!r}; expected one of {tuple(classes)}")
        return list(classes).index(cls)
    if not 0 <= int(cls) < len(classes):
        raise LabelError(f"class code {cls} outside 0..{len(classes) - 1} for classes {classes}")
    return int(cls)


def _same_grid(a: xr.DataArray, b: xr.DataArray, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise GridMismatchError(
            f"{names[0]} has shape {a.shape} but {names[1]} has {b.shape}; put both on one grid "
            f"with b.rio.reproject_match(a, resampling=Resampling.nearest)."
        )
    crs_a, crs_b = a.rio.crs, b.rio.crs
    if (crs_a is None) != (crs_b is None) or (crs_a is not None and crs_a != crs_b):
        raise CRSMismatchError(
            f"{names[0]} has CRS {crs_a} but {names[1]} has {crs_b}; reproject one with "
            "rio.reproject_match(other, resampling=Resampling.nearest)."
        )
    if crs_a is not None:
        ta, tb = a.rio.transform(), b.rio.transform()
        if not np.allclose(tuple(ta)[:6], tuple(tb)[:6], rtol=0, atol=1e-6 * abs(ta.a)):
            raise GridMismatchError(
                f"{names[0]} and {names[1]} share a shape but not a transform ({ta} vs {tb}); "
                "align them with rio.reproject_match(..., resampling=Resampling.nearest)."
            )


def change_legend(classes: Sequence[str] = CLASSES, *, nodata: int = IGNORE_INDEX) -> pd.DataFrame:
    """Describe every change code of :func:`change_map`.

    Parameters
    ----------
    classes
        Class names; the index is the class code.
    nodata
        Code of pixels that are no-data in either season.

    Returns
    -------
    pandas.DataFrame
        One row per code (``n**2`` rows, then the no-data row) with columns ``code``,
        ``from_class``, ``to_class``, ``label`` ("vegetation -> mines") and ``changed``
        (False on the diagonal).

    Examples
    --------
    >>> leg = change_legend()
    >>> leg.loc[leg.code == 6, "label"].item()
    'vegetation -> mines'
    """
    n = len(classes)
    rows = [
        {
            "code": f * n + t,
            "from_class": classes[f],
            "to_class": classes[t],
            "label": f"{classes[f]} -> {classes[t]}",
            "changed": f != t,
        }
        for f in range(n)
        for t in range(n)
    ]
    rows.append(
        {"code": nodata, "from_class": "", "to_class": "", "label": "no data", "changed": False}
    )
    return pd.DataFrame(rows)


def change_map(
    before: xr.DataArray,
    after: xr.DataArray,
    *,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
) -> xr.DataArray:
    """Integer change code per pixel between two class maps (lazy).

    Parameters
    ----------
    before, after
        Class maps with dims ``(y, x)`` (a single ``band`` dim is squeezed), integer codes
        ``0..n-1`` as in ``classes``, ``nodata`` where unmapped, on the same grid and CRS.
        numpy- or dask-backed.
    classes
        Class names (index = code). At most 15, so codes fit in ``uint8``.
    nodata
        No-data value of the inputs and of the result.

    Returns
    -------
    xarray.DataArray
        ``uint8`` codes ``from * n + to`` (see :func:`change_legend`), ``nodata`` where either
        input is no-data; coords, CRS and transform of ``after``;
        dask-backed when an input is.

    Raises
    ------
    GridMismatchError, CRSMismatchError
        The two maps are not on one grid.
    DimensionError
        An input is not a 2-D DataArray, has no pixels, or is not of an integer or
        float dtype (boolean masks, strings, complex).
    LabelError
        A float map holds non-integer class values (e.g. probabilities), or a code
        outside ``0..n-1`` that is not a no-data value (a fourth class, a 1-based map,
        another no-data convention); raised when the values are computed (at once for
        numpy, at compute for dask).
    ParamsError
        Too many classes for ``uint8`` codes, or ``nodata`` collides with a change code
        or does not fit ``uint8``.

    Notes
    -----
    No-data in an input is: NaN or +/-inf (float maps), ``nodata``, the map's own
    declared no-data (``rio.nodata`` / ``rio.encoded_nodata``). Values are compared in
    the input's dtype, so a large integer never wraps onto a class code; any other value
    outside ``0..n-1`` is a :class:`LabelError`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> b = xr.DataArray(np.array([[2, 2], [0, 255]], "uint8"), dims=("y", "x"))
    >>> a = xr.DataArray(np.array([[0, 2], [0, 1]], "uint8"), dims=("y", "x"))
    >>> change_map(b, a).values.tolist()
    [[6, 8], [0, 255]]
    """
    before = _check_2d(before, "before")
    after = _check_2d(after, "after")
    n = len(classes)
    if n < 1 or n * n > 255:
        raise ParamsError(f"change codes need 1..15 classes to fit uint8; got {n}: {classes}")
    if (
        isinstance(nodata, bool)
        or not isinstance(nodata, (int, np.integer))
        or not (0 <= nodata <= 255)
    ):
        raise ParamsError(
            f"nodata must be an integer in {n * n}..255 (the result is uint8); got {nodata!r}"
        )
    if 0 <= nodata < n * n:
        raise ParamsError(f"nodata={nodata} collides with change codes 0..{n * n - 1}")
    for name, da in (("before", before), ("after", after)):
        if da.size == 0:
            raise DimensionError(
                f"{name!r} has no pixels (shape {da.shape}); check the window or clip that made it"
            )
    _same_grid(before, after, ("before", "after"))
    b = _class_codes(before, "before", n, int(nodata))
    a = _class_codes(after, "after", n, int(nodata)).variable
    valid = (b >= 0) & (a >= 0)
    code = xr.where(valid, b * n + a, nodata).astype("uint8")
    code = code.assign_coords(after.coords)
    code.name = "change_code"
    code.attrs = {
        "long_name": "change code (from_class * n_classes + to_class)",
        "classes": ",".join(classes),
        "n_classes": n,
        "nodata": nodata,
    }
    if after.rio.crs is not None:
        code = code.rio.write_crs(after.rio.crs).rio.write_transform(after.rio.transform())
    return code.rio.write_nodata(nodata, encoded=False)


def _codes_block(
    arr: np.ndarray[Any, Any], *, n: int, nodata_values: tuple[float, ...], name: str
) -> np.ndarray[Any, Any]:
    """int16 class codes ``0..n-1`` of a block, -1 where no data.

    Refuses fractions and codes outside ``0..n-1`` that are not a no-data value.
    """
    if arr.dtype.kind == "f":
        valid = np.isfinite(arr)
        frac = valid & (arr != np.floor(np.where(valid, arr, 0)))
        if frac.any():
            vals = np.unique(arr[frac])
            raise LabelError(
                f"{name!r} holds {int(frac.sum())} non-integer class values, e.g. "
                f"{vals[:5].tolist()}; a class map holds integer codes 0..{n - 1} (NaN = no "
                "data). Probabilities? Take the class with argmax first; never round codes."
            )
    else:
        valid = np.ones(arr.shape, dtype=bool)
    for v in nodata_values:
        valid &= arr != v
    outside = valid & ((arr < 0) | (arr >= n))  # compared in the input dtype: nothing wraps
    if outside.any():
        vals, counts = np.unique(arr[outside], return_counts=True)
        shown = {
            (int(v) if float(v).is_integer() else float(v)): int(c)
            for v, c in zip(vals[:5], counts[:5], strict=True)
        }
        raise LabelError(
            f"{name!r} holds class codes outside 0..{n - 1} that are not its no-data "
            f"{sorted({int(v) if float(v).is_integer() else v for v in nodata_values})}: "
            f"{shown} (pixels per value). Pass classes= with one name per code, declare "
            f"the no-data value (nodata= or da.rio.write_nodata(...)), or recode the map; "
            "they are never read as no data silently."
        )
    out = np.full(arr.shape, -1, dtype="int16")
    out[valid] = arr[valid]  # 0..n-1 only: fits int16
    return out


def _class_codes(da: xr.DataArray, name: str, n: int, nodata: int) -> xr.DataArray:
    """Class codes of ``da`` as int16, -1 where no data (NaN, inf, no-data values).

    Other codes outside ``0..n-1`` are a :class:`LabelError` (at the call for numpy-backed
    maps, at compute for dask-backed ones).
    """
    import functools

    import dask.array

    if da.dtype.kind not in "iuf":
        raise DimensionError(
            f"{name!r} must hold integer class codes (e.g. uint8, {nodata} = no data); got "
            f"dtype {da.dtype}. A boolean mask is not a class map: convert it, e.g. "
            f"xr.where(mask, {0}, {nodata}).astype('uint8')."
        )
    declared = tuple(
        float(v) for v in (da.rio.nodata, da.rio.encoded_nodata) if v is not None and np.isfinite(v)
    )
    func = functools.partial(_codes_block, n=n, nodata_values=(float(nodata), *declared), name=name)
    data = da.data
    if isinstance(data, dask.array.Array):
        codes: Any = data.map_blocks(func, dtype="int16")
    else:
        codes = func(np.asarray(data))
    return da.copy(data=codes)


def pixel_area_m2(da: xr.DataArray) -> np.ndarray[Any, Any]:
    """Area of each pixel row in m² (one value per ``y``), from the grid of ``da``.

    Parameters
    ----------
    da
        A raster with dims ``(..., y, x)`` and a CRS. Projected: the grid area from the
        affine transform (same for every row; the ground area is this divided by the
        projection's areal scale, 0.9992-1.004 for UTM 30N over Ghana). Geographic:
        geodesic area of a cell of each row on the CRS's ellipsoid (needs a north-up
        grid). The one pixel-area function of vitseg (:func:`vitseg.exclusions.pixel_area_ha`
        calls it).

    Returns
    -------
    numpy.ndarray
        ``float64`` of length ``da.sizes['y']``.

    Raises
    ------
    MissingCRSError
        ``da`` has no CRS.
    GridMismatchError
        A geographic grid that is rotated.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
    ...                   coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
    >>> pixel_area_m2(da.rio.write_crs("EPSG:32630")).tolist()
    [100.0, 100.0]
    """
    crs = da.rio.crs
    if crs is None:
        raise MissingCRSError(
            "raster has no CRS, so its pixel area is unknown; set it with "
            "da.rio.write_crs('EPSG:32630')."
        )
    t = da.rio.transform()
    ny = da.sizes["y"]
    if crs.is_projected:
        unit = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
        return np.full(ny, abs(t.a * t.e - t.b * t.d) * unit * unit)
    if t.b != 0 or t.d != 0:
        raise GridMismatchError(
            f"geographic raster with a rotated transform {t}; reproject it to a projected CRS "
            "with da.rio.reproject('EPSG:32630')."
        )
    from pyproj import CRS, Geod

    geod = CRS.from_user_input(crs.to_wkt()).get_geod() or Geod(ellps="WGS84")
    top = t.f + t.e * np.arange(ny)
    bottom = top + t.e
    lons = [t.c, t.c + t.a, t.c + t.a, t.c]
    return np.array(
        [
            abs(geod.polygon_area_perimeter(lons, [y0, y0, y1, y1])[0])
            for y0, y1 in zip(top, bottom, strict=True)
        ]
    )


def _as_seasons(maps: ClassMaps) -> dict[str, xr.DataArray]:
    if isinstance(maps, xr.DataArray):
        for dim in ("season", "time"):
            if dim in maps.dims:
                return {str(v): _check_2d(maps.sel({dim: v}), str(v)) for v in maps[dim].values}
        return {"map": _check_2d(maps, "map")}
    if isinstance(maps, Mapping):
        out = {str(k): _check_2d(v, str(k)) for k, v in maps.items()}
    else:
        out = {str(i): _check_2d(v, str(i)) for i, v in enumerate(maps)}
    if not out:
        raise DimensionError("no class maps given; pass a DataArray, a list or a {season: map}")
    return out


def _weighted_counts(codes: xr.DataArray, n_bins: int) -> np.ndarray[Any, Any]:
    """Hectares per integer code ``0..n_bins-1`` of a 2-D map (computes)."""
    import dask.array

    area_ha = pixel_area_m2(codes) / 1e4
    data = codes.data
    # 256 bins at least (a change map's no-data code, up to 255, may lie above n_bins - 1)
    # and n_bins at least (class_areas of more than 255 classes reads bin n_bins - 1)
    size = max(n_bins, 256)
    if isinstance(data, dask.array.Array):
        w = dask.array.broadcast_to(
            dask.array.from_array(area_ha[:, None], chunks=(data.chunks[0], 1)), data.shape
        ).rechunk(data.chunks)
        counts = dask.array.bincount(
            data.ravel().astype("int64"), weights=w.ravel(), minlength=size
        )
        return np.asarray(counts.compute())[:n_bins]
    arr = np.asarray(data).astype("int64")
    w = np.broadcast_to(area_ha[:, None], arr.shape)
    return np.bincount(arr.ravel(), weights=w.ravel(), minlength=size)[:n_bins]


def class_areas(
    maps: ClassMaps,
    *,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
) -> pd.DataFrame:
    """Hectares of each class per season (computes).

    Parameters
    ----------
    maps
        One class map ``(y, x)``, a DataArray with a ``season`` or ``time`` dim, a list of
        maps, or a ``{season: map}`` mapping. Each needs a CRS (projected, or a north-up
        geographic grid, see :func:`pixel_area_m2`).
    classes
        Class names (index = code).
    nodata
        No-data value (counted in ``no_data_ha``).

    Returns
    -------
    pandas.DataFrame
        Index ``season``; one column per class (hectares), ``no_data_ha`` and ``total_ha``
        (the area of the whole map).

    Raises
    ------
    DimensionError
        A map is not 2-D or not of an integer or float dtype (as in :func:`change_map`).
    LabelError
        A float map holds non-integer class values.

    Notes
    -----
    No-data is as in :func:`change_map`: ``nodata``, the map's declared no-data, NaN and
    +/-inf; another code outside ``0..n-1`` is a :class:`LabelError`.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> m = xr.DataArray(np.array([[0, 1], [2, 2]], "uint8"), dims=("y", "x"),
    ...                  coords={"y": [15.0, 5.0], "x": [5.0, 15.0]}).rio.write_crs(32630)
    >>> class_areas({"2020": m}).loc["2020", "vegetation"]
    np.float64(0.02)
    """
    n = len(classes)
    rows = {}
    for season, m in _as_seasons(maps).items():
        codes = _class_codes(m, season, n, int(nodata))  # -1 where no data
        ha = _weighted_counts(codes.where(codes >= 0, n), n + 1)  # bin n: no data
        row = {c: float(ha[i]) for i, c in enumerate(classes)}
        row["no_data_ha"] = float(ha[n])
        row["total_ha"] = float(ha.sum())
        rows[season] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "season"
    return out


def transition_areas(
    before: xr.DataArray,
    after: xr.DataArray,
    *,
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
) -> pd.DataFrame:
    """Hectares of each (from, to) transition between two class maps (computes).

    Returns
    -------
    pandas.DataFrame
        ``n x n`` table: index ``from`` class, columns ``to`` class, values in hectares
        (pixels that are no-data in either map are left out).

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> g = dict(dims=("y", "x"), coords={"y": [15.0, 5.0], "x": [5.0, 15.0]})
    >>> b = xr.DataArray(np.array([[2, 2], [0, 2]], "uint8"), **g).rio.write_crs(32630)
    >>> a = xr.DataArray(np.array([[0, 2], [0, 2]], "uint8"), **g).rio.write_crs(32630)
    >>> transition_areas(b, a).loc["vegetation", "mines"]
    np.float64(0.01)
    """
    n = len(classes)
    codes = change_map(before, after, classes=classes, nodata=nodata)
    ha = _weighted_counts(codes, n * n).reshape(n, n)
    out = pd.DataFrame(ha, index=pd.Index(classes, name="from"), columns=list(classes))
    out.columns.name = "to"
    return out


def new_mining(
    before: xr.DataArray,
    after: xr.DataArray,
    *,
    mine_class: int | str = "mines",
    classes: Sequence[str] = CLASSES,
    nodata: int = IGNORE_INDEX,
) -> xr.DataArray:
    """Mask of new mining: mine in ``after`` but another valid class in ``before`` (lazy).

    Returns
    -------
    xarray.DataArray
        ``uint8``: 1 new mining, 0 not, ``nodata`` where either map is no-data; grid and
        CRS of ``after``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> b = xr.DataArray(np.array([[2, 0, 1, 255]], "uint8"), dims=("y", "x"))
    >>> a = xr.DataArray(np.array([[0, 0, 0, 0]], "uint8"), dims=("y", "x"))
    >>> new_mining(b, a).values.tolist()
    [[1, 0, 1, 255]]
    """
    k = class_index(mine_class, classes)
    n = len(classes)
    codes = change_map(before, after, classes=classes, nodata=nodata)
    new_codes = [f * n + k for f in range(n) if f != k]
    mask = xr.where(codes.isin(new_codes), 1, xr.where(codes == nodata, nodata, 0)).astype("uint8")
    mask.name = "new_mining"
    mask.attrs = {"long_name": f"new {classes[k]} (1) since the previous map", "nodata": nodata}
    if codes.rio.crs is not None:
        mask = mask.rio.write_crs(codes.rio.crs).rio.write_transform(codes.rio.transform())
    return mask.rio.write_nodata(nodata, encoded=False)


def _vector_crs(gdf: Any, name: str) -> None:
    if gdf.crs is None:
        raise MissingCRSError(f"{name} has no CRS; set it with gdf.set_crs('EPSG:4326').")


def polygon_area_ha(gdf: Any, *, area_crs: str = AREA_CRS) -> pd.Series:
    """Area of each geometry in hectares, measured in an equal-area CRS.

    Parameters
    ----------
    gdf
        A GeoDataFrame/GeoSeries with a CRS.
    area_crs
        Equal-area CRS to measure in (default Africa Albers Equal Area Conic).

    Returns
    -------
    pandas.Series
        Hectares, index of ``gdf``.
    """
    _vector_crs(gdf, "layer")
    return gdf.to_crs(area_crs).area / 1e4  # type: ignore[no-any-return]


def union_area_ha(gdf: Any, *, area_crs: str = AREA_CRS) -> float:
    """Area in hectares of the union of a layer's geometries (overlaps counted once).

    Invalid geometries (self-intersections, common in detector output) are repaired with
    ``make_valid`` first.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> g = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100), box(50, 0, 150, 100)], crs=32630)
    >>> round(union_area_ha(g, area_crs="EPSG:32630"), 6)
    1.5
    """
    _vector_crs(gdf, "layer")
    if len(gdf) == 0:
        return 0.0
    return float(gdf.to_crs(area_crs).geometry.make_valid().union_all().area / 1e4)


def new_mining_polygons(before: Any, after: Any, *, area_crs: str = AREA_CRS) -> Any:
    """Return new mining as polygons: ``after`` minus the union of ``before``.

    Parameters
    ----------
    before, after
        GeoDataFrames of mined area at two dates (any CRS, both set).
    area_crs
        Equal-area CRS in which the difference is taken and ``area_ha`` measured.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per remaining piece (exploded), columns ``area_ha`` and ``geometry``, in
        ``after``'s CRS.

    Raises
    ------
    MissingCRSError
        A layer has no CRS.
    VectorError
        ``after`` is empty.
    """
    import geopandas as gpd

    _vector_crs(before, "before")
    _vector_crs(after, "after")
    if len(after) == 0:
        raise VectorError("'after' has no polygons; nothing can be new")
    a = after.to_crs(area_crs)
    b_union = before.to_crs(area_crs).geometry.make_valid().union_all() if len(before) else None
    geom = a.geometry.make_valid()
    if b_union is not None and not b_union.is_empty:
        geom = geom.difference(b_union.buffer(0))
    out = gpd.GeoDataFrame(geometry=geom, crs=area_crs).explode(index_parts=False)
    out = out[~out.geometry.is_empty & (out.geom_type.isin(["Polygon", "MultiPolygon"]))]
    out = out.reset_index(drop=True)
    out.insert(0, "area_ha", out.area / 1e4)
    return out.to_crs(after.crs)
