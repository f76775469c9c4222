"""The local static STAC catalog of simulated scenes, and its truth rasters.

:func:`write_catalog` writes the catalog (cached on its arguments and
:data:`~vitseg.synthetic.SYNTHETIC_VERSION`); :func:`load_truth` reads a truth raster back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xarray as xr

from vitseg.constants import IGNORE_INDEX, S2_BANDS_10, S2_BANDS_20M
from vitseg.errors import MissingCRSError, VitsegError
from vitseg.synthetic.base import BOXES, SYNTHETIC_VERSION, _box_grid, _Grid, _rasterize, _rng
from vitseg.synthetic.items import (
    _baseline,
    _collection_dict,
    _footprint,
    _item_dict,
    _mgrs,
    _parse_season,
    _write_cog,
    season_dates,
)
from vitseg.synthetic.render import _block_mean, _render, _scl, _to_dn
from vitseg.synthetic.world import _make_worlds, _mines_for


def write_catalog(
    root: str | os.PathLike[str],
    *,
    boxes: Sequence[str] = ("obuasi", "kibi"),
    seasons: Sequence[str] = ("2020-21", "2021-22"),
    dates_per_season: int = 3,
    size_px: int | None = None,
    seed: int = 0,
    crs: str = "EPSG:32630",
) -> Path:
    """Write a local static STAC catalog of simulated Sentinel-2 L2A scenes.

    Parameters
    ----------
    root
        Output folder (e.g. ``data/synthetic/demo``). Written to a temporary folder beside
        it and renamed on success; an existing catalog written with the same arguments and
        generator version is reused (cache hit returns at once).
    boxes
        Names in :data:`BOXES`; the real asm-map polygons of each box are the mining class.
    seasons
        Dry seasons as ``"YYYY-YY"`` (``"2020-21"`` = Nov 2020 - Mar 2021). Mining grows
        from each season to the next.
    dates_per_season
        Acquisition dates per season (spread over the dry season, see :func:`season_dates`).
    size_px
        ``None``: the whole box at 10 m (about 1480 x 1480 px). An int: a square window of
        that many 10 m pixels (rounded up to even) centred on the densest mining of the box.
    seed
        Everything (world, clouds, radiometry) is deterministic from it.
    crs
        Projected CRS of the scenes (UTM; both boxes are in zone 30N).

    Returns
    -------
    pathlib.Path
        ``root/catalog.json``.

    Raises
    ------
    VitsegError
        Unknown box, malformed season, geographic or unknown ``crs``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cat = write_catalog(tempfile.mkdtemp(), boxes=("kibi",), seasons=("2021-22",),
    ...                     dates_per_season=1, size_px=32)
    >>> sorted(p.name for p in cat.parent.iterdir())[:3]
    ['catalog.json', 'items.json', 'labels']
    """
    from pyproj import CRS

    from vitseg.io import atomic_path, read_json, write_json

    try:
        crs_obj = CRS.from_user_input(crs)
    except Exception as exc:
        raise MissingCRSError(f"crs {crs!r} is not a valid CRS; pass e.g. 'EPSG:32630'") from exc
    if crs_obj.is_geographic:
        raise VitsegError(
            f"crs {crs!r} is geographic; the scenes need a metric UTM CRS, e.g. 'EPSG:32630'"
        )
    final = Path(root).resolve()
    boxes = list(boxes)
    seasons = list(seasons)
    for b in boxes:
        if b not in BOXES:
            raise VitsegError(
                f"unknown box {b!r}; expected one of {sorted(BOXES)} (the asm-map boxes in Ghana)"
            )
    for s in seasons:
        _parse_season(s)
    if size_px is not None and int(size_px) < 8:
        raise VitsegError(f"size_px must be None or >= 8; got {size_px}")
    args = {
        "version": SYNTHETIC_VERSION,
        "boxes": boxes,
        "seasons": seasons,
        "dates_per_season": int(dates_per_season),
        "size_px": None if size_px is None else int(size_px),
        "seed": int(seed),
        "crs": str(crs),
        "root": str(final),
    }
    meta = final / "synthetic.json"
    if meta.exists() and (final / "catalog.json").exists():
        try:
            if read_json(meta) == args:
                return final / "catalog.json"
        except (OSError, ValueError):
            pass

    with atomic_path(final, suffix="") as tmp:
        tmp.mkdir(parents=True)
        _write_all(tmp, final, args)
        write_json(tmp / "synthetic.json", args)
    return final / "catalog.json"


def _write_all(tmp: Path, final: Path, args: dict[str, Any]) -> None:
    import geopandas as gpd

    from vitseg.io import write_json

    crs = args["crs"]
    seed = args["seed"]
    items: list[dict[str, Any]] = []
    coll_dir = tmp / "sentinel-2-l2a"
    # GDAL compresses in C without the GIL: write COGs in threads while the next date renders.
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    jobs: list[Future[Path]] = []
    for box in args["boxes"]:
        mines_ll = _mines_for(box)
        grid = _box_grid(box, crs, args["size_px"], mines_ll)
        from shapely.geometry import box as shp_box

        box_poly = gpd.GeoSeries([shp_box(*BOXES[box])], crs="EPSG:4326").segmentize(0.001)
        inside = _rasterize(box_poly.to_crs(crs), grid, 1) > 0
        worlds = _make_worlds(
            grid, mines_ll, n_seasons=len(args["seasons"]), seed=seed, key=box, inside=inside
        )
        west, south, east, north = BOXES[box]
        mgrs = _mgrs((west + east) / 2, (south + north) / 2)
        for season, world in zip(args["seasons"], worlds, strict=True):
            tag = f"{box}_{season}"
            _write_cog(
                tmp / "truth" / f"{tag}.tif", world.truth, grid.transform, crs, nodata=IGNORE_INDEX
            )
            labels = gpd.GeoDataFrame(
                {
                    "class": ["mines"] * len(world.mines) + ["built"] * len(world.built),
                    "source": ["asm-map ground truth (real) + simulated growth"] * len(world.mines)
                    + ["simulated settlement"] * len(world.built),
                    "box": box,
                    "season": season,
                },
                geometry=list(world.mines) + list(world.built),
                crs=crs,
            )
            (tmp / "labels").mkdir(exist_ok=True)
            labels.to_file(tmp / "labels" / f"{tag}.gpkg", driver="GPKG", layer="labels")
            dates = season_dates(season, args["dates_per_season"], seed=seed)
            for k, when in enumerate(dates):
                rng = _rng(seed, box, season, k)
                cloud = float(rng.choice([0.0, 0.03, 0.1, 0.25, 0.4]))
                haze = float(rng.uniform(0.0, 0.6))
                partial = (k == 1 and season == args["seasons"][0]) or rng.random() < 0.2
                nodata = float(rng.uniform(0.1, 0.3)) if partial else 0.0
                rend = _render(world, rng, cloud_frac=cloud, haze=haze, nodata_frac=nodata)
                for job in jobs:  # bound memory: the previous date's COGs are done
                    job.result()
                jobs.clear()
                platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
                letter = "A" if platform.endswith("a") else "B"
                zone, lband, sq = mgrs
                item_id = f"S2{letter}_{zone}{lband}{sq}_{when:%Y%m%d}_0_L2A"
                if any(it["id"] == item_id for it in items):
                    item_id = f"S2{letter}_{zone}{lband}{sq}_{when:%Y%m%d}_{box}_L2A"
                folder = coll_dir / item_id
                hrefs_final: dict[str, str] = {}
                offset_dn = 1000 if _baseline(when.date()) >= "04.00" else 0
                refl = rend["refl"]
                for bi, name in enumerate(S2_BANDS_10):
                    if name in S2_BANDS_20M:
                        data = _to_dn(_block_mean(refl[bi]), rend["valid"][::2, ::2], offset_dn)
                        tr = _Grid(grid.x0, grid.y0, 20.0, data.shape[0], data.shape[1], crs)
                    else:
                        data = _to_dn(refl[bi], rend["valid"], offset_dn)
                        tr = grid
                    jobs.append(
                        pool.submit(
                            _write_cog, folder / f"{name}.tif", data, tr.transform, crs, nodata=0
                        )
                    )
                    hrefs_final[name] = str(final / "sentinel-2-l2a" / item_id / f"{name}.tif")
                scl = _scl(world, rend, rng)
                g20 = _Grid(grid.x0, grid.y0, 20.0, scl.shape[0], scl.shape[1], crs)
                jobs.append(
                    pool.submit(_write_cog, folder / "SCL.tif", scl, g20.transform, crs, nodata=0)
                )
                hrefs_final["SCL"] = str(final / "sentinel-2-l2a" / item_id / "SCL.tif")
                item = _item_dict(
                    item_id=item_id,
                    box=box,
                    season=season,
                    when=when,
                    grid=grid,
                    footprint=_footprint(grid, rend["valid"]),
                    hrefs=hrefs_final,
                    scl=scl,
                    mgrs=mgrs,
                    platform=platform,
                )
                items.append(item)

    for job in jobs:
        job.result()
    pool.shutdown()
    items.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    for it in items:
        it["links"] = [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "self", "href": str(final / "sentinel-2-l2a" / it["id"] / f"{it['id']}.json"),
             "type": "application/geo+json"},
        ]  # fmt: skip
        write_json(coll_dir / it["id"] / f"{it['id']}.json", it)
    coll = _collection_dict(items)
    coll["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        *[
            {"rel": "item", "href": f"./{it['id']}/{it['id']}.json", "type": "application/geo+json"}
            for it in items
        ],
    ]
    write_json(coll_dir / "collection.json", coll)
    write_json(
        tmp / "catalog.json",
        {
            "type": "Catalog",
            "id": "vitseg-synthetic",
            "stac_version": "1.0.0",
            "description": (
                "Local static catalog of SIMULATED Sentinel-2 L2A scenes (vitseg.synthetic). "
                "Mining polygons are real (asm-map, CC BY 4.0); the imagery is not."
            ),
            "links": [
                {"rel": "root", "href": "./catalog.json", "type": "application/json"},
                {
                    "rel": "child",
                    "href": "./sentinel-2-l2a/collection.json",
                    "type": "application/json",
                    "title": "sentinel-2-l2a",
                },
            ],
        },
    )
    ic_items = []
    for it in items:
        d = dict(it)
        d["links"] = [ln for ln in it["links"] if ln["rel"] == "self"]
        ic_items.append(d)
    write_json(tmp / "items.json", {"type": "FeatureCollection", "features": ic_items})


# ----------------------------------------------------------------------------- readers
def load_truth(root: str | os.PathLike[str], box: str, season: str) -> xr.DataArray:
    """Read the simulated truth raster of one box and season.

    Parameters
    ----------
    root
        Catalog folder given to :func:`write_catalog`.
    box, season
        E.g. ``"obuasi"``, ``"2020-21"``.

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` uint8 class codes (0 mines, 1 built, 2 vegetation/other, 255 outside the
        box) on the box's 10 m grid, with ``rio.crs``.

    Raises
    ------
    VitsegError
        No truth raster for that box/season under ``root``.
    """
    import rioxarray

    path = Path(root) / "truth" / f"{box}_{season}.tif"
    if not path.exists():
        have = sorted(p.stem for p in (Path(root) / "truth").glob("*.tif"))
        raise VitsegError(
            f"no truth raster {path}; available: {have}. Call "
            "vitseg.synthetic.write_catalog(root, boxes=..., seasons=...) first."
        )
    da = rioxarray.open_rasterio(path, masked=False).squeeze("band", drop=True).load()
    da.name = "truth"
    da.attrs["classes"] = "0 mines, 1 built, 2 vegetation, 255 no data"
    return da  # type: ignore[no-any-return]
