"""Figures: saved atomically, shown inline once in executed notebooks, maps with scale bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from vitseg.errors import ParamsError
from vitseg.plotting import (
    add_north_arrow,
    add_scale_bar,
    plot_change_map,
    plot_classes,
    plot_density,
    plot_rgb,
    savefig,
)
from vitseg.runner import run_experiment


def test_import_leaves_the_matplotlib_backend_alone() -> None:
    code = "import matplotlib, vitseg.plotting; print(matplotlib.get_backend())"
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().lower() == "svg"


def test_savefig_writes_formats_atomically_and_closes(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = savefig(fig, tmp_path / "a" / "f.png", simulated=True, formats=("png", "svg", "pdf"))
    assert path == tmp_path / "a" / "f.png"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.pdf", "f.png", "f.svg"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a" / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert "Simulated Sentinel-2" in (tmp_path / "a" / "f.svg").read_text()
    assert not plt.fignum_exists(fig.number)
    fig2, _ = plt.subplots()
    with pytest.raises(ParamsError, match=r"formats must be among.*\['tif'\]"):
        savefig(fig2, tmp_path / "g.png", simulated=False, formats=("png", "tif"))
    assert not (tmp_path / "g.png").exists()
    assert plt.fignum_exists(fig2.number)  # kept open to be saved with good arguments
    plt.close(fig2)


NOTEBOOK = """# %% tags=["parameters"]
report_dir = "reports/tiny"

# %%
import matplotlib.pyplot as plt
from pathlib import Path
from vitseg import plotting
out = Path(report_dir) / "figures"
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
plotting.savefig(fig, out / "one.png", simulated=True)

# %%
%matplotlib inline

# %%
for name in ("two", "three"):
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    plotting.savefig(fig, out / f"{name}.png", simulated=False, formats=("png", "svg"))
print("done")
"""


def test_executed_notebook_holds_one_image_per_saved_figure(tmp_path: Path) -> None:
    """The runner's Agg backend (first cell), then the inline backend of JupyterLab."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "01_figures.py").write_text(NOTEBOOK)
    report = tmp_path / "reports" / "tiny"
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"common:\n  report_dir: {report}\n")
    saved = os.environ.get("MPLBACKEND")
    try:
        run_experiment(exp, notebook_dir=nbdir)
    finally:  # the runner sets MPLBACKEND=Agg in this process too
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved
    nb = json.loads((report / "executed" / "01_figures.ipynb").read_text())
    images = [
        [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
    ]
    # one per savefig call, none from the inline backend's end-of-cell flush
    assert [len(i) for i in images][-3:] == [1, 0, 2]
    assert sorted(p.name for p in (report / "figures").iterdir()) == [
        "one.png", "three.png", "three.svg", "two.png", "two.svg",
    ]  # fmt: skip


def _map(crs: str) -> xr.DataArray:
    if crs == "EPSG:4326":
        x, y = -1.8 + np.arange(50) * 1e-4, 6.25 - np.arange(40) * 1e-4
    else:
        x, y = 600_005.0 + np.arange(50) * 10, 700_395.0 - np.arange(40) * 10
    arr = np.random.default_rng(0).integers(0, 3, (40, 50)).astype("uint8")
    return xr.DataArray(arr, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(crs)


def _gids(ax) -> list[str]:
    return sorted(a.get_gid() for a in ax.get_children() if a.get_gid())


@pytest.mark.parametrize(("crs", "want"), [("EPSG:32630", ["north_arrow", "scale_bar"]),
                                           ("EPSG:4326", ["north_arrow"])])  # fmt: skip
def test_maps_have_a_scale_bar_in_metres_and_a_north_arrow(crs: str, want: list[str]) -> None:
    m = _map(crs)
    rgb = xr.concat([m.astype("float32")] * 3, dim="band").assign_coords(band=["B04", "B03", "B02"])
    dens = m.astype("float32").assign_attrs(units="px / km2", bandwidth_m=500.0)
    for ax in (
        plot_classes(m),
        plot_change_map(m * 3),
        plot_rgb(rgb),
        plot_density(dens),
    ):
        assert _gids(ax) == want
        plt.close(ax.figure)
    ax = plot_classes(m, furniture=False)
    assert _gids(ax) == []
    plt.close(ax.figure)


def test_scale_bar_length_is_round_and_labelled() -> None:
    fig, ax = plt.subplots()
    ax.set_xlim(600_000, 600_500)  # 500 m wide: a fifth is 100 m
    assert add_scale_bar(ax).txt_label.get_text() == "100 m"
    bar = add_scale_bar(ax, length_m=2500)
    assert bar.txt_label.get_text() == "2.5 km"
    assert add_north_arrow(ax).get_text() == "N"
    plt.close(fig)
    assert matplotlib.get_backend()  # nothing above needed a display
