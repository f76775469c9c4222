# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Label rasters, tiles and a spatial train/validation/test split
#
# **Purpose.** Turn the mining polygons into label rasters on the grid of each Sentinel-2
# scene, cut scenes and labels into tiles, drop blank and mostly-no-data tiles (VitSegh24
# §3.2), and split the tiles 60/20/20 into train/validation/test **by spatial block**:
# all tiles of a block go to one split, and tiles that straddle blocks of different
# splits are dropped, so no pixel of a test tile is ever seen in training. (VitSegh24
# split tiles at random; Gallwey et al. validated on random crops of the training
# scene. Both let neighbouring pixels leak between splits.)
#
# Tiles come from the single-date scenes of the **first season** (several dates of the
# same place give radiometric variety, as Gallwey et al. trained on three dates of one
# area); the same place on different dates always lands in the same split.
# Classes follow Gallwey et al.: 0 mines, 1 built, 2 vegetation (the background);
# 255 marks no data and clouds and is ignored by losses and metrics.
#
# **Inputs.** `<report_dir>/data/items.json` (frozen by 02_build_cube) and the labels.
# Real path: `labels_file`, any polygon file (any CRS) whose `labels_class_column` is
# mapped onto vitseg's classes by `labels_class_map`, and the labelled extent
# (`labels_extent_file`, else the labels file's `extent` layer, else the area): inside it,
# unlabelled pixels are vegetation (the background); outside it, no data. Demo: the
# simulated catalog's label polygons `<catalog_dir>/labels/<box>_<season>.gpkg`.
#
# **Outputs.** `<report_dir>/data/tiles/{images,masks}/<tile_id>.tif` and
# `data/tiles/index.csv`; figures (label rasters, split maps, class distribution,
# co-occurrence); tables (tiles per split, class fractions per split, co-occurrence).

# %% tags=["parameters"]
report_dir = "reports/demo"
seed = 0
simulated = True
catalog_dir = "data/synthetic/demo"
aoi = ["obuasi", "kibi"]
seasons = ["2020-21", "2021-22"]
crs = "EPSG:32630"
dask_scheduler = ""
labels_file = ""
labels_class_column = "class"
labels_class_map = {}
labels_extent_file = ""
tile_px = 256
stride_px = 256
block_px = 512
max_nodata_frac = 0.5
min_labelled_frac = 0.0
split_fractions = [0.6, 0.2, 0.2]
cloud_method = "scl"
all_touched = False
chunks_px = 512
cooccurrence_offset = [0, 1]

# %%
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import vitseg
from vitseg import aoi as vaoi
from vitseg import cloud, cluster, cube, io, labels, periods, plotting, stac, tiles
from vitseg.constants import CLASSES, S2_BANDS_10
from vitseg.errors import MissingFileError

io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = io.start_run(
    report_dir,
    params={
        "seed": seed, "simulated": simulated, "catalog_dir": catalog_dir, "aoi": aoi,
        "seasons": seasons, "crs": crs, "dask_scheduler": dask_scheduler,
        "labels_file": labels_file, "labels_class_column": labels_class_column,
        "labels_class_map": labels_class_map, "labels_extent_file": labels_extent_file,
        "tile_px": tile_px, "stride_px": stride_px,
        "block_px": block_px, "max_nodata_frac": max_nodata_frac,
        "min_labelled_frac": min_labelled_frac, "split_fractions": split_fractions,
        "cloud_method": cloud_method, "all_touched": all_touched,
        "cooccurrence_offset": cooccurrence_offset,
    },
    notebook="03_labels_tiles",
)  # fmt: skip
client = cluster.get_client(dask_scheduler)  # None: dask's threaded scheduler
geoms, crs = vaoi.run_areas(aoi, crs=crs, report_dir=report_dir)  # {area: lon/lat geometry}
first = periods.parse_periods(seasons)[0]
season = first.label
data_source = io.data_source(simulated)
label = "[SIMULATED] " if simulated else ""
tiles_dir = run.data / "tiles"
print(f"vitseg {vitseg.__version__}; season {season}; tiles of {tile_px} px -> {tiles_dir}")

# %% [markdown]
# ## Scenes of the first season
# The frozen items of each box, first season only, as a lazy `(time, band, y, x)` cube
# (10 bands + SCL), with clouds masked to NaN.

# %%
items = stac.load_items(run.data / "items.json")
scene_items = {
    name: stac.select_items(items, geometry=geom, datetime=first.datetime)
    for name, geom in geoms.items()
}
print({name: len(v) for name, v in scene_items.items()})

# %%
cubes = {
    name: cloud.mask_clouds(
        cube.build_cube(
            its, bbox=stac.cube_bbox(its, geometry=geoms[name]), crs=crs,
            bands=(*S2_BANDS_10, "SCL"), chunks=chunks_px,
        ),
        method=cloud_method,
    ).sel(band=list(S2_BANDS_10))
    for name, its in scene_items.items()
    if its
}  # fmt: skip
for box, c in cubes.items():
    print(box, dict(c.sizes), c.rio.crs)

# %% [markdown]
# ## Label rasters
# Polygons burnt on each cube's grid: mines and built from the polygons, everything else
# inside the labelled extent vegetation (background). Pixels outside the labelled extent
# or outside every scene's footprint stay 255 (no data, ignored in training).

# %%
if simulated:
    polygons = {
        box: gpd.read_file(Path(catalog_dir) / "labels" / f"{box}_{season}.gpkg") for box in cubes
    }
    extents = {box: gpd.GeoDataFrame(geometry=[geoms[box]], crs="EPSG:4326") for box in cubes}
else:
    if not labels_file:
        raise MissingFileError(
            "the real path needs labels: set 'labels_file' to a polygon file of mining (and "
            "built) areas with a class column ('labels_class_column', mapped by "
            "'labels_class_map'), e.g. vitseg/data/asm_ground_truth_ghana.geojson; see "
            "docs/real-data.md"
        )
    label_polys, extents = labels.area_labels(
        labels_file, areas={box: geoms[box] for box in cubes}, class_column=labels_class_column,
        class_map=labels_class_map, extent_file=labels_extent_file,
    )  # fmt: skip
    polygons = dict.fromkeys(cubes, label_polys)
    print(f"{len(label_polys)} label polygons from {labels_file}:",
          label_polys["class"].value_counts().to_dict())  # fmt: skip
label_rasters = {
    box: labels.rasterize_labels(
        polygons[box], like=c, attribute="class", mode="multiclass", background="vegetation",
        nodata_mask=c.isnull().any("band").all("time") | ~labels.extent_mask(extents[box], like=c),
        all_touched=all_touched,
    ).compute()
    for box, c in cubes.items()
}  # fmt: skip
for box, lab in label_rasters.items():
    print(box, labels.class_distribution(lab).set_index("class")["fraction"].round(4).to_dict())

# %%
fig, axes = plt.subplots(len(cubes), 2, figsize=(12, 6 * len(cubes)), squeeze=False)
for row, (box, c) in enumerate(cubes.items()):
    plotting.plot_rgb(
        c.isel(time=0), ax=axes[row, 0], title=f"{label}{box}: {str(c.time.values[0])[:10]} (RGB)"
    )
    plotting.plot_classes(
        label_rasters[box], ax=axes[row, 1], title=f"{label}{box}: labels ({season})"
    )
fig.suptitle("Scenes and label rasters (mines, built, vegetation; grey = no data)")
fig.tight_layout()
plotting.savefig(fig, run.figures / "03_label_rasters.png", simulated=simulated)

# %% [markdown]
# ## Tiles
# Every date of the first season is tiled; a tile is dropped when it is blank or more than
# `max_nodata_frac` of it is no data (clouds, scene edges), or when fewer than
# `min_labelled_frac` of its pixels are mines or built.

# %%
scenes = {
    (box, str(t)[:10], str(iid)): c.sel(time=t).compute()
    for box, c in cubes.items()
    for t, iid in zip(c.time.values, c["id"].values, strict=True)
}  # fmt: skip
index = pd.concat(
    [
        tiles.make_tiles(
            scene, label_rasters[box], tile_px=tile_px, stride_px=stride_px,
            max_nodata_frac=max_nodata_frac, min_labelled_frac=min_labelled_frac,
            id_prefix=f"{box}_{date}_",
            columns={"box": box, "date": date, "season": season, "item_id": iid},
        )
        for (box, date, iid), scene in scenes.items()
    ],
    ignore_index=True,
)  # fmt: skip
index = gpd.GeoDataFrame(index, geometry="geometry", crs=crs)
print(f"{label}{len(index)} tiles kept from {len(scenes)} scenes")

# %% [markdown]
# ## Spatial split
# Blocks of `block_px` pixels, one block grid per box anchored at its tiles; blocks are
# shuffled with the seed and allocated 60/20/20 by tile count.

# %%
split = tiles.split_tiles(
    index, block_px=block_px, fractions=split_fractions, seed=seed, groups="box"
)
print(f"dropped (straddling blocks of different splits): {split.attrs['n_dropped_straddling']}")
per_split = (
    split.groupby(["split", "box"])
    .size()
    .unstack(fill_value=0)
    .reindex(list(tiles.SPLITS), fill_value=0)
)
per_split["all areas"] = per_split.sum(axis=1)
per_split["share"] = (per_split["all areas"] / per_split["all areas"].sum()).round(3)
per_split["blocks"] = (
    split.groupby("split")["block"].nunique().reindex(per_split.index, fill_value=0)
)
per_split["data_source"] = data_source
io.write_table(per_split, run.tables / "03_tiles_per_split.csv", index=True)
per_split

# %%
with io.atomic_path(tiles_dir, suffix="") as tmp:
    for (box, date, _), scene in scenes.items():
        rows = split[(split["box"] == box) & (split["date"] == date)]
        if len(rows):
            tiles.write_tiles(scene, label_rasters[box], rows, tmp)
chips = vitseg.datasets.load_chip_folder(tiles_dir)
print(f"{label}{len(chips)} chips in {tiles_dir}; bands {chips.bands}")

# %%
fig, axes = plt.subplots(1, len(cubes), figsize=(7 * len(cubes), 7), squeeze=False)
for ax, box in zip(axes[0], cubes, strict=True):
    plotting.plot_split_map(
        split[split["box"] == box], ax=ax, background=label_rasters[box],
        title=f"{label}{box}: tiles by split ({tile_px} px, blocks of {block_px} px)",
    )  # fmt: skip
fig.tight_layout()
plotting.savefig(fig, run.figures / "03_split_map.png", simulated=simulated)

# %% [markdown]
# ## Class distribution and co-occurrence per split
# Pixel shares of each class in the written masks (255 ignored), and the co-occurrence
# matrix of VitSegh24's appendix (eq. 2): how often a pixel of class *i* has a neighbour
# of class *j* at the given offset.

# %%
masks = {s: np.stack([chips.read_mask(i) for i in range(len(chips)) if chips.index["split"][i] == s])
         for s in tiles.SPLITS if (chips.index["split"] == s).any()}  # fmt: skip
dist = {s: labels.class_distribution(m, classes=CLASSES) for s, m in masks.items()}
class_table = pd.concat({s: d.set_index("class") for s, d in dist.items()}, names=["split"])
class_table["ignored_pixels"] = [dist[s].attrs["ignored_pixels"] for s, _ in class_table.index]
class_table["data_source"] = data_source
io.write_table(class_table, run.tables / "03_class_fractions_per_split.csv", index=True)
class_table.round(4)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
plotting.plot_class_distribution(
    dist, ax=ax, title=f"{label}Class distribution per split ({season})"
)
plotting.savefig(fig, run.figures / "03_class_distribution.png", simulated=simulated)

# %%
cooc = labels.cooccurrence(masks["train"], offset=tuple(cooccurrence_offset), classes=CLASSES)
cooc_table = cooc.copy()
cooc_table["data_source"] = data_source
io.write_table(cooc_table, run.tables / "03_cooccurrence_train.csv", index=True)
fig, ax = plt.subplots(figsize=(5.5, 4.8))
plotting.plot_cooccurrence(
    cooc,
    ax=ax,
    title=f"{label}Co-occurrence, training tiles, offset (dy, dx) = {tuple(cooccurrence_offset)}",
)
plotting.savefig(fig, run.figures / "03_cooccurrence.png", simulated=simulated)
cooc

# %%
io.update_manifest(
    run.root,
    "03_labels_tiles",
    {
        "tiles_dir": str(tiles_dir), "n_tiles": len(split),
        "tiles_per_split": {s: int((split["split"] == s).sum()) for s in tiles.SPLITS},
        "n_dropped_straddling": int(split.attrs["n_dropped_straddling"]),
        "season": season, "scenes": [iid for (_, _, iid) in scenes], "bands": list(chips.bands),
        "data_source": data_source,
    },
)  # fmt: skip
print(f"{label}done: {len(split)} tiles", per_split["all areas"].to_dict())
