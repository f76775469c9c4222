"""Local stand-ins for the real path's inputs, made from a simulated catalog.

vitseg's real path reads Sentinel-2 L2A items from a STAC API (Earth Search v1), a
researcher's labels file, hand-digitised reference tiles and an interpreted accuracy
sample. No network is reachable in CI, so the real path is proven on stand-ins whose
*pixels* are simulated (:mod:`vitseg.synthetic`) but which enter only through the real
path's inputs, in the formats a researcher or Earth Search would hand over:

* :func:`write_standin` cuts every simulated scene into a west and an east part that
  overlap, as neighbouring MGRS tiles do, reprojects the east part into the next UTM
  zone and writes both as COGs with items in Earth Search's structure (two items per
  pass, ``S2A_30NWN_...`` and ``S2A_31NAG_...``), plus an AOI polygon in EPSG:3857, a
  labels file in the researcher's own vocabulary ("galamsey", "settlement") with a
  labelled extent, and three hand-digitised reference tiles.
* :func:`fill_sample_from_truth` plays the interpreter: it fills an accuracy sample's
  sheet from the simulated truth and writes it in the interpretation page's export
  format.

The simulated truth stays inside the simulated catalog folder, and nothing written here
carries a ``vitseg:*`` simulator property; the collection's description says that the
pixels are simulated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from vitseg._standin_items import (
    STANDIN_VERSION,
    _collection,
    _read_catalog_items,
    _split_items,
    _utm_zone,
)
from vitseg.constants import CLASSES, IGNORE_INDEX
from vitseg.errors import MissingFileError, ParamsError, SampleError, VitsegError

__all__ = ["STANDIN_VERSION", "StandIn", "fill_sample_from_truth", "write_standin"]

#: The researcher's own words for vitseg's classes in the stand-in labels file.
LABEL_VOCABULARY: Final[dict[str, str]] = {"mines": "galamsey", "built": "settlement"}

#: Side of a reference tile, in 10 m pixels (640 m), and how many are drawn.
_TILE_PX: Final[int] = 64
_N_TILES: Final[int] = 3
#: Share of the scene (its southern rows) left out of the labelled extent.
_SOUTH_UNLABELLED: Final[float] = 0.15
#: Pixels between the AOI and the scene's edges.
_AOI_INSET_PX: Final[int] = 4
#: ``labelled_at`` of the filled sheet: a constant, so reruns write the same file.
_LABELLED_AT: Final[str] = "2000-01-01T00:00:00Z"
_CANNOT_TELL: Final[str] = "cannot tell"


@dataclass(frozen=True)
class StandIn:
    """Paths of a stand-in written by :func:`write_standin`.

    Attributes
    ----------
    root
        The stand-in folder.
    items
        ``root/stac/items.json``: an ItemCollection in Earth Search v1's structure.
    aoi_file
        ``root/aoi.gpkg``: one polygon (column ``name``), EPSG:3857.
    labels_file
        ``root/labels.gpkg``: layers ``labels`` (column ``landcover``) and ``extent``.
    reference_tiles_file
        ``root/reference_tiles.gpkg``: layers ``tiles`` (column ``tile``) and
        ``polygons`` (column ``class``).
    """

    root: Path
    items: Path
    aoi_file: Path
    labels_file: Path
    reference_tiles_file: Path


# ----------------------------------------------------------------------------- helpers
def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- vectors
def _polygons(
    classes: Any, mask: Any, transform: Any, crs: str, column: str, names: dict[int, str]
) -> Any:
    """Polygons of the masked pixels of ``classes``, one row each, named by ``names``."""
    import geopandas as gpd
    from rasterio import features
    from shapely.geometry import shape

    rows = [
        (names[int(v)], shape(g))
        for g, v in features.shapes(classes.astype(np.uint8), mask=mask, transform=transform)
    ]
    return gpd.GeoDataFrame({column: [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs=crs)


def _write_aoi(tmp_path: Path, grid: Any) -> None:
    """One polygon a few pixels inside the scene, crossing the seam, in EPSG:3857."""
    import geopandas as gpd
    from shapely.geometry import Polygon

    minx, miny, maxx, maxy = grid.bounds
    inset = _AOI_INSET_PX * grid.res
    x0, y0, x1, y1 = minx + inset, miny + inset, maxx - inset, maxy - inset
    ch = 0.15 * min(x1 - x0, y1 - y0)  # chamfered corners: a polygon, not a bbox
    poly = Polygon(
        [
            (x0 + ch, y0),
            (x1 - ch, y0),
            (x1, y0 + ch),
            (x1, y1 - ch),
            (x1 - ch, y1),
            (x0 + ch, y1),
            (x0, y1 - ch),
            (x0, y0 + ch),
        ]
    )
    aoi = gpd.GeoDataFrame({"name": ["standin"]}, geometry=[poly], crs=grid.crs)
    aoi["geometry"] = aoi.geometry.segmentize(grid.res * 10)
    aoi.to_crs("EPSG:3857").to_file(tmp_path, driver="GPKG", layer="aoi")


def _write_labels(tmp_path: Path, truth: Any) -> None:
    """Labels of the researcher's vocabulary, and the extent without the south 15 %."""
    import geopandas as gpd
    from shapely.geometry import box as shp_box

    arr = np.asarray(truth.values)
    tr = truth.rio.transform()
    crs = truth.rio.crs.to_string()
    height, width = arr.shape
    rows = height - round(_SOUTH_UNLABELLED * height)
    inside = np.zeros(arr.shape, dtype=bool)
    inside[:rows] = True
    vocab = {CLASSES.index(c): word for c, word in LABEL_VOCABULARY.items()}
    labels = _polygons(arr, inside & np.isin(arr, list(vocab)), tr, crs, "landcover", vocab)
    labels.to_file(tmp_path, driver="GPKG", layer="labels")
    x0, y0, res = tr.c, tr.f, tr.a
    extent = gpd.GeoDataFrame(
        {"name": ["labelled extent"]},
        geometry=[shp_box(x0, y0 - rows * abs(tr.e), x0 + width * res, y0)],
        crs=crs,
    )
    extent.to_file(tmp_path, driver="GPKG", layer="extent")


def _window_sums(a: Any, size: int) -> Any:
    """Return the sums of ``a`` over every ``size`` x ``size`` window (top-left anchored)."""
    ii = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    ii[1:, 1:] = np.cumsum(np.cumsum(a, axis=0, dtype=np.int64), axis=1)
    return ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]


def _pick_tiles(truth: Any, *, size: int = _TILE_PX, n: int = _N_TILES) -> list[tuple[int, int]]:
    """Top-left (row, col) of ``n`` non-overlapping windows with the most mine pixels.

    Windows must lie inside the box (no 255 pixel). The best of two searches is kept: a
    greedy one at every offset (large scenes), and an exhaustive one over a lattice of at
    most 256 offsets (small scenes, where greedy picks can block each other).
    """
    height, width = truth.shape
    if height < size or width < size:
        score = np.zeros((0, 0), dtype=np.int64)
    else:
        score = _window_sums((truth == 0).astype(np.int64), size)
        score = np.where(
            _window_sums((truth == IGNORE_INDEX).astype(np.int64), size) == 0, score, -1
        )

    def total(picks: list[tuple[int, int]]) -> int:
        return sum(int(score[p]) for p in picks) if len(picks) == n else -1

    greedy: list[tuple[int, int]] = []
    free = score.copy()
    while len(greedy) < n and free.size and free.max() >= 0:
        r, c = (int(v) for v in np.unravel_index(int(np.argmax(free)), free.shape))
        greedy.append((r, c))
        free[max(r - size + 1, 0) : r + size, max(c - size + 1, 0) : c + size] = -1
    best = greedy
    if score.size:
        step = 1
        while len(_lattice(score.shape[0], step)) * len(_lattice(score.shape[1], step)) > 256:
            step *= 2
        rr, cc = np.meshgrid(
            _lattice(score.shape[0], step), _lattice(score.shape[1], step), indexing="ij"
        )
        rr, cc = rr.ravel(), cc.ravel()
        s = score[rr, cc]
        keep = s >= 0
        rr, cc, s = rr[keep], cc[keep], s[keep]
        apart = (np.abs(rr[:, None] - rr[None, :]) >= size) | (
            np.abs(cc[:, None] - cc[None, :]) >= size
        )
        idx = np.arange(len(s))
        found: tuple[int, int, int, int] | None = None
        for i in range(len(s)):
            js = idx[apart[i] & (idx > i)]
            if js.size == 0:
                continue
            ok = apart[js] & apart[i][None, :] & (idx[None, :] > js[:, None])
            sums = np.where(ok, s[i] + s[js][:, None] + s[None, :], -1)
            flat = int(np.argmax(sums))
            v = int(sums.flat[flat])
            if v >= 0 and (found is None or v > found[0]):
                found = (v, i, int(js[flat // len(s)]), flat % len(s))
        if found is not None and n == 3:
            lattice_best = [(int(rr[k]), int(cc[k])) for k in found[1:]]
            if total(lattice_best) > total(best):
                best = lattice_best
    if len(best) < n:
        raise ParamsError(
            f"the scene ({height} x {width} px) has no room for {n} non-overlapping "
            f"reference tiles of {size} px inside the box; write the catalog with a larger "
            "size_px (at least 128)"
        )
    return sorted(best, key=lambda p: (-int(score[p]), p))


def _lattice(n: int, step: int) -> Any:
    vals = list(range(0, n, step))
    if vals[-1] != n - 1:
        vals.append(n - 1)
    return np.asarray(vals, dtype=np.int64)


def _write_reference_tiles(tmp_path: Path, truth: Any) -> None:
    """Three 640 m tiles where mines are densest, and the truth polygons inside them."""
    import geopandas as gpd
    import pandas as pd
    from affine import Affine
    from shapely.geometry import box as shp_box

    arr = np.asarray(truth.values)
    tr = truth.rio.transform()
    crs = truth.rio.crs.to_string()
    picks = _pick_tiles(arr)
    names = {0: CLASSES[0], 1: CLASSES[1]}
    tiles, polys = [], []
    for k, (r, c) in enumerate(picks, start=1):
        name = f"ref_{k}"
        x0, y0 = tr * (c, r)
        x1, y1 = tr * (c + _TILE_PX, r + _TILE_PX)
        tiles.append((name, shp_box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
        win = arr[r : r + _TILE_PX, c : c + _TILE_PX]
        p = _polygons(win, np.isin(win, (0, 1)), tr @ Affine.translation(c, r), crs, "class", names)
        p.insert(0, "tile", name)
        polys.append(p)
    gpd.GeoDataFrame(
        {"tile": [t[0] for t in tiles]}, geometry=[t[1] for t in tiles], crs=crs
    ).to_file(tmp_path, driver="GPKG", layer="tiles")
    gpd.GeoDataFrame(pd.concat(polys, ignore_index=True), crs=crs).to_file(
        tmp_path, driver="GPKG", layer="polygons"
    )


# ----------------------------------------------------------------------------- public
def _stamp(
    catalog: Path, final: Path, box: str, seasons: list[str], overlap_px: int, east_crs: str | None
) -> dict[str, Any]:
    """Everything the stand-in depends on: arguments, library source and the catalog."""
    import vitseg.synthetic as synthetic
    from vitseg.io import sha256_file

    truth = {s: catalog / "truth" / f"{box}_{s}.tif" for s in seasons}
    for season, p in truth.items():
        if not p.exists():
            raise MissingFileError(
                f"no truth raster {p} for season {season!r}; write the catalog with "
                "vitseg.synthetic.write_catalog(catalog_dir, boxes=[box], seasons=[...])"
            )
    meta = catalog / "synthetic.json"
    return {
        "version": STANDIN_VERSION,
        "catalog": str(catalog),
        "out_dir": str(final),
        "box": box,
        "seasons": seasons,
        "overlap_px": overlap_px,
        "east_crs": east_crs,
        "source_sha256": {
            "standin.py": _sha256_bytes(Path(__file__).read_bytes()),
            "_standin_items.py": _sha256_bytes(
                (Path(__file__).parent / "_standin_items.py").read_bytes()
            ),
            "synthetic": synthetic._source_sha256(),
        },
        "catalog_sha256": {
            "items.json": sha256_file(catalog / "items.json"),
            "synthetic.json": sha256_file(meta) if meta.exists() else None,
            **{f"truth/{p.name}": sha256_file(p) for p in truth.values()},
        },
    }


def write_standin(
    catalog_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    box: str,
    seasons: Sequence[str],
    overlap_px: int = 32,
    east_crs: str | None = "EPSG:32631",
) -> StandIn:
    """Write the real path's inputs (STAC items, AOI, labels, reference tiles) from simulated scenes.

    Every scene of ``box`` is cut into a west and an east part that overlap by
    ``overlap_px`` columns, like two neighbouring MGRS tiles of the same pass; the east
    part is reprojected into ``east_crs`` (nearest for SCL, bilinear for reflectance DN,
    nodata 0). Both parts become COGs and items in Earth Search v1's structure (ids
    ``S2A_30NYM_20210116_0_L2A`` / ``S2A_31NAG_20210116_0_L2A``, the same datetime,
    footprints of their valid pixels, ``proj:*`` per asset, MGRS properties of their own
    tile, ``eo:cloud_cover`` from their own SCL and no ``vitseg:*`` property).

    Written (atomically, as one folder):

    * ``out_dir/stac/items.json`` (ItemCollection, absolute hrefs), ``stac/collection.json``
      and the COGs under ``stac/<item id>/<band>.tif``.
    * ``out_dir/aoi.gpkg``: one polygon (column ``name``) a few pixels inside the scene
      that crosses the seam, in EPSG:3857.
    * ``out_dir/labels.gpkg`` in the scenes' CRS: layer ``labels``, the first season's
      mines and built areas as polygons with column ``landcover`` in the researcher's
      words ("galamsey", "settlement"; map them with
      ``{"galamsey": "mines", "settlement": "built"}``), and layer ``extent``, the
      labelled extent (the scene without its southern 15 %).
    * ``out_dir/reference_tiles.gpkg`` in the scenes' CRS: layer ``tiles``, three
      non-overlapping 640 m squares (column ``tile``: ``"ref_1"``... by decreasing mine
      area) where the last season's mines are densest, and layer ``polygons``, the mines
      and built areas inside them (columns ``tile``, ``class``).

    Parameters
    ----------
    catalog_dir
        Folder written by :func:`vitseg.synthetic.write_catalog`.
    out_dir
        Stand-in folder. An existing one written with the same arguments, library source
        and catalog is reused (a cache hit returns at once).
    box
        A box of the catalog, e.g. ``"kibi"``.
    seasons
        Seasons of the catalog whose items are served; labels come from the first, the
        reference tiles from the last.
    overlap_px
        Overlap of the two parts in 10 m pixels (even, >= 0).
    east_crs
        UTM CRS of the east part (``"EPSG:32631"``: the next zone east of 30N), or None to
        keep the scenes' CRS (the east part is then a plain window).

    Returns
    -------
    StandIn
        The paths written.

    Raises
    ------
    MissingFileError
        ``catalog_dir`` has no ``items.json`` or no truth raster of a season.
    ParamsError
        Unknown box or season, odd or too large ``overlap_px``, a non-UTM ``east_crs``, or a
        scene too small for three 64 px reference tiles (it needs ``size_px >= 128``).

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from vitseg.synthetic import write_catalog
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> cat = write_catalog(d / "cat", boxes=("kibi",), seasons=("2021-22",),
    ...                     dates_per_season=1, size_px=128)
    >>> s = write_standin(cat.parent, d / "standin", box="kibi", seasons=["2021-22"])
    >>> items = json.loads(s.items.read_text())["features"]
    >>> [(it["id"], it["properties"]["proj:epsg"]) for it in items]
    [('S2A_30NYM_20220114_0_L2A', 32630), ('S2A_31NAG_20220114_0_L2A', 32631)]
    """
    from vitseg.io import atomic_path, read_json, write_json

    catalog = Path(catalog_dir).resolve()
    final = Path(out_dir).resolve()
    seasons = [str(s) for s in seasons] if not isinstance(seasons, str) else [seasons]
    if isinstance(overlap_px, bool) or not isinstance(overlap_px, (int, np.integer)):
        raise ParamsError(f"'overlap_px' must be an even int >= 0; got {overlap_px!r}")
    overlap_px = int(overlap_px)
    if overlap_px < 0 or overlap_px % 2:
        raise ParamsError(
            f"'overlap_px' must be an even int >= 0 (so the 20 m bands cut cleanly); "
            f"got {overlap_px}"
        )
    if east_crs is not None:
        try:
            zone = _utm_zone(east_crs)
        except Exception as err:
            raise ParamsError(
                f"'east_crs' {east_crs!r} is not a CRS; pass e.g. 'EPSG:32631'"
            ) from err
        if zone is None:
            raise ParamsError(
                f"'east_crs' must be a UTM CRS as Sentinel-2 tiles use (EPSG:326xx/327xx, "
                f"e.g. 'EPSG:32631') or None; got {east_crs!r}"
            )
        east_crs = f"EPSG:{32600 + zone[0] if zone[1] else 32700 + zone[0]}"
    src_items = _read_catalog_items(catalog, box, seasons)
    stamp = _stamp(catalog, final, box, seasons, overlap_px, east_crs)
    paths = StandIn(
        root=final,
        items=final / "stac" / "items.json",
        aoi_file=final / "aoi.gpkg",
        labels_file=final / "labels.gpkg",
        reference_tiles_file=final / "reference_tiles.gpkg",
    )
    meta = final / "standin.json"
    if meta.exists() and all(
        p.exists()
        for p in (paths.items, paths.aoi_file, paths.labels_file, paths.reference_tiles_file)
    ):
        try:
            if read_json(meta) == json.loads(json.dumps(stamp)):
                return paths
        except (OSError, ValueError):
            pass

    from vitseg.synthetic import load_truth

    with atomic_path(final, suffix="") as tmp:
        tmp.mkdir(parents=True)
        items, grid, _ = _split_items(
            tmp, final, src_items, overlap_px=overlap_px, east_crs=east_crs
        )
        for it in items:
            if any(k.startswith("vitseg:") for k in it["properties"]):
                raise VitsegError(f"item {it['id']} still has a vitseg:* property")  # a bug
        write_json(tmp / "stac" / "items.json", {"type": "FeatureCollection", "features": items})
        write_json(tmp / "stac" / "collection.json", _collection(items, final))
        _write_aoi(tmp / "aoi.gpkg", grid)
        _write_labels(tmp / "labels.gpkg", load_truth(catalog, box, seasons[0]))
        _write_reference_tiles(tmp / "reference_tiles.gpkg", load_truth(catalog, box, seasons[-1]))
        write_json(tmp / "standin.json", stamp)
    return paths


def fill_sample_from_truth(
    sheet: str | os.PathLike[str],
    catalog_dir: str | os.PathLike[str],
    *,
    box: str,
    season: str,
    out: str | os.PathLike[str],
    interpreter: str = "stand-in: simulated truth",
) -> Path:
    """Label an accuracy sample's points from the simulated truth (a stand-in interpreter).

    Each point's reference class is the truth of ``season`` at the pixel holding its
    ``lon``/``lat`` (reprojected to the truth's CRS, nearest pixel); points outside the
    box or the scene are "cannot tell".

    Parameters
    ----------
    sheet
        CSV sheet of a sample (:func:`vitseg.accuracy.write_sample`): columns
        ``point_id``, ``lon``, ``lat`` (WGS84) at least.
    catalog_dir
        Folder written by :func:`vitseg.synthetic.write_catalog`.
    box, season
        Whose truth to read, e.g. ``"kibi"``, ``"2021-22"``.
    out
        CSV to write (atomically), in the interpretation page's export format:
        ``point_id``, ``reference_class`` (a class name or "cannot tell"),
        ``interpreter``, ``labelled_at`` (a fixed ISO time, so reruns write the same
        file) and ``map_revealed`` (False).
    interpreter
        Written in the ``interpreter`` column.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    MissingFileError
        ``sheet`` does not exist.
    SampleError
        ``sheet`` lacks ``point_id``, ``lon`` or ``lat``.
    VitsegError
        No truth raster for ``box``/``season`` under ``catalog_dir``.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from vitseg.synthetic import write_catalog
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> cat = write_catalog(d / "cat", boxes=("kibi",), seasons=("2021-22",),
    ...                     dates_per_season=1, size_px=32)
    >>> pd.DataFrame({"point_id": [1], "lon": [0.0], "lat": [0.0]}).to_csv(d / "s.csv")
    >>> out = fill_sample_from_truth(d / "s.csv", cat.parent, box="kibi", season="2021-22",
    ...                              out=d / "filled.csv")
    >>> pd.read_csv(out)[["point_id", "reference_class", "map_revealed"]].values.tolist()
    [[1, 'cannot tell', False]]
    """
    import pandas as pd
    from pyproj import Transformer

    from vitseg.io import write_table
    from vitseg.synthetic import load_truth

    path = Path(sheet)
    if not path.exists():
        raise MissingFileError(
            f"no sample sheet {path}; write one with vitseg.accuracy.write_sample(sample, "
            "'sample.gpkg') (the sheet is the .csv beside it)"
        )
    table = pd.read_csv(path)
    missing = [c for c in ("point_id", "lon", "lat") if c not in table.columns]
    if missing:
        raise SampleError(
            f"sheet {path.name} lacks columns {missing}; it has {list(table.columns)}. "
            "Pass the CSV sheet that vitseg.accuracy.write_sample writes."
        )
    truth = load_truth(catalog_dir, box, season)
    arr = np.asarray(truth.values)
    tr = truth.rio.transform()
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=float)
    xs, ys = Transformer.from_crs("EPSG:4326", truth.rio.crs, always_xy=True).transform(lon, lat)
    cols, rows = ~tr * (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    labels: list[str] = []
    for r, c in zip(np.asarray(rows, dtype=float), np.asarray(cols, dtype=float), strict=True):
        if not (np.isfinite(r) and np.isfinite(c)):
            labels.append(_CANNOT_TELL)
            continue
        ri, ci = math.floor(r), math.floor(c)
        inside = 0 <= ri < arr.shape[0] and 0 <= ci < arr.shape[1]
        code = int(arr[ri, ci]) if inside else IGNORE_INDEX
        labels.append(CLASSES[code] if code < len(CLASSES) else _CANNOT_TELL)
    filled = pd.DataFrame(
        {
            "point_id": table["point_id"].to_numpy(),
            "reference_class": labels,
            "interpreter": interpreter,
            "labelled_at": _LABELLED_AT,
            "map_revealed": False,
        }
    )
    return write_table(filled, out)
