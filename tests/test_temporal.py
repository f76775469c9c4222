"""Tests for vitseg.temporal: Gallwey eqs 1-3 on hand-made stacks, and mosaics."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from vitseg.errors import CRSMismatchError, DimensionError, GridMismatchError, MissingCRSError
from vitseg.temporal import ensemble, mosaic

NAN = np.nan
GRIDS = {"EPSG:32630": (600_000.0, 700_000.0, 10.0), "EPSG:4326": (-1.8, 6.25, 0.0001)}


def stack(backing: str) -> xr.DataArray:
    """3 dates x 3 classes x 1 x 3 pixels; date 1 is clouded at pixel 1, pixel 2 never seen."""
    p = np.array(
        [
            [[0.6, 0.2, NAN], [0.3, 0.1, NAN], [0.1, 0.7, NAN]],  # date 0
            [[0.2, NAN, NAN], [0.2, NAN, NAN], [0.6, NAN, NAN]],  # date 1 (pixel 1 clouded)
            [[0.7, 0.5, NAN], [0.2, 0.4, NAN], [0.1, 0.1, NAN]],  # date 2
        ],
        "float32",
    )[:, :, None, :]
    data = da.from_array(p, chunks=(1, 3, 1, 2)) if backing == "dask" else p
    x0, y0, _ = GRIDS["EPSG:32630"]
    return xr.DataArray(
        data, dims=("time", "class", "y", "x"),
        coords={"class": ["mines", "built", "vegetation"], "y": [y0 - 5], "x": x0 + 5 + 10 * np.arange(3)},
    ).rio.write_crs("EPSG:32630")  # fmt: skip


@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_ensemble_matches_equations(backing: str) -> None:
    out = ensemble(stack(backing))
    # eq 2-3 by hand: pixel 0 mean over 3 dates, pixel 1 over dates 0 and 2.
    want = np.array([[(0.6 + 0.2 + 0.7) / 3, (0.2 + 0.5) / 2, NAN],
                     [(0.3 + 0.2 + 0.2) / 3, (0.1 + 0.4) / 2, NAN],
                     [(0.1 + 0.6 + 0.1) / 3, (0.7 + 0.1) / 2, NAN]])[:, None, :]  # fmt: skip
    np.testing.assert_allclose(out["probs"].values, want, atol=1e-6)
    # eq 1: argmax of the means; a single date would have said vegetation at pixel 1.
    assert out["class_map"].values.tolist() == [[0, 2, 255]]
    assert out["valid_count"].values.tolist() == [[3, 2, 0]]
    assert out["class_map"].dtype == np.uint8 and out["valid_count"].dtype == np.uint16
    np.testing.assert_allclose(out["confidence"].values, [[1.5 / 3, 0.4, NAN]], atol=1e-6)
    assert out.rio.crs == "EPSG:32630"


def test_ensemble_with_cloud_mask() -> None:
    probs = stack("numpy")
    valid = xr.DataArray(np.ones((3, 1, 3), bool), dims=("time", "y", "x"))
    valid[0, 0, 0] = False  # date 0 cloudy at pixel 0 though its probabilities exist
    out = ensemble(probs, valid)
    np.testing.assert_allclose(out["probs"].values[:, 0, 0], [0.45, 0.2, 0.35], atol=1e-6)
    assert int(out["valid_count"][0, 0]) == 2
    assert int(out["class_map"][0, 0]) == 0


def test_ensemble_errors() -> None:
    probs = stack("numpy")
    with pytest.raises(DimensionError, match="must have dims"):
        ensemble(probs.isel(time=0))
    with pytest.raises(DimensionError, match="valid must have dims"):
        ensemble(probs, probs.notnull())
    with pytest.raises(DimensionError, match="boolean"):
        ensemble(probs, xr.ones_like(probs.isel({"class": 0})))


def grid(
    values: list | np.ndarray, col: int, row: int = 0, crs: str = "EPSG:32630"
) -> xr.DataArray:
    """A map whose top-left pixel is (row, col) of a common grid."""
    arr = np.asarray(values)
    x0, y0, res = GRIDS[crs]
    h, w = arr.shape[-2:]
    dims = ("y", "x") if arr.ndim == 2 else ("class", "y", "x")
    coords = {
        "y": y0 - res * (row + np.arange(h) + 0.5),
        "x": x0 + res * (col + np.arange(w) + 0.5),
    }
    return xr.DataArray(arr, dims=dims, coords=coords).rio.write_crs(crs)


@pytest.mark.parametrize("crs", list(GRIDS))
def test_mosaic_max_class(crs: str) -> None:
    a = grid(np.array([[0, 1, 0], [255, 1, 1]], "uint8"), col=0, crs=crs)
    b = grid(np.array([[2, 0, 1], [0, 255, 0]], "uint8"), col=2, row=1, crs=crs)
    m = mosaic([a, b])
    assert m.dtype == np.uint8 and m.shape == (3, 5)
    assert m.values.tolist() == [[0, 1, 0, 255, 255], [255, 1, 2, 0, 1], [255, 255, 0, 255, 0]]
    assert m.rio.crs == crs
    np.testing.assert_allclose(m["x"], np.concatenate([a["x"], b["x"][1:]]))
    np.testing.assert_allclose(m["y"], np.concatenate([a["y"], b["y"][1:]]))


def test_mosaic_max_class_from_probabilities_and_dask() -> None:
    p = np.array([[[0.8, 0.1]], [[0.1, 0.1]], [[0.1, 0.8]]], "float32").repeat(2, 1)  # 0, 2
    q = np.array([[[0.1, 0.1]], [[0.8, NAN]], [[0.1, 0.1]]], "float32").repeat(2, 1)  # 1, -
    m = mosaic([grid(p, 0).chunk(1), grid(q, 1).chunk(1)])
    assert isinstance(m.data, da.Array)
    assert m.values.tolist() == [[0, 2, 255]] * 2


def test_mosaic_mean_prob() -> None:
    p = np.array([[[0.8, 0.2]], [[0.2, 0.8]]], "float32").repeat(2, 1)
    q = np.array([[[0.4, NAN]], [[0.6, NAN]]], "float32").repeat(2, 1)
    m = mosaic([grid(p, 0), grid(q, 1)], method="mean_prob")
    want = np.array([[[0.8, 0.3, NAN]], [[0.2, 0.7, NAN]]]).repeat(2, 1)
    np.testing.assert_allclose(m.values, want, atol=1e-6)


def test_mosaic_errors() -> None:
    a = grid(np.zeros((2, 2), "uint8"), 0)
    with pytest.raises(DimensionError, match="at least one"):
        mosaic([])
    with pytest.raises(CRSMismatchError, match="reproject"):
        mosaic([a, grid(np.zeros((2, 2), "uint8"), 0, crs="EPSG:4326")])
    with pytest.raises(MissingCRSError):
        mosaic([a, a.drop_vars("spatial_ref")])
    with pytest.raises(GridMismatchError, match="shifted"):
        mosaic([a, a.assign_coords(x=a["x"] + 3.0)])
    with pytest.raises(GridMismatchError, match="pixel size"):
        mosaic([a, a.assign_coords(x=float(a["x"][0]) + 20.0 * np.arange(2))])
    with pytest.raises(DimensionError, match="mean_prob"):
        mosaic([a], method="mean_prob")
    with pytest.raises(DimensionError, match="method"):
        mosaic([a], method="median")  # type: ignore[arg-type]


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


@pytest.mark.parametrize("crs", list(GRIDS))
def test_mosaic_south_up_grid(crs: str) -> None:
    # y increasing downwards the array (dy > 0, also below 1 in degrees): same layout as the
    # north-up test
    def south_up(values: np.ndarray, col: int, row: int = 0) -> xr.DataArray:
        m = grid(values, col, row, crs=crs)
        _, y0, res = GRIDS[crs]
        return m.assign_coords(y=y0 + res * (row + np.arange(m.sizes["y"]) + 0.5))

    a = south_up(np.array([[0, 1, 0], [255, 1, 1]], "uint8"), col=0)
    b = south_up(np.array([[2, 0, 1], [0, 255, 0]], "uint8"), col=2, row=1)
    m = mosaic([a, b])
    assert m.values.tolist() == [[0, 1, 0, 255, 255], [255, 1, 2, 0, 1], [255, 255, 0, 255, 0]]
    np.testing.assert_allclose(m["y"], np.concatenate([a["y"], b["y"][1:]]))
    np.testing.assert_allclose(m["x"], np.concatenate([a["x"], b["x"][1:]]))


def test_mosaic_keeps_nodata_and_drops_extra_coords() -> None:
    a = grid(np.array([[255, 1], [0, 255]], "uint8"), col=0).assign_coords(time="2020")
    b = grid(np.array([[255, 255], [255, 0]], "uint8"), col=1, row=1)
    m = mosaic([a, b], nodata=255)
    assert m.values.tolist() == [[255, 1, 255], [0, 255, 255], [255, 255, 0]]
    assert "time" not in m.coords
    assert m.attrs["mosaic"] == "maximum class code in overlaps"
    assert mosaic([a], nodata=0).values.tolist() == [[255, 1], [0, 255]]


def test_mosaic_refuses_a_grid_shifted_in_y() -> None:
    a = grid(np.zeros((2, 2), "uint8"), 0)
    with pytest.raises(GridMismatchError, match=r"y grid is shifted by 0\.700 pixel"):
        mosaic([a, a.assign_coords(y=a["y"] + 3.0)])


def test_mosaic_needs_a_2x2_grid() -> None:
    with pytest.raises(GridMismatchError, match="at least 2x2"):
        mosaic([grid(np.zeros((1, 3), "uint8"), 0)])
    with pytest.raises(GridMismatchError, match="at least 2x2"):
        mosaic([grid(np.zeros((3, 1), "uint8"), 0)])


def test_ensemble_custom_nodata_dim_and_no_crs() -> None:
    probs = stack("numpy").rename(time="date").drop_vars("spatial_ref")
    out = ensemble(probs, dim="date", nodata=9)
    assert out["class_map"].values.tolist() == [[0, 2, 9]]
    assert out.rio.crs is None
    assert out["valid_count"].attrs["long_name"] == "number of valid observations"


def test_ensemble_of_one_observation_is_that_observation() -> None:
    probs = stack("numpy").isel(time=[0])
    out = ensemble(probs)
    np.testing.assert_allclose(out["probs"].values, probs.values[0], atol=1e-6)
    assert out["valid_count"].values.tolist() == [[1, 1, 0]]
    assert out["class_map"].values.tolist() == [[0, 2, 255]]


def test_mosaic_grid_origin_need_not_sit_on_a_half_pixel() -> None:
    # pixel centres at 3 m past a multiple of the 10 m pixel: still aligned with each other
    a = grid(np.array([[0, 1], [1, 0]], "uint8"), col=0)
    a = a.assign_coords(x=a["x"] - 2.0, y=a["y"] - 2.0)
    b = grid(np.array([[2, 2], [2, 2]], "uint8"), col=1, row=1)
    b = b.assign_coords(x=b["x"] - 2.0, y=b["y"] - 2.0)
    m = mosaic([a, b])
    assert m.values.tolist() == [[0, 1, 255], [1, 2, 2], [255, 2, 2]]
