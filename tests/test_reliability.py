"""Reliability battery (issue 8): bad input fails clearly, killed work resumes, nothing partial.

Cases that the module test files already check are listed, with their tests, in
docs/reliability.md; this file covers the rest and the cross-module cases: all-clouded
and inf-poisoned cubes, wrong dtypes, damaged files, vector layers of the wrong kind,
mixed UTM zones, real ``SIGKILL``s of writers, prediction and training, the command line
on a real notebook, and static audits (atomic writers, ``weights_only``, safe YAML, no
shell strings).
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely
import torch
import xarray as xr
from affine import Affine
from pyproj import Transformer

import vitseg
from vitseg import synthetic
from vitseg.cloud import cloud_mask, mask_clouds, valid_count
from vitseg.composite import composite, write_composite
from vitseg.cube import build_cube
from vitseg.datasets import band_stats, load_chip_folder
from vitseg.errors import (
    CheckpointError,
    CorruptRasterError,
    DimensionError,
    MissingFileError,
    NoValidDataError,
    ParamsError,
    VectorError,
    VitsegError,
)
from vitseg.io import data_path
from vitseg.labels import rasterize_labels
from vitseg.predict import classify, open_map, predict_cube, write_cog
from vitseg.stac import load_items, search_items
from vitseg.temporal import ensemble
from vitseg.tiles import make_tiles, split_tiles
from vitseg.train import load_model

PKG = Path(vitseg.__file__).resolve().parent
REPO = PKG.parent
CRS = "EPSG:32630"


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Conv2d(4, 3, 1)


def small_cube(dask: bool = False) -> xr.DataArray:
    return synthetic.make_cube(n_time=2, n_band=4, size=32, dask=dask)


def grid_da(
    arr: np.ndarray, crs: str = CRS, x0: float = 600000.0, y0: float = 700000.0
) -> xr.DataArray:
    h, w = arr.shape[-2:]
    dims = ("y", "x") if arr.ndim == 2 else ("class", "y", "x")
    coords: dict[str, Any] = {
        "y": y0 - 10 * (np.arange(h) + 0.5),
        "x": x0 + 10 * (np.arange(w) + 0.5),
    }
    if arr.ndim == 3:
        coords["class"] = ["mines", "built", "vegetation"][: arr.shape[0]]
    return xr.DataArray(arr, dims=dims, coords=coords).rio.write_crs(crs)


# ------------------------------------------------------------------ rasters: no valid data


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_all_clouded_cube_gives_nodata_outputs_and_clear_errors(
    backing: str, net: torch.nn.Module, tmp_path: Path
) -> None:
    cube = small_cube(dask=backing == "dask")
    # a threshold below every reflectance: the bright-cloud rule masks every pixel
    clouded = mask_clouds(cube, method="bright", threshold=1e-6)
    assert bool(clouded.isnull().all())
    assert int(valid_count(clouded).max()) == 0
    comp = composite(clouded)
    assert bool(comp.isnull().all())  # documented: NaN where no valid observation
    with pytest.raises(NoValidDataError, match="has no valid pixel"):
        write_composite(comp, tmp_path / "composite.tif")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    probs = predict_cube(net, clouded, tile=32, overlap=0, device="cpu", bf16=False)
    assert bool(probs.isnull().all())  # documented: NaN probabilities on no-data
    ens = ensemble(probs)
    assert bool((ens["class_map"] == 255).all()) and int(ens["valid_count"].max()) == 0
    assert bool(ens["probs"].isnull().all())
    labels = xr.zeros_like(cube.isel(time=0, band=0), dtype="uint8")
    index = make_tiles(clouded.isel(time=0), labels, tile_px=16)
    assert len(index) == 0  # every tile is blank
    with pytest.raises(NoValidDataError, match="tile index is empty"):
        split_tiles(index, block_px=32)
    with pytest.raises(NoValidDataError, match=r"\['B02', 'B03', 'B04', 'B08'\] have no finite"):
        band_stats([clouded.isel(time=0)])


def test_scene_with_no_data_at_all_reads_as_nan(tmp_path: Path) -> None:
    """A scene whose DN are all the nodata value (0) becomes an all-NaN cube, not zeros."""
    items = [_zone_item(tmp_path, "empty", "EPSG:32630", (-0.02, 0.0), dn=0, date="2020-12-01")]
    cube = build_cube(items, bbox=AOI, crs=CRS, bands=("B04",)).compute()
    assert bool(cube.isnull().all())


# ------------------------------------------------------------------ rasters: NaN and inf


def test_inf_is_ignored_by_composites_by_hand() -> None:
    v = np.array([0.1, np.inf, 0.3, -np.inf, np.nan]).reshape(5, 1, 1, 1)
    times = np.array(["2020-11-05", "2020-12-05", "2021-01-05", "2021-02-05", "2021-03-05"],
                     dtype="datetime64[ns]")  # fmt: skip
    cube = xr.DataArray(v, dims=("time", "band", "y", "x"), coords={"time": times, "band": ["B04"]})
    assert float(composite(cube, method="median").item()) == pytest.approx(0.2)
    assert float(composite(cube, method="mean").item()) == pytest.approx(0.2)
    assert float(composite(cube, min_count=3).isnull().item()) == 1.0  # only 2 valid values
    assert int(valid_count(cube).item()) == 2


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_inf_is_treated_like_nan_everywhere(backing: str, net: torch.nn.Module) -> None:
    cube = small_cube().compute()
    bad = cube.copy(deep=True)
    bad[0, :, :4, :4] = np.inf  # every band of one patch of date 0
    bad[1, 2, 4:8, 4:8] = -np.inf  # one band of another patch of date 1
    as_nan = bad.where(np.isfinite(bad))
    if backing == "dask":
        bad, as_nan = bad.chunk({"time": 1}), as_nan.chunk({"time": 1})
    xr.testing.assert_equal(valid_count(bad), valid_count(as_nan))
    for method in ("median", "mean"):
        got = composite(bad, method=method).compute()
        xr.testing.assert_allclose(got, composite(as_nan, method=method).compute())
        assert not bool(np.isinf(got).any())
    kw: dict[str, Any] = {"tile": 32, "overlap": 0, "device": "cpu", "bf16": False}
    p_bad = predict_cube(net, bad, **kw).compute()
    xr.testing.assert_allclose(p_bad, predict_cube(net, as_nan, **kw).compute())
    assert bool(p_bad.isel(time=0, y=slice(0, 4), x=slice(0, 4)).isnull().all())
    s_bad, s_nan = band_stats([bad.isel(time=0)]), band_stats([as_nan.isel(time=0)])
    np.testing.assert_allclose(s_bad.mean, s_nan.mean)
    np.testing.assert_allclose(s_bad.std, s_nan.std)


# ------------------------------------------------------------------ rasters: wrong dtype


def _dn(cube: xr.DataArray) -> xr.DataArray:
    """Sentinel-2 digital numbers (uint16, +1000 offset, 0 = no data): not reflectance."""
    return (cube * 1e4 + 1000).fillna(0).astype("uint16")


CASTS = {
    "uint16 DN": _dn,
    "int32": lambda c: c.fillna(0).astype("int32"),
    "complex64": lambda c: c.astype("complex64"),
    "string": lambda c: c.astype(str),
}
CALLS = {
    "cloud_mask": lambda c: cloud_mask(c, method="bright"),
    "mask_clouds": lambda c: mask_clouds(c, method="bright"),
    "valid_count": valid_count,
    "composite": composite,
    "predict_cube": lambda c: predict_cube(torch.nn.Conv2d(4, 3, 1), c, tile=32, overlap=0),
}


@pytest.mark.parametrize("cast", list(CASTS))
@pytest.mark.parametrize("call", list(CALLS))
def test_wrong_dtype_is_a_dimension_error(cast: str, call: str) -> None:
    bad = CASTS[cast](small_cube())
    with pytest.raises(DimensionError, match=rf"float reflectance.*got dtype {bad.dtype}.*1e-4"):
        CALLS[call](bad)


# ------------------------------------------------------------------ rasters: damaged files


def _written_cog(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    probs = grid_da(rng.random((3, 300, 260)).astype("float32"))
    return write_cog(probs, tmp_path / "probs.tif", nodata=float("nan"), resampling="average")


@pytest.mark.parametrize("damage", ["half", "first_kb", "garbage", "zero_bytes"])
def test_damaged_cog_is_a_corrupt_raster_error(tmp_path: Path, damage: str) -> None:
    path = _written_cog(tmp_path)
    assert open_map(path).shape == (3, 300, 260)
    raw = path.read_bytes()
    path.write_bytes(
        {"half": raw[: len(raw) // 2], "first_kb": raw[:1024], "garbage": b"GIF89a" * 100,
         "zero_bytes": b""}[damage]
    )  # fmt: skip
    with pytest.raises(CorruptRasterError, match=r"cannot read raster '.*probs\.tif'.*re-run"):
        open_map(path)


def test_truncated_chip_is_a_corrupt_raster_error(tmp_path: Path) -> None:
    from rasterio.transform import from_origin

    for sub, arr in (("images", np.random.default_rng(0).random((3, 64, 64), "float32")),
                     ("masks", np.zeros((1, 64, 64), "uint8"))):  # fmt: skip
        (tmp_path / sub).mkdir()
        with rasterio.open(
            tmp_path / sub / "a.tif", "w", driver="GTiff", count=arr.shape[0], height=64,
            width=64, dtype=arr.dtype, crs=CRS, transform=from_origin(600000, 700000, 10, 10),
            tiled=True, blockxsize=16, blockysize=16,
        ) as ds:  # fmt: skip
            ds.write(arr)
    image = tmp_path / "images" / "a.tif"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    folder = load_chip_folder(tmp_path)  # the header is intact: opening works
    with pytest.raises(CorruptRasterError, match=r"cannot read image .*a\.tif.*re-export"):
        folder.read_image(0)


def test_damaged_or_unsafe_checkpoints_are_refused(tmp_path: Path) -> None:
    class Payload:  # an arbitrary object: a pickle that weights_only loading refuses
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("this would run on load",))

    torch.save({"format": "vitseg-checkpoint", "x": Payload()}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match=r"unsafe\.pt with torch\.load\(weights_only=True\)"):
        load_model(tmp_path / "unsafe.pt")
    torch.save({"w": torch.zeros(1000)}, tmp_path / "cut.pt")
    raw = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt .*truncated, corrupt"):
        load_model(tmp_path / "cut.pt")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: open_map(p / "maps" / "x_class.tif"), "no map at"),
        (lambda p: load_model(p / "models" / "unet" / "best.pt"), "no checkpoint at"),
        (lambda p: load_items(p / "data" / "items.json"), "no ItemCollection at"),
        (lambda p: search_items(p / "catalog.json", bbox=(0, 0, 1, 1), datetime=None),
         "does not exist"),
        (lambda p: data_path("no_such_layer.gpkg"), "no shipped data file"),
    ],
)  # fmt: skip
def test_paths_that_do_not_exist(tmp_path: Path, call: Any, match: str) -> None:
    with pytest.raises(MissingFileError, match=match) as info:
        call(tmp_path)
    assert isinstance(info.value, FileNotFoundError)  # builtins still catch it


def test_stac_dates_in_the_wrong_order(tmp_path: Path) -> None:
    catalog = tmp_path / "items.json"
    catalog.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(ParamsError, match=r"ends before it starts.*'2020-11-01/2021-03-31'"):
        search_items(catalog, bbox=(-2, 6, -1, 7), datetime="2021-03-31/2020-11-01")


# ------------------------------------------------------------------ vectors


def _like() -> xr.DataArray:
    return grid_da(np.zeros((20, 20), "float32"))


def _poly(i0: int, i1: int) -> shapely.Polygon:
    """Pixels [i0, i1) of the 20 x 20 grid in both directions."""
    return shapely.box(600000 + 10 * i0, 700000 - 10 * i1, 600000 + 10 * i1, 700000 - 10 * i0)


@pytest.mark.parametrize(
    "intruder",
    [shapely.Point(600050, 699950), shapely.LineString([(600000, 700000), (600100, 699900)]),
     shapely.MultiPoint([(600050, 699950), (600060, 699940)])],
    ids=["point", "line", "multipoint"],
)  # fmt: skip
def test_mixed_geometry_types_in_a_label_layer(intruder: Any) -> None:
    gdf = gpd.GeoDataFrame({"class": ["mines", "built"]}, geometry=[_poly(0, 5), intruder], crs=CRS)
    with pytest.raises(
        VectorError, match=rf"must hold polygons; 1 of 2 .*{intruder.geom_type}.*buffer"
    ):
        rasterize_labels(gdf, like=_like())


def test_label_layer_outside_the_imagery_warns_and_is_all_background() -> None:
    # the classic mix-up: lon/lat coordinates tagged as UTM metres
    lonlat = shapely.box(-1.70, 6.20, -1.69, 6.21)
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[lonlat], crs=CRS)
    with pytest.warns(UserWarning, match=r"none of the 1 label polygons .* overlaps the grid.*CRS"):
        lab = rasterize_labels(gdf, like=_like())
    assert bool((lab == 2).all())  # vegetation background everywhere


def test_label_polygon_partly_outside_is_clipped_quietly() -> None:
    gdf = gpd.GeoDataFrame({"class": ["mines"]}, geometry=[_poly(15, 30)], crs=CRS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        lab = rasterize_labels(gdf, like=_like())
    assert int((lab == 0).sum()) == 5 * 5  # pixels 15..19 in both directions


# ------------------------------------------------------------------ STAC: mixed UTM zones

AOI = (-0.004, 5.996, 0.004, 6.004)  # lon/lat, straddling 0 deg E: UTM 30N west, 31N east


def _zone_item(folder: Path, item_id: str, crs: str, lon: tuple[float, float], *, dn: int,
               date: str) -> pystac.Item:  # fmt: skip
    """A one-band (B04) item in ``crs`` covering longitudes ``lon`` and latitudes 5.99-6.01."""
    to = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = to.transform([lon[0], lon[0], lon[1], lon[1]], [5.99, 6.01, 5.99, 6.01])
    x0, x1 = np.floor(min(xs) / 10) * 10, np.ceil(max(xs) / 10) * 10
    y0, y1 = np.floor(min(ys) / 10) * 10, np.ceil(max(ys) / 10) * 10
    w, h = int((x1 - x0) / 10), int((y1 - y0) / 10)
    transform = Affine(10, 0, x0, 0, -10, y1)
    # keep only the pixels whose centre lies within the item's longitudes (a sharp zone edge)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    lons, _ = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        x0 + 10 * cols, y1 - 10 * rows
    )
    data = np.where((lons >= lon[0]) & (lons <= lon[1]), dn, 0).astype("uint16")
    path = folder / f"{item_id}_B04.tif"
    with rasterio.open(path, "w", driver="GTiff", dtype="uint16", count=1, width=w, height=h,
                       crs=crs, transform=transform, nodata=0) as ds:  # fmt: skip
        ds.write(data, 1)
    ring = [[lon[0], 5.99], [lon[1], 5.99], [lon[1], 6.01], [lon[0], 6.01], [lon[0], 5.99]]
    return pystac.Item.from_dict({
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "links": [],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [lon[0], 5.99, lon[1], 6.01],
        "properties": {"datetime": f"{date}T10:30:00Z", "proj:epsg": int(crs.split(":")[1]),
                       "s2:processing_baseline": "02.14"},
        "assets": {"B04": {"href": str(path), "type": "image/tiff", "roles": ["data"],
                           "proj:shape": [h, w], "proj:transform": list(transform)[:6]}},
    })  # fmt: skip


@pytest.mark.parametrize("chosen", ["EPSG:32630", "EPSG:32631"])
def test_mixed_utm_zones_are_reprojected_to_the_chosen_zone(tmp_path: Path, chosen: str) -> None:
    west = _zone_item(tmp_path, "west30", "EPSG:32630", (-0.01, 0.0), dn=1000, date="2020-12-01")
    east = _zone_item(tmp_path, "east31", "EPSG:32631", (0.0, 0.01), dn=3000, date="2020-12-06")
    cube = build_cube([west, east], bbox=AOI, crs=chosen, bands=("B04",), resampling="nearest")
    assert cube.rio.crs.to_string() == chosen
    assert list(cube["source_epsg"].values) == [32630, 32631]
    vals = cube.sel(band="B04").compute().values  # (time, y, x)
    xx, yy = np.meshgrid(cube["x"].values, cube["y"].values)
    lon, _ = Transformer.from_crs(chosen, "EPSG:4326", always_xy=True).transform(xx, yy)
    w, e = lon < -0.0003, lon > 0.0003  # ~30 m away from the zone edge
    assert w.sum() > 1000 and e.sum() > 1000
    np.testing.assert_allclose(vals[0][w], 0.1, atol=1e-6)  # 30N scene fills the west ...
    assert np.isnan(vals[1][w]).all()
    np.testing.assert_allclose(vals[1][e], 0.3, atol=1e-6)  # ... 31N scene the east
    assert np.isnan(vals[0][e]).all()
    comp = composite(cube).sel(band="B04").values
    assert np.isfinite(comp[w | e]).all()  # both contribute: no gap in the composite


# ------------------------------------------------------------------ nothing lost: real kills

HELPERS = '''
import time

import dask.array as da
import numpy as np
import torch
import xarray as xr
import rioxarray  # noqa: F401
from torch.utils.data import Dataset


def scene(i, *, slow=False, boom=False):
    """Probabilities (class, y, x) of scene i; optionally slow or failing when computed."""
    rng = np.random.default_rng(i)
    p = rng.random((3, 96, 96)).astype("float32")
    p /= p.sum(axis=0)
    arr = da.from_array(p, chunks=(3, 48, 48))

    def hook(block):
        if boom:
            raise RuntimeError(f"scene {i} was recomputed")
        if slow:
            print(f"computing {i}", flush=True)
            time.sleep(120)
        return block

    arr = arr.map_blocks(hook, dtype="float32", meta=np.array((), "float32"))
    y = 700000 - 10 * (np.arange(96) + 0.5)
    x = 600000 + 10 * (np.arange(96) + 0.5)
    return xr.DataArray(arr, dims=("class", "y", "x"),
                        coords={"class": ["mines", "built", "vegetation"], "y": y, "x": x}
                        ).rio.write_crs("EPSG:32630")


class Patches(Dataset):
    def __init__(self, stall_at_epoch=None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 3, 32, 32, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.y[:, :3, :3] = 255
        self.stall_at_epoch = stall_at_epoch
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.epoch == self.stall_at_epoch:
            print(f"in epoch {self.epoch}", flush=True)
            time.sleep(120)
        x, y = self.x[i], self.y[i]
        if torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def val():
    ds = Patches()
    return [(ds.x[i], ds.y[i]) for i in range(3)]


def model(seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                            torch.nn.Dropout2d(0.3), torch.nn.Conv2d(8, 2, 1))
    m.meta = {"arch": "tiny", "classes": 2}
    return m


CFG = {"epochs": 3, "batch_size": 2, "samples_per_epoch": 4, "lr": 1e-2, "lr_step_epochs": 1,
       "progress": False, "seed": 3, "device": "cpu", "bf16": False}
'''


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "rel_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    sys.modules.pop("rel_helpers", None)
    return importlib.import_module("rel_helpers")


def _run_until(script: str, cwd: Path, marker: str) -> None:
    """Run ``script`` in a new interpreter, SIGKILL it once it prints ``marker``."""
    env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line.strip())
            if line.startswith(marker):
                break
        else:
            raise AssertionError(f"never printed {marker!r}: {seen} {proc.stderr.read()}")  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_killed_cog_writer_leaves_no_partial_file_and_prediction_resumes(
    tmp_path: Path, helpers: Any
) -> None:
    out = tmp_path / "maps"
    script = f"""
    from rel_helpers import scene
    from vitseg.predict import write_scene_maps
    for i in range(3):
        write_scene_maps(scene(i, slow=i == 1), {str(out)!r}, prefix=f"s{{i}}")
        print(f"done {{i}}", flush=True)
    """
    _run_until(script, tmp_path, "computing 1")  # killed inside write_cog of scene 1
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert finals == ["s0_class.tif", "s0_class.tif.aux.xml", "s0_confidence.tif", "s0_probs.tif"]
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert leftovers and all(n.startswith(".s1_probs.tif.") for n in leftovers), leftovers
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("s0_*")}
    time.sleep(0.05)
    from vitseg.predict import write_scene_maps

    for i in range(3):  # resume: scene 0 must not be recomputed (it would raise)
        write_scene_maps(helpers.scene(i, boom=i == 0), out, prefix=f"s{i}")
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("s0_*")} == stamps
    for i in (1, 2):
        expected = helpers.scene(i).compute()
        # stored as uint8 codes of 0.004: back within half a step
        xr.testing.assert_allclose(open_map(out / f"s{i}_probs.tif").compute(), expected,
                                   rtol=0, atol=0.002 + 1e-6)  # fmt: skip
        np.testing.assert_array_equal(open_map(out / f"s{i}_class.tif").values,
                                      classify(expected)[0].values)  # fmt: skip


def test_training_killed_mid_epoch_resumes_to_the_same_weights(
    tmp_path: Path, helpers: Any
) -> None:
    from vitseg.train import fit

    run_b = tmp_path / "killed"
    script = f"""
    import torch
    torch.set_num_threads(1)
    from rel_helpers import CFG, Patches, model, val
    from vitseg.train import fit
    fit(model(), Patches(stall_at_epoch=1), val(), config=CFG, run_dir={str(run_b)!r})
    """
    _run_until(script, tmp_path, "in epoch 1")  # epoch 1 checkpointed, killed inside epoch 2
    assert sorted(p.name for p in run_b.iterdir()) == ["best.pt", "history.csv", "last.pt"]
    assert torch.load(run_b / "last.pt", weights_only=True)["epoch"] == 1
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = helpers.model()
        fit(ref, helpers.Patches(), helpers.val(), config=helpers.CFG, run_dir=tmp_path / "ref")
        resumed = helpers.model(seed=123)  # other initial weights: they come from last.pt
        res = fit(resumed, helpers.Patches(), helpers.val(), config=helpers.CFG, run_dir=run_b)
    finally:
        torch.set_num_threads(n)
    assert res.start_epoch == 1 and len(res.history) == 3
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


# ------------------------------------------------------------------ params of a real notebook


@pytest.fixture(scope="module")
def declared_02() -> dict[str, Any]:
    from vitseg.runner import notebook_parameters

    return {"02_build_cube": notebook_parameters(REPO / "notebooks" / "02_build_cube.py")}


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("02_build_cube:\n  chunks_px: -64\n", r"'chunks_px' must be an int > 0; got -64"),
        ("02_build_cube:\n  blank_tile_px: 0\n", r"'blank_tile_px' must be an int > 0; got 0"),
        ("02_build_cube:\n  max_cloud_pct: lots\n", r"'max_cloud_pct' must be .*'lots'"),
        (
            "02_build_cube:\n  seasons: ['2021-20']\n",
            r"dry season '2021-20': the second year must follow",
        ),
        ("common:\n  sead: 1\n", r"common keys \['sead'\] are declared by none"),
    ],
)
def test_real_notebook_parameters_are_checked(
    tmp_path: Path, declared_02: dict[str, Any], yaml_text: str, match: str
) -> None:
    from vitseg.runner import load_experiment, resolve_parameters

    exp = tmp_path / "exp.yaml"
    exp.write_text("notebooks: [02_build_cube]\n" + yaml_text)
    with pytest.raises(ParamsError, match=match):
        resolve_parameters(load_experiment(exp), declared=declared_02)


def test_cli_on_a_real_notebook_prints_the_problem_without_traceback(tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text("notebooks: [02_build_cube]\n02_build_cube:\n  size_pixels: 256\n")
    proc = subprocess.run([sys.executable, "-m", "vitseg", "run", str(exp)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("vitseg: error:") and "Traceback" not in proc.stderr
    assert "'size_pixels' in section '02_build_cube'" in proc.stderr
    assert "did you mean 'size_px'" in proc.stderr


# ------------------------------------------------------------------ static audits


def _modules(*folders: Path) -> list[tuple[Path, ast.Module]]:
    files = [  # the library's modules and sub-packages, not the data-preparation scripts
        p for f in folders for p in sorted(f.rglob("*.py")) if "data" not in p.relative_to(f).parts
    ]
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in files]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _kw(call: ast.Call, name: str) -> Any:
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def test_checkpoints_load_weights_only_yaml_is_safe_and_no_shell_strings() -> None:
    problems = []
    for path, tree in _modules(PKG, REPO / "notebooks"):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, where = _dotted(node.func), f"{path.relative_to(REPO)}:{node.lineno}"
            if name == "torch.load":
                in_memory = (
                    node.args and _dotted(getattr(node.args[0], "func", node)) == "io.BytesIO"
                )
                if _kw(node, "weights_only") is not True and not in_memory:
                    problems.append(f"{where}: torch.load of a file without weights_only=True")
            if name.startswith("yaml.") and name.split(".")[-1] in {
                "load", "load_all", "unsafe_load", "full_load", "full_load_all", "unsafe_load_all"
            }:  # fmt: skip
                problems.append(f"{where}: {name} (use yaml.safe_load)")
            if _kw(node, "shell") is True:
                problems.append(f"{where}: shell=True")
            if name in {
                "os.system",
                "os.popen",
                "subprocess.getoutput",
                "subprocess.getstatusoutput",
            }:
                problems.append(f"{where}: {name} runs a shell string")
            if (
                name.startswith("subprocess.")
                and node.args
                and not isinstance(node.args[0], (ast.List, ast.Tuple))
            ):
                problems.append(f"{where}: {name} with a non-list command")
    assert not problems, "\n".join(problems)


#: Methods/functions that write a file, and which argument is the destination.
_WRITERS = {"to_raster": 0, "to_file": 0, "to_csv": 0, "to_parquet": 0, "to_netcdf": 0,
            "to_zarr": 0, "savefig": 0}  # fmt: skip
#: Writes whose destination is known to live inside an atomic temporary (checked by hand).
_ATOMIC_BY_CONSTRUCTION = {
    ("cog.py", "_stage"),  # the staging GeoTIFF lives inside write_cog's atomic_path
}


def test_every_library_writer_goes_through_a_temporary_name() -> None:
    """Library writes target a ``tmp*`` path from atomic_path (or a temp folder renamed whole)."""
    problems = []
    for path, tree in _modules(PKG):
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (path.name, func.name) in _ATOMIC_BY_CONSTRUCTION:
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Call):
                    continue
                name = _dotted(node.func)
                attr = name.rsplit(".", 1)[-1]
                target: ast.AST | None = None
                if attr in _WRITERS and len(node.args) > _WRITERS[attr]:
                    target = node.args[_WRITERS[attr]]
                elif attr in {"write_text", "write_bytes"} and isinstance(node.func, ast.Attribute):
                    target = node.func.value
                elif name == "torch.save" and len(node.args) > 1:
                    target = node.args[1]
                elif name in {"open", "rasterio.open"} and len(node.args) > 1:
                    mode = node.args[1]
                    if isinstance(mode, ast.Constant) and str(mode.value)[:1] in "wax":
                        target = node.args[0]
                if target is None:
                    continue
                names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
                if not any(n.startswith("tmp") or n in {"buf", "fh"} for n in names):
                    problems.append(
                        f"{path.name}:{node.lineno} in {func.name}: {name} writes "
                        f"{ast.unparse(target)} directly; use vitseg.io.atomic_path"
                    )
    assert not problems, "\n".join(problems)


def test_no_stray_files_after_a_failed_write(tmp_path: Path) -> None:
    """A writer that fails half-way (here: an exception while computing) leaves nothing."""
    import dask.array as dsa

    def boom(block: np.ndarray) -> np.ndarray:
        raise RuntimeError("disk full")

    arr = dsa.zeros((3, 128, 128), chunks=(3, 64, 64), dtype="float32").map_blocks(
        boom, dtype="float32", meta=np.array((), "float32")
    )
    probs = grid_da(np.zeros((3, 128, 128), "float32")).copy(data=arr)
    with pytest.raises(RuntimeError, match="disk full"):
        write_cog(probs, tmp_path / "p.tif", nodata=float("nan"))
    assert list(tmp_path.iterdir()) == []
    comp = composite(small_cube())
    with pytest.raises(VitsegError):
        write_composite(comp.drop_vars("spatial_ref"), tmp_path / "c.tif")
    assert list(tmp_path.iterdir()) == []
