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
# # 06 · Large-area prediction, temporal ensemble, mosaic and COGs
#
# **Purpose.** Apply the trained network to every scene of every box, tile by tile with
# overlapping, smoothly blended windows and in dask chunks (memory bounded whatever the
# area), keeping cloud-masked and no-data pixels as no-data. Each scene gets a class map,
# a confidence map (highest class probability) and the per-class probabilities, shown as
# in Gallwey et al. Fig. 4 (probabilities of mines, built and vegetation as the red, green
# and blue channels). Scenes of one dry season are then ensembled with Gallwey et al.'s
# equations 1-3 (mean probability over the valid observations, argmax, count of valid
# observations) and the boxes are mosaicked per season with their maximum-class rule.
# Exclusion layers (Gallwey et al. masked lakes, licensed large mines and a 5 km coastal
# strip) become no-data and are reported.
#
# **Inputs.** `<report_dir>/models/<arch>/best.pt` (notebook 04), the frozen items
# `<report_dir>/data/items.json` (notebook 02), optional exclusion polygon files.
#
# **Outputs.** COGs under `<report_dir>/maps/`: `<box>/<item_id>_{class,confidence,probs}.tif`
# per scene (probabilities and confidence as uint8 codes of 0.004, a tenth of the float32
# size; `predict.open_map` decodes them to float32 within 0.002),
# `ensemble_<box>_<season>_{class,confidence,valid_count,probs}.tif`,
# `mosaic_<season>_class.tif`; tables of timings, exclusions and class areas; figures.
# Rerunning skips scenes whose COGs exist (`overwrite=False`).

# %% tags=["parameters"]
report_dir = "reports/demo"
seed = 0
simulated = True
aoi = ["obuasi", "kibi"]
seasons = ["2020-21", "2021-22"]
crs = "EPSG:32630"
dask_scheduler = ""
arch = "unet"
tile_px = 256
overlap_px = 32
batch_size = 8
chunks_px = 1088
device = "auto"
cloud_method = "both"
bright_threshold = 0.2
trust_offset_metadata = False
exclusion_files = {}
exclusion_buffer_m = {}
outside_country_buffer_m = 0.0
coastal_strip_m = 5000.0
mosaic_method = "max_class"
overwrite = False

# %%
import time
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from shapely import box as shp_box

import vitseg
from vitseg import aoi as vaoi
from vitseg import (
    change,
    cloud,
    cluster,
    cube,
    exclusions,
    io,
    periods,
    plotting,
    predict,
    stac,
    styles,
    temporal,
    train,
)
from vitseg.constants import CLASSES, IGNORE_INDEX, S2_BANDS_10

io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = io.start_run(
    report_dir,
    params={
        "seed": seed, "simulated": simulated, "aoi": aoi, "seasons": seasons, "crs": crs,
        "dask_scheduler": dask_scheduler, "arch": arch, "tile_px": tile_px,
        "overlap_px": overlap_px, "batch_size": batch_size, "chunks_px": chunks_px,
        "device": device, "cloud_method": cloud_method, "bright_threshold": bright_threshold,
        "trust_offset_metadata": trust_offset_metadata, "exclusion_files": exclusion_files,
        "exclusion_buffer_m": exclusion_buffer_m,
        "outside_country_buffer_m": outside_country_buffer_m, "coastal_strip_m": coastal_strip_m,
        "mosaic_method": mosaic_method,
        "overwrite": overwrite,
    },
    notebook="06_predict",
)  # fmt: skip
client = cluster.get_client(dask_scheduler)  # None: dask's threaded scheduler
geoms, crs = vaoi.run_areas(aoi, crs=crs, report_dir=report_dir)  # {area: lon/lat geometry}
boxes = list(geoms)
period_list = periods.parse_periods(seasons)
seasons = [p.label for p in period_list]
data_source = vitseg.io.data_source(simulated)
label = "[SIMULATED] " if simulated else ""
print(f"vitseg {vitseg.__version__}; {data_source}; scheduler: {client or 'threads'}")

# %% [markdown]
# ## The model
# The checkpoint holds the architecture, the weights and the band statistics used in
# training, so prediction normalises the bands exactly as training did.

# %%
model_path = run.models / arch / "best.pt"
model, meta = train.load_model(model_path)
norm = predict.norm_from_meta(meta)
class_names = list(meta.get("data", {}).get("class_names") or CLASSES[: meta["model"]["classes"]])
bands = list((norm or {}).get("bands") or S2_BANDS_10)
print(f"{arch}: {meta['model']}; best epoch {meta['best']}; bands {bands}; classes {class_names}")

# %% [markdown]
# ## Scene cubes
# The frozen items are regrouped by box; each box gets one lazy `(time, band, y, x)` cube
# on the 10 m UTM grid, clouds masked (`cloud_method`) to NaN, which prediction keeps as
# no-data.

# %%
items = stac.load_items(run.data / "items.json")
box_items = {b: stac.select_items(items, geometry=geoms[b]) for b in boxes}
cubes = {
    b: cloud.mask_clouds(
        cube.build_cube(
            its, bbox=stac.cube_bbox(its, geometry=geoms[b]), crs=crs, bands=(*bands, "SCL"),
            chunks=chunks_px, trust_offset_metadata=trust_offset_metadata,
        ),
        method=cloud_method, threshold=bright_threshold,
    ).sel(band=bands)
    for b, its in box_items.items()
}  # fmt: skip
scene_table = pd.DataFrame(
    [
        {"box": b, "item_id": str(i), "date": str(t)[:10], "season": periods.period_of(t, period_list),
         "height_px": c.sizes["y"], "width_px": c.sizes["x"]}
        for b, c in cubes.items()
        for t, i in zip(c["time"].values, c["id"].values, strict=True)
    ]
)  # fmt: skip
scene_table

# %% [markdown]
# ## Exclusions
# Any number of polygon layers (`exclusion_files`: name -> vector file, buffers in metres
# in `exclusion_buffer_m`) become no-data. Gallwey et al.'s lakes and licensed large-scale
# mines are not available offline (give them as files); two real layers are always added:
# everything outside Ghana's outline (Natural Earth), buffered by `outside_country_buffer_m`,
# and Gallwey's **coastal strip**: land within `coastal_strip_m` of the sea, the coastline
# being the part of Ghana's boundary no neighbour shares (land borders are not excluded).
# The demo boxes lie far inland, so they remove nothing there, and the table says so.

# %%
ghana = gpd.read_file(io.data_path("ne_10m_ghana.geojson")).to_crs("EPSG:4326")
outside = gpd.GeoDataFrame(
    geometry=[shp_box(-4.5, 3.5, 2.5, 12.0).difference(ghana.union_all())], crs="EPSG:4326"
)
layers = {"outside_ghana": outside, **{k: Path(v) for k, v in exclusion_files.items()}}
buffers = {"outside_ghana": outside_country_buffer_m, **exclusion_buffer_m}
if coastal_strip_m > 0:
    layers["coastal_strip"] = exclusions.coastal_strip(coastal_strip_m)
excl_layers = {
    b: exclusions.exclusion_layers(c.isel(time=0, band=0), layers, buffer_m=buffers)
    for b, c in cubes.items()
}
excl_masks = {b: lay.any("layer").compute() for b, lay in excl_layers.items()}
excl_table = pd.concat(
    [exclusions.exclusion_report(lay).assign(box=b) for b, lay in excl_layers.items()]
).assign(buffer_m=lambda d: d["layer"].map(buffers).fillna(0.0), data_source=data_source)
excl_table.to_csv(run.tables / "06_exclusions.csv", index=False)
excl_table

# %% [markdown]
# ## Predict every scene
# `predict_cube` is lazy; `write_scene_maps` computes one scene chunk by chunk and writes
# its three COGs atomically (a killed run resumes: scenes already written are skipped).

# %%
probs = {
    b: predict.predict_cube(
        model, c, tile=tile_px, overlap=overlap_px, batch_size=batch_size, norm=norm,
        device=device, classes=class_names,  # blocks of whole windows, ~1024 px
    )
    for b, c in cubes.items()
}  # fmt: skip
if class_names != list(CLASSES):
    # maps keep vitseg's class codes whatever the model learnt: a U-Net trained on the
    # classes the labels support (04) gets probability 0 for the others; the binary
    # SegFormer's background goes to vegetation (the background class)
    print(f"model classes {class_names}: maps use the codes of {list(CLASSES)}")
    rename = {"background": "vegetation"}
    probs = {
        b: p.assign_coords(
            {"class": [rename.get(str(c), str(c)) for c in p["class"].values]}
        ).reindex({"class": list(CLASSES)}, fill_value=0.0)
        for b, p in probs.items()
    }
    class_names = list(CLASSES)
timing_rows = []
scene_maps = {}
for b, p in probs.items():
    for i, item_id in enumerate(p["id"].values):
        done_before = all(
            (run.maps / b / f"{item_id}_{k}.tif").exists() for k in predict.SCENE_LAYERS
        )
        t0 = time.perf_counter()
        scene_maps[(b, str(item_id))] = predict.write_scene_maps(
            p.isel(time=i), run.maps / b, prefix=str(item_id), exclude=excl_masks[b],
            overwrite=overwrite,
        )  # fmt: skip
        secs = time.perf_counter() - t0
        area_km2 = float(change.pixel_area_m2(p).sum()) * p.sizes["x"] / 1e6
        print(f"{b} scene {i + 1}/{p.sizes['time']} {item_id}: "
              + ("already written" if done_before else f"{area_km2:.0f} km² in {secs:.1f} s"),
              flush=True)  # fmt: skip
        timing_rows.append(
            {"box": b, "item_id": str(item_id), "area_km2": area_km2, "seconds": round(secs, 2),
             "km2_per_s": round(area_km2 / secs, 2) if not done_before else np.nan,
             "skipped_existing": done_before, "data_source": data_source}
        )  # fmt: skip
timings = pd.DataFrame(timing_rows)
timings.to_csv(run.tables / "06_prediction_timings.csv", index=False)
print(f"{label}{len(timings)} scenes, {timings['area_km2'].sum():.0f} km² in "
      f"{timings['seconds'].sum():.0f} s")  # fmt: skip
timings

# %% [markdown]
# ## Model outputs of one scene (Gallwey et al. Fig. 4)
# a) RGB, b) class, c) confidence, d) the three class probabilities as red (mines), green
# (built) and blue (vegetation): pure colours are confident, mixed colours show where the
# model hesitates (e.g. pond edges, bright bare soil). Clouds and no-data are grey/black.

# %%
b0 = boxes[0]
cloud_frac = cubes[b0].isel(band=0).isnull().mean(("y", "x")).compute()
i0 = int(np.argmin(cloud_frac.values))  # the clearest scene
id0 = str(cubes[b0]["id"].values[i0])
maps0 = {k: predict.open_map(v, chunks=None) for k, v in scene_maps[(b0, id0)].items()}
fig = plotting.plot_prediction_panels(
    cubes[b0].isel(time=i0).sel(band=["B04", "B03", "B02"]).compute(), maps0["class"],
    maps0["confidence"], maps0["probs"], class_names=class_names,
    title=f"{label}{b0} {id0}: model outputs (Gallwey et al. Fig. 4 layout)",
)  # fmt: skip
plotting.savefig(fig, run.figures / "gallwey_fig4_model_outputs.png", simulated=simulated)

# %% [markdown]
# ## Seasonal ensemble (Gallwey et al. eqs 1-3)
# Per pixel and class, the probabilities of the scenes where the pixel was seen are
# averaged (clouded and no-data scenes do not count); the class is the highest mean; the
# number of valid observations is kept. Pixels never seen stay no-data.

# %%
ens_rows = []
ensembles = {}
for b in boxes:
    for s in seasons:
        ids = scene_table.query("box == @b and season == @s")["item_id"].tolist()
        if not ids:
            continue
        stack = xr.concat(
            [predict.open_map(scene_maps[(b, i)]["probs"], chunks=chunks_px) for i in ids],
            dim="time",
        ).rio.write_crs(crs)
        ens = temporal.ensemble(stack)
        ensembles[(b, s)] = ens
        stem = run.maps / f"ensemble_{b}_{s}"
        predict.write_cog(ens["class_map"], f"{stem}_class.tif", nodata=IGNORE_INDEX,
                          colormap=styles.class_colormap(class_names), category_names=class_names)  # fmt: skip
        predict.write_cog(ens["confidence"], f"{stem}_confidence.tif", nodata=float("nan"),
                          resampling="average")  # fmt: skip
        predict.write_cog(ens["valid_count"], f"{stem}_valid_count.tif", nodata=None)
        predict.write_cog(ens["probs"], f"{stem}_probs.tif", nodata=float("nan"),
                          resampling="average")  # fmt: skip
        cls_e = predict.open_map(f"{stem}_class.tif", chunks=None).values
        cnt = predict.open_map(f"{stem}_valid_count.tif", chunks=None).values
        row = {"box": b, "season": s, "n_scenes": len(ids),
               "never_observed_pct": round(100 * float((cnt == 0).mean()), 3),
               "mean_valid_obs": round(float(cnt.mean()), 2)}  # fmt: skip
        row_ha = change.pixel_area_m2(ens["class_map"]) / 1e4  # one value per row
        row |= {f"{c}_ha": float(((cls_e == k).sum(axis=1) * row_ha).sum())
                for k, c in enumerate(class_names)}  # fmt: skip
        ens_rows.append(row | {"data_source": data_source})
ens_table = pd.DataFrame(ens_rows)
ens_table.to_csv(run.tables / "06_ensemble_class_areas.csv", index=False)
ens_table

# %%
s0 = next(s for s in seasons if (b0, s) in ensembles)
ids0 = scene_table.query("box == @b0 and season == @s0")["item_id"].tolist()
fig, axes = plt.subplots(
    1, len(ids0) + 2, figsize=(4.6 * (len(ids0) + 2), 5), constrained_layout=True
)
for ax, i in zip(axes, ids0, strict=False):
    plotting.plot_classes(predict.open_map(scene_maps[(b0, i)]["class"], chunks=None), ax=ax,
                          classes=class_names, title=f"scene {i[-20:]}", legend=False)  # fmt: skip
plotting.plot_classes(
    ensembles[(b0, s0)]["class_map"].compute(), ax=axes[-2], classes=class_names,
    title=f"ensemble {s0} (eqs 1-3)",
)  # fmt: skip
im = axes[-1].imshow(ensembles[(b0, s0)]["valid_count"].values, cmap="viridis",
                     vmin=0, vmax=len(ids0), interpolation="nearest")  # fmt: skip
fig.colorbar(im, ax=axes[-1], shrink=0.8, label="valid observations")
axes[-1].set_title("valid observations (eq 3)")
axes[-1].set_axis_off()
fig.suptitle(f"{label}{b0}: single-scene predictions (clouds = grey) and the season ensemble")
plotting.savefig(fig, run.figures / "06_ensemble.png", simulated=simulated)

# %% [markdown]
# ## Mosaic per season
# The ensembled boxes are mosaicked on one grid; where maps overlap, `max_class` keeps
# the highest class code (vegetation over built over mines, Gallwey et al.) and
# `mean_prob` averages probabilities instead. Between distant boxes the mosaic is no-data.

# %%
mosaics = {}
for s in seasons:
    parts = [ensembles[(b, s)] for b in boxes if (b, s) in ensembles]
    if not parts:
        continue
    if mosaic_method == "max_class":
        mos = temporal.mosaic([p["class_map"] for p in parts], method="max_class")
    else:
        mos = predict.classify(temporal.mosaic([p["probs"] for p in parts], method="mean_prob"))[0]
    mosaics[s] = predict.write_cog(
        mos, run.maps / f"mosaic_{s}_class.tif", nodata=IGNORE_INDEX,
        colormap=styles.class_colormap(class_names), category_names=class_names,
    )  # fmt: skip
    print(f"{label}mosaic {s}: {dict(mos.sizes)} px -> {mosaics[s]}")

# %%
fig, axes = plt.subplots(
    len(mosaics), len(boxes), figsize=(5.5 * len(boxes), 5 * len(mosaics)), squeeze=False,
    constrained_layout=True,
)  # fmt: skip
for row, (s, path) in zip(axes, mosaics.items(), strict=True):
    mos = predict.open_map(path, chunks=chunks_px)
    for ax, b in zip(row, boxes, strict=True):
        xs, ys = cubes[b]["x"].values, cubes[b]["y"].values
        part = mos.sel(x=slice(xs.min(), xs.max()), y=slice(ys.max(), ys.min())).compute()
        plotting.plot_classes(part, ax=ax, classes=class_names, title=f"mosaic {s}: {b} window",
                              legend=ax is row[-1])  # fmt: skip
fig.suptitle(
    f"{label}seasonal mosaics ({mosaic_method}); each panel is the {b} part of one mosaic COG"
    if len(boxes) == 1 else f"{label}seasonal mosaics ({mosaic_method}), shown at each box"
)  # fmt: skip
plotting.savefig(fig, run.figures / "06_mosaics.png", simulated=simulated)

# %%
written = sorted(str(p.relative_to(run.root)) for p in run.maps.rglob("*.tif"))
io.update_manifest(run.root, "06_predict_maps", written)
print(f"{len(written)} COGs under {run.maps}")
if client is not None:
    client.close()
