"""Tests for vitseg.cog: COGs written atomically, overviews in the pass, legends, reading back."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from _predict_helpers import CRSS, grid_da
from rio_cogeo.cogeo import cog_validate

import vitseg.cog
import vitseg.predict
from vitseg.cog import open_map, overview_factors, quantise_probs, write_cog
from vitseg.errors import DimensionError, MissingCRSError, VitsegError


def test_predict_re_exports_the_map_functions() -> None:
    """``vitseg.predict`` still offers what moved here (notebooks import it from there)."""
    for name in ("write_cog", "open_map", "quantise_probs", "overview_factors", "PROB_STEP",
                 "PROB_NODATA"):  # fmt: skip
        assert getattr(vitseg.predict, name) is getattr(vitseg.cog, name)
    assert set(vitseg.cog.__all__) <= set(dir(vitseg.predict))
    assert overview_factors(2048, 1500, 512) == [2, 4]


@pytest.mark.parametrize("crs", list(CRSS))
def test_write_cog_is_valid_cog(tmp_path, crs: str) -> None:
    rng = np.random.default_rng(1)
    cls = grid_da(rng.integers(0, 3, (600, 520)).astype("uint8"), crs)
    cls[:50, :50] = 255
    path = write_cog(cls.chunk(200), tmp_path / "c" / "class.tif", nodata=255, blocksize=256)
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.nodata == 255 and src.crs.to_string() == crs
        assert src.overviews(1) and src.profile["blockxsize"] == 256
        assert src.compression.name.lower() == "deflate"
        np.testing.assert_array_equal(src.read(1), cls.values)
        assert src.transform.almost_equals(cls.rio.transform())
    assert sorted(p.name for p in path.parent.iterdir()) == ["class.tif"]  # no leftovers


def test_write_cog_probabilities_roundtrip(tmp_path) -> None:
    probs = grid_da(np.random.default_rng(2).random((3, 300, 280)).astype("float32"))
    probs[:, :10] = np.nan
    path = write_cog(probs, tmp_path / "p.tif", nodata=float("nan"), resampling="average")
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:  # float layers: ZSTD with the floating-point predictor
        assert src.compression.name.lower() == "zstd"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    back = open_map(path, chunks=128)
    assert list(back["class"].values) == ["mines", "built", "vegetation"]
    xr.testing.assert_allclose(back.drop_vars("spatial_ref"), probs.drop_vars("spatial_ref"))
    old = write_cog(probs, tmp_path / "d.tif", nodata=float("nan"), compress="deflate")
    with rasterio.open(old) as src:
        assert src.compression.name.lower() == "deflate"
    xr.testing.assert_allclose(
        open_map(old).drop_vars("spatial_ref"), back.drop_vars("spatial_ref")
    )
    with pytest.raises(VitsegError, match="compress must be one of"):
        write_cog(probs, tmp_path / "e.tif", compress="lzw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "resampling"),
    [("codes", "average"), ("float", "average"), ("classes", "nearest")],
)
def test_overviews_built_in_the_pass_match_the_whole_image(
    tmp_path, monkeypatch, kind: str, resampling: str
) -> None:
    """Chunks on multiples of the largest factor: overview levels computed chunk by chunk
    equal those of the whole image, and GDAL's own (chunks off the factors) within a step."""
    import vitseg.cog as vc

    rng = np.random.default_rng(5)
    if kind == "float":
        arr = rng.random((2, 600, 520)).astype("float32")
        arr[:, 100:140, 30:90], nodata = np.nan, float("nan")
    else:
        top = 250 if kind == "codes" else 3
        arr, nodata = rng.integers(0, top, (2, 600, 520)).astype("uint8"), 255
        arr[:, 100:140, 30:90] = 255
        arr[0, 598:, 515:] = 255  # a ragged edge group with no valid pixel
    img = grid_da(arr)
    calls = []
    real = vc._reduce_window
    monkeypatch.setattr(vc, "_reduce_window", lambda *a: calls.append(1) or real(*a))
    path = write_cog(img.chunk({"y": 200, "x": 200}), tmp_path / "in_[pass].tif",
                     nodata=nodata, resampling=resampling, blocksize=256)  # fmt: skip
    assert calls and cog_validate(str(path))[0]
    n = len(calls)
    gdal = write_cog(img.chunk({"y": 199, "x": 199}), tmp_path / "gdal.tif",
                     nodata=nodata, resampling=resampling, blocksize=256)  # fmt: skip
    assert len(calls) == n  # 199 px chunks: GDAL builds the overviews after the pass
    # no staging file or overview level left behind (a glob would miss "[pass]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gdal.tif", "in_[pass].tif"]
    want = real(arr, [2, 4], resampling, nodata)
    for level, expected in enumerate(want):
        with rasterio.open(path, overview_level=level) as src:
            got = src.read()
        with rasterio.open(gdal, overview_level=level) as src:
            theirs = src.read()
        np.testing.assert_array_equal(got, expected)
        assert got.shape == theirs.shape == (2, -(-600 // 2 ** (level + 1)), 260 // 2**level)
        if kind == "classes":  # both take each group's first pixel
            np.testing.assert_array_equal(got, theirs)
        elif kind == "codes":  # GDAL averages level 4 from level 2's rounded codes and
            np.testing.assert_array_equal(got == 255, theirs == 255)  # their no-data count
            clean = vc._sum_groups((arr == 255).astype("float32"), 2 ** (level + 1)) == 0
            diff = np.abs(got.astype(int) - theirs.astype(int))
            assert clean.mean() > 0.9 and diff[clean].max() <= level + 1
        else:
            np.testing.assert_allclose(got, theirs, atol=1e-6, equal_nan=True)


def test_a_failed_write_leaves_no_staging_or_overview_levels(tmp_path) -> None:
    img = grid_da(np.zeros((600, 520), "uint8")).chunk({"y": 200, "x": 200})

    def boom(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info and block_info[0]["chunk-location"] == (2, 2):
            raise RuntimeError("disk full")
        return block

    bad = img.copy(data=img.data.map_blocks(boom, dtype="uint8"))
    with pytest.raises(RuntimeError, match="disk full"):
        write_cog(bad, tmp_path / "c.tif", nodata=255, blocksize=256)
    assert not list(tmp_path.iterdir())


def test_open_map_chunks_follow_the_file_tiles(tmp_path) -> None:
    """A chunk side is rounded to whole internal tiles (no tile decoded for two chunks)."""
    cls = grid_da(np.zeros((1100, 1030), "uint8"))
    path = write_cog(cls, tmp_path / "c.tif", nodata=255, overviews=False, blocksize=512)
    assert open_map(path, chunks=1088).chunks == ((1024, 76), (1024, 6))
    assert open_map(path, chunks=300).chunks == ((300, 300, 300, 200), (300, 300, 300, 130))


def test_write_cog_errors(tmp_path) -> None:
    a = grid_da(np.zeros((4, 4), "uint8"))
    with pytest.raises(DimensionError, match="write_cog needs dims"):
        write_cog(a.expand_dims(t=2, b=1), tmp_path / "a.tif")
    with pytest.raises(MissingCRSError):
        write_cog(a.drop_vars("spatial_ref"), tmp_path / "a.tif")
    assert not list(tmp_path.iterdir())


def test_quantise_probs_rounds_and_keeps_nan() -> None:
    p = xr.DataArray(np.array([0.0, 0.0019, 0.0021, 0.5, 0.999, 1.0, np.nan], "float32"))
    q = quantise_probs(p)
    assert q.dtype == "uint8" and q.values.tolist() == [0, 0, 1, 125, 250, 250, 255]
    assert q.attrs["scale_factor"] == 0.004
    lazy = quantise_probs(p.chunk(3))
    assert isinstance(lazy.data, da.Array) and lazy.values.tolist() == q.values.tolist()
    assert quantise_probs(p, step=0.01).values.tolist()[:4] == [0, 0, 0, 50]
    for bad in (0.001, 0.0, -0.1, 0.003):
        with pytest.raises(VitsegError, match="step must be 1/n"):
            quantise_probs(p, step=bad)


def _aux_categories(path) -> list[str]:
    """Category names GDAL reads from the COG's PAM sidecar (``<path>.aux.xml``)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(f"{path}.aux.xml").getroot()
    return [c.text or "" for c in root.iter("Category")]


def test_write_cog_colour_table_and_category_names_survive_the_cog(tmp_path) -> None:
    import json

    from vitseg.styles import change_colormap

    codes = np.arange(40 * 48, dtype="uint8").reshape(40, 48) % 9
    codes[:4, :4] = 255
    cmap, names = change_colormap()
    path = write_cog(grid_da(codes), tmp_path / "change.tif", nodata=255, colormap=cmap,
                     category_names=names)  # fmt: skip
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        assert src.colorinterp[0] == rasterio.enums.ColorInterp.palette
        assert src.colormap(1)[6] == (228, 26, 28, 255)  # vegetation -> mines: red
        assert src.colormap(1)[8] == cmap[8]
        assert json.loads(src.tags(1)["categories"])["6"] == "vegetation -> mines"
        assert src.nodata == 255
        np.testing.assert_array_equal(src.read(1), codes)
    assert _aux_categories(path) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif", "change.tif.aux.xml"]
    # rewritten without names: the old sidecar would mislabel the new file, so it goes
    write_cog(grid_da(codes), path, nodata=255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif"]


@pytest.mark.parametrize(
    ("arr", "kwargs", "match"),
    [
        (np.zeros((2, 8, 8), "float32"), {"colormap": {0: "#000000"}}, "single-band uint8"),
        (np.zeros((8, 8), "float32"), {"category_names": ["a"]}, "single-band uint8"),
        (np.zeros((8, 8), "uint8"), {"colormap": {256: "#000000"}}, r"0\.\.255"),
        (np.zeros((8, 8), "uint8"), {"colormap": {0: "black"}}, "a colour must be"),
        (np.zeros((8, 8), "uint8"), {"category_names": "mines"}, "a list of names"),
    ],
)
def test_write_cog_legend_errors(tmp_path, arr: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(VitsegError, match=match):
        write_cog(grid_da(arr), tmp_path / "x.tif", **kwargs)
    assert not list(tmp_path.iterdir())
