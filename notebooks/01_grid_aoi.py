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
# # 01 · Area of interest, grid and the cells that hold mining polygons
#
# **Purpose.** Lay a square grid over Ghana in a metric CRS and keep the cells that
# intersect hand-drawn mining polygons, as VitSegh24 do (§3.2, Fig. 3): these cells say
# where imagery is fetched and tiled. A table gives the number of cells and the labelled
# area per box.
#
# **Real data, not simulated.** Everything in this notebook is real: the Natural Earth
# 1:10m outline of Ghana, the OCHA regions, and the 135 artisanal-mine polygons drawn by
# the asm-map project in two ~15 km boxes (Obuasi and Kibi; CC BY 4.0, see
# `DATA_LICENSES.md`). Only later notebooks use simulated imagery in the offline demo.
#
# **Inputs.** Shipped real data (`vitseg/data/`): `ne_10m_ghana.geojson`,
# `gha_adm1_simplified.geojson`, and the mining polygons: `labels_file` when given (any
# polygon file, class column mapped by `labels_class_map`; its mines choose the cells),
# else the shipped `asm_ground_truth_ghana.geojson`. With `aoi = "cells"`, notebooks 02-08
# search, build, tile, label and predict exactly the cells kept here (VitSegh24's flow);
# otherwise the cells are shown for the area `aoi` names.
#
# **Outputs.** `<report_dir>/data/grid_cells.gpkg` (selected cells: `cell_id`, `row`,
# `col`, `box`, `n_polygons`, `label_area_m2`, `label_frac`), `figures/grid_aoi.png`
# (country map with the selected cells and zooms on both boxes),
# `tables/grid_cells_summary.csv`.

# %% tags=["parameters"]
report_dir = "reports/demo"
crs = "EPSG:32630"
aoi = ["obuasi", "kibi"]
labels_file = ""
labels_class_column = "class"
labels_class_map = {}
cell_size_m = 2000.0
labels_data = "asm_ground_truth_ghana.geojson"
outline_data = "ne_10m_ghana.geojson"
regions_data = "gha_adm1_simplified.geojson"
min_label_area_m2 = 0.0

# %%
import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vitseg import aoi as vaoi
from vitseg import grid, io, labels, plotting

io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = io.start_run(
    report_dir,
    params={
        "crs": crs, "aoi": aoi, "labels_file": labels_file,
        "labels_class_column": labels_class_column, "labels_class_map": labels_class_map,
        "cell_size_m": cell_size_m, "labels_data": labels_data,
        "outline_data": outline_data, "regions_data": regions_data,
        "min_label_area_m2": min_label_area_m2,
    },
    notebook="01_grid_aoi",
)  # fmt: skip

# %% [markdown]
# ## Real inputs
# Ghana spans UTM zones 30N and 31N; the grid uses the CRS given in the parameters
# (`grid.utm_crs_for` names the zone of any AOI). Both mining boxes lie in zone 30N.

# %%
ghana = gpd.read_file(io.data_path(outline_data))
regions = gpd.read_file(io.data_path(regions_data))
if labels_file:
    polygons = labels.read_labels(
        labels_file, class_column=labels_class_column, class_map=labels_class_map or None
    )
    polygons = polygons[polygons["class"] == "mines"].to_crs("EPSG:4326")
    DATA_SOURCE = f"mining polygons of {labels_file}"
else:
    polygons = gpd.read_file(io.data_path(labels_data))
    DATA_SOURCE = "real data (asm-map polygons, Natural Earth outline)"
crs = vaoi.choose_crs(gpd.GeoDataFrame(geometry=[polygons.union_all()], crs="EPSG:4326"), crs)
if aoi == "cells":  # the cells kept below become the areas of the run
    box_frame = gpd.GeoDataFrame({"box": ["all"]}, geometry=[ghana.union_all()], crs=ghana.crs)
else:
    box_frame = vaoi.resolve_aoi(aoi).rename(columns={"area": "box"})[["box", "geometry"]]
polygons = gpd.sjoin(polygons, box_frame, predicate="intersects", how="inner").drop(
    columns="index_right"
)
boxes = list(box_frame["box"])
print(f"Ghana outline zone: {grid.utm_crs_for(ghana)}; grid CRS: {crs}")
print(f"{len(polygons)} mining polygons in {boxes}")

# %% [markdown]
# ## Grid over Ghana and the cells that intersect the polygons

# %%
cells = grid.make_grid(ghana, cell_size_m, crs=crs)
selected = grid.select_cells(cells, polygons, min_area_m2=min_label_area_m2)
box_utm = box_frame.to_crs(crs)
selected = gpd.sjoin(selected, box_utm, predicate="intersects", how="left")
selected = selected.drop(columns="index_right").drop_duplicates("cell_id")
out_path = run.data / "grid_cells.gpkg"
with io.atomic_path(out_path) as tmp:
    selected.to_file(tmp, driver="GPKG", layer="grid_cells")
print(f"{len(cells)} cells of {cell_size_m / 1000:g} km over Ghana; {len(selected)} selected")

# %%
rows = []
for name, part in selected.groupby("box"):
    polys = polygons[polygons["box"] == name]
    rows.append(
        {
            "box": name,
            "cells_selected": len(part),
            "polygons": len(polys),
            "labelled_area_km2": part["label_area_m2"].sum() / 1e6,
            "mean_label_frac": part["label_frac"].mean(),
            "max_label_frac": part["label_frac"].max(),
        }
    )
summary = pd.DataFrame(rows if aoi != "cells" else [])  # cells: one row, the total
total = {
    "box": "all",
    "cells_selected": len(selected),
    "polygons": len(polygons),
    "labelled_area_km2": selected["label_area_m2"].sum() / 1e6,
    "mean_label_frac": selected["label_frac"].mean(),
    "max_label_frac": selected["label_frac"].max(),
}
summary = pd.concat([summary, pd.DataFrame([total])], ignore_index=True)
summary.insert(1, "cells_in_grid", len(cells))
summary.insert(1, "cell_size_m", cell_size_m)
summary["data_source"] = DATA_SOURCE
with io.atomic_path(run.tables / "grid_cells_summary.csv") as tmp:
    summary.to_csv(tmp, index=False, float_format="%.4f")
summary

# %% [markdown]
# ## Map (after VitSegh24 Fig. 3)
# Left: Ghana with its regions, the two labelled boxes and the selected cells. Right:
# zooms on both boxes with the grid, the selected cells and the real polygons.

# %%
g_utm, r_utm, p_utm = ghana.to_crs(crs), regions.to_crs(crs), polygons.to_crs(crs)
zoom_boxes = [] if aoi == "cells" else boxes[:3]
fig, axes = plt.subplot_mosaic(
    [["map", b] for b in zoom_boxes] or [["map"]],
    figsize=(12, 8.5),
    width_ratios=[1.25, 1] if zoom_boxes else None,
    layout="constrained",
)
ax = axes["map"]
r_utm.boundary.plot(ax=ax, color="#bbbbbb", linewidth=0.5)
g_utm.boundary.plot(ax=ax, color="black", linewidth=1.0)
selected.plot(ax=ax, color="#d95f02", edgecolor="#d95f02", linewidth=1.5)
box_utm[box_utm["box"].isin(boxes)].boundary.plot(ax=ax, color="#1f78b4", linewidth=1.2)
for _, b in box_utm[box_utm["box"].isin(boxes)].iterrows():
    x, y = b.geometry.bounds[2], b.geometry.bounds[3]
    ax.annotate(b["box"].title(), (x, y), xytext=(8, 6), textcoords="offset points", fontsize=9)
ax.set_title(f"Ghana, {cell_size_m / 1000:g} km grid ({crs}): cells with mining polygons")
ax.set_xlabel("easting (km)")
ax.set_ylabel("northing (km)")
ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1000:.0f}")
ax.yaxis.set_major_formatter(lambda v, _: f"{v / 1000:.0f}")
ax.set_aspect("equal")
x0 = ax.get_xlim()[0] + 20000
y0 = ax.get_ylim()[0] + 20000
ax.plot([x0, x0 + 100000], [y0, y0], color="black", linewidth=3)
ax.text(x0 + 50000, y0 + 8000, "100 km", ha="center", fontsize=8)
for name in zoom_boxes:
    zax = axes[name]
    frame = box_utm[box_utm["box"] == name].geometry.iloc[0]
    xmin, ymin, xmax, ymax = frame.buffer(cell_size_m / 2).bounds
    local = cells.cx[xmin:xmax, ymin:ymax]
    local.boundary.plot(ax=zax, color="#cccccc", linewidth=0.5)
    selected[selected["box"] == name].plot(
        ax=zax, facecolor="#fdd0a2", edgecolor="#d95f02", linewidth=1.0
    )
    p_utm[p_utm["box"] == name].plot(ax=zax, color="#7f2704", linewidth=0)
    gpd.GeoSeries([frame], crs=crs).boundary.plot(ax=zax, color="#1f78b4", linewidth=1.0)
    zax.set_xlim(xmin, xmax)
    zax.set_ylim(ymin, ymax)
    zax.set_aspect("equal")
    zax.set_xticks([])
    zax.set_yticks([])
    zax.set_xlabel("")
    zax.set_ylabel("")
    n_sel = int((selected["box"] == name).sum())
    n_pol = int((p_utm["box"] == name).sum())
    zax.set_title(f"{name.title()}: {n_sel} cells, {n_pol} polygons", fontsize=10)
    zax.plot([xmin + 500, xmin + 5500], [ymin + 500, ymin + 500], color="black", linewidth=3)
    zax.text(xmin + 3000, ymin + 1000, "5 km", ha="center", va="bottom", fontsize=8)
fig.legend(
    handles=[
        Patch(facecolor="#fdd0a2", edgecolor="#d95f02", label="selected grid cell"),
        Patch(facecolor="#7f2704", label="mining polygon (asm-map, real)"),
        Line2D([], [], color="#1f78b4", label="labelled box"),
        Line2D([], [], color="#cccccc", label=f"grid cell ({cell_size_m / 1000:g} km)"),
    ],
    loc="outside lower center",
    ncol=4,
    fontsize=9,
    frameon=False,
)
plotting.savefig(fig, run.figures / "vitsegh24_fig3_grid_aoi.png", simulated=False)

# %% [markdown]
# The selected cells and the table above come from real polygons. Their labelled area
# (about 22 km² in total) is what the later notebooks use as the mining class.

# %%
io.update_manifest(
    run.root,
    "grid",
    {
        "cell_size_m": cell_size_m,
        "crs": crs,
        "cells_in_grid": len(cells),
        "cells_selected": len(selected),
        "labelled_area_km2": float(selected["label_area_m2"].sum() / 1e6),
        "data": str(out_path),
    },
)
print(summary.to_string(index=False))
