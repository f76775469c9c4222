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
# # 02 · STAC search, reflectance cube, cloud masks and dry-season composites
#
# **Purpose.** Find the Sentinel-2 L2A scenes of each mining box and dry season, freeze
# the item set, and build a lazy `(time, band, y, x)` surface-reflectance cube on an
# explicit 10 m UTM grid: the six 20 m bands resampled bicubically to 10 m (Gallwey et al.
# §2.2), reflectance scaling and the processing-baseline 04.00 offset harmonised per scene.
# Clouds are masked with the scene classification (SCL) and with Gallwey et al.'s
# bright-threshold rule on the visible bands (§2.3: sen2cor also flags turbid mining
# ponds as cloud); valid observations are counted per pixel and each dry season
# (November-March) is reduced to a median composite. Blank and mostly-no-data tiles are
# counted, and the class distribution of the labels is shown as in VitSegh24 Fig. 4.
#
# **Inputs.** The area (`aoi`: named boxes, a lon/lat bbox, any polygon file, or
# `"cells"`, the grid cells notebook 01 kept) and the periods (`seasons`: dry seasons
# `"2020-21"`, years `"2020"` or ranges `"2020-01-01/2021-01-01"`). Real path
# (`simulated: false`): a STAC API (`stac_source`, Earth Search by default; needs the
# network) and the labels file (`labels_file`). Demo: the local STAC catalog that
# `vitseg.synthetic` writes to `catalog_dir` (simulated scenes over the real Obuasi and
# Kibi mining boxes, real hand-drawn mine polygons).
#
# **Outputs.** `<report_dir>/data/items.json` (frozen ItemCollection; ids in
# `manifest.json` under `stac_items`), `data/composite_<area>_<season>.tif` (float32
# COGs, band names in the descriptions), figures (RGB and false-colour composites, cloud
# masks, valid counts, class distribution), tables (items per season, blank tiles).

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
stac_source = ""
collection = "sentinel-2-l2a"
max_cloud_pct = 80.0
dates_per_season = 3
size_px = 1024
cloud_method = "both"
bright_threshold = 0.2
composite_method = "median"
chunks_px = 512
blank_tile_px = 64
min_valid_frac = 0.5
trust_offset_metadata = False

# %%
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

import vitseg
from vitseg import aoi as vaoi
from vitseg import cloud, cluster, composite, cube, io, labels, periods, plotting, stac
from vitseg.constants import S2_BANDS_10
from vitseg.errors import ParamsError
from vitseg.synthetic import BOXES

io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = io.start_run(
    report_dir,
    params={
        "seed": seed, "simulated": simulated, "catalog_dir": catalog_dir, "aoi": aoi,
        "seasons": seasons, "crs": crs, "dask_scheduler": dask_scheduler,
        "labels_file": labels_file, "labels_class_column": labels_class_column,
        "labels_class_map": labels_class_map, "labels_extent_file": labels_extent_file,
        "stac_source": stac_source, "collection": collection, "max_cloud_pct": max_cloud_pct,
        "dates_per_season": dates_per_season, "size_px": size_px,
        "cloud_method": cloud_method, "bright_threshold": bright_threshold,
        "composite_method": composite_method, "chunks_px": chunks_px,
        "blank_tile_px": blank_tile_px, "min_valid_frac": min_valid_frac,
        "trust_offset_metadata": trust_offset_metadata,
    },
    notebook="02_build_cube",
)  # fmt: skip
client = cluster.get_client(dask_scheduler)  # None: dask's threaded scheduler
geoms, crs = vaoi.run_areas(aoi, crs=crs, report_dir=report_dir)  # {area: lon/lat geometry}
names = list(geoms)
period_list = periods.parse_periods(seasons)
season_text = {periods.parse_period(s).label: s for s in seasons}
season_labels = [p.label for p in period_list]
data_source = io.data_source(simulated)
label = "[SIMULATED] " if simulated else ""
print(f"vitseg {vitseg.__version__}; {data_source}; areas {names}; periods {season_labels}; {crs}")

# %% [markdown]
# ## Find the scenes
# The offline demo first writes its catalog (cached: rerunning with the same arguments
# reuses it); the real path searches the STAC API (`stac_source`, Earth Search by
# default). Each area and period is searched separately; the union is frozen to
# `data/items.json` so later notebooks (and reruns) use exactly these scenes.

# %%
if simulated:
    unknown = [n for n in names if n not in BOXES]
    if unknown:
        raise ParamsError(
            f"the simulated catalog covers only the named boxes {sorted(BOXES)}; "
            f"aoi gave {unknown}. Set 'simulated: false' to search real imagery for any area."
        )
    source = vitseg.synthetic.write_catalog(
        catalog_dir, boxes=names, seasons=seasons, dates_per_season=dates_per_season,
        size_px=size_px or None, seed=seed, crs=crs,
    )  # fmt: skip
else:
    source = stac_source or stac.EARTH_SEARCH
print("STAC source:", source)

found = {
    (name, p.label): stac.search_items(
        source, bbox=geoms[name].bounds, datetime=p.datetime, max_cloud_pct=max_cloud_pct,
        collection=collection, bands=(*S2_BANDS_10, "SCL"),
    )
    for name in names
    for p in period_list
}  # fmt: skip
all_items = list({it.id: it for found_items in found.values() for it in found_items}.values())
items_path = stac.freeze_items(all_items, run.data / "items.json")
io.update_manifest(run.root, "stac_items", stac.item_ids(all_items))
print(f"{label}{len(all_items)} items frozen to {items_path}")

# %%
items_table = pd.DataFrame(
    [
        {
            "area": name, "season": season, "n_items": len(its),
            "dates": " ".join(sorted({it.datetime.strftime("%Y-%m-%d") for it in its})),
            "tiles": " ".join(sorted({str(it.properties.get("grid:code", "?")) for it in its})),
            "mean_cloud_cover_pct": round(float(np.mean([it.properties.get("eo:cloud_cover", np.nan) for it in its])), 2),
            "processing_baselines": " ".join(sorted({str(it.properties.get("s2:processing_baseline")) for it in its})),
            "data_source": data_source,
        }
        for (name, season), its in found.items()
    ]
)  # fmt: skip
io.write_table(items_table, run.tables / "02_items_per_season.csv")
items_table

# %% [markdown]
# ## The cube
# One lazy cube per area on the run's UTM grid (`crs`), clipped to the scenes'
# footprints: ten bands at 10 m (20 m bands bicubic) plus SCL (nearest). Reflectance is
# DN x scale + offset per scene; scenes before and after baseline 04.00 come out on the
# same scale (see `vitseg.cube.reflectance_scaling`). Same-day scenes of neighbouring
# Sentinel-2 tiles (possibly in two UTM zones) are mosaicked into one observation.

# %%
area_items = {name: [it for p in season_labels for it in found[(name, p)]] for name in names}
area_items = {name: list({it.id: it for it in its}.values()) for name, its in area_items.items()}
cubes = {
    name: cube.build_cube(
        its, bbox=stac.cube_bbox(its, geometry=geoms[name]), crs=crs,
        bands=(*S2_BANDS_10, "SCL"), chunks=chunks_px, trust_offset_metadata=trust_offset_metadata,
    )
    for name, its in area_items.items()
}  # fmt: skip
for name, c in cubes.items():
    print(
        name, dict(c.sizes), c.rio.crs, f"{c.rio.resolution()} m", f"{c.nbytes / 2**20:.0f} MiB lazy",
        f"items per time step {c['n_items'].values.tolist()}" if "n_items" in c.coords else "",
    )  # fmt: skip
cubes[names[0]]

# %% [markdown]
# ## Cloud masks and valid observations
# `cloud_method` = `scl` (classes 0, 1, 3, 8, 9, 10), `bright` (B02, B03 and B04 all
# above `bright_threshold`, Gallwey et al.) or `both`. Masked pixels become NaN.

# %%
masks = {
    box: {
        m: cloud.cloud_mask(c, method=m, threshold=bright_threshold).compute()
        for m in ("scl", "bright")
    }
    for box, c in cubes.items()
}  # fmt: skip
masked = {
    box: cloud.mask_clouds(c, method=cloud_method, threshold=bright_threshold)
    for box, c in cubes.items()
}  # fmt: skip
season_times = {
    (box, s): [t for t, lab in zip(c.time.values, periods.period_of(c["time"], period_list), strict=True) if lab == s]
    for box, c in masked.items()
    for s in season_labels
}  # fmt: skip
counts = {
    (box, s): cloud.valid_count(masked[box].sel(time=ts)).compute()
    for (box, s), ts in season_times.items()
    if ts
}  # fmt: skip
mask_table = pd.DataFrame(
    [
        {
            "area": box, "item_id": str(iid), "date": str(t)[:10],
            "scl_masked_pct": round(100 * float(masks[box]["scl"].sel(time=t).mean()), 2),
            "bright_masked_pct": round(100 * float(masks[box]["bright"].sel(time=t).mean()), 2),
            "either_pct": round(100 * float((masks[box]["scl"].sel(time=t) | masks[box]["bright"].sel(time=t)).mean()), 2),
            "data_source": data_source,
        }
        for box, c in cubes.items()
        for t, iid in zip(c.time.values, c["id"].values, strict=True)
    ]
)  # fmt: skip
io.write_table(mask_table, run.tables / "02_cloud_mask_per_scene.csv")
mask_table

# %%
box0 = names[0]
t0 = int(
    np.argmax(
        [float(masks[box0]["scl"].isel(time=i).mean()) for i in range(cubes[box0].sizes["time"])]
    )
)
scene0 = cubes[box0].isel(time=t0).compute()
fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
plotting.plot_rgb(scene0, ax=axes[0], title=f"{label}{box0} {str(scene0.time.values)[:10]}: RGB")
state = masks[box0]["scl"].isel(time=t0).values.astype(int) + 2 * masks[box0]["bright"].isel(
    time=t0
).values.astype(int)
axes[1].imshow(state, cmap=ListedColormap(["#f0f0f0", "#e6ab02", "#7570b3", "#d95f02"]), vmin=0, vmax=3,
               interpolation="nearest", extent=axes[0].get_images()[0].get_extent())  # fmt: skip
axes[1].set_title("cloud masks")
axes[1].legend(
    handles=[Patch(color=c, label=n) for c, n in zip(["#e6ab02", "#7570b3", "#d95f02"], ["SCL only", "bright only", "both"], strict=True)],
    loc="lower right", fontsize=8,
)  # fmt: skip
axes[1].ticklabel_format(style="plain", useOffset=False)
axes[1].set_xlabel("easting (m)")
plotting.plot_rgb(
    masked[box0].isel(time=t0).compute(), ax=axes[2], title=f"masked ({cloud_method}); NaN black"
)
fig.suptitle(
    f"Cloud masks: SCL classes vs. Gallwey et al.'s bright-threshold rule (B02, B03, B04 > {bright_threshold:.2f})"
)
fig.tight_layout()
plotting.savefig(fig, run.figures / "02_cloud_mask.png", simulated=simulated)

# %%
fig, axes = plt.subplots(
    len(names),
    len(season_labels),
    figsize=(5.5 * len(season_labels), 5 * len(names)),
    squeeze=False,
)
for (r, box), (c_, s) in ((rb, cs) for rb in enumerate(names) for cs in enumerate(season_labels)):
    ax = axes[r, c_]
    if (box, s) not in counts:
        ax.set_axis_off()
        continue
    n = counts[(box, s)]
    n_dates = len(season_times[(box, s)])
    im = ax.imshow(n.values, cmap=plt.get_cmap("viridis", n_dates + 1), vmin=-0.5, vmax=n_dates + 0.5,
                   extent=(float(n.x.min()) - 5, float(n.x.max()) + 5, float(n.y.min()) - 5, float(n.y.max()) + 5))  # fmt: skip
    ax.set_title(f"{label}{box} {s}: valid observations")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    fig.colorbar(
        im, ax=ax, shrink=0.8, ticks=range(n_dates + 1), label=f"cloud-free dates (of {n_dates})"
    )
fig.tight_layout()
plotting.savefig(fig, run.figures / "02_valid_counts.png", simulated=simulated)

# %% [markdown]
# ## Dry-season composites
# The `composite_method` of the valid (unmasked) observations of each season, written as
# float32 COGs.

# %%
comps, paths = {}, {}
for (box, s), ts in season_times.items():  # one area and period at a time (bounded memory)
    if not ts:
        continue
    path = run.data / f"composite_{box}_{s}.tif"
    key = composite.inputs_key(
        items=sorted(str(i) for i in cubes[box].sel(time=ts)["id"].values), crs=crs,
        shape=dict(cubes[box].sizes), cloud_method=cloud_method, bright_threshold=bright_threshold,
        method=composite_method, trust_offset_metadata=trust_offset_metadata,
    )  # fmt: skip
    comps[(box, s)] = composite.read_composite(path, key=key)  # resume: finished ones are reused
    if comps[(box, s)] is None:
        comps[(box, s)] = composite.composite(
            masked[box], method=composite_method, season=season_text[s]
        ).compute()
        composite.write_composite(comps[(box, s)], path, key=key)
        print(f"{box} {s}: composite of {len(ts)} observations -> {path}", flush=True)
    else:
        print(f"{box} {s}: finished composite reused ({path}, same inputs)")
    paths[(box, s)] = path

# %%
for bands, name, title in (
    (("B04", "B03", "B02"), "02_composites_rgb.png", "true colour (B04, B03, B02)"),
    (
        ("B08", "B04", "B03"),
        "02_composites_false_colour.png",
        "false colour (B08, B04, B03): vegetation red, bare ground and mines cyan-grey",
    ),
):
    fig, axes = plt.subplots(
        len(names),
        len(season_labels),
        figsize=(5.5 * len(season_labels), 5.2 * len(names)),
        squeeze=False,
    )
    for (r, box), (c_, s) in (
        (rb, cs) for rb in enumerate(names) for cs in enumerate(season_labels)
    ):
        if (box, s) in comps:
            plotting.plot_rgb(comps[(box, s)], ax=axes[r, c_], bands=bands,
                              title=f"{label}{box} {s} ({comps[(box, s)].attrs.get('n_scenes', '?')} scenes)")  # fmt: skip
        else:
            axes[r, c_].set_axis_off()
    fig.suptitle(f"Dry-season {composite_method} composites, {title}")
    fig.tight_layout()
    plotting.savefig(fig, run.figures / name, simulated=simulated)

# %% [markdown]
# ## Blank and no-data tiles
# Fraction of valid pixels per `blank_tile_px` tile of each composite; tiles below
# `min_valid_frac` are blank and would be dropped by tiling (03_labels_tiles).

# %%
fracs = {
    key: composite.tile_valid_fraction(comp, tile_px=blank_tile_px).compute()
    for key, comp in comps.items()
}
blank_table = pd.DataFrame(
    [
        {
            "area": box, "season": s, "tile_px": blank_tile_px, "tiles": int(f.size),
            "blank_tiles": int((f.values < min_valid_frac).sum()),
            "kept_tiles": int((f.values >= min_valid_frac).sum()),
            "mean_valid_fraction": round(float(f.mean()), 4),
            "data_source": data_source,
        }
        for (box, s), f in fracs.items()
    ]
)  # fmt: skip
io.write_table(blank_table, run.tables / "02_blank_tiles.csv")
blank_table

# %% [markdown]
# ## Class distribution of the labels (VitSegh24 Fig. 4 style)
# Label polygons burnt on each composite's grid: mines and built from the polygons,
# everything else inside the labelled extent the background (vegetation); outside it, no
# data. The demo uses the simulated catalog's label layers; the real path reads
# `labels_file` (any polygon file; `labels_class_column` mapped with `labels_class_map`)
# and its labelled extent (`labels_extent_file`, else the file's `extent` layer, else the
# area).

# %%
if simulated:
    polygons = {
        (box, s): gpd.read_file(Path(catalog_dir) / "labels" / f"{box}_{s}.gpkg")
        for (box, s) in comps
    }
    extents = {box: gpd.GeoDataFrame(geometry=[geoms[box]], crs="EPSG:4326") for box in names}
elif labels_file:
    label_polys, extents = labels.area_labels(
        labels_file, areas=geoms, class_column=labels_class_column,
        class_map=labels_class_map, extent_file=labels_extent_file,
    )  # fmt: skip
    polygons = dict.fromkeys(comps, label_polys)
else:
    polygons, extents = {}, {}
    print("No labels_file given: the class distribution is skipped (notebook 03 needs one).")
dists = {
    f"{box} {s}": labels.class_distribution(
        labels.rasterize_labels(
            polygons[(box, s)], like=comps[(box, s)], attribute="class", mode="multiclass",
            background="vegetation",
            nodata_mask=comps[(box, s)].isnull().any("band") | ~labels.extent_mask(extents[box], like=comps[(box, s)]),
        )
    )
    for (box, s) in comps
    if (box, s) in polygons
}  # fmt: skip
if dists:
    dist_table = pd.concat([d.assign(group=g) for g, d in dists.items()], ignore_index=True)
    dist_table = dist_table.assign(data_source=data_source)
    io.write_table(dist_table, run.tables / "02_class_distribution.csv")
    fig, ax = plt.subplots(figsize=(8, 4))
    plotting.plot_class_distribution(
        dists, ax=ax, title=f"{label}Class distribution of labelled pixels per area and season"
    )
    fig.tight_layout()
    plotting.savefig(
        fig, run.figures / "vitsegh24_fig4_class_distribution.png", simulated=simulated
    )
    display(dist_table)

# %%
print(f"{label}done: {len(all_items)} items, {len(paths)} composites, figures in {run.figures}")
