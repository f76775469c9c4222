import re
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from shapely.geometry import box

from vitseg.alerts import make_alerts
from vitseg.change import new_mining
from vitseg.errors import MissingCRSError, ParamsError
from vitseg.webmap import write_webmap

X0, Y0 = 600000.0, 700000.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--virtual-time-budget=5000",
]  # fmt: skip


def grid(arr):
    arr = np.asarray(arr, dtype="uint8")
    ny, nx = arr.shape
    da = xr.DataArray(
        arr,
        dims=("y", "x"),
        coords={"y": Y0 - (np.arange(ny) + 0.5) * 10, "x": X0 + (np.arange(nx) + 0.5) * 10},
    )
    return da.rio.write_crs("EPSG:32630")


@pytest.fixture
def layers():
    a = np.full((80, 120), 2, "uint8")
    a[30:40, :] = 1
    a[:3, :] = 255
    b = a.copy()
    b[50:70, 20:60] = 0
    maps = {"2020-21": grid(a), "2021-22": grid(b)}
    districts = gpd.GeoDataFrame(
        {"ADM2_PCODE": ["GH9901", "GH9902"], "ADM2_EN": ["West <b>&", "East"]},
        geometry=[box(599000, 699000, 600600, 700500), box(600600, 699000, 602000, 700500)],
        crs="EPSG:32630",
    ).to_crs("EPSG:4326")
    alerts = make_alerts(maps, districts=districts, min_area_ha=1)
    return maps, districts, alerts


def page(tmp_path, layers, **kw):
    maps, districts, alerts = layers
    return write_webmap(
        tmp_path / "map.html",
        class_maps=maps,
        masks={"new mining 2021-22": new_mining(*maps.values())},
        alerts=alerts,
        districts=districts,
        note="Simulated Sentinel-2 scenes (vitseg.synthetic), not real imagery",
        **kw,
    )


def test_page_is_self_contained(tmp_path, layers):
    text = page(tmp_path, layers).read_text()
    assert "L.map(" in text and 'id="map"' in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)  # nothing fetched
    assert "tile.openstreetmap.org" in text  # offered, but off at start
    assert "sourceMappingURL" not in text
    assert "GH9901" in text and "2021-22-0001" in text
    assert "West <b>&" not in text.split("<script>", 1)[0]
    no_base = page(tmp_path, layers, basemap=None).read_text()
    assert "openstreetmap" not in no_base


def test_webmap_errors(tmp_path, layers):
    maps, districts, _ = layers
    with pytest.raises(ParamsError, match="unknown basemap"):
        write_webmap(tmp_path / "m.html", districts=districts, basemap="google")
    with pytest.raises(ParamsError, match="nothing to draw"):
        write_webmap(tmp_path / "m.html")
    with pytest.raises(MissingCRSError, match="write_crs"):
        write_webmap(tmp_path / "m.html", class_maps={"a": xr.DataArray(maps["2020-21"].values)})
    assert not (tmp_path / "m.html").exists()
    custom = write_webmap(tmp_path / "c.html", districts=districts, basemap="https://t/{z}/{x}/{y}")
    assert "https://t/{z}/{x}/{y}" in custom.read_text()


def run_chromium(tmp_path, url, *extra):
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: run scripts/ensure_chromium.sh"
)
def test_page_renders_offline_in_headless_chromium(tmp_path, layers):
    from PIL import Image

    html = page(tmp_path, layers)
    url = html.resolve().as_uri()
    dom = run_chromium(tmp_path, url, "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-vitseg-ready="1"' in body
    assert "data-vitseg-errors" not in body
    assert 'data-vitseg-layers="5"' in body  # 2 class maps, new mining, districts, alerts
    assert "leaflet-container" in dom.stdout
    # the latest class map and the new-mining mask are on at start; the older map is not
    assert len(re.findall(r"<img[^>]*leaflet-image-layer", dom.stdout)) == 2
    assert "leaflet-interactive" in dom.stdout  # vector paths drawn
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, url, "--window-size=800,600", f"--screenshot={shot}")
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (600, 800)
    colors = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colors) > 20  # not blank: map, overlays, controls
    # vegetation green (#1b9e77 at 75% over the map background) is on screen
    assert (np.abs(img.astype(int) - [0x4F, 0xB2, 0x95]).sum(axis=2) < 40).sum() > 1000
