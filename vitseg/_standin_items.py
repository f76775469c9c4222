"""Sentinel-2 items in Earth Search's structure over two MGRS tiles, cut from simulated scenes.

Internal to :mod:`vitseg.standin`: each simulated scene is cut into a west and an east
part that overlap, the east part reprojected into the next UTM zone, and each part gets
its COGs and an item with consistent ``proj:*``, ``mgrs:*`` and cloud-cover fields.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np

from vitseg.errors import MissingFileError, ParamsError

#: Bump when the stand-in changes so cached stand-ins are rebuilt.
STANDIN_VERSION: Final[int] = 1

#: MGRS 100 km column and row letters.
_MGRS_COLS: Final[tuple[str, str, str]] = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_MGRS_ROWS: Final[str] = "ABCDEFGHJKLMNPQRSTUV"
#: rasterio.warp.reproject's warning filters are not thread-safe: one reprojection at a time.
_REPROJECT_LOCK: Final[threading.Lock] = threading.Lock()


def _utm_zone(crs: Any) -> tuple[int, bool] | None:
    """Return (zone, north) of a UTM CRS, or None for any other CRS."""
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is not None and (32601 <= code <= 32660 or 32701 <= code <= 32760):
        return code % 100, code < 32700
    return None


def _grid_square(lon: float, lat: float, zone: int) -> str:
    """MGRS 100 km square of a point in a given UTM zone (standard WGS84 lettering)."""
    from pyproj import CRS, Transformer

    epsg = (32600 if lat >= 0 else 32700) + zone
    e, n = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True).transform(
        lon, lat
    )
    cols = _MGRS_COLS[(zone - 1) % 3]
    col = cols[(int(e // 100000) - 1) % len(cols)]
    row = _MGRS_ROWS[(int(n // 100000) + (5 if zone % 2 == 0 else 0)) % len(_MGRS_ROWS)]
    return col + row


def _next_square(square: str, zone: int) -> str:
    """Return the square east of ``square`` (an invented neighbour in the same zone)."""
    cols = _MGRS_COLS[(zone - 1) % 3]
    i = cols.index(square[0]) if square[0] in cols else 0
    return cols[(i + 1) % len(cols)] + square[1:]


def _read_catalog_items(catalog: Path, box: str, seasons: list[str]) -> list[dict[str, Any]]:
    """Items of ``box`` and ``seasons`` from the simulated catalog's ``items.json``."""
    from vitseg.io import read_json

    path = catalog / "items.json"
    if not path.exists():
        raise MissingFileError(
            f"no {path}; catalog_dir must be a folder written by "
            "vitseg.synthetic.write_catalog(catalog_dir, boxes=[...], seasons=[...])"
        )
    features = read_json(path).get("features", [])
    boxes = sorted({str(f["properties"].get("vitseg:box")) for f in features})
    if box not in boxes:
        raise ParamsError(
            f"'box' {box!r} is not in the catalog {catalog}; it holds boxes {boxes}. "
            "Pass one of them or write the catalog with that box."
        )
    mine = [f for f in features if f["properties"].get("vitseg:box") == box]
    have = sorted({str(f["properties"].get("vitseg:season")) for f in mine})
    missing = [s for s in seasons if s not in have]
    if not seasons or missing:
        raise ParamsError(
            f"'seasons' must be a non-empty list of seasons of box {box!r} in the catalog "
            f"({have}); got {seasons} (missing {missing})"
        )
    return [f for f in mine if f["properties"]["vitseg:season"] in seasons]


class _Cut:
    """Where the scene is cut: 10 m columns [0, west_end) and [east_start, width)."""

    def __init__(self, width: int, overlap_px: int):
        self.width = width
        self.east_start = (width - overlap_px) // 2 // 2 * 2
        self.west_end = self.east_start + overlap_px


def _source_grid(item: dict[str, Any]) -> Any:
    """Return the 10 m grid (a synthetic ``_Grid``) of an item, read from its blue band."""
    import rasterio

    from vitseg.synthetic import _Grid

    href = item["assets"]["blue"]["href"]
    with rasterio.open(href) as src:
        tr = src.transform
        return _Grid(tr.c, tr.f, tr.a, src.height, src.width, src.crs.to_string())


def _east_grid(grid: Any, cut: _Cut, dst_crs: str) -> Any:
    """Return the east part's grid in ``dst_crs``, origin snapped to 20 m, even shape."""
    from rasterio.warp import transform_bounds

    from vitseg.synthetic import _Grid

    _, miny, maxx, maxy = grid.bounds
    left = grid.x0 + cut.east_start * grid.res
    bx0, by0, bx1, by1 = transform_bounds(grid.crs, dst_crs, left, miny, maxx, maxy, densify_pts=51)
    step = 2 * grid.res
    x0 = math.floor(bx0 / step) * step
    y1 = math.ceil(by1 / step) * step
    width = 2 * math.ceil((bx1 - x0) / step)
    height = 2 * math.ceil((y1 - by0) / step)
    return _Grid(x0, y1, grid.res, height, width, dst_crs)


def _cut_asset(
    key: str,
    href: str,
    out_west: Path,
    out_east: Path,
    cut: _Cut,
    east: Any,
) -> tuple[str, Any, Any]:
    """Cut one asset COG into its west and (reprojected) east parts; return both arrays."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    from vitseg.synthetic import _write_cog

    if not Path(href).exists():
        raise MissingFileError(
            f"asset {key!r} of the catalog points to {href}, which does not exist; "
            "rewrite the catalog with vitseg.synthetic.write_catalog"
        )
    with rasterio.open(href) as src:
        data = src.read(1)
        tr = src.transform
        crs = src.crs.to_string()
        nodata = int(src.nodata if src.nodata is not None else 0)
    f = max(round(tr.a / east.res), 1)  # 1 for 10 m bands, 2 for 20 m bands
    west = np.ascontiguousarray(data[:, : cut.west_end // f])
    _write_cog(out_west, west, tr, crs, nodata=nodata)
    east_src = np.ascontiguousarray(data[:, cut.east_start // f :])
    east_tr = tr @ Affine.translation(cut.east_start // f, 0)
    if east.crs == crs and east.x0 == east_tr.c and east.y0 == east_tr.f:
        east_data = east_src  # same CRS and origin: the east part is a plain window
    else:
        east_data = np.zeros((east.height // f, east.width // f), dtype=data.dtype)
        with _REPROJECT_LOCK:  # rasterio's warning filters inside reproject are not thread-safe
            reproject(
                east_src,
                east_data,
                src_transform=east_tr,
                src_crs=crs,
                src_nodata=nodata,
                dst_transform=Affine(east.res * f, 0.0, east.x0, 0.0, -east.res * f, east.y0),
                dst_crs=east.crs,
                dst_nodata=nodata,
                resampling=Resampling.nearest if key == "scl" else Resampling.bilinear,
            )
    dst_tr = Affine(east.res * f, 0.0, east.x0, 0.0, -east.res * f, east.y0)
    _write_cog(out_east, east_data, dst_tr, east.crs, nodata=nodata)
    return key, west, east_data


def _part_item(
    src: dict[str, Any],
    *,
    item_id: str,
    grid: Any,
    valid: Any,
    scl: Any,
    hrefs: dict[str, str],
    mgrs: tuple[int, str, str],
    links: list[dict[str, str]],
) -> dict[str, Any]:
    """Return an Earth Search-like item of one part, without any ``vitseg:*`` property."""
    from vitseg.synthetic import SYNTHETIC_VERSION, _footprint, _item_dict

    props = src["properties"]
    when = _dt.datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    item = _item_dict(
        item_id=item_id,
        box="",
        season="",
        when=when.replace(tzinfo=None),
        grid=grid,
        footprint=_footprint(grid, valid),
        hrefs=hrefs,
        scl=scl,
        mgrs=mgrs,
        platform=str(props["platform"]),
    )
    new = item["properties"]
    for key in ("datetime", "created", "updated", "s2:processing_baseline"):
        if key in props:
            new[key] = props[key]
    new["processing:software"] = {
        "vitseg.synthetic": str(SYNTHETIC_VERSION),
        "vitseg.standin": str(STANDIN_VERSION),
    }
    for key in [k for k in new if k.startswith("vitseg:")]:
        del new[key]
    # Keep the source's radiometry metadata (scale/offset follow its baseline).
    for key, asset in item["assets"].items():
        if key in src["assets"] and "raster:bands" in src["assets"][key]:
            asset["raster:bands"] = src["assets"][key]["raster:bands"]
    item["links"] = links
    return item


def _collection(items: list[dict[str, Any]], final: Path) -> dict[str, Any]:
    from vitseg.synthetic import _collection_dict

    coll = _collection_dict(items)
    coll["title"] = "Sentinel-2 Level-2A (stand-in for Earth Search; SIMULATED pixels)"
    coll["description"] = (
        "Items in Earth Search v1's sentinel-2-l2a structure, served as a local stand-in "
        "for Earth Search (the offline proof of vitseg's real path). The pixels are "
        "SIMULATED (vitseg.synthetic), cut into two overlapping MGRS tiles with the east "
        "one reprojected into its own UTM zone. Not real imagery."
    )
    coll["providers"] = [
        {"name": "vitseg.synthetic (simulated pixels)", "roles": ["producer"]},
        {"name": "vitseg.standin", "roles": ["processor", "host"]},
    ]
    coll["keywords"] = ["sentinel", "simulated", "stand-in", "ghana", "artisanal mining"]
    coll["links"] = [
        {
            "rel": "self",
            "href": str(final / "stac" / "collection.json"),
            "type": "application/json",
        },
        {
            "rel": "items",
            "href": str(final / "stac" / "items.json"),
            "type": "application/geo+json",
        },
    ]
    return coll


def _split_items(
    tmp: Path,
    final: Path,
    src_items: list[dict[str, Any]],
    *,
    overlap_px: int,
    east_crs: str | None,
) -> tuple[list[dict[str, Any]], Any, _Cut]:
    """Write both parts of every item under ``tmp/stac``; return the items, grid and cut."""
    from vitseg.synthetic import _Grid

    grid = _source_grid(src_items[0])
    if grid.width % 2 or grid.height % 2:
        raise ParamsError(
            f"the catalog's scenes are {grid.height} x {grid.width} px; an even shape is "
            "needed so the 20 m bands cut cleanly (write_catalog rounds size_px up to even)"
        )
    if overlap_px > grid.width - 8:
        raise ParamsError(
            f"'overlap_px' must leave each part at least 4 columns of its own: at most "
            f"{grid.width - 8} for a scene {grid.width} px wide; got {overlap_px}"
        )
    cut = _Cut(grid.width, overlap_px)
    west_grid = _Grid(grid.x0, grid.y0, grid.res, grid.height, cut.west_end, grid.crs)
    if east_crs is None:
        east_grid = _Grid(
            grid.x0 + cut.east_start * grid.res,
            grid.y0,
            grid.res,
            grid.height,
            grid.width - cut.east_start,
            grid.crs,
        )
    else:
        east_grid = _east_grid(grid, cut, east_crs)
    east_utm = _utm_zone(east_grid.crs)
    east_zone = east_utm[0] if east_utm else int(src_items[0]["properties"]["mgrs:utm_zone"])
    stac = tmp / "stac"
    coll_href = str(final / "stac" / "collection.json")
    links = [
        {"rel": rel, "href": coll_href, "type": "application/json"}
        for rel in ("collection", "parent")
    ]
    out: list[dict[str, Any]] = []
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for src in src_items:
            props = src["properties"]
            zone = int(props["mgrs:utm_zone"])
            lband = str(props["mgrs:latitude_band"])
            square = str(props["mgrs:grid_square"])
            east_square = _east_square(east_grid, east_zone)
            if (east_zone, east_square) == (zone, square):
                east_square = _next_square(square, east_zone)
            prefix, _, rest = str(src["id"]).split("_", 2)
            ids = (
                f"{prefix}_{zone}{lband}{square}_{rest}",
                f"{prefix}_{east_zone}{lband}{east_square}_{rest}",
            )
            jobs = []
            for key, asset in src["assets"].items():
                name = Path(asset["href"]).name
                jobs.append(
                    pool.submit(
                        _cut_asset,
                        key,
                        asset["href"],
                        stac / ids[0] / name,
                        stac / ids[1] / name,
                        cut,
                        east_grid,
                    )
                )
            arrays = {key: (w, e) for key, w, e in (j.result() for j in jobs)}
            for part, (item_id, part_grid, mgrs) in enumerate(
                (
                    (ids[0], west_grid, (zone, lband, square)),
                    (ids[1], east_grid, (east_zone, lband, east_square)),
                )
            ):
                hrefs = {
                    Path(a["href"]).stem: str(final / "stac" / item_id / Path(a["href"]).name)
                    for a in src["assets"].values()
                }
                out.append(
                    _part_item(
                        src,
                        item_id=item_id,
                        grid=part_grid,
                        valid=arrays["blue"][part] > 0,
                        scl=arrays["scl"][part],
                        hrefs=hrefs,
                        mgrs=mgrs,
                        links=links,
                    )
                )
    out.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    return out, grid, cut


def _east_square(east: Any, zone: int) -> str:
    from pyproj import Transformer

    cx = east.x0 + east.width * east.res / 2
    cy = east.y0 - east.height * east.res / 2
    lon, lat = Transformer.from_crs(east.crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    return _grid_square(float(lon), float(lat), zone)
