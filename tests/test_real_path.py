"""The real path end to end, offline: params/ci_real.yaml through all 8 notebooks.

What a researcher with a network would run, with every input replaced by a local stand-in
of the same kind: a STAC API on 127.0.0.1 (vitseg.stac_server, paged like Earth Search v1)
serving items of two neighbouring Sentinel-2 tiles in two UTM zones, an AOI polygon file in
EPSG:3857, a labels file in the researcher's own vocabulary, hand-digitised reference tiles,
and, after the first pass, the interpreted accuracy sample. The pixels behind the stand-ins
are simulated (vitseg.synthetic); the simulated catalog is moved out of reach while the
notebooks run, so any read of it would fail the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from vitseg import stac_server, standin, synthetic
from vitseg.io import REPO_ROOT
from vitseg.runner import load_experiment, run_experiment
from vitseg.styles import layer_styles as styles_of

PARAMS = REPO_ROOT / "params" / "ci_real.yaml"
BOX = "kibi"
SEASONS = ("2020-21", "2021-22")


def _outputs_text(nb_path: Path) -> tuple[list[str], str]:
    """Error outputs and all text outputs of an executed notebook."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    errors, texts = [], []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"{out.get('ename')}: {out.get('evalue')}")
            texts.append(json.dumps(out.get("text", "")))
            texts.append(json.dumps(out.get("data", {}).get("text/plain", "")))
    return errors, "\n".join(texts)


@contextlib.contextmanager
def out_of_reach(catalog: Path):
    """Move the simulated catalog away while the real path runs; put it back after."""
    hidden = catalog.with_name(f".{catalog.name}-hidden-during-the-real-path")
    if hidden.exists():  # left by a killed run
        if catalog.exists():
            shutil.rmtree(hidden)
        else:
            os.replace(hidden, catalog)
    os.replace(catalog, hidden)
    try:
        yield
    finally:
        os.replace(hidden, catalog)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    exp = load_experiment(PARAMS)
    common = exp.common
    standin_dir = REPO_ROOT / Path(str(common["labels_file"])).parent
    catalog = REPO_ROOT / "data" / "synthetic" / "ci_real"
    synthetic.write_catalog(
        catalog, boxes=[BOX], seasons=SEASONS, dates_per_season=2, size_px=256, seed=0
    )
    made = standin.write_standin(catalog, standin_dir, box=BOX, seasons=SEASONS)
    reference_file = REPO_ROOT / str(exp.sections["07_accuracy"]["reference_file"])
    reference_file.unlink(missing_ok=True)
    reference_file.with_name("interpreted_sample_2.csv").unlink(missing_ok=True)
    report = REPO_ROOT / str(common["report_dir"])
    shutil.rmtree(report, ignore_errors=True)
    with stac_server.serve_items(made.items, page_size=3) as server:
        with out_of_reach(catalog):  # the notebooks must not need the simulator's files
            run_experiment(PARAMS, force=True, overrides={"stac_source": server.url})
            waiting = json.loads((report / "manifest.json").read_text())["waiting"]
            first_pass_tables = sorted(p.name for p in (report / "tables").glob("accuracy_*"))
        # the interpreters' step, stood in for by the simulated truth of the sample's season
        sheet = report / "maps" / f"accuracy_sample_{SEASONS[-1]}.csv"
        standin.fill_sample_from_truth(
            sheet, catalog, box=BOX, season=SEASONS[-1], out=reference_file
        )
        # a second interpreter who reads every 5th point differently
        second = pd.read_csv(reference_file)
        flip = {"mines": "vegetation", "vegetation": "mines", "built": "vegetation"}
        rows = second.index[::5]
        second.loc[rows, "reference_class"] = second.loc[rows, "reference_class"].map(
            lambda c: flip.get(c, c)
        )
        second["interpreter"] = "second interpreter (stand-in)"
        second.to_csv(reference_file.with_name("interpreted_sample_2.csv"), index=False)
        with out_of_reach(catalog):
            run_experiment(PARAMS, overrides={"stac_source": server.url})  # 07 on: new input
        requests = list(server.requests)
    return {
        "report": report,
        "waiting": waiting,
        "first_pass_tables": first_pass_tables,
        "requests": requests,
        "standin": made,
    }


def test_every_notebook_ran_without_error_and_says_nothing_simulated(real_run):
    report = real_run["report"]
    executed = sorted((report / "executed").glob("0*.ipynb"))
    assert [p.stem for p in executed] == [
        "01_grid_aoi", "02_build_cube", "03_labels_tiles", "04_train", "05_benchmark",
        "06_predict", "07_accuracy", "08_monitoring",
    ]  # fmt: skip
    for nb in executed:
        errors, text = _outputs_text(nb)
        assert errors == [], f"{nb.name}: {errors}"
        assert "simulated" not in text.lower(), f"{nb.name} says 'simulated' on the real path"
    images = 0
    for nb in executed:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        images += sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
    assert images == len(
        list((report / "figures").glob("*.png"))
    )  # every saved figure shown inline
    for gpkg, layer in [("alerts.gpkg", "alerts"), (f"accuracy_sample_{SEASONS[-1]}.gpkg", "sample"),
                        ("district_mining.gpkg", "district_mining")]:  # fmt: skip
        styles = styles_of(report / "maps" / gpkg)
        assert layer in {row["f_table_name"] for row in styles}, gpkg  # QGIS style with the layer
    import rasterio

    with rasterio.open(report / "maps" / f"ensemble_standin_{SEASONS[-1]}_class.tif") as src:
        assert src.colormap(1)[0][:3] != (0, 0, 0)  # class colours stored for QGIS
    change_cogs = sorted((report / "maps").glob("change_*.tif"))
    assert change_cogs
    with rasterio.open(change_cogs[0]) as src:
        assert "mines" in src.tags(1).get("categories", "")  # the change legend is in the file
    for table in (report / "tables").glob("*.csv"):
        assert "simulated" not in table.read_text(encoding="utf-8").lower(), table.name


def test_items_came_from_the_stac_api_with_paging_and_were_merged_per_day(real_run):
    searches = [r for r in real_run["requests"] if r[1].startswith("/search")]
    assert len(searches) >= 4  # 8 items in pages of 3, per season
    items = pd.read_csv(real_run["report"] / "tables" / "02_items_per_season.csv")
    assert (items["n_items"] == 4).all()  # 2 dates x 2 tiles per season
    assert all(len(str(t).split()) == 2 for t in items["tiles"])  # two MGRS tiles
    timings = pd.read_csv(real_run["report"] / "tables" / "06_prediction_timings.csv")
    assert len(timings) == 4  # 4 observations (solar days), not 8 items
    assert timings["item_id"].str.contains("+", regex=False).all()


def test_labels_and_reference_tables_come_from_the_files(real_run):
    report = real_run["report"]
    fractions = pd.read_csv(report / "tables" / "03_class_fractions_per_split.csv")
    train = fractions[fractions["split"] == "train"].set_index("class")
    assert train.loc["mines", "pixels"] > 0  # 'galamsey' polygons through the class map
    # 04 trains the U-Net on exactly the classes the training tiles hold, never on an empty one
    manifest = json.loads((report / "manifest.json").read_text())
    present = [c for c in ("mines", "built", "vegetation") if train.loc[c, "pixels"] > 0]
    assert manifest["04_classes"]["unet"] == present
    unseen = pd.read_csv(report / "tables" / "benchmark_unseen.csv")
    tiles = set(unseen["tile"]) - {"Average"}
    assert tiles and all(t.startswith("ref_") for t in tiles)  # the reference tiles file


def test_accuracy_waits_for_interpreters_then_uses_their_file(real_run):
    report = real_run["report"]
    assert "07_accuracy" in real_run["waiting"]
    assert "reference_class" in real_run["waiting"]["07_accuracy"]
    assert not any(t.startswith("accuracy_overall") for t in real_run["first_pass_tables"])
    overall = pd.read_csv(report / "tables" / f"accuracy_overall_{SEASONS[-1]}.csv")
    assert ((overall["overall_accuracy"] > 0) & (overall["overall_accuracy"] <= 1)).all()
    assert (overall["data_source"] == "Sentinel-2 L2A (STAC API)").all()
    areas = pd.read_csv(report / "tables" / f"accuracy_areas_{SEASONS[-1]}.csv")
    total = areas[areas["box"] == "all areas"]
    assert total["area_ha"].sum() == pytest.approx(total["mapped_ha"].sum(), rel=1e-6)
    manifest = json.loads((report / "manifest.json").read_text())
    assert "07_accuracy" not in manifest["waiting"]
    page = report / "maps" / f"accuracy_sample_{SEASONS[-1]}.html"
    assert page.is_file() and "http://" not in page.read_text(encoding="utf-8")
    kappa = pd.read_csv(report / "tables" / f"accuracy_interpreters_{SEASONS[-1]}.csv")
    assert 0.0 < float(kappa["kappa"].iloc[0]) < 1.0  # every 5th point read differently
    assert kappa["n_common"].iloc[0] > 0


def test_vitsegh24_flow_over_the_cells_that_hold_mining_polygons(real_run):
    """aoi: cells — 01 grids Ghana, keeps the cells with mines; 02 and 03 work on those cells."""
    report = REPO_ROOT / "reports" / "ci_real_cells"
    shutil.rmtree(report, ignore_errors=True)
    catalog = REPO_ROOT / "data" / "synthetic" / "ci_real"
    with stac_server.serve_items(real_run["standin"].items) as server, out_of_reach(catalog):
        run_experiment(
            PARAMS, force=True, only=["01_grid_aoi", "02_build_cube", "03_labels_tiles"],
            report_dir=str(report), overrides={"stac_source": server.url, "aoi": "cells"},
        )  # fmt: skip
    cells = pd.read_csv(report / "tables" / "grid_cells_summary.csv")
    assert int(cells.loc[cells["box"] == "all", "cells_selected"].iloc[0]) >= 1
    items = pd.read_csv(report / "tables" / "02_items_per_season.csv")
    assert set(items["area"]).issubset({f"cells_{k:02d}" for k in range(1, 100)})
    assert (items["n_items"] > 0).all()
    for nb in ("01_grid_aoi", "02_build_cube", "03_labels_tiles"):
        errors, _ = _outputs_text(report / "executed" / f"{nb}.ipynb")
        assert errors == [], f"{nb}: {errors}"
    split = pd.read_csv(report / "tables" / "03_tiles_per_split.csv")
    assert split["all areas"].sum() > 0
