"""Tests for the survivors of the second mutation run of vitseg/metrics.py (issue 20, issue 22)."""

import dask.array as da
import numpy as np
import pytest
import torch

from vitseg import metrics
from vitseg.errors import DimensionError, LabelError
from vitseg.metrics import ConfusionMatrix, confusion, scores


def test_torch_codes_are_counted_without_a_numpy_round_trip(monkeypatch):
    # "counted on their device": in-range integer tensors (code 0 included) never go to numpy
    def refuse(*args, **kwargs):
        raise AssertionError("torch tensors were copied to numpy")

    monkeypatch.setattr(metrics, "_np_confusion", refuse)
    t = torch.tensor([0, 1, 1, 255, 2, 0])
    p = torch.tensor([0, 1, 0, 1, 2, 2])
    cm = confusion(t, p, classes=3)
    assert isinstance(cm, np.ndarray) and cm.dtype == np.int64
    assert cm.tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("float_side", ["reference", "prediction"])
def test_torch_one_float_input_is_checked_by_value(float_side):
    def pair(floats, ints):
        f, i = torch.tensor(floats), torch.tensor(ints)
        return (f, i) if float_side == "reference" else (i, f)

    with pytest.raises(LabelError, match="whole numbers"):  # 0.5 is never truncated to 0
        confusion(*pair([0.0, 0.5], [0, 0]), classes=2)
    # NaN = no data in the float input, whichever side it is on
    assert confusion(*pair([0.0, float("nan")], [0, 1]), classes=2).tolist() == [[1, 0], [0, 0]]


@pytest.mark.parametrize("backing", ["numpy", "torch"])
def test_ignore_index_inside_the_class_range(backing):
    # ignore_index=0 (background left out): a pair is dropped when EITHER side is 0
    arr = torch.tensor if backing == "torch" else np.array
    t = arr([0, 1, 2, 2, 1, 0])
    p = arr([1, 0, 2, 1, 1, 0])
    cm = confusion(t, p, classes=3, ignore_index=0)  # kept: (2, 2), (2, 1), (1, 1)
    assert np.asarray(cm).tolist() == [[0, 0, 0], [0, 1, 0], [0, 1, 1]]


@pytest.mark.parametrize("classes", [True, False, np.True_, None, [2]], ids=repr)
def test_classes_that_are_not_numbers_are_refused(classes):
    with pytest.raises(DimensionError, match="classes must be an integer number of classes"):
        confusion(np.array([0]), np.array([0]), classes=classes)
    with pytest.raises(DimensionError, match="classes must be an integer number of classes"):
        ConfusionMatrix(classes=classes)


def test_dask_graph_is_deterministic():
    # pure tasks: the same inputs give the same graph keys (dask can share and cache them)
    t = np.array([[0, 1, 1, 2], [2, 2, 0, 255]])
    p = np.array([[0, 1, 0, 2], [2, 1, 0, 0]])

    def lazy():
        return confusion(da.from_array(t, chunks=2), da.from_array(p, chunks=2), classes=3)

    a, b = lazy(), lazy()
    assert a.name == b.name
    assert a.compute().tolist() == [[2, 0, 0], [1, 1, 0], [0, 1, 2]]


def test_fractional_counts_below_one():
    # area-weighted counts (e.g. km² or proportions) may be < 1: every ratio divides by them
    s = scores(np.array([[0.5, 0.25], [0.25, 2.0]]))
    # tp = [0.5, 2], fp = fn = [0.25, 0.25]
    np.testing.assert_allclose(s["recall"], [0.5 / 0.75, 2 / 2.25])
    np.testing.assert_allclose(s["precision"], [0.5 / 0.75, 2 / 2.25])
    np.testing.assert_allclose(s["iou"], [0.5 / 1.0, 2 / 2.5])
    np.testing.assert_allclose(s["f1"], [1.0 / 1.5, 4 / 4.5])
    assert s["mean_accuracy"] == pytest.approx((2 / 3 + 8 / 9) / 2)
    assert s["overall_accuracy"] == pytest.approx(2.5 / 3)
    s = scores(np.array([[0.2, 0.0], [0.0, 0.0]]))
    assert s["recall"][0] == pytest.approx(1.0) and s["iou"][0] == pytest.approx(1.0)
    assert np.isnan(s["recall"][1])


def test_torch_reference_with_numpy_prediction():
    # a torch reference with a numpy prediction (the reverse of test_metrics' mixed test)
    t = torch.tensor([0, 1, 1, 255, 2])
    p = np.array([0, 1, 0, 1, 2])
    assert confusion(t, p, classes=3).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    acc = ConfusionMatrix(classes=3)
    acc.update(t, p)
    acc.update(p, t)
    assert acc.matrix.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 2]]


def test_whole_codes_hint_defaults_to_argmax_and_can_be_given() -> None:
    # one check of whole class codes serves metrics, baselines and tiles; only the hint differs
    from vitseg.metrics import _whole_codes

    with pytest.raises(LabelError, match=r"y_true holds 1 values .*Take the argmax over classes"):
        _whole_codes(np.array([0.0, 0.5]), 255, "y_true")
    with pytest.raises(LabelError, match=r"rounded \(NaN = no data\)\. Rasterise them\.$"):
        _whole_codes(np.array([0.5]), 255, "labels", "Rasterise them.")
    assert _whole_codes(np.array([[0.0, np.nan]]), 255, "y").tolist() == [[0, 255]]
