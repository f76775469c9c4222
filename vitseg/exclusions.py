"""Exclusion masks: polygon layers (optionally buffered) that become no-data in maps.

Gallwey et al. (§2.2) removed lakes, known large-scale (licensed) mines and a 5 km
strip along the Atlantic coast before analysis. vitseg takes any number of such
layers, each with its own buffer in metres, rasterises them lazily on a map's grid
(chunk by chunk, so any area works), applies them as no-data and reports how many
pixels and hectares each layer removed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # registers the .rio accessor
import xarray as xr

from vitseg.errors import (
    DimensionError,
    GridMismatchError,
    MissingCRSError,
    MissingFileError,
    ParamsError,
    VectorError,
)

__all__ = [
    "apply_exclusions",
    "coastal_strip",
    "exclusion_layers",
    "exclusion_mask",
    "exclusion_report",
    "pixel_area_ha",
]

_ = rioxarray

LayerLike = Any  # a GeoDataFrame / GeoSeries or a path readable by geopandas


def _read_layer(name: str, layer: LayerLike) -> Any:
    import geopandas as gpd

    if isinstance(layer, (str, os.PathLike)):
        path = layer
        if not os.path.isfile(path):
            what = "is a folder" if os.path.isdir(path) else "does not exist"
            raise MissingFileError(
                f"exclusion layer {name!r}: {str(path)!r} {what}; give a polygon file "
                "(.gpkg, .geojson, .shp)"
            )
        try:
            layer = gpd.read_file(path)
        except Exception as err:  # pyogrio raises DataSourceError and friends
            raise VectorError(
                f"exclusion layer {name!r}: cannot read {str(path)!r} as a vector file ({err})"
            ) from err
    if isinstance(layer, gpd.GeoSeries):
        layer = gpd.GeoDataFrame(geometry=layer)
    if not isinstance(layer, gpd.GeoDataFrame):
        raise VectorError(
            f"exclusion layer {name!r} must be a GeoDataFrame, GeoSeries or a vector file path; "
            f"got {type(layer).__name__}"
        )
    if layer.crs is None:
        raise MissingCRSError(
            f"exclusion layer {name!r} has no CRS; set it with layer.set_crs('EPSG:4326')"
        )
    geom_types = set(layer.geometry.dropna().geom_type) - {"Polygon", "MultiPolygon"}
    if geom_types:
        raise VectorError(
            f"exclusion layer {name!r} must hold polygons; it has {sorted(geom_types)}. "
            "Buffer lines or points first (e.g. a coastline with buffer_m=5000)."
        )
    import shapely

    geoms = layer.geometry.dropna()
    bad = [i for i, g in zip(geoms.index, geoms.values, strict=True)
           if not np.isfinite(shapely.get_coordinates(g)).all()]  # fmt: skip
    if bad:
        raise VectorError(
            f"exclusion layer {name!r} has {len(bad)} geometries with NaN or infinite "
            f"coordinates (rows {bad[:5]}); they would exclude nothing. Fix or drop them."
        )
    return layer


def _check_grid(like: Any, what: str = "like") -> None:
    """Refuse templates that are not a regular, non-empty (y, x) grid with a CRS."""
    if not isinstance(like, xr.DataArray):
        raise DimensionError(
            f"{what} must be an xarray.DataArray with 'y' and 'x' dims; got {type(like).__name__}"
        )
    if "y" not in like.dims or "x" not in like.dims:
        raise DimensionError(f"{what} must have 'y' and 'x' dims; got {tuple(like.dims)}")
    if like.rio.crs is None:
        raise MissingCRSError(f"{what} has no CRS; set it with {what}.rio.write_crs('EPSG:32630')")
    for dim in ("y", "x"):
        if like.sizes[dim] == 0:
            raise DimensionError(
                f"{what} has no pixels along {dim!r} (shape {dict(like.sizes)}); check the "
                "window or clip that made it"
            )
        if like.sizes[dim] > 2:
            step = np.diff(np.asarray(like[dim].values, dtype="float64"))
            if not np.allclose(step, step[0], rtol=1e-6, atol=0.0):
                raise DimensionError(
                    f"{what} has unevenly spaced {dim!r} coordinates (steps "
                    f"{np.unique(step)[:3].tolist()}); exclusions need a regular grid"
                )


def _buffer_value(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0:
        raise ParamsError(
            f"buffer_m of exclusion layer {name!r} must be a finite number of metres >= 0; "
            f"got {value!r}"
        )
    return float(value)


def _prepare(layer: Any, crs: Any, buffer_m: float) -> list[Any]:
    """Return the layer's geometries in ``crs``, buffered by ``buffer_m`` metres."""
    geoms = layer.geometry.dropna()
    geoms = geoms[~geoms.is_empty]
    if len(geoms) == 0:
        return []
    if buffer_m:
        metric = crs if (crs.is_projected and _metre_units(crs)) else geoms.estimate_utm_crs()
        geoms = geoms.to_crs(metric).buffer(float(buffer_m)).to_crs(crs)
    else:
        geoms = geoms.to_crs(crs)
    return list(geoms.values)


def _metre_units(crs: Any) -> bool:
    return all(ax.unit_name in {"metre", "meter"} for ax in crs.axis_info[:2])


def _rasterize_block(
    block: np.ndarray[Any, Any],
    geoms: list[Any],
    grid: tuple[float, float, float, float],
    all_touched: bool,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    from affine import Affine
    from rasterio.features import rasterize
    from shapely import STRtree, box

    h, w = block.shape
    out = np.zeros((h, w), dtype=bool)
    if not geoms or h == 0 or w == 0:
        return out
    (r0, _), (c0, _) = block_info[None]["array-location"] if block_info else ((0, h), (0, w))
    x_first, dx, y_first, dy = grid  # centre of pixel (0, 0) and steps (dy > 0 northwards)
    left = x_first + c0 * dx - dx / 2
    top = y_first - r0 * dy + dy / 2
    bounds = box(min(left, left + w * dx), min(top, top - h * dy),
                 max(left, left + w * dx), max(top, top - h * dy))  # fmt: skip
    hits = STRtree(geoms).query(bounds)
    if len(hits) == 0:
        return out
    transform = Affine(dx, 0.0, left, 0.0, -dy, top)
    burned = rasterize(
        [(geoms[i], 1) for i in hits], out_shape=(h, w), transform=transform, fill=0,
        all_touched=all_touched, dtype="uint8",
    )  # fmt: skip
    res: np.ndarray[Any, Any] = burned.astype(bool)
    return res


def exclusion_layers(
    like: xr.DataArray,
    layers: Mapping[str, LayerLike] | Sequence[LayerLike],
    *,
    buffer_m: float | Mapping[str, float] = 0.0,
    all_touched: bool = False,
) -> xr.DataArray:
    """Rasterise exclusion polygon layers on ``like``'s grid, one boolean plane per layer.

    Parameters
    ----------
    like
        Template with ``y``/``x`` dims (regular grid) and a CRS; other dims are ignored.
        If dask-backed, its ``y``/``x`` chunks are used and nothing is computed.
    layers
        ``{name: GeoDataFrame | GeoSeries | path}`` (or a list, named ``layer_0``...).
        Polygons in any CRS (reprojected).
    buffer_m
        Buffer in metres, one value for all layers or ``{name: metres}`` (missing = 0),
        e.g. ``{"coast": 5000}`` for Gallwey's 5 km coastal strip. Buffers are drawn
        in the grid's CRS when it is metric, otherwise in the layer's UTM zone.
    all_touched
        Burn every pixel a polygon touches (default: pixel centres inside).

    Returns
    -------
    xarray.DataArray
        bool, dims ``(layer, y, x)``: True where the layer excludes the pixel.

    Raises
    ------
    MissingCRSError
        If ``like`` or a layer has no CRS.
    VectorError
        If a layer is not polygons, has NaN/inf coordinates or cannot be read.
    MissingFileError
        A layer path that does not exist or is a folder.
    DimensionError
        If ``like`` has no ``y``/``x`` dims, no pixels or an irregular grid.
    ParamsError
        ``buffer_m`` NaN, infinite or negative, or naming a layer not in ``layers``.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr
    >>> from shapely import box
    >>> like = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"),
    ...     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ... ).rio.write_crs("EPSG:32630")
    >>> lake = gpd.GeoDataFrame(geometry=[box(0, 0, 20, 20)], crs="EPSG:32630")
    >>> int(exclusion_layers(like, {"lakes": lake}).sum())
    4
    """
    _check_grid(like)
    if isinstance(layers, (str, os.PathLike)) or not isinstance(layers, Mapping | Sequence):
        raise ParamsError(
            f"layers must be a mapping {{name: GeoDataFrame or path}} or a list of them; got "
            f"{type(layers).__name__} {str(layers)!r}. Wrap one file: {{'lakes': path}}"
        )
    named = dict(layers) if isinstance(layers, Mapping) else {
        f"layer_{i}": layer for i, layer in enumerate(layers)
    }  # fmt: skip
    if isinstance(buffer_m, Mapping):
        unknown = sorted(set(buffer_m) - set(named), key=str)
        if unknown:
            raise ParamsError(
                f"buffer_m names layers {unknown} that are not among the layers "
                f"{list(named)}; their buffers would be ignored. Fix the names."
            )
        buffers = {k: _buffer_value(k, buffer_m.get(k, 0.0)) for k in named}
    else:
        buffers = {k: _buffer_value(k, buffer_m) for k in named}
    from pyproj import CRS

    crs = CRS.from_user_input(like.rio.crs)
    plane = like.isel({d: 0 for d in like.dims if d not in ("y", "x")}).transpose("y", "x")
    data = plane.data
    template = (
        da.zeros(data.shape, chunks=data.chunks, dtype=bool)
        if isinstance(data, da.Array)
        else da.zeros(data.shape, chunks=-1, dtype=bool)
    )
    x, y = np.asarray(like["x"].values, float), np.asarray(like["y"].values, float)
    grid = (
        float(x[0]), float(x[1] - x[0]) if x.size > 1 else 1.0,
        float(y[0]), float(y[0] - y[1]) if y.size > 1 else 1.0,
    )  # fmt: skip
    planes = []
    for name, layer in named.items():
        geoms = _prepare(_read_layer(name, layer), crs, buffers[name])
        planes.append(
            template.map_blocks(
                _rasterize_block,
                dask.delayed(geoms, traverse=False),
                grid,
                bool(all_touched),
                dtype=bool,
            )
        )
    stacked = da.stack(planes) if planes else da.zeros((0, *data.shape), dtype=bool)
    if not isinstance(data, da.Array):
        stacked = stacked.compute()
    out = xr.DataArray(
        stacked,
        dims=("layer", "y", "x"),
        coords={"layer": list(named), "y": like["y"], "x": like["x"]},
        attrs={"long_name": "excluded", "buffer_m": str(buffer_m)},
    )
    return out.rio.write_crs(like.rio.crs)


def exclusion_mask(
    like: xr.DataArray,
    layers: Mapping[str, LayerLike] | Sequence[LayerLike],
    *,
    buffer_m: float | Mapping[str, float] = 0.0,
    all_touched: bool = False,
) -> xr.DataArray:
    """Return the union of :func:`exclusion_layers` as a boolean ``(y, x)`` mask.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr
    >>> from shapely import box
    >>> like = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"),
    ...     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ... ).rio.write_crs("EPSG:32630")
    >>> a = gpd.GeoDataFrame(geometry=[box(0, 0, 20, 20)], crs="EPSG:32630")
    >>> int(exclusion_mask(like, [a, a], buffer_m={"layer_1": 10}).sum())
    9
    """
    layers_da = exclusion_layers(like, layers, buffer_m=buffer_m, all_touched=all_touched)
    return layers_da.any("layer").rio.write_crs(like.rio.crs)


def apply_exclusions(
    arr: xr.DataArray, mask: xr.DataArray, *, nodata: float | None = None
) -> xr.DataArray:
    """Set excluded pixels to no-data: NaN for floats, ``nodata`` (default 255) for integers.

    Raises
    ------
    DimensionError
        ``mask`` not boolean, or ``arr`` not a DataArray of numbers (bool, str).
    GridMismatchError
        ``mask`` and ``arr`` of different sizes or coordinates.
    ParamsError
        A ``nodata`` that ``arr``'s dtype cannot hold (256 or -1 in uint8, NaN or 1.5 in
        integers): it would wrap onto a class code.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([[1, 2]], "uint8"), dims=("y", "x"))
    >>> m = xr.DataArray(np.array([[True, False]]), dims=("y", "x"))
    >>> apply_exclusions(a, m).values.tolist()
    [[255, 2]]
    """
    if not isinstance(arr, xr.DataArray):
        raise DimensionError(f"arr must be an xarray.DataArray; got {type(arr).__name__}")
    if mask.dtype != bool:
        raise DimensionError(f"mask must be boolean (True = excluded); got dtype {mask.dtype}")
    if arr.dtype.kind not in "iuf":
        raise DimensionError(
            f"arr must hold numbers (class codes or floats); got dtype {arr.dtype}. A boolean "
            "map has no no-data value: convert it first, e.g. arr.astype('uint8')"
        )
    if isinstance(mask, xr.DataArray):
        for dim in set(mask.dims) & set(arr.dims):
            same = mask.sizes[dim] == arr.sizes[dim] and (
                dim not in mask.coords
                or dim not in arr.coords
                or np.array_equal(mask[dim].values, arr[dim].values)
            )
            if not same:
                raise GridMismatchError(
                    f"mask and arr differ along {dim!r} (sizes {mask.sizes[dim]} and "
                    f"{arr.sizes[dim]}, or shifted coordinates); build the mask on arr's grid "
                    "with exclusion_mask(arr, ...)"
                )
    if nodata is not None:
        ok = isinstance(nodata, (int, float, np.integer, np.floating)) and not isinstance(
            nodata, bool
        )
        if arr.dtype.kind in "iu":
            info = np.iinfo(arr.dtype)
            ok = ok and float(nodata).is_integer() and info.min <= nodata <= info.max
        if not ok:
            raise ParamsError(
                f"nodata must be a number that {arr.dtype} holds exactly (e.g. 255 for uint8 "
                f"class codes); got {nodata!r}, which would wrap or be truncated"
            )
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.where(~mask, np.nan if nodata is None else nodata)
    else:
        fill = 255 if nodata is None else nodata
        if fill > np.iinfo(arr.dtype).max:
            raise ParamsError(f"arr is {arr.dtype}, which cannot hold nodata 255; pass nodata=")
        out = arr.where(~mask, fill).astype(arr.dtype)
    out.attrs = dict(arr.attrs)
    return out.rio.write_crs(arr.rio.crs) if arr.rio.crs is not None else out


def coastal_strip(buffer_m: float, *, crs: Any = "EPSG:32630") -> Any:
    """Ghana's coastal strip: land within ``buffer_m`` of the sea (Gallwey et al. §2.7, 5 km).

    The coastline is the part of Ghana's Natural Earth boundary that no neighbour (Côte
    d'Ivoire, Burkina Faso, Togo) shares, so land borders are not excluded.

    Parameters
    ----------
    buffer_m
        Width of the strip in metres (> 0).
    crs
        Metric CRS in which the buffer is drawn.

    Returns
    -------
    geopandas.GeoDataFrame
        One polygon (``name`` "coastal strip"), in EPSG:4326.

    Examples
    --------
    >>> strip = coastal_strip(5000.0)
    >>> round(float(strip.to_crs("EPSG:32630").area.iloc[0]) / 1e6) in range(2200, 3200)
    True
    """
    import geopandas as gpd

    from vitseg.io import data_path

    ok = isinstance(buffer_m, (int, float, np.integer, np.floating)) and not isinstance(
        buffer_m, bool
    )
    if not (ok and np.isfinite(buffer_m) and buffer_m > 0):
        raise ParamsError(f"'buffer_m' of the coastal strip must be a number > 0; got {buffer_m!r}")
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        metric = CRS.from_user_input(crs)
    except CRSError as err:
        raise ParamsError(f"crs {crs!r} is not a CRS pyproj knows ({err})") from err
    if not (metric.is_projected and _metre_units(metric)):
        raise ParamsError(
            f"crs must be a projected CRS in metres (the buffer is drawn in it); got {crs!r}. "
            "Use e.g. 'EPSG:32630'."
        )
    countries = gpd.read_file(data_path("ne_10m_ghana_and_neighbours.geojson")).to_crs(crs)
    ghana = countries.loc[countries["iso_a3"] == "GHA", "geometry"].union_all()
    neighbours = countries.loc[countries["iso_a3"] != "GHA", "geometry"].union_all()
    coast = ghana.boundary.difference(neighbours.buffer(200.0))
    strip = coast.buffer(buffer_m).intersection(ghana)
    return gpd.GeoDataFrame({"name": ["coastal strip"]}, geometry=[strip], crs=crs).to_crs(4326)


def pixel_area_ha(like: xr.DataArray) -> xr.DataArray:
    """Area of each pixel row in hectares, ``(y,)``: :func:`vitseg.change.pixel_area_m2` / 1e4.

    Projected grids: the grid's own pixel area (from the affine transform). Geographic
    grids: the geodesic area of each row's cells on the CRS's ellipsoid (WGS84).

    Raises
    ------
    MissingCRSError
        ``like`` has no CRS.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> like = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"),
    ...     coords={"y": [15.0, 5.0], "x": [5.0, 15.0]}).rio.write_crs("EPSG:32630")
    >>> pixel_area_ha(like).values.tolist()
    [0.01, 0.01]
    """
    from vitseg.change import pixel_area_m2

    _check_grid(like)
    area = pixel_area_m2(like) / 1e4
    return xr.DataArray(area, dims=("y",), coords={"y": like["y"]}, attrs={"units": "ha"})


def exclusion_report(layers: xr.DataArray) -> pd.DataFrame:
    """Pixels and hectares excluded by each layer and by all of them together.

    Parameters
    ----------
    layers
        Output of :func:`exclusion_layers` (``(layer, y, x)`` bool, with a CRS).

    Returns
    -------
    pandas.DataFrame
        Columns ``layer``, ``pixels``, ``hectares``, ``percent`` (of the grid); the
        last row, ``all layers``, counts the union once (layers may overlap).
    """
    if not isinstance(layers, xr.DataArray) or tuple(layers.dims) != ("layer", "y", "x"):
        dims = getattr(layers, "dims", type(layers).__name__)
        raise DimensionError(
            f"layers must be the (layer, y, x) DataArray of exclusion_layers; got {dims}"
        )
    if layers.dtype != bool:
        raise DimensionError(
            f"layers must be boolean (True = excluded); got dtype {layers.dtype}, whose sums "
            "would not count pixels. Use exclusion_layers(...)"
        )
    _check_grid(layers, "layers")
    area = pixel_area_ha(layers)
    union = layers.any("layer")
    per_pix = layers.sum(("y", "x"))
    per_ha = (layers * area).sum(("y", "x"))
    all_pix, all_ha, total_ha = union.sum(), (union * area).sum(), area.sum() * layers.sizes["x"]
    per_pix, per_ha, all_pix, all_ha, total_ha = dask.compute(
        per_pix, per_ha, all_pix, all_ha, total_ha
    )
    rows = [
        {"layer": str(name), "pixels": int(p), "hectares": float(h)}
        for name, p, h in zip(layers["layer"].values, per_pix.values, per_ha.values, strict=True)
    ]
    rows.append({"layer": "all layers", "pixels": int(all_pix), "hectares": float(all_ha)})
    df = pd.DataFrame(rows, columns=["layer", "pixels", "hectares"])
    df["percent"] = 100.0 * df["hectares"] / float(total_ha) if float(total_ha) else 0.0
    return df
