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
# # 08 · Monitoring: change maps, hectares per district and reserve, hotspots, alerts, web map
#
# **Purpose.** Turn seasonal class maps into what a monitoring agency needs (Gallwey et al.
# §2.7, Figs 6–10; VitSegh24's alert system and web map): change maps with one integer code
# per (from, to) pair, class areas per season (Fig. 7), mined area per real Ghana district,
# cumulative and per season (Fig. 8), kernel-density hotspots of new mining (Fig. 9),
# hectares of new mining inside protected areas (Fig. 10), new-mining alert polygons
# (GeoJSON + GeoPackage) and a static web map that opens offline.
#
# Two modes:
# - `mode = "demo"` (the maps of this run): the ensembled class maps
#   `<report_dir>/maps/ensemble_<area>_<season>_class.tif` from 06_predict, on the real path
#   and in the demo alike. Only in the simulated demo, when `class_map_source = "auto"` and
#   those are absent, the simulated truth `<catalog_dir>/truth/<box>_<season>.tif` stands in;
#   there **every number is simulated**. The real path never reads it.
# - `mode = "earthrise"` (params/ghana_earthrise.yaml): **real** Earth Genome detector polygons
#   (Ashanti 2017 and 2020; south-west Ghana 2024) shipped in `vitseg/data`: new mining
#   2017→2020 by polygon difference, its hectares per real district and its density, and
#   2024 mined hectares per district.
#
# **Inputs.** Class maps (above) or the shipped Earth Genome layers; real districts
# `vitseg/data/gha_adm2_simplified.geojson` (OCHA COD-AB, Ghana Statistical Service, CC BY 3.0
# IGO); an optional protected-area polygon file (`protected_areas_file`).
#
# **Outputs.** `maps/change_<box>_<from>_<to>.tif`, `maps/alerts.{geojson,gpkg}`,
# `maps/webmap.html`; tables `class_areas.csv`, `transition_areas.csv`, `district_mining.csv`,
# `protected_areas.csv`, `density_summary.csv` (earthrise: `earthrise_*.csv`); figures.

# %% tags=["parameters"]
report_dir = "reports/demo"
simulated = True
catalog_dir = "data/synthetic/demo"
aoi = ["obuasi", "kibi"]
seasons = ["2020-21", "2021-22"]
crs = "EPSG:32630"
mode = "demo"
class_map_source = "auto"
districts_name = "gha_adm2_simplified.geojson"
protected_areas_file = ""
protected_areas_id = "name"
bandwidth_m = 1000.0
cell_size_m = 100.0
min_alert_area_ha = 0.5
basemap = "osm"
earthrise_ashanti_name = "earthrise_ashanti_2017_2020.geojson"
earthrise_2024_name = "earthrise_ghana_2024.geojson"
top_n_districts = 15

# %%

import itertools

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import rioxarray
from shapely.geometry import box as shapely_box

import vitseg.alerts
import vitseg.aoi
import vitseg.change
import vitseg.density
import vitseg.io
import vitseg.periods
import vitseg.plotting
import vitseg.predict
import vitseg.styles
import vitseg.synthetic
import vitseg.webmap
import vitseg.zonal
from vitseg.constants import CLASS_COLORS, CLASSES
from vitseg.errors import ParamsError

vitseg.io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = vitseg.io.start_run(
    report_dir,
    params={
        "simulated": simulated, "catalog_dir": catalog_dir, "aoi": aoi, "seasons": seasons,
        "crs": crs, "mode": mode, "class_map_source": class_map_source,
        "districts_name": districts_name, "protected_areas_file": protected_areas_file,
        "protected_areas_id": protected_areas_id, "bandwidth_m": bandwidth_m,
        "cell_size_m": cell_size_m, "min_alert_area_ha": min_alert_area_ha, "basemap": basemap,
        "earthrise_ashanti_name": earthrise_ashanti_name,
        "earthrise_2024_name": earthrise_2024_name, "top_n_districts": top_n_districts,
    },
    notebook="08_monitoring",
)  # fmt: skip
if mode not in ("demo", "earthrise"):
    raise ParamsError(f"'mode' must be 'demo' or 'earthrise'; got {mode!r}")
is_demo = mode == "demo"
districts = gpd.read_file(vitseg.io.data_path(districts_name))
DISTRICTS_SOURCE = "Ghana Statistical Service / OCHA ROWCA via HDX (cod-ab-gha), CC BY 3.0 IGO"
data_source = vitseg.io.data_source(simulated)
sim = " (simulated)" if simulated else ""
SIM = " (SIMULATED)" if simulated else ""
boxes = list(vitseg.aoi.run_areas(aoi, crs=crs, report_dir=report_dir)[0])  # the areas' names
seasons = [p.label for p in vitseg.periods.parse_periods(seasons)]
print(f"mode={mode}; {len(districts)} real districts ({DISTRICTS_SOURCE})")

# %% [markdown]
# ## Demo: seasonal class maps
#
# The ensemble class maps of 06_predict, or (when they are not there and
# `class_map_source="auto"`) the simulated truth of the synthetic catalog as a stand-in.

# %%
maps: dict[str, dict[str, object]] = {}
map_source = {}
if is_demo:
    for b in boxes:
        maps[b] = {}
        for s in seasons:
            ens = run.maps / f"ensemble_{b}_{s}_class.tif"
            if class_map_source in ("ensemble", "auto") and ens.exists():
                da = rioxarray.open_rasterio(ens).squeeze("band", drop=True).load()
                map_source[(b, s)] = "ensemble (06_predict)"
            elif simulated and class_map_source in ("truth", "auto"):
                da = vitseg.synthetic.load_truth(catalog_dir, b, s)
                map_source[(b, s)] = "synthetic truth (stand-in for 06_predict maps)"
            else:
                raise ParamsError(
                    f"no class map {ens}; run 06_predict first"
                    + ("" if simulated else " (the real path uses only maps of this run)")
                )
            maps[b][s] = da
    sources = sorted(set(map_source.values()))
    print("class maps from:", sources, sim)

# %% [markdown]
# ## Change maps (integer code = from × 3 + to) and class areas per season (Gallwey Fig. 7)

# %%
if is_demo:
    legend = vitseg.change.change_legend(CLASSES)
    vitseg.io.write_table(legend, run.tables / "change_legend.csv")
    transitions = []
    fig, axes = plt.subplots(
        len(boxes), len(seasons) + 1, figsize=(4.2 * (len(seasons) + 1), 4.2 * len(boxes)),
        squeeze=False,
    )  # fmt: skip
    for i, b in enumerate(boxes):
        for j, s in enumerate(seasons):
            vitseg.plotting.plot_classes(
                maps[b][s], ax=axes[i, j], title=f"{b} {s}", legend=(j == 0)
            )
        for s0, s1 in itertools.pairwise(seasons):
            codes = vitseg.change.change_map(maps[b][s0], maps[b][s1])
            cmap, names = vitseg.styles.change_colormap(CLASSES)  # legend in the file (QGIS)
            vitseg.predict.write_cog(codes, run.maps / f"change_{b}_{s0}_{s1}.tif", nodata=255,
                                     colormap=cmap, category_names=names)  # fmt: skip
            t = vitseg.change.transition_areas(maps[b][s0], maps[b][s1])
            t = t.stack().rename("hectares").reset_index()
            transitions.append(t.assign(box=b, period=f"{s0}->{s1}"))
        vitseg.plotting.plot_change_map(
            codes, ax=axes[i, -1], title=f"{b} change {seasons[-2]} -> {seasons[-1]}"
        )
    fig.suptitle(f"Class maps and change map per area{sim}")
    fig.tight_layout()
    vitseg.plotting.savefig(fig, run.figures / "change_maps.png", simulated=simulated)
    transitions = pd.concat(transitions).assign(data_source=data_source)
    vitseg.io.write_table(transitions, run.tables / "transition_areas.csv")

    areas = pd.concat(
        [vitseg.change.class_areas(maps[b]).assign(box=b) for b in boxes]
    ).reset_index()
    areas["map_source"] = [map_source[(b, s)] for b, s in zip(areas.box, areas.season, strict=True)]
    areas["data_source"] = data_source
    vitseg.io.write_table(areas, run.tables / "class_areas.csv")
    total = areas.groupby("season")[list(CLASSES)].sum()
    print(f"Class areas, all areas (ha){SIM}:")
    print(total.round(1).to_string())

    fig, axes = plt.subplots(1, len(CLASSES), figsize=(11, 3.6), sharey=True)
    for ax, c in zip(axes, CLASSES, strict=True):
        ax.bar(total.index, total[c], color=CLASS_COLORS[c])
        ax.set_title(c)
        ax.set_xlabel("season")
        for k, v in enumerate(total[c]):
            ax.annotate(f"{v:,.0f}", (k, v), ha="center", va="bottom", fontsize=8)
    axes[0].set_ylabel("area (ha)")
    fig.suptitle(f"Area per class and season, all areas (Gallwey Fig. 7 layout){sim}")
    fig.tight_layout()
    vitseg.plotting.savefig(fig, run.figures / "gallwey_fig7_class_areas.png", simulated=simulated)

# %% [markdown]
# ## Mined area per real district, cumulative and per season (Gallwey Fig. 8)
#
# Districts are the real OCHA ADM2 polygons; the mined area is that of this run's maps
# (simulated in the demo). `covered_fraction` says how much of each district the areas cover.

# %%
if is_demo:
    per_district = pd.concat(
        [
            vitseg.zonal.zonal_areas(
                maps[b], districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"]
            ).assign(box=b)
            for b in boxes
        ]
    )
    keys = ["ADM2_PCODE", "ADM2_EN", "ADM1_EN", "season"]
    sums = ["mines_ha", "new_mines_ha", "mines_change_ha", "cumulative_new_mines_ha",
            "mapped_ha"]  # fmt: skip
    district_table = per_district.groupby(keys, as_index=False).agg(
        {**{c: "sum" for c in sums}, "zone_ha": "first"}
    )
    district_table["covered_fraction"] = (
        district_table["mapped_ha"] / district_table["zone_ha"]
    ).clip(upper=1)
    district_table["data_source"] = data_source
    vitseg.io.write_table(district_table, run.tables / "district_mining.csv")
    last_season = district_table[district_table["season"] == seasons[-1]]
    district_layer = districts[["ADM2_PCODE", "geometry"]].merge(last_season, on="ADM2_PCODE")
    vitseg.styles.write_styled_layer(  # opens in QGIS as a choropleth of mined hectares
        district_layer, run.maps / "district_mining.gpkg", layer="district_mining",
        qml=vitseg.styles.district_qml(district_layer["mines_ha"].tolist()),
    )  # fmt: skip
    print(f"Mined hectares per district{SIM}:")
    print(district_table[[*keys, "mines_ha", "new_mines_ha", "covered_fraction"]].round(3)
          .to_string(index=False))  # fmt: skip

    wide = district_table.pivot(index="ADM2_EN", columns="season", values="mines_ha")
    new = district_table.pivot(index="ADM2_EN", columns="season", values="new_mines_ha")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    wide.plot.bar(ax=axes[0], rot=30)
    axes[0].set_title("a) mined area per district and season")
    axes[0].set_ylabel("hectares")
    new[seasons[1:]].plot.bar(ax=axes[1], rot=30, color="#e41a1c")
    axes[1].set_title("b) new mining since the previous season")
    axes[1].set_ylabel("hectares")
    for ax in axes:
        ax.set_xlabel("")
    fig.suptitle(f"Mining per real Ghana district (OCHA ADM2), Fig. 8 layout{sim}")
    fig.tight_layout()
    vitseg.plotting.savefig(
        fig, run.figures / "gallwey_fig8_district_mining.png", simulated=simulated
    )

# %% [markdown]
# ## Kernel density of new mining per season (Gallwey Fig. 9)
#
# Each new-mining pixel (100 m²) is an event; a quartic kernel of radius `bandwidth_m` on a
# `cell_size_m` grid gives new-mining pixels per km². The map integrates to the number of
# new pixels (checked below).

# %%
if is_demo:
    dens_rows = []
    periods = list(itertools.pairwise(seasons))
    fig, axes = plt.subplots(
        len(boxes), len(periods), figsize=(5.5 * len(periods), 4.8 * len(boxes)), squeeze=False
    )
    for i, b in enumerate(boxes):
        for j, (s0, s1) in enumerate(periods):
            nm = vitseg.change.new_mining(maps[b][s0], maps[b][s1])
            n_new = int((nm == 1).sum())
            if n_new == 0:
                axes[i, j].set_title(f"{b} {s0}->{s1}: no new mining")
                continue
            x0, y0, x1, y1 = nm.rio.bounds()
            pad = bandwidth_m + cell_size_m  # the quartic kernel's reach: no mass spills out
            dens = vitseg.density.kde_map(
                nm, bandwidth_m=bandwidth_m, cell_size_m=cell_size_m,
                bounds=(x0 - pad, y0 - pad, x1 + pad, y1 + pad),
            )  # fmt: skip
            integral = float(dens.sum()) * (cell_size_m / 1000) ** 2
            dens_rows.append({
                "box": b, "period": f"{s0}->{s1}", "new_pixels": n_new,
                "integral_pixels": integral, "peak_per_km2": float(dens.max()),
                "bandwidth_m": bandwidth_m, "cell_size_m": cell_size_m,
            })  # fmt: skip
            vitseg.predict.write_cog(dens, run.maps / f"density_{b}_{s0}_{s1}.tif")
            vitseg.plotting.plot_density(
                dens, ax=axes[i, j], outlines=districts,
                title=f"{b}: new-mining pixels per km², {s0} -> {s1}",
            )  # fmt: skip
    fig.suptitle(f"Kernel density of new mining (Gallwey Fig. 9 layout){sim}")
    fig.tight_layout()
    vitseg.plotting.savefig(fig, run.figures / "gallwey_fig9_density.png", simulated=simulated)
    density_summary = pd.DataFrame(dens_rows).assign(data_source=data_source)
    vitseg.io.write_table(density_summary, run.tables / "density_summary.csv")
    print(density_summary.round(2).to_string(index=False))

# %% [markdown]
# ## New mining inside protected areas (Gallwey Fig. 10)
#
# `protected_areas_file` takes any polygon file (with an id column `protected_areas_id`).
# No openly licensed Ghana forest-reserve layer is available offline, so when it is empty the
# demo uses **stand-in reserves**: a 4 km × 4 km square at the centre of each box. They are
# not real reserves; the numbers only show the computation.

# %%
if is_demo:
    if protected_areas_file:
        reserves = gpd.read_file(protected_areas_file)
        reserve_note = f"protected areas from {protected_areas_file}"
    else:
        squares = []
        for b in boxes:
            x0, y0, x1, y1 = maps[b][seasons[0]].rio.bounds()
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            squares.append(shapely_box(cx - 2000, cy - 2000, cx + 2000, cy + 2000))
        reserves = gpd.GeoDataFrame(
            {protected_areas_id: [f"stand-in reserve ({b})" for b in boxes]},
            geometry=squares, crs=maps[boxes[0]][seasons[0]].rio.crs,
        ).to_crs("EPSG:4326")  # fmt: skip
        reserve_note = "STAND-IN reserves (4 km squares at box centres), not real forest reserves"
    reserve_table = pd.concat(
        [vitseg.zonal.zonal_areas(maps[b], reserves, zone_id=protected_areas_id) for b in boxes]
    )
    reserve_table = reserve_table[reserve_table["mapped_ha"] > 0]
    reserve_table = reserve_table.assign(reserves=reserve_note, data_source=data_source)
    vitseg.io.write_table(reserve_table, run.tables / "protected_areas.csv")
    print(reserve_note)
    print(reserve_table[[protected_areas_id, "season", "mines_ha", "new_mines_ha",
                         "covered_fraction"]].round(2).to_string(index=False))  # fmt: skip

    last = reserve_table[reserve_table["season"] == seasons[-1]].set_index(protected_areas_id)
    fig, axes = plt.subplots(1, len(boxes), figsize=(5.5 * len(boxes), 5), squeeze=False)
    for ax, b in zip(axes[0], boxes, strict=True):
        vitseg.plotting.plot_classes(maps[b][seasons[-1]], ax=ax, legend=False)
        r = reserves.to_crs(maps[b][seasons[-1]].rio.crs)
        r = r[r.intersects(shapely_box(*maps[b][seasons[-1]].rio.bounds()))]
        r.boundary.plot(ax=ax, color="black", linewidth=1.5)
        for _, row in r.iterrows():
            key = row[protected_areas_id]
            ha = last.loc[key, "cumulative_new_mines_ha"] if key in last.index else 0.0
            pt = row.geometry.representative_point()
            ax.annotate(f"{key}\n{ha:.1f} ha new mining", (pt.x, pt.y), ha="center",
                        fontsize=8, bbox={"fc": "white", "alpha": 0.8})  # fmt: skip
        ax.set_title(f"{b}: {seasons[0]} -> {seasons[-1]}")
    fig.suptitle(f"New mining inside protected areas (Fig. 10 layout). {reserve_note}", fontsize=9)
    fig.tight_layout()
    vitseg.plotting.savefig(
        fig, run.figures / "gallwey_fig10_protected_areas.png", simulated=simulated
    )

# %% [markdown]
# ## Alerts and web map
#
# Each connected patch of pixels that turned to mining (at least `min_alert_area_ha`) is an
# alert with its area, first season, real district (P-code and name) and centroid.

# %%
if is_demo:
    alerts = pd.concat(
        [vitseg.alerts.make_alerts(maps[b], districts=districts,
                                   min_area_ha=min_alert_area_ha).assign(box=b)
         for b in boxes]
    )  # fmt: skip
    alerts = gpd.GeoDataFrame(alerts, geometry="geometry", crs=maps[boxes[0]][seasons[0]].rio.crs)
    alerts["alert_id"] = [
        f"{b}-{a}" for b, a in zip(alerts["box"], alerts["alert_id"], strict=True)
    ]
    alerts["data_source"] = data_source
    vitseg.alerts.write_alerts(alerts, run.maps / "alerts.geojson")
    vitseg.alerts.write_alerts(alerts, run.maps / "alerts.gpkg")
    print(f"{len(alerts)} alerts{SIM}, {alerts['area_ha'].sum():.1f} ha; largest:")
    print(alerts.drop(columns="geometry").head(5).to_string(index=False))
    page = vitseg.webmap.write_webmap(
        run.maps / "webmap.html",
        class_maps={f"{b} {s}": maps[b][s] for b in boxes for s in seasons},
        masks={f"{b} new mining {seasons[-1]}":
               vitseg.change.new_mining(maps[b][seasons[-2]], maps[b][seasons[-1]])
               for b in boxes},
        probability_maps={
            f"{b} P(mines) {seasons[-1]}":
            vitseg.predict.open_map(run.maps / f"ensemble_{b}_{seasons[-1]}_probs.tif",
                                    chunks=None).sel({"class": "mines"})
            for b in boxes if (run.maps / f"ensemble_{b}_{seasons[-1]}_probs.tif").exists()},
        confidence_maps={
            f"{b} confidence {seasons[-1]}":
            vitseg.predict.open_map(run.maps / f"ensemble_{b}_{seasons[-1]}_confidence.tif",
                                    chunks=None)
            for b in boxes if (run.maps / f"ensemble_{b}_{seasons[-1]}_confidence.tif").exists()},
        alerts=alerts,
        districts=districts,
        title="vitseg demo: simulated mining change over real Ghana districts"
        if simulated else "vitseg: mining change from Sentinel-2",
        note=(vitseg.plotting.SIMULATED_CAPTION + "; " if simulated else "")
        + f"class maps: {', '.join(sources)}",
        basemap=[basemap, "satellite"] if basemap else None,  # both off until picked
    )  # fmt: skip
    print("web map:", page)

# %% [markdown]
# ## Real data: Earth Genome detections (mode = "earthrise")
#
# **Source.** Earth Genome's open Sentinel-2 mining detector (earthrise-media/mining-detector,
# MIT): Ashanti 2017 and 2020 outputs (v44px v2.8) and south-west Ghana 2024 (48px ensemble,
# Jan–Nov 2024 composites). **Limits.** These are detector outputs, not hand labels: blocky
# ~450 m patches, so areas are over-estimates at the edges of mines and small pits are missed;
# 2017→2020 "new mining" is a difference of two detections, so part of it is detector change,
# not ground change. The 2017/2020 files cover only the Ashanti study window.

# %%
if not is_demo:
    er = gpd.read_file(vitseg.io.data_path(earthrise_ashanti_name))
    er["year"] = er["year"].astype(str).str[:4]
    er17, er20 = er[er["year"] == "2017"], er[er["year"] == "2020"]
    er24 = gpd.read_file(vitseg.io.data_path(earthrise_2024_name))
    new = vitseg.change.new_mining_polygons(er17, er20)
    totals = pd.DataFrame(
        {
            "layer": ["Ashanti 2017", "Ashanti 2020", "new 2017->2020", "south-west Ghana 2024"],
            "polygons": [len(er17), len(er20), len(new), len(er24)],
            "hectares": [vitseg.change.union_area_ha(g) for g in (er17, er20, new, er24)],
        }
    ).assign(data_source="Earth Genome mining detector (real detections, MIT)")  # fmt: skip
    vitseg.io.write_table(totals, run.tables / "earthrise_totals.csv")
    print("REAL data (Earth Genome detector output):")
    print(totals.round(1).to_string(index=False))

# %%
if not is_demo:
    by_year = vitseg.zonal.zonal_polygon_areas(
        er, districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"], by="year"
    )
    new_d = vitseg.zonal.zonal_polygon_areas(
        new, districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"]
    ).rename(columns={"area_ha": "new_2017_2020_ha"})
    ashanti = by_year.merge(
        new_d[["ADM2_PCODE", "new_2017_2020_ha"]], on="ADM2_PCODE", how="left"
    ).fillna({"new_2017_2020_ha": 0.0})
    ashanti = ashanti.sort_values("new_2017_2020_ha", ascending=False)
    ashanti["data_source"] = "Earth Genome mining detector v44px v2.8 (real detections)"
    vitseg.io.write_table(ashanti, run.tables / "earthrise_ashanti_districts.csv")
    d24 = vitseg.zonal.zonal_polygon_areas(
        er24, districts, zone_id="ADM2_PCODE", keep_columns=["ADM2_EN", "ADM1_EN"]
    ).rename(columns={"area_ha": "mined_2024_ha"})
    d24["data_source"] = "Earth Genome mining detector 48px ensemble 2024 (real detections)"
    vitseg.io.write_table(d24, run.tables / "earthrise_2024_districts.csv")
    print("REAL: new mining 2017->2020 per district (ha), top:")
    print(
        ashanti.head(top_n_districts)[
            ["ADM2_EN", "area_ha_2017", "area_ha_2020", "new_2017_2020_ha"]
        ]
        .round(1)
        .to_string(index=False)
    )
    print("REAL: mined area 2024 per district (ha), top:")
    print(d24.head(top_n_districts)[["ADM2_EN", "ADM1_EN", "mined_2024_ha"]].round(1)
          .to_string(index=False))  # fmt: skip

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    top = ashanti.head(top_n_districts).set_index("ADM2_EN")
    top[["area_ha_2017", "area_ha_2020", "new_2017_2020_ha"]].plot.barh(
        ax=axes[0], color=["#fdae61", "#d7191c", "#2c7bb6"]
    )
    axes[0].invert_yaxis()
    axes[0].set_xlabel("hectares")
    axes[0].set_title("Ashanti window: detected mining 2017, 2020 and new 2017->2020")
    top24 = d24.head(top_n_districts).set_index("ADM2_EN")
    top24["mined_2024_ha"].plot.barh(ax=axes[1], color="#d95f02")
    axes[1].invert_yaxis()
    axes[1].set_xlabel("hectares")
    axes[1].set_title("South-west Ghana: detected mining 2024")
    for ax in axes:
        ax.set_ylabel("")
    fig.suptitle("REAL data: Earth Genome detector polygons (~450 m blocks) per OCHA district")
    fig.text(0.01, 0.01, "Sources: Earth Genome mining-detector outputs (MIT); districts "
             + DISTRICTS_SOURCE, fontsize=7)  # fmt: skip
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    vitseg.plotting.savefig(fig, run.figures / "earthrise_districts.png", simulated=False)

# %%
if not is_demo:
    dens_new = vitseg.density.kde_map(
        new, bandwidth_m=bandwidth_m, cell_size_m=cell_size_m, weight="area_ha", crs=crs
    )
    dens_24 = vitseg.density.kde_map(
        er24, bandwidth_m=bandwidth_m, cell_size_m=cell_size_m, weight="area_ha", crs=crs
    )
    cell_km2 = (cell_size_m / 1000) ** 2
    dens_summary = pd.DataFrame([
        {"layer": "new 2017->2020", "total_ha": dens_new.attrs["total"],
         "integral_ha": float(dens_new.sum()) * cell_km2, "peak_ha_per_km2": float(dens_new.max())},
        {"layer": "mined 2024", "total_ha": dens_24.attrs["total"],
         "integral_ha": float(dens_24.sum()) * cell_km2, "peak_ha_per_km2": float(dens_24.max())},
    ]).assign(bandwidth_m=bandwidth_m, cell_size_m=cell_size_m,
              data_source="Earth Genome mining detector (real detections)")  # fmt: skip
    vitseg.io.write_table(dens_summary, run.tables / "earthrise_density.csv")
    print("REAL: density summary")
    print(dens_summary.round(2).to_string(index=False))
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    vitseg.plotting.plot_density(
        dens_new, ax=axes[0], outlines=districts,
        title=f"New mining 2017->2020, Ashanti window (ha per km², bandwidth {bandwidth_m:g} m)",
    )  # fmt: skip
    vitseg.plotting.plot_density(
        dens_24, ax=axes[1], outlines=districts,
        title=f"Mined area 2024, south-west Ghana (ha per km², bandwidth {bandwidth_m:g} m)",
    )  # fmt: skip
    fig.suptitle("REAL data: kernel density of Earth Genome detections (Gallwey Fig. 9 style)")
    fig.tight_layout()
    vitseg.plotting.savefig(fig, run.figures / "earthrise_density.png", simulated=False)

# %%
if not is_demo:
    alerts = vitseg.alerts.assign_districts(new.to_crs(crs), districts)
    alerts = alerts[alerts["area_ha"] >= min_alert_area_ha].sort_values("area_ha", ascending=False)
    alerts.insert(0, "alert_id", [f"2020-{i + 1:04d}" for i in range(len(alerts))])
    alerts.insert(1, "first_seen", "2020")
    cent = alerts.geometry.centroid.to_crs("EPSG:4326")
    alerts["lon"], alerts["lat"] = cent.x.round(6), cent.y.round(6)
    alerts["data_source"] = "Earth Genome detector, 2020 minus 2017 (real)"
    vitseg.alerts.write_alerts(alerts, run.maps / "alerts.geojson")
    vitseg.alerts.write_alerts(alerts, run.maps / "alerts.gpkg")
    page = vitseg.webmap.write_webmap(
        run.maps / "webmap.html",
        alerts=alerts,
        districts=districts,
        title="Real Earth Genome detections: new mining 2017->2020 (Ashanti window)",
        note="Detector output (~450 m blocks), not hand labels. Districts: " + DISTRICTS_SOURCE,
        basemap=[basemap, "satellite"] if basemap else None,  # both off until picked
    )
    print(f"REAL: {len(alerts)} new-mining polygons >= {min_alert_area_ha} ha; web map: {page}")
