"""Tests for vitseg.temporal added from mutation testing (docs/mutation.md, issue 20).

Each test pins a value worked out by hand (or an exact error boundary) that a surviving
mutant of vitseg/temporal.py (after the issue 22 input-checking sweep) did not change; the
mutants it kills are named in a comment.
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from vitseg.errors import DimensionError, GridMismatchError, ParamsError
from vitseg.temporal import ensemble, mosaic

NAN = np.nan
UTM = "EPSG:32630"


def probs(values: np.ndarray | list) -> xr.DataArray:
    """A float64 ``(time, class, y, x)`` stack."""
    return xr.DataArray(np.asarray(values, "float64"), dims=("time", "class", "y", "x"))


def codes(x: list[float], v: list[list[int]], y: tuple[float, float] = (1.5, 0.5)) -> xr.DataArray:
    """A uint8 ``(y, x)`` class map in UTM with the given pixel-centre coordinates."""
    arr = np.array(v, "uint8")
    return xr.DataArray(arr, dims=("y", "x"), coords={"y": list(y), "x": x}).rio.write_crs(UTM)


# ---------------------------------------------------------------- probability range
ABOVE = float(np.nextafter(1 + 1e-3, 2.0))  # first float past the 1e-3 slack above 1
BELOW = float(np.nextafter(-1e-3, -1.0))  # first float past the 1e-3 slack below 0


def two_dates(v: float) -> xr.DataArray:
    """One pixel, 2 classes: date 0 says (v, 0.5), date 1 (0.5, 0.5), so the mean of class 0 is
    (v + 0.5) / 2, inside [0, 1] for every v tried here (only the input check can refuse)."""
    return probs([[[[v]], [[0.5]]], [[[0.5]], [[0.5]]]])


@pytest.mark.parametrize(
    ("v", "mean", "cls"),
    [(0.0, 0.25, 1), (1.0, 0.75, 0), (-1e-3, 0.2495, 1), (1 + 1e-3, 0.7505, 0)],
    ids=["0", "1", "-tol", "1+tol"],
)
def test_probabilities_at_the_ends_of_the_slack_are_accepted(
    v: float, mean: float, cls: int
) -> None:
    # #100 (`min < +tol` refused a 0 probability), #65 (`min <= -tol`), #66 (`max >= 1 + tol`):
    # the range [-1e-3, 1 + 1e-3] is closed at both ends
    out = ensemble(two_dates(v))
    np.testing.assert_allclose(out["probs"].values.ravel(), [mean, 0.5], atol=1e-7)
    assert out["class_map"].values.ravel().tolist() == [cls]
    assert out["valid_count"].values.ravel().tolist() == [2]


@pytest.mark.parametrize(
    ("v", "shown"),
    [(ABOVE, "from 0.5 to 1"), (BELOW, "from -0.001 to 0.5"), (1.5, "from 0.5 to 1.5"),
     (-0.5, "from -0.5 to 0.5"), (1.01, "from 0.5 to 1.01"), (-0.01, "from -0.01 to 0.5")],
    ids=["next_above", "next_below", "1.5", "-0.5", "1.01", "-0.01"],
)  # fmt: skip
def test_probabilities_just_past_the_slack_are_refused(v: float, shown: str) -> None:
    # #0 (`_PROB_TOL = 1.001` let 1.01 and -0.01 through), #122 (`max > 2 + tol` let 1.5
    # through), #34 (`or` -> `and`: only a block out of range at both ends was refused, so a
    # lone negative value passed); the means, (v + 0.5) / 2, are all in [0, 1]
    with pytest.raises(DimensionError, match=rf"NaN = no data\); got values {shown}\. Logits"):
        ensemble(two_dates(v))


# ---------------------------------------------------------------- class count and nodata
def test_a_single_class_is_a_valid_class_count() -> None:
    # #35 (`1 < n`) and #67 (`2 <= n`): one class is allowed; its map is 0 where observed
    p = probs([[[[0.2, NAN]]], [[[0.6, NAN]]]])  # 2 dates x 1 class x 1 x 2 pixels
    out = ensemble(p)
    np.testing.assert_allclose(out["probs"].values, [[[0.4, NAN]]], atol=1e-6)
    assert out["class_map"].values.tolist() == [[0, 255]]
    assert out["valid_count"].values.tolist() == [[2, 0]]
    np.testing.assert_allclose(out["confidence"].values, [[0.4, NAN]], atol=1e-6)


def test_255_classes_are_allowed_and_256_refused() -> None:
    # #36 (`n < 255` refused 255 classes) and #68 (`n <= 256` let 256 through, to fail later
    # with a ParamsError about nodata): codes 0..254 plus no-data 255 fill a uint8
    p = np.zeros((1, 255, 1, 2))
    p[0, 254, 0, 0] = 1.0  # pixel 0: the last class
    p[0, 7, 0, 1] = 0.75  # pixel 1: class 7
    p[0, 3, 0, 1] = 0.25
    out = ensemble(probs(p))
    assert out["class_map"].values.tolist() == [[254, 7]]
    assert out["confidence"].values.tolist() == [[1.0, 0.75]]
    with pytest.raises(DimensionError, match="probs has 256 classes along 'class'"):
        ensemble(probs(np.zeros((1, 256, 1, 1))))


def test_nodata_just_above_the_class_codes_is_allowed() -> None:
    # #33 (`nodata <= n_classes`): with 2 classes (codes 0, 1) nodata=2 is free, nodata=1 not
    p = probs([[[[0.3, NAN]], [[0.7, NAN]]]])
    assert ensemble(p, nodata=2)["class_map"].values.tolist() == [[1, 2]]
    with pytest.raises(ParamsError, match=r"nodata=1 is also the code of class 1 \(codes 0..1\)"):
        ensemble(p, nodata=1)


def test_lazy_ensemble_of_a_never_observed_pixel_computes_without_warnings() -> None:
    # #123 (`count.where(count >= 0)`): dividing by a count of 0 gives the same NaN, but dask
    # then computes 0 / 0 and numpy warns "invalid value encountered in divide"
    p = probs([[[[0.9, NAN]], [[0.1, NAN]]], [[[0.5, NAN]], [[0.5, NAN]]]])
    p = p.copy(data=da.from_array(p.values, chunks=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ensemble(p).compute()
    np.testing.assert_allclose(out["probs"].values, [[[0.7, NAN]], [[0.3, NAN]]], atol=1e-6)
    assert out["class_map"].values.tolist() == [[0, 255]]
    assert out["valid_count"].values.tolist() == [[2, 0]]


# ---------------------------------------------------------------- mosaic inputs and grids
def test_mosaic_refuses_a_generator_of_maps() -> None:
    # #19 (`or` -> `and`): only a DataArray was refused; a generator reached len() (TypeError)
    a = codes([0.0, 1.0], [[0, 1], [1, 0]])
    with pytest.raises(DimensionError, match=r"list of DataArrays; got a generator"):
        mosaic(m for m in [a])  # type: ignore[arg-type]
    assert mosaic((a,)).values.tolist() == [[0, 1], [1, 0]]  # a tuple is a sequence


def test_a_shift_of_exactly_a_millionth_of_a_pixel_is_aligned() -> None:
    # #84 (`> 1e-6` -> `>= 1e-6`): on 1 m pixels from x = 0 the offset of map 1 is exactly
    # 1e-6 pixel, which is still aligned; the next float past it is refused
    a = codes([0.0, 1.0], [[0, 1], [1, 0]])
    b = codes([1e-6, 1.0 + 1e-6], [[2, 0], [0, 2]])
    assert mosaic([a, b]).values.tolist() == [[2, 1], [1, 2]]
    past = float(np.nextafter(1e-6, 1.0))
    with pytest.raises(GridMismatchError, match=r"map 1's x grid is shifted by 0\.000 pixel"):
        mosaic([a, codes([past, 1.0 + past], [[2, 0], [0, 2]])])


@pytest.mark.parametrize("x2", [25.0, 20.001], ids=["step_10_then_15", "off_by_1e-4"])
def test_uneven_x_spacing_is_refused(x2: float) -> None:
    # #148 (`rtol=1.000001`: steps within 100 % of the first counted as even); the tolerance
    # is 1e-6 relative, so a second step 1e-4 longer than the first is refused
    m = codes([0.0, 10.0, x2], [[0, 1, 2], [2, 1, 0]])
    with pytest.raises(GridMismatchError, match=r"x coordinates are not a regular grid"):
        mosaic([m])
    ok = codes([0.0, 10.0, 20.000001], [[0, 1, 2], [2, 1, 0]])  # 1e-7 relative: even
    assert mosaic([ok]).values.tolist() == [[0, 1, 2], [2, 1, 0]]
