import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
)

from vitseg.errors import DimensionError, LabelError
from vitseg.metrics import ConfusionMatrix, confusion, scores


def _random(classes, seed, shape=(37, 41)):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, shape)
    p = np.where(rng.random(shape) < 0.6, t, rng.integers(0, classes, shape))
    t[rng.random(shape) < 0.1] = 255
    p[rng.random(shape) < 0.05] = 255
    return t.astype(np.uint8), p.astype(np.uint8)


@pytest.mark.parametrize("backing", ["numpy", "torch", "dask", "xarray-dask"])
@pytest.mark.parametrize(("classes", "seed"), [(2, 0), (3, 1), (5, 2)])
def test_against_sklearn(backing, classes, seed):
    t, p = _random(classes, seed)
    keep = (t != 255) & (p != 255)
    labels = list(range(classes))
    ref = confusion_matrix(t[keep], p[keep], labels=labels)
    if backing == "numpy":
        cm = confusion(t, p, classes=classes)
    elif backing == "torch":
        cm = confusion(torch.from_numpy(t), torch.from_numpy(p), classes=classes)
    elif backing == "dask":
        cm = confusion(
            da.from_array(t, chunks=10), da.from_array(p, chunks=(16, 9)), classes=classes
        )
        assert isinstance(cm, da.Array)
        cm = cm.compute()
    else:
        dims = ("y", "x")
        cm = confusion(
            xr.DataArray(da.from_array(t, chunks=13), dims=dims),
            xr.DataArray(da.from_array(p, chunks=13), dims=dims),
            classes=classes,
        ).compute()
    np.testing.assert_array_equal(cm, ref)
    s = scores(cm)
    yt, yp = t[keep], p[keep]
    kw = {"labels": labels, "average": None, "zero_division": np.nan}
    np.testing.assert_allclose(s["precision"], precision_score(yt, yp, **kw))
    np.testing.assert_allclose(s["recall"], recall_score(yt, yp, **kw))
    np.testing.assert_allclose(s["accuracy"], recall_score(yt, yp, **kw))
    np.testing.assert_allclose(s["f1"], f1_score(yt, yp, **kw))
    np.testing.assert_allclose(s["iou"], jaccard_score(yt, yp, labels=labels, average=None))
    assert s["overall_accuracy"] == pytest.approx(accuracy_score(yt, yp))
    assert s["mean_iou"] == pytest.approx(jaccard_score(yt, yp, labels=labels, average="macro"))
    assert s["mean_accuracy"] == pytest.approx(recall_score(yt, yp, labels=labels, average="macro"))


def test_gallwey_equations_hand_checked():
    # rows = reference (mines, built, vegetation), columns = prediction
    cm = np.array([[8, 1, 1], [2, 6, 2], [0, 0, 20]])
    s = scores(cm)
    np.testing.assert_allclose(s["accuracy"], [0.8, 0.6, 1.0])  # eq. 4
    assert s["mean_accuracy"] == pytest.approx(0.8)  # eq. 5
    np.testing.assert_allclose(s["iou"], [8 / 12, 6 / 11, 20 / 23])  # eq. 6: TP/(TP+FP+FN)
    assert s["overall_accuracy"] == pytest.approx(34 / 40)


def test_absent_class_is_nan_and_skipped_in_means():
    s = scores(np.array([[5, 0], [0, 0]]))
    assert np.isnan(s["iou"][1]) and s["mean_iou"] == 1.0


def test_streaming_accumulator_equals_one_shot():
    t, p = _random(3, 7, shape=(4, 16, 16))
    acc = ConfusionMatrix(classes=3)
    for i in range(4):
        acc.update(torch.from_numpy(t[i]), torch.from_numpy(p[i]))
    np.testing.assert_array_equal(acc.matrix, confusion(t, p, classes=3))
    assert acc.scores()["mean_iou"] == pytest.approx(scores(acc.matrix)["mean_iou"])


def test_errors():
    with pytest.raises(DimensionError, match="same shape"):
        confusion(np.zeros(3), np.zeros(4), classes=2)
    with pytest.raises(LabelError, match=r"class codes must lie in \[0, 2\)"):
        confusion(np.array([0, 2]), np.array([0, 1]), classes=2)
    with pytest.raises(LabelError, match="class codes"):
        confusion(torch.tensor([0, 1]), torch.tensor([0, 7]), classes=2)
    with pytest.raises(DimensionError, match="square"):
        scores(np.zeros((2, 3)))


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


def test_mixed_numpy_reference_and_torch_prediction():
    t = np.array([0, 1, 1, 255, 2])
    p = torch.tensor([0, 1, 0, 1, 2])
    np.testing.assert_array_equal(confusion(t, p, classes=3), [[1, 0, 0], [1, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize("backing", ["numpy", "torch"])
def test_everything_ignored_gives_zeros_and_nan_scores(backing):
    t, p = np.array([255, 255]), np.array([0, 255])
    if backing == "torch":
        t, p = torch.from_numpy(t), torch.from_numpy(p)
    cm = confusion(t, p, classes=2)
    np.testing.assert_array_equal(cm, np.zeros((2, 2)))
    s = scores(cm)
    assert np.isnan(s["overall_accuracy"]) and np.isnan(s["mean_iou"])
    assert np.isnan(s["mean_accuracy"]) and np.isnan(s["mean_f1"])


def test_precision_f1_support_hand_checked():
    cm = np.array([[8, 1, 1], [2, 6, 2], [0, 0, 20]])
    s = scores(cm)
    np.testing.assert_allclose(s["precision"], [0.8, 6 / 7, 20 / 23])
    np.testing.assert_allclose(s["f1"], [16 / 20, 12 / 17, 40 / 43])
    assert s["mean_f1"] == pytest.approx((16 / 20 + 12 / 17 + 40 / 43) / 3)
    np.testing.assert_array_equal(s["support"], [10, 10, 20])


@pytest.mark.parametrize("blocks", [1, 2, 3, 5])
def test_dask_odd_and_even_block_counts(blocks):
    t, p = _random(3, 11, shape=(blocks * 4, 6))
    cm = confusion(da.from_array(t, chunks=(4, 6)), da.from_array(p, chunks=(4, 6)), classes=3)
    np.testing.assert_array_equal(cm.compute(), confusion(t, p, classes=3))


@pytest.mark.parametrize(
    ("t", "p"),
    [([0, -1], [0, 1]), ([0, 1], [-1, 1]), ([0, 1], [0, 2])],
    ids=["neg-ref", "neg-pred", "big-pred"],
)
@pytest.mark.parametrize("backing", ["numpy", "torch"])
def test_out_of_range_codes(t, p, backing):
    arr = torch.tensor if backing == "torch" else np.array
    with pytest.raises(LabelError, match="class codes"):
        confusion(arr(t), arr(p), classes=2)


def test_single_class_and_bad_classes():
    np.testing.assert_array_equal(confusion(np.zeros(3), np.zeros(3), classes=1), [[3]])
    with pytest.raises(DimensionError, match="classes must be >= 1; got 0"):
        confusion(np.zeros(3), np.zeros(3), classes=0)
    with pytest.raises(DimensionError, match="square"):
        scores(np.zeros(4))


@pytest.mark.parametrize("dask_side", ["reference", "prediction"])
def test_one_dask_input_gives_a_lazy_result(dask_side):
    t, p = _random(3, 5, shape=(8, 8))
    a, b = (da.from_array(t, chunks=4), p) if dask_side == "reference" else (t, da.from_array(p))
    cm = confusion(a, b, classes=3)
    assert isinstance(cm, da.Array)
    np.testing.assert_array_equal(cm.compute(), confusion(t, p, classes=3))


def test_a_single_pixel_has_an_overall_accuracy():
    s = scores(np.array([[1, 0], [0, 0]]))
    assert s["overall_accuracy"] == 1.0 and s["mean_iou"] == 1.0
