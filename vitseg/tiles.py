"""Cut scenes and label rasters into tiles, split them by spatial block, write chip folders.

The split is by *spatial blocks* (squares of the CRS grid, or the grid cells of
``01_grid_aoi``), never by tile: every tile of a block goes to the same split, and a
tile that straddles blocks of different splits is dropped, so no pixel of a test tile
lies in any training tile, even with overlapping tiles (``stride_px < tile_px``) and
with several dates of the same place (blocks live in map coordinates, not per scene).
The two papers split tiles at random (VitSegh24 §3.2) or reused validation as test;
random tile splits leak neighbouring pixels between splits.

Chip folder layout (the pipeline contract)::

    tiles/images/<tile_id>.tif   float32 reflectance, one band per layer, band names in
                                 the band descriptions, NaN = no data
    tiles/masks/<tile_id>.tif    uint8 class codes, 255 = ignore (no data, clouds)
    tiles/index.csv              tile_id, split, row/col offsets, bounds, crs, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import (
    CRSMismatchError,
    DimensionError,
    GridMismatchError,
    LabelError,
    MissingCRSError,
    NoValidDataError,
    ParamsError,
)
from vitseg.io import atomic_path, atomic_write_text
from vitseg.metrics import _whole_codes

__all__ = ["SPLITS", "make_tiles", "split_tiles", "write_tiles"]

#: Split names, in the order of ``fractions``.
SPLITS: tuple[str, str, str] = ("train", "val", "test")

#: Class names that count as background when computing ``target_frac``.
_BACKGROUND_NAMES = ("vegetation", "background")


def _as_scene(scene: xr.DataArray) -> xr.DataArray:
    if not isinstance(scene, xr.DataArray):
        raise DimensionError(f"scene must be an xarray.DataArray; got {type(scene).__name__}")
    if "time" in scene.dims:
        if scene.sizes["time"] != 1:
            raise DimensionError(
                f"scene has {scene.sizes['time']} dates; tile one date at a time, "
                "e.g. make_tiles(cube.isel(time=0), ...)"
            )
        scene = scene.isel(time=0)
    if "band" not in scene.dims:
        scene = scene.expand_dims(band=["band_1"])
    if set(scene.dims) != {"band", "y", "x"}:
        raise DimensionError(f"scene must have dims (band, y, x); got {tuple(scene.dims)}")
    if scene.rio.crs is None:
        raise MissingCRSError("scene has no CRS; set it with scene.rio.write_crs('EPSG:32630')")
    if scene.dtype.kind not in "iuf":
        raise DimensionError(
            f"scene must hold real numbers (float reflectance, NaN = no data); got dtype "
            f"{scene.dtype}. Convert it, e.g. scene.astype('float32')."
        )
    if scene.sizes["band"] == 0:
        raise DimensionError("scene has 0 bands; select at least one band")
    return scene.transpose("band", "y", "x")


def _whole(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, refusing NaN, fractions, bools and strings."""
    ok = isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not np.isfinite(value) or float(value) != int(value) or value < minimum:
        raise ParamsError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _fraction(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise ParamsError(f"{name!r} must be in [0, 1]; got {value!r}")
    return float(value)


def _check_same_grid(scene: xr.DataArray, labels: xr.DataArray) -> None:
    if not isinstance(labels, xr.DataArray):
        raise DimensionError(
            f"labels must be an xarray.DataArray (y, x) on the scene's grid; got "
            f"{type(labels).__name__}. Rasterise them with "
            "vitseg.labels.rasterize_labels(gdf, like=scene)."
        )
    if labels.dims != ("y", "x"):
        raise DimensionError(f"labels must have dims (y, x); got {tuple(labels.dims)}")
    if labels.rio.crs is not None and labels.rio.crs != scene.rio.crs:
        raise CRSMismatchError(
            f"labels CRS {labels.rio.crs} differs from scene CRS {scene.rio.crs}; "
            "rasterise the labels with like=scene"
        )
    if (labels.sizes["y"], labels.sizes["x"]) != (scene.sizes["y"], scene.sizes["x"]):
        raise GridMismatchError(
            f"labels shape {labels.shape} differs from scene shape "
            f"{(scene.sizes['y'], scene.sizes['x'])}; rasterise the labels with like=scene"
        )
    if not (
        np.allclose(labels["x"].values, scene["x"].values)
        and np.allclose(labels["y"].values, scene["y"].values)
    ):
        raise GridMismatchError(
            "labels and scene have different x/y coordinates (same shape, shifted grid); "
            "rasterise the labels with like=scene"
        )


def _window_sums(
    mask: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], cols: np.ndarray[Any, Any], size: int
) -> np.ndarray[Any, Any]:
    """Sum of ``mask`` over ``size``-px windows at each (row, col) via an integral image."""
    ii = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype="int64")
    ii[1:, 1:] = np.cumsum(np.cumsum(mask.astype("int64"), axis=0), axis=1)
    r0, c0 = rows, cols
    r1, c1 = rows + size, cols + size
    return np.asarray(ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0])


def _target_codes(classes: Sequence[str]) -> list[int]:
    return [i for i, c in enumerate(classes) if c not in _BACKGROUND_NAMES]


def make_tiles(
    scene: xr.DataArray,
    labels: xr.DataArray,
    *,
    tile_px: int,
    stride_px: int | None = None,
    max_nodata_frac: float = 0.5,
    min_labelled_frac: float = 0.0,
    id_prefix: str = "",
    columns: Mapping[str, Any] | None = None,
) -> Any:
    """Index the tiles of one scene, dropping blank and mostly-no-data tiles.

    A pixel is no-data when any band is NaN, when all bands are 0 (blank tiles of
    VitSegh24 §3.2) or when its label is ``IGNORE_INDEX``.

    Parameters
    ----------
    scene
        ``(band, y, x)`` reflectance (numpy or dask; a ``time`` dim of size 1 is
        dropped) with a CRS.
    labels
        ``(y, x)`` uint8 labels on the same grid (:func:`vitseg.labels.rasterize_labels`
        with ``like=scene``).
    tile_px
        Tile side in pixels.
    stride_px
        Step between tiles (default ``tile_px``: no overlap).
    max_nodata_frac
        Drop tiles whose no-data fraction exceeds this (0..1). Fully blank tiles are
        always dropped.
    min_labelled_frac
        Drop tiles whose fraction of target-class pixels (every class except
        vegetation/background, e.g. mines and built) is below this (VitSegh24 kept
        tiles that intersect the mining polygons). 0 keeps all.
    id_prefix
        Prefix of tile ids, e.g. ``"obuasi_2020-12-15_"``; ids are
        ``<prefix>r<row>_c<col>``.
    columns
        Constant columns to add (e.g. ``{"box": "obuasi", "date": "2020-12-15"}``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per kept tile, in the scene's CRS: ``tile_id``, ``row_off``,
        ``col_off``, ``height``, ``width``, ``minx``, ``miny``, ``maxx``, ``maxy``,
        ``crs``, ``nodata_frac``, ``target_frac``, the ``columns``, and the tile
        footprint as geometry. ``attrs["n_candidates"]`` counts tiles before filtering.

    Raises
    ------
    DimensionError
        Wrong dims, or a scene smaller than one tile.
    GridMismatchError, CRSMismatchError
        Labels not on the scene's grid.
    ParamsError
        Sizes or fractions out of range, or not numbers (``tile_px=2.5`` is refused,
        never truncated).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> sc = xr.DataArray(np.ones((1, 4, 4), "float32"), dims=("band", "y", "x"),
    ...     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ... ).rio.write_crs("EPSG:32630")
    >>> lab = xr.zeros_like(sc.isel(band=0), dtype="uint8")
    >>> make_tiles(sc, lab, tile_px=2)["tile_id"].tolist()
    ['r00000_c00000', 'r00000_c00002', 'r00002_c00000', 'r00002_c00002']
    """
    import geopandas as gpd
    import shapely

    scene = _as_scene(scene)
    _check_same_grid(scene, labels)
    tile_px = _whole("tile_px", tile_px)
    stride = tile_px if stride_px is None else _whole("stride_px", stride_px)
    max_nodata_frac = _fraction("max_nodata_frac", max_nodata_frac)
    min_labelled_frac = _fraction("min_labelled_frac", min_labelled_frac)
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    if ny < tile_px or nx < tile_px:
        raise DimensionError(
            f"scene is {ny} x {nx} px, smaller than one {tile_px}-px tile; use a smaller tile_px"
        )

    data = scene.data
    nanany = xr.DataArray(data, dims=("band", "y", "x")).isnull().any("band")
    zeroall = (xr.DataArray(data, dims=("band", "y", "x")) == 0).all("band")
    lab = np.asarray(labels.values)
    nodata = np.asarray((nanany | zeroall).values) | (lab == IGNORE_INDEX)
    classes = labels.attrs.get("classes", ("mines", "built", "vegetation"))
    target = np.isin(lab, _target_codes(classes))

    rows_1d = np.arange(0, ny - tile_px + 1, stride)
    cols_1d = np.arange(0, nx - tile_px + 1, stride)
    rr, cc = (a.ravel() for a in np.meshgrid(rows_1d, cols_1d, indexing="ij"))
    area = tile_px * tile_px
    nodata_frac = _window_sums(nodata, rr, cc, tile_px) / area
    target_frac = _window_sums(target, rr, cc, tile_px) / area
    keep = (
        (nodata_frac <= max_nodata_frac) & (nodata_frac < 1.0) & (target_frac >= min_labelled_frac)
    )

    t = scene.rio.transform(recalc=True)
    rr, cc = rr[keep], cc[keep]
    x0 = t.c + cc * t.a
    x1 = t.c + (cc + tile_px) * t.a
    y0 = t.f + rr * t.e
    y1 = t.f + (rr + tile_px) * t.e
    minx, maxx = np.minimum(x0, x1), np.maximum(x0, x1)
    miny, maxy = np.minimum(y0, y1), np.maximum(y0, y1)
    crs = scene.rio.crs
    df = pd.DataFrame(
        {
            "tile_id": [f"{id_prefix}r{r:05d}_c{c:05d}" for r, c in zip(rr, cc, strict=True)],
            "row_off": rr.astype("int64"),
            "col_off": cc.astype("int64"),
            "height": tile_px,
            "width": tile_px,
            "minx": minx,
            "miny": miny,
            "maxx": maxx,
            "maxy": maxy,
            "crs": crs.to_string(),
            "nodata_frac": nodata_frac[keep],
            "target_frac": target_frac[keep],
        }
    )
    for key, value in (columns or {}).items():
        df[key] = value
    out = gpd.GeoDataFrame(df, geometry=shapely.box(minx, miny, maxx, maxy), crs=crs)
    out.attrs["n_candidates"] = len(keep)
    return out


def _check_index_columns(index: Any, columns: Sequence[str], what: str) -> None:
    """Refuse a tile index lacking ``columns`` or holding non-finite values in them."""
    missing = [c for c in columns if c not in getattr(index, "columns", ())]
    if missing:
        raise ParamsError(
            f"{what} needs a tile index from make_tiles; it lacks columns {missing} "
            f"(columns: {list(getattr(index, 'columns', []))})"
        )
    values = np.asarray(index[list(columns)], dtype="float64")
    if not np.isfinite(values).all():
        raise ParamsError(f"tile index columns {list(columns)} hold NaN or inf; rebuild it")


def _block_sets_grid(index: Any, size: float, groups: str | None) -> list[frozenset[Any]]:
    """Blocks of a ``size`` grid each tile overlaps.

    The grid is anchored at the top-left corner of the tiles of each group (the whole
    index when ``groups`` is None), so blocks of a multiple of the tile size hold whole
    tiles. Block ids are ``<group>:<col>_<row>``.
    """
    eps = 1e-6 * size
    keys = index[groups].astype(str).to_numpy() if groups else np.full(len(index), "")
    anchors = {}
    for key in np.unique(keys):
        sel = index[keys == key]
        anchors[key] = (float(sel["minx"].min()), float(sel["maxy"].max()))
    out = []
    bounds = index[["minx", "miny", "maxx", "maxy"]].to_numpy()
    for key, (minx, miny, maxx, maxy) in zip(keys, bounds, strict=True):
        ax, ay = anchors[key]
        ix = range(int(np.floor((minx - ax) / size)), int(np.floor((maxx - ax - eps) / size)) + 1)
        iy = range(int(np.floor((ay - maxy) / size)), int(np.floor((ay - miny - eps) / size)) + 1)
        out.append(frozenset(f"{key}:{i}_{j}" for i in ix for j in iy))
    return out


def _check_disjoint_groups(index: Any, groups: str) -> None:
    import shapely

    boxes = {
        str(k): shapely.box(g["minx"].min(), g["miny"].min(), g["maxx"].max(), g["maxy"].max())
        for k, g in index.groupby(groups)
    }
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if boxes[a].intersection(boxes[b]).area > 0:
                raise ParamsError(
                    f"groups {a!r} and {b!r} of column {groups!r} overlap in space; their "
                    "block grids would differ and tiles could leak between splits. Use "
                    "groups=None (one grid) or blocks=<grid cells>."
                )


def _block_sets_cells(index: Any, blocks: Any, crs: Any) -> list[frozenset[Any]]:
    """Grid cells (by their index label) each tile overlaps with positive area."""
    import shapely

    if blocks.crs is None:
        raise MissingCRSError("blocks GeoDataFrame has no CRS; set it with blocks.set_crs(...)")
    cells = blocks.to_crs(crs)
    geoms = cells.geometry.values
    tree = shapely.STRtree(geoms)
    out = []
    for tile in shapely.box(index["minx"], index["miny"], index["maxx"], index["maxy"]):
        hits = tree.query(tile, predicate="intersects")
        area = shapely.area(shapely.intersection(geoms[hits], tile))
        tol = 1e-9 * shapely.area(tile)
        out.append(
            frozenset(str(cells.index[h]) for h, a in zip(hits, area, strict=True) if a > tol)
        )
    return out


def split_tiles(
    index: Any,
    *,
    block_px: int | None = None,
    block_m: float | None = None,
    blocks: Any = None,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    groups: str | None = None,
) -> Any:
    """Split tiles 60/20/20 into train/val/test by spatial block, reproducibly.

    Blocks are squares of ``block_m`` metres (or ``block_px`` pixels of the tiles'
    resolution) of a grid anchored at the top-left corner of the tiles (of each group
    of ``groups``, e.g. one grid per box), or the polygons of ``blocks``
    (e.g. the grid cells written by ``01_grid_aoi``). Blocks are shuffled with
    ``seed`` and each is given to the split furthest below its target share of tiles
    (every split gets at least one block when there are enough blocks). A tile takes
    the split of its blocks; a tile overlapping blocks of different splits, or no
    block at all, is dropped. Hence no pixel of a test (or validation) tile lies in
    any training tile. Tiles of the same place on different dates share blocks and
    therefore splits.

    Parameters
    ----------
    index
        Tile index from :func:`make_tiles` (several scenes concatenated is fine, in
        one CRS).
    block_px, block_m, blocks
        Exactly one: block side in pixels, block side in CRS units, or a
        GeoDataFrame of block polygons.
    fractions
        Target shares of tiles for ``("train", "val", "test")``; must sum to 1.
    seed
        Random seed of the block shuffle.
    groups
        Optional column (e.g. ``"box"``) whose spatially disjoint groups each get their
        own block grid anchored at the group's tiles, so that a ``block_px`` that is a
        multiple of ``tile_px`` drops no tile. Blocks of all groups are split together.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``index`` with columns ``block`` and ``split``, straddling tiles
        removed; ``attrs["n_dropped_straddling"]`` counts them and
        ``attrs["block_split"]`` maps block ids to splits.

    Raises
    ------
    ParamsError
        Not exactly one block definition, bad fractions, fewer blocks than non-empty
        splits, or overlapping ``groups``.
    CRSMismatchError
        Tiles in several CRSs.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.DataFrame({"minx": [0.0, 10, 20, 30, 40], "maxx": [10.0, 20, 30, 40, 50],
    ...     "miny": 0.0, "maxy": 10.0, "crs": "EPSG:32630"})
    >>> sorted(split_tiles(idx, block_m=10, seed=0)["split"].value_counts().items())
    [('test', 1), ('train', 3), ('val', 1)]
    """
    given = [v is not None for v in (block_px, block_m, blocks)]
    if sum(given) != 1:
        raise ParamsError("pass exactly one of block_px, block_m or blocks")
    fr = np.asarray(fractions, dtype="float64")
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ParamsError(
            f"'fractions' must be 3 non-negative numbers (train, val, test) summing to 1; "
            f"got {tuple(fractions)}"
        )
    if len(index) == 0:
        raise NoValidDataError("tile index is empty; nothing to split (relax max_nodata_frac?)")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParamsError(f"seed must be an integer >= 0; got {seed!r}")
    _check_index_columns(index, ("minx", "miny", "maxx", "maxy"), "split_tiles")
    crs_values = sorted(set(index["crs"])) if "crs" in index.columns else []
    if len(crs_values) > 1:
        raise CRSMismatchError(
            f"tiles are in several CRSs {crs_values}; split each CRS separately or "
            "reproject the scenes to one CRS"
        )
    if blocks is not None:
        import geopandas as gpd

        if not isinstance(blocks, (gpd.GeoDataFrame, gpd.GeoSeries)):
            raise ParamsError(
                f"blocks must be a GeoDataFrame of block polygons (e.g. 01_grid_aoi's cells); "
                f"got {type(blocks).__name__}"
            )
        # a plain DataFrame's .crs would be its 'crs' column, not a CRS
        crs = index.crs if isinstance(index, gpd.GeoDataFrame) else None
        crs = crs or (crs_values[0] if crs_values else None)
        if crs is None:
            raise MissingCRSError("tile index has no CRS (no 'crs' column, no .crs)")
        sets = _block_sets_cells(index, blocks, crs)
    else:
        if block_px is not None:
            _check_index_columns(index, ("width",), "split_tiles(block_px=...)")
            res = float(((index["maxx"] - index["minx"]) / index["width"]).iloc[0])
            size = _whole("block_px", block_px, minimum=0) * res
        else:
            size = float("nan")
            if isinstance(block_m, (int, float, np.integer, np.floating)):
                size = float("nan") if isinstance(block_m, bool) else float(block_m)
        if not np.isfinite(size) or size <= 0:
            raise ParamsError(
                f"block size must be a finite number > 0; got block_px={block_px!r}, "
                f"block_m={block_m!r} (a block of {size} CRS units)"
            )
        if groups is not None:
            if groups not in index.columns:
                raise ParamsError(f"no column {groups!r} in the tile index for 'groups'")
            _check_disjoint_groups(index, groups)
        sets = _block_sets_grid(index, size, groups)

    # Count each tile once, for the block of its centre-most member (first sorted id).
    all_blocks = sorted({b for s in sets for b in s})
    primary = [min(s) if s else None for s in sets]
    counts = pd.Series(primary).value_counts()
    n_active = int(np.count_nonzero(fr))
    if len(all_blocks) < n_active:
        raise ParamsError(
            f"only {len(all_blocks)} spatial block(s) for {n_active} non-empty splits; "
            "use smaller blocks (block_px/block_m) or more grid cells"
        )
    rng = np.random.default_rng(seed)
    order = [all_blocks[i] for i in rng.permutation(len(all_blocks))]
    total = float(sum(counts.get(b, 0) for b in all_blocks)) or 1.0
    assigned = np.zeros(3)
    block_split: dict[Any, str] = {}
    # Seed each non-empty split with one block (test first, then val, then train) so
    # small areas still yield all three splits; then fill by largest deficit.
    seeds = [i for i in (2, 1, 0) if fr[i] > 0]
    for k, b in enumerate(order):
        if k < len(seeds):
            s = seeds[k]
        else:
            deficit = fr * total - assigned
            deficit[fr == 0] = -np.inf
            s = int(np.argmax(deficit))
        block_split[b] = SPLITS[s]
        assigned[s] += counts.get(b, 0)

    splits: list[str | None] = []
    block_col: list[str | None] = []
    for tile_blocks in sets:
        names = {block_split[b] for b in tile_blocks}
        splits.append(names.pop() if len(names) == 1 else None)
        block_col.append(min(tile_blocks) if tile_blocks else None)
    out = index.copy()
    out["block"] = block_col
    out["split"] = splits
    keep = out["split"].notna().to_numpy()
    out = out[keep].reset_index(drop=True)
    out.attrs["n_dropped_straddling"] = int((~keep).sum())
    out.attrs["block_split"] = block_split
    return out


def _label_codes(labels: xr.DataArray) -> np.ndarray[Any, Any]:
    """Labels as uint8 codes: NaN = ``IGNORE_INDEX``; values that would wrap are refused."""
    raw = _whole_codes(
        labels.values, IGNORE_INDEX, "labels",
        "Rasterise them with vitseg.labels.rasterize_labels (NaN = no data).",
    )  # fmt: skip
    if raw.size and (raw.min() < 0 or raw.max() > IGNORE_INDEX):
        out = raw[(raw < 0) | (raw > IGNORE_INDEX)]
        raise LabelError(
            f"labels hold values outside 0..{IGNORE_INDEX} (e.g. {np.unique(out)[:3].tolist()}),"
            f" which would wrap in a uint8 mask; recode them to class codes ({IGNORE_INDEX} = "
            "no data)"
        )
    return np.asarray(raw, dtype="uint8")


def write_tiles(
    scene: xr.DataArray,
    labels: xr.DataArray,
    index: Any,
    path: str | os.PathLike[str],
) -> Path:
    """Write the chips of one scene and merge their rows into ``<path>/index.csv``.

    Call once per scene to build one chip folder from many scenes. Each GeoTIFF is
    written atomically; the index is rewritten atomically last, so an interrupted run
    never lists a chip that is missing or incomplete. Rows of ``index`` whose
    ``tile_id`` already exists in ``index.csv`` replace the old rows.

    Parameters
    ----------
    scene
        ``(band, y, x)`` reflectance (computed here, once) with a CRS and ``band``
        coordinate holding band names.
    labels
        ``(y, x)`` uint8 labels on the scene's grid.
    index
        Rows of :func:`make_tiles` / :func:`split_tiles` for this scene.
    path
        Chip folder (created).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParamsError
        ``path`` is a file, the index lacks columns or has tile ids holding a path
        separator (chips would land outside the folder).
    DimensionError
        Index rows outside the scene, or labels that are not numbers.
    LabelError
        Labels that are not whole codes in ``0..255`` (they would wrap or be truncated
        in the uint8 masks); NaN labels are no data (255).

    Notes
    -----
    Masks are ``IGNORE_INDEX`` wherever any band of the image is NaN (clouds, edges).
    """
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    scene = _as_scene(scene)
    _check_same_grid(scene, labels)
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ParamsError(
            f"path {root} is a file; write_tiles needs a chip folder, e.g. {root.parent / 'tiles'}"
        )
    _check_index_columns(index, ("row_off", "col_off", "height", "width"), "write_tiles")
    ids = [str(t) for t in index["tile_id"]] if "tile_id" in index.columns else []
    if len(ids) != len(index):
        raise ParamsError("write_tiles needs a tile index from make_tiles with a 'tile_id' column")
    bad_ids = [t for t in ids if not t or t in (".", "..") or "/" in t or os.sep in t]
    if bad_ids:
        raise ParamsError(
            f"tile ids {bad_ids[:3]} hold a path separator or are empty; chips would be "
            "written outside images/ and masks/. Use an id_prefix without '/' or '..'"
        )
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    r0, c0 = index["row_off"].to_numpy(), index["col_off"].to_numpy()
    r1, c1 = r0 + index["height"].to_numpy(), c0 + index["width"].to_numpy()
    outside = (r0 < 0) | (c0 < 0) | (r1 > ny) | (c1 > nx) | (r1 <= r0) | (c1 <= c0)
    if outside.any():
        raise DimensionError(
            f"{int(outside.sum())} tiles of the index (e.g. {ids[int(np.argmax(outside))]!r}) "
            f"lie outside the {ny} x {nx}-px scene; pass the index that make_tiles made "
            "for this scene"
        )
    lab = _label_codes(labels)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    img = np.asarray(scene.values, dtype="float32")
    bands = [str(b) for b in scene["band"].values]
    transform = scene.rio.transform(recalc=True)
    crs = scene.rio.crs
    for row in index.itertuples(index=False):
        r, c, h, w = int(row.row_off), int(row.col_off), int(row.height), int(row.width)
        chip = img[:, r : r + h, c : c + w]
        mask = lab[r : r + h, c : c + w].copy()
        mask[np.isnan(chip).any(axis=0)] = IGNORE_INDEX
        tr = window_transform(Window(c, r, w, h), transform)  # type: ignore[no-untyped-call]
        profile = {
            "driver": "GTiff", "height": h, "width": w, "crs": crs, "transform": tr,
            "compress": "deflate", "tiled": False,
        }  # fmt: skip
        with atomic_path(root / "images" / f"{row.tile_id}.tif") as tmp:
            with rasterio.open(
                tmp, "w", count=len(bands), dtype="float32", nodata=float("nan"), **profile
            ) as dst:
                dst.write(chip)
                dst.descriptions = tuple(bands)
        with atomic_path(root / "masks" / f"{row.tile_id}.tif") as tmp:
            with rasterio.open(
                tmp, "w", count=1, dtype="uint8", nodata=IGNORE_INDEX, **profile
            ) as dst:
                dst.write(mask[None])
    table = pd.DataFrame(index.drop(columns="geometry", errors="ignore"))
    csv = root / "index.csv"
    if csv.exists():
        old = pd.read_csv(csv)
        old = old[~old["tile_id"].isin(table["tile_id"])]
        table = pd.concat([old, table], ignore_index=True)
    atomic_write_text(csv, table.to_csv(index=False))
    return root
