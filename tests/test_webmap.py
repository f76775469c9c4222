import base64
import html as htmllib
import io
import json
import math
import os
import re
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from PIL import Image
from shapely.geometry import box

from vitseg.alerts import make_alerts
from vitseg.change import new_mining
from vitseg.errors import MissingCRSError, ParamsError
from vitseg.webmap import BASEMAPS, write_webmap

X0, Y0 = 600000.0, 700000.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--virtual-time-budget=5000",
]  # fmt: skip


MINE = (0xD9, 0x5F, 0x02, 255)  # CLASS_COLORS["mines"], opaque
VEG = (0x1B, 0x9E, 0x77, 255)


def grid(arr, crs="EPSG:32630", dtype="uint8"):
    arr = np.asarray(arr, dtype=dtype)
    ny, nx = arr.shape
    if crs == "EPSG:4326":  # about the same place as the UTM grid, 1e-4 degree pixels
        x0, y0, res = -2.0960, 6.3322, 1e-4
    else:
        x0, y0, res = X0, Y0, 10.0
    da = xr.DataArray(
        arr,
        dims=("y", "x"),
        coords={"y": y0 - (np.arange(ny) + 0.5) * res, "x": x0 + (np.arange(nx) + 0.5) * res},
    )
    return da.rio.write_crs(crs)


def page_config(path):
    """The configuration object the page draws (rasters with their PNG tiles, legend...)."""
    m = re.search(r"var cfg = (\{.*?\});\n", path.read_text())
    return json.loads(m.group(1).replace("<\\/", "</"))


def decode(tile):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(tile[0]))).convert("RGBA"))


def n_color(img, rgba):
    return int((img == np.array(rgba, dtype="uint8")).all(axis=-1).sum())


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
    assert "server.arcgisonline.com" in text and "Tiles &copy; Esri" in text
    assert "sourceMappingURL" not in text
    assert "GH9901" in text and "2021-22-0001" in text
    assert "West <b>&" not in text.split("<script>", 1)[0]
    no_base = page(tmp_path, layers, basemap=None).read_text()
    assert "openstreetmap" not in no_base and "arcgisonline" not in no_base


@pytest.mark.parametrize(
    ("basemap", "names"),
    [
        ("osm", ["OpenStreetMap"]),
        ("satellite", ["Esri World Imagery (satellite)"]),
        (["satellite", "osm", "satellite"], ["Esri World Imagery (satellite)", "OpenStreetMap"]),
        (("https://t/{z}/{x}/{y}", "osm"), ["Basemap 1", "OpenStreetMap"]),
        (None, []),
    ],
)
def test_basemaps(tmp_path, layers, basemap, names):
    _, districts, _ = layers
    path = write_webmap(tmp_path / "m.html", districts=districts, basemap=basemap)
    cfg = page_config(path)
    assert [b["name"] for b in cfg["basemaps"]] == names
    for b in cfg["basemaps"]:
        assert all(k in b["url"] for k in ("{z}", "{x}", "{y}"))
    if basemap == "satellite":
        assert cfg["basemaps"][0]["url"] == BASEMAPS["satellite"][0]
        assert cfg["basemaps"][0]["url"].endswith("/tile/{z}/{y}/{x}")  # Esri: row before column


def test_webmap_errors(tmp_path, layers):
    maps, districts, _ = layers
    probs = grid(np.full((8, 8), 0.5), dtype="float32")
    cases = [
        ({"districts": districts, "basemap": "google"}, ParamsError, "unknown basemap 'google'"),
        ({"districts": districts, "basemap": ["osm", "bing"]}, ParamsError, "unknown basemap 'bing'"),
        ({}, ParamsError, "nothing to draw"),
        ({"class_maps": {"a": xr.DataArray(maps["2020-21"].values)}}, MissingCRSError, "write_crs"),
        ({"probability_maps": {"p": probs.expand_dims(**{"class": ["mines", "veg"]})}},
         ParamsError, r"pick one class"),
        ({"probability_maps": {"p": probs * 100}}, ParamsError, r"\[50, 50\]; expected 0\.\.1"),
        ({"confidence_maps": {"c": probs - 1}}, ParamsError, "expected 0..1"),
        ({"class_maps": {"a": maps["2020-21"].values}}, ParamsError, "must be an xarray"),
        ({"districts": districts, "max_size_px": 0}, ParamsError, "'max_size_px' must be"),
        ({"districts": districts, "max_pixels": 1.5}, ParamsError, "'max_pixels' must be"),
    ]  # fmt: skip
    for kw, err, match in cases:
        with pytest.raises(err, match=match):
            write_webmap(tmp_path / "m.html", **kw)
    assert not (tmp_path / "m.html").exists()


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:4326"])
def test_single_mine_pixel_survives(tmp_path, crs):
    codes = np.full((500, 700), 2, "uint8")  # vegetation, 350,000 pixels
    codes[333, 444] = 0  # one mine pixel
    da = grid(codes, crs)
    path = write_webmap(tmp_path / "full.html", class_maps={"m": da}, max_size_px=256)
    (r,) = page_config(path)["rasters"]
    h, w = r["shape"]
    assert r["downsample"] == 1 and math.isclose(h, 1.1 * 500, rel_tol=0.03)
    assert math.isclose(w, 1.1 * 700, rel_tol=0.03)
    # 3 x 4 tiles, less those that are all transparent (the 1-px margin past the data, corners)
    rows, cols = math.ceil(h / 256), math.ceil(w / 256)
    assert (rows - 1) * (cols - 1) <= len(r["tiles"]) <= rows * cols
    imgs = [decode(t) for t in r["tiles"]]
    assert all(max(i.shape[:2]) <= 256 for i in imgs)
    assert sum(n_color(i, MINE) for i in imgs) in (1, 2)  # nearest on a 1.1x finer grid
    assert sum(n_color(i, VEG) for i in imgs) > 0.98 * 1.21 * codes.size

    path = write_webmap(tmp_path / "small.html", class_maps={"m": da}, max_pixels=10_000)
    k = math.ceil(math.sqrt(h * w / 10_000))  # 7: blocks of 7 x 7 source pixels
    (r,) = page_config(path)["rasters"]
    h, w = r["shape"]
    assert h * w <= 10_000 and r["downsample"] == k == 7
    (img,) = [decode(t) for t in r["tiles"]]
    assert img.shape[:2] == (h, w)
    assert n_color(img, MINE) >= 1  # the block keeps its mine pixel (mines first)
    text = path.read_text()
    assert "coarsened 7x (mines kept)" in text


@pytest.mark.parametrize("flip", ["y", "x"])
def test_axis_order_does_not_matter(tmp_path, flip):
    codes = np.full((40, 50), 2, "uint8")
    codes[5:9, 30:33] = 0
    codes[20:30, 2:6] = 1
    da = grid(codes)
    a = page_config(write_webmap(tmp_path / "a.html", class_maps={"m": da}, basemap=None))
    b = page_config(
        write_webmap(
            tmp_path / "b.html",
            class_maps={"m": da.isel({flip: slice(None, None, -1)})},
            basemap=None,
        )
    )
    (ra,), (rb,) = a["rasters"], b["rasters"]
    assert ra["bounds"] == rb["bounds"]
    np.testing.assert_array_equal(decode(ra["tiles"][0]), decode(rb["tiles"][0]))


def test_probability_and_confidence_ramps(tmp_path):
    p = np.zeros((60, 80), "float32")
    p[:, 40:] = 1.0
    p[0:5, 0:5] = np.nan
    p[30, 20] = 0.9  # one likely mine pixel in a field of zeros
    path = write_webmap(
        tmp_path / "m.html",
        probability_maps={"P(mines)": grid(p, dtype="float32")},
        confidence_maps={"confidence": grid(np.where(np.isnan(p), 0, p), dtype="float32")},
        basemap=None,
    )
    cfg = page_config(path)
    prob, conf = cfg["rasters"]
    assert (prob["kind"], prob["show"], conf["kind"], conf["show"]) == (
        "probability", False, "confidence", False)  # fmt: skip
    (img,) = [decode(t) for t in prob["tiles"]]
    alpha = img[..., 3]
    assert n_color(img, (0xFF, 0xEB, 0x3B, 255)) > 0.4 * alpha.size  # 1 -> opaque yellow
    assert (alpha == 0).sum() > 0.4 * alpha.size  # 0 and NaN -> transparent
    assert ((alpha > 200) & (alpha < 255)).any()  # 0.9 is visible, not fully opaque
    (img,) = [decode(t) for t in conf["tiles"]]
    assert n_color(img, (0xD9, 0xD9, 0xD9, 255)) > 0.4 * alpha.size  # 0 -> grey
    assert n_color(img, (0x08, 0x51, 0x9C, 255)) > 0.4 * alpha.size  # 1 -> blue
    labels = [e["label"] for e in cfg["legend"]]
    assert labels == ["probability", "confidence"]
    assert all(e["gradient"].startswith("linear-gradient(") for e in cfg["legend"])
    # coarsened, the probability block keeps its maximum: the 0.9 pixel stays visible
    big = np.zeros((400, 400), "float32")
    big[123, 321] = 0.9
    path = write_webmap(tmp_path / "s.html", probability_maps={"p": grid(big, dtype="float32")},
                        max_pixels=5_000, basemap=None)  # fmt: skip
    (r,) = page_config(path)["rasters"]
    assert r["downsample"] > 1
    (img,) = [decode(t) for t in r["tiles"]]
    assert (img[..., 3] > 200).sum() >= 1


def run_chromium(tmp_path, url, *extra):
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def chromium_or_skip():
    if CHROMIUM is None:
        why = "chromium not installed: run scripts/ensure_chromium.sh"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {why}")
        pytest.skip(why)


def test_page_renders_offline_in_headless_chromium(tmp_path, layers):
    chromium_or_skip()
    maps = layers[0]
    prob = grid(np.linspace(0, 1, 60 * 90).reshape(60, 90), "EPSG:4326", "float32")
    html = page(tmp_path, layers, probability_maps={"P(mines)": prob},
                confidence_maps={"confidence": grid(np.full((80, 120), 0.7), dtype="float32")})  # fmt: skip
    url = html.resolve().as_uri()
    netlog = tmp_path / "net.json"
    dom = run_chromium(tmp_path, url + "#opacity=40", "--enable-logging=stderr", "--v=0",
                       f"--log-net-log={netlog}", "--dump-dom")  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-vitseg-ready="1"' in body
    assert "data-vitseg-errors" not in body
    # 2 class maps, new mining, probability, confidence, districts, alerts
    assert 'data-vitseg-layers="7"' in body
    assert "leaflet-container" in dom.stdout
    # the latest class map and the new-mining mask are on at start, at 40 % of their opacity
    imgs = re.findall(r"<img[^>]*leaflet-image-layer[^>]*>", dom.stdout)
    assert len(imgs) == 2
    assert sorted(re.search(r"opacity: ([0-9.]+)", i).group(1) for i in imgs) == ["0.3", "0.36"]
    assert 'data-vitseg-opacity="40"' in body
    slider = re.search(r"<input[^>]*>", dom.stdout).group(0)
    assert 'type="range"' in slider and 'id="vitseg-opacity"' in slider
    assert 'aria-valuetext="40%' in slider
    assert re.search(r'<label[^>]* for="vitseg-opacity">Raster opacity</label>', dom.stdout)
    assert "leaflet-interactive" in dom.stdout  # vector paths drawn
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
    # no basemap tile was requested (they are offered, off at start)
    log = netlog.read_text()
    assert "openstreetmap" not in log and "arcgisonline" not in log
    # the bounds the page draws = the rasters' bounds in lon/lat (lat first, as Leaflet wants)
    info = json.loads(htmllib.unescape(re.search(r'data-vitseg-rasters="([^"]*)"', body).group(1)))
    assert [r["name"] for r in info] == [*maps, "new mining 2021-22", "P(mines)", "confidence"]
    assert [r["on"] for r in info] == [False, True, True, False, False]
    rasters = {**maps, "P(mines)": prob}
    for r in info:
        w, s, e, n = rasters.get(r["name"], maps["2020-21"]).rio.transform_bounds("EPSG:4326")
        (south, west), (north, east) = r["bounds"]
        assert 5 < south < north < 7 and -3 < west < east < -1, r  # Ghana, not swapped
        pad = 3e-4  # a few pixels: the Mercator grid covers the rotated UTM footprint
        assert s - pad < south <= s + 1e-9 and n - 1e-9 <= north < n + pad, (r, s, n)
        assert w - pad < west <= w + 1e-9 and e - 1e-9 <= east < e + pad, (r, w, e)
        assert r["tile_bounds"] is not None
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, url, "--window-size=800,600", f"--screenshot={shot}")
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (600, 800)
    colors = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colors) > 20  # not blank: map, overlays, controls
    # vegetation green (#1b9e77 at 75% over the map background) is on screen
    assert (np.abs(img.astype(int) - [0x4F, 0xB2, 0x95]).sum(axis=2) < 40).sum() > 1000
