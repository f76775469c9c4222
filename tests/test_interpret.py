import base64
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from vitseg.accuracy import error_matrix, read_reference, sample_id, stratified_sample
from vitseg.errors import BandError, DimensionError, MissingCRSError, ParamsError, SampleError
from vitseg.interpret import write_interpretation_page

REPO = Path(__file__).resolve().parent.parent
BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
X0, Y0 = 600000.0, 700000.0
#: Reflectance of each land cover in BANDS order (vegetation, bare soil/pits, water, built).
SPECTRA = {
    "vegetation": [0.03, 0.06, 0.04, 0.09, 0.22, 0.28, 0.30, 0.32, 0.15, 0.07],
    "soil": [0.10, 0.14, 0.18, 0.20, 0.22, 0.24, 0.25, 0.26, 0.35, 0.28],
    "water": [0.06, 0.07, 0.05, 0.04, 0.03, 0.03, 0.03, 0.03, 0.01, 0.01],
    "built": [0.12, 0.12, 0.13, 0.15, 0.17, 0.19, 0.20, 0.22, 0.25, 0.22],
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


def scene(size=96, pits=((30, 60, 9), (70, 25, 7)), seed=0, name_bands="coord"):
    """A composite (band, y, x) in EPSG:32630 and its class map (0 mines, 1 built, 2 vegetation)."""
    yy, xx = np.mgrid[0:size, 0:size]
    cover = np.zeros((size, size), "uint8")  # 0 vegetation, 1 soil, 2 water, 3 built
    for r, c, rad in pits:
        d = np.hypot(yy - r, xx - c)
        cover[d < rad] = 1
        cover[d < rad / 2.5] = 2
    cover[(yy > size * 0.75) & (xx > size * 0.6)] = 3
    spectra = np.array([SPECTRA[k] for k in ("vegetation", "soil", "water", "built")], "float32")
    rng = np.random.default_rng(seed)
    data = spectra[cover].transpose(2, 0, 1) * rng.normal(1, 0.08, (len(BANDS), size, size))
    da = xr.DataArray(
        data.astype("float32"),
        dims=("band", "y", "x"),
        coords={"y": Y0 - (np.arange(size) + 0.5) * 10, "x": X0 + (np.arange(size) + 0.5) * 10},
    ).rio.write_crs("EPSG:32630")
    if name_bands == "coord":
        da = da.assign_coords(band=BANDS)
    else:  # as rioxarray reads notebook 02's COGs: band 1..10, names in long_name
        da = da.assign_coords(band=np.arange(1, len(BANDS) + 1))
        da.attrs["long_name"] = tuple(BANDS)
    code = np.array([2, 0, 0, 1], "uint8")[cover]
    cmap = xr.DataArray(code, dims=("y", "x"), coords={"y": da.y, "x": da.x})
    return da, cmap.rio.write_crs("EPSG:32630")


@pytest.fixture(scope="module")
def sample_and_images():
    after, cmap = scene()
    before, _ = scene(pits=((30, 60, 5),), seed=1, name_bands="long_name")
    sample = stratified_sample(cmap, n_per_class=4, seed=3)
    # the "after" season split into two areas that overlap by 8 columns
    images = {
        "2020-21": before,
        "2021-22": [after.isel(x=slice(0, 52)), after.isel(x=slice(44, None))],
    }
    return sample, images


def page_data(path):
    text = Path(path).read_text()
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(blob.group(1))


def decode(uri):
    from PIL import Image

    raw = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def test_page_is_self_contained_small_and_seeded(tmp_path, sample_and_images):
    sample, images = sample_and_images
    t0 = time.perf_counter()
    page = write_interpretation_page(sample, images, tmp_path / "p.html", chip_px=32)
    took = time.perf_counter() - t0
    text = page.read_text()
    assert not re.search(r"https?://", text)
    assert "<link" not in text and 'src="http' not in text
    assert page.stat().st_size / len(sample) < 30_000, page.stat().st_size
    assert took < 5
    data = page_data(page)
    assert data["sample_id"] == sample_id(sample)
    assert sorted(data["order"]) == list(range(len(sample)))
    assert data["order"] != list(range(len(sample)))  # shuffled...
    again = page_data(write_interpretation_page(sample, images, tmp_path / "q.html", chip_px=32))
    assert again["order"] == data["order"]  # ...by the seed
    other = write_interpretation_page(sample, images, tmp_path / "r.html", chip_px=32, seed=1)
    assert page_data(other)["order"] != data["order"]
    assert data["seasons"] == ["2020-21", "2021-22"]
    assert data["keys"] == {"mines": "m", "built": "b", "vegetation": "v"}
    assert [p["id"] for p in data["points"]] == [str(i) for i in sample["point_id"]]
    assert all(len(p["chips"]) == 2 and all(p["chips"]) for p in data["points"])
    assert not list(tmp_path.glob(".*vitseg-tmp*"))


def test_chip_centred_on_point_from_the_image_that_covers_it(tmp_path):
    da, _ = scene(size=64, pits=())
    da = da.copy()
    da[:, 20, 50] = 1.0  # one bright pixel: the sample point's
    pts = gpd.GeoDataFrame(
        {"point_id": ["a-1", "a-2", "a-3"], "map_class": ["mines", "built", "vegetation"]},
        geometry=gpd.points_from_xy(
            [X0 + 505.0, X0 + 5.0, X0 + 5000.0], [Y0 - 205.0, Y0 - 5.0, Y0 - 205.0]
        ),
        crs="EPSG:32630",
    )
    left, right = da.isel(x=slice(0, 40)), da.isel(x=slice(40, None))
    # the right half comes in another CRS: points are reprojected to it
    right_wgs = right.rio.reproject("EPSG:32631")
    page = write_interpretation_page(
        pts, {"s": {"left": left, "right": right_wgs}, "t": [left, right]}, tmp_path / "p.html",
        chip_px=16,
    )  # fmt: skip
    data = page_data(page)
    near, corner, outside = data["points"]
    chip_t = near["chips"][1]
    assert chip_t["pt"] == [8.5, 8.5] and chip_t["box"] == [8.0, 8.0, 9.0, 9.0]
    img = decode(chip_t["img"][0]).sum(axis=2)
    assert np.unravel_index(np.argmax(img), img.shape) == (8, 8)  # the bright pixel, marked
    chip_s = near["chips"][0]  # cut from the reprojected half: marks off the integer grid
    assert 6 < chip_s["pt"][0] < 11 and 6 < chip_s["pt"][1] < 11
    assert 0.8 < chip_s["box"][2] - chip_s["box"][0] < 1.3
    img = decode(chip_s["img"][0]).sum(axis=2)
    r, c = np.unravel_index(np.argmax(img), img.shape)
    assert abs(c + 0.5 - chip_s["pt"][0]) <= 1 and abs(r + 0.5 - chip_s["pt"][1]) <= 1
    # a corner point gets a padded chip (no-data grey outside the image)
    pad = decode(corner["chips"][1]["img"][0])
    assert np.abs(pad[:4, :4].astype(int) - 48).max() <= 6
    assert outside["chips"] == [None, None]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ("path", ParamsError, r"must end in \.html"),
        ("sample_crs", MissingCRSError, "set_crs"),
        ("no_map_class", SampleError, r"lacks columns \['map_class'\]"),
        ("dup_ids", SampleError, "repeats point ids"),
        ("band_missing", BandError, r"lacks bands \['B12'\]"),
        ("band_names", BandError, "assign_coords"),
        ("dims", DimensionError, r"\('band', 'y', 'x'\)"),
        ("image_crs", MissingCRSError, "write_crs"),
        ("chip_px", ParamsError, "'chip_px' must be between 8 and 512"),
        ("images", ParamsError, "must map a season"),
    ],
)
def test_page_errors(tmp_path, sample_and_images, change, error, match):
    sample, images = sample_and_images
    img = images["2020-21"].assign_coords(band=BANDS)
    kwargs = {}
    path = tmp_path / "p.html"
    if change == "path":
        path = tmp_path / "p.txt"
    elif change == "sample_crs":
        sample = gpd.GeoDataFrame(sample.drop(columns="geometry"), geometry=list(sample.geometry))
    elif change == "no_map_class":
        sample = sample.drop(columns="map_class")
    elif change == "dup_ids":
        sample = sample.assign(point_id=1)
    elif change == "band_missing":
        img = img.sel(band=BANDS[:-1])
    elif change == "band_names":
        img = img.assign_coords(band=np.arange(10))
        img.attrs = {k: v for k, v in img.attrs.items() if k != "long_name"}
    elif change == "dims":
        img = img.transpose("y", "x", "band")
    elif change == "image_crs":
        img = img.drop_vars("spatial_ref")
    elif change == "chip_px":
        kwargs["chip_px"] = 4
    imgs = [] if change == "images" else {"a": img}
    with pytest.raises(error, match=match):
        write_interpretation_page(sample, imgs, path, **kwargs)
    assert not path.exists()


def test_reads_composite_cogs_from_paths(tmp_path, sample_and_images):
    sample, images = sample_and_images
    cog = tmp_path / "composite_demo_2020-21.tif"
    images["2020-21"].rio.to_raster(cog)
    import rasterio

    with rasterio.open(cog, "r+") as dst:  # band names as notebook 02 writes them
        dst.descriptions = tuple(BANDS)
    page = write_interpretation_page(sample, {"2020-21": [cog]}, tmp_path / "p.html", chip_px=16)
    assert all(p["chips"][0] for p in page_data(page)["points"])


# ------------------------------------------------------------------ headless chromium
def browser_or_skip():
    """Playwright's sync API and Debian's chromium, or skip (fail under CI)."""
    why = None
    if CHROMIUM is None:
        why = "chromium not installed: run scripts/ensure_chromium.sh"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "playwright not installed: pip install -e '.[dev]'"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    return sync_playwright


def open_page(pw, profile, url, requests):
    ctx = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        accept_downloads=True,
        viewport={"width": 1280, "height": 820},
    )
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return ctx, page, errors


def test_interpreter_labels_with_the_keyboard_reloads_and_exports(tmp_path, sample_and_images):
    sync_playwright = browser_or_skip()
    sample, images = sample_and_images
    html = write_interpretation_page(sample, images, tmp_path / "p.html", chip_px=32)
    data = page_data(html)
    shown = [data["points"][i] for i in data["order"]]  # in the page's order
    key_of = {"mines": "1", "built": "b", "vegetation": "3"}
    wrong = {"mines": "v", "built": "3", "vegetation": "m"}
    # what the interpreter presses, point after point (labelling moves to the next point)
    plan = []
    for i, p in enumerate(shown):
        key = wrong[p["map"]] if i in (2, 7) else key_of[p["map"]]
        plan.append("x" if i == 5 else key)
    requests = []
    url = html.resolve().as_uri()
    with sync_playwright() as pw:
        ctx, page, errors = open_page(pw, tmp_path / "profile", url, requests)
        assert page.inner_text("#progress").startswith("0 / 12")
        assert "mines" not in page.inner_text("#mapclass")  # blind: hidden until asked
        page.click("#interpreter")
        page.keyboard.type("Ama Mensah")
        page.keyboard.press("Escape")
        page.keyboard.press("r")  # reveal the first point's map class
        assert shown[0]["map"] in page.inner_text("#mapclass")
        for key in plan[:4]:
            page.keyboard.press(key)
        page.keyboard.press("1")  # a slip on the 5th point...
        page.keyboard.press("Backspace")  # ...undone: back on it, unlabelled
        assert page.inner_text("#where").startswith("Point 5 of 12")
        assert page.inner_text("#progress").startswith("4 / 12")
        page.click("#notes")
        page.keyboard.type('pond, "fresh" spoil, 2nd pit')
        page.keyboard.press("Escape")
        page.keyboard.press(plan[4])
        assert page.inner_text("#progress").startswith("5 / 12")
        ctx.close()  # the tab (and the browser) closed: the work is in localStorage

        ctx, page, errors2 = open_page(pw, tmp_path / "profile", url, requests)
        assert page.input_value("#interpreter") == "Ama Mensah"
        assert page.inner_text("#progress").startswith("5 / 12")
        assert page.inner_text("#where").startswith("Point 6 of 12")
        page.keyboard.press("ArrowLeft")
        assert page.input_value("#notes").startswith("pond")
        page.keyboard.press("n")  # back to the next unlabelled point
        for key in plan[5:]:
            page.keyboard.press(key)
        assert page.inner_text("#progress").startswith("12 / 12 labelled (1 cannot tell)")
        with page.expect_download() as dl:
            page.keyboard.press("e")
        export = tmp_path / "export.csv"
        dl.value.save_as(export)
        ctx.close()
    assert not errors and not errors2, errors + errors2
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests

    ref = read_reference(export, sample)
    assert ref.attrs["n_cannot_tell"] == 1
    assert ref.attrs["cannot_tell_ids"] == [int(shown[5]["id"])]
    assert set(ref["interpreter"]) == {"Ama Mensah"}
    revealed = ref.set_index(ref["point_id"].astype(str))["map_revealed"]
    assert revealed[shown[0]["id"]] and revealed.sum() == 1
    notes = ref.set_index(ref["point_id"].astype(str))["notes"]
    assert notes[shown[4]["id"]] == 'pond, "fresh" spoil, 2nd pit'
    assert pd.to_datetime(ref["labelled_at"], utc=True).notna().all()
    m = error_matrix(ref)
    # 11 points read: 12 less the "cannot tell"; two mislabelled off the diagonal
    assert int(m.to_numpy().sum()) == 11
    assert int(np.trace(m.to_numpy())) == 9
    for i in (2, 7):
        truth = shown[i]["map"]
        given = {"v": "vegetation", "3": "vegetation", "m": "mines"}[plan[i]]
        assert m.loc[truth, given] >= 1

    # bad exports: clear errors naming the points
    rows = pd.read_csv(export, dtype=str, keep_default_na=False)
    assert list(rows.columns) == [
        "point_id", "reference_class", "interpreter", "labelled_at", "map_revealed", "notes",
        "sample_id",
    ]  # fmt: skip
    first = rows["point_id"].iloc[0]
    rows.iloc[1:].to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(SampleError, match=rf"sample points \[{first}\] \(1 of 12\) are missing"):
        read_reference(tmp_path / "missing.csv", sample)
    rows.assign(reference_class=["quarry", *rows["reference_class"][1:]]).to_csv(
        tmp_path / "unknown.csv", index=False
    )
    with pytest.raises(SampleError, match=rf"\['quarry'\] \(point_id \[{first}\]\)"):
        read_reference(tmp_path / "unknown.csv", sample)
    moved = sample.copy()
    moved["x"] = moved["x"] + 10.0
    with pytest.raises(SampleError, match=rf"sample_id {data['sample_id']} but this sample"):
        read_reference(export, moved)


def test_screenshot_mid_interpretation(tmp_path, sample_and_images):
    sync_playwright = browser_or_skip()
    from PIL import Image

    sample, images = sample_and_images
    html = write_interpretation_page(sample, images, tmp_path / "p.html", title="Kibi 2021-22")
    shot = REPO / "reports" / "interpretation_page.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        ctx, page, errors = open_page(pw, tmp_path / "profile", html.resolve().as_uri(), [])
        page.fill("#interpreter", "Kofi")
        page.keyboard.press("Escape")
        for key in ("m", "v", "2"):
            page.keyboard.press(key)
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("r")
        page.fill("#notes", "bare soil next to a pond: likely active pit")
        page.keyboard.press("Escape")
        page.screenshot(path=str(shot))
        page_text = page.inner_text("aside")
        page.keyboard.press("o")  # markers off
        bare = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
        ctx.close()
    assert not errors, errors
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (820, 1280)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # chips drawn, not a blank page
    assert "map class: " in page_text
    # the markers are drawn on the chips (and "o" hides them)
    changed = np.abs(img.astype(int) - bare).sum(axis=2) > 60
    assert 4 * 40 < changed.sum() < 4 * 4000, changed.sum()
