"""Pixel accuracy metrics from a confusion matrix (Gallwey et al. eqs 4-6, VitSegh24 Table 1).

The confusion matrix has reference (true) classes in rows and predicted classes in
columns. Pixels whose reference **or** prediction equals ``ignore_index`` (255:
no-data, clouds, unlabelled) are left out. :func:`confusion` accepts numpy arrays,
torch tensors (counted on their device), dask arrays and xarray DataArrays (each dask
block is counted separately and the small matrices are summed, so memory stays bounded:
the result is then a lazy dask array). :class:`ConfusionMatrix` accumulates batch by
batch, as in a validation loop.

Scores per class ``c`` with ``TP``, ``FP`` and ``FN`` counts:

- accuracy (Gallwey eq. 4) = recall = TP / (TP + FN)
- precision = TP / (TP + FP)
- F1 = 2 TP / (2 TP + FP + FN)
- IoU (Gallwey eq. 6) = TP / (TP + FP + FN)

and the mean class accuracy (eq. 5), mean IoU and overall accuracy (trace / total).
A ratio with a zero denominator is NaN (the class is absent from reference and
prediction), and means skip NaNs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import DimensionError, LabelError, ParamsError, SampleError

__all__ = ["ConfusionMatrix", "confusion", "scores"]

IntMatrix = npt.NDArray[np.int64]


def _whole_codes(a: Any, ignore_index: int, name: str, hint: str = "") -> npt.NDArray[np.int64]:
    """Integer codes of ``a`` (same shape): NaN becomes ``ignore_index``.

    Fractions and inf are refused, never rounded. The one such check of vitseg (metrics,
    baselines and tiles call it).
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise DimensionError(f"{name} must hold integer class codes; got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        nan = np.isnan(arr)
        bad = ~nan & (~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.any():
            raise LabelError(
                f"{name} holds {int(bad.sum())} values that are not whole class codes, e.g. "
                f"{np.unique(arr[bad])[:3].tolist()}; class codes must be whole numbers, never "
                "rounded (NaN = no data). "
                + (hint or "Probabilities? Take the argmax over classes first.")
            )
        arr = np.where(nan, ignore_index, arr)
    return arr.astype(np.int64)


def _check_classes(classes: Any, ignore_index: Any = IGNORE_INDEX) -> int:
    ok = isinstance(classes, (int, np.integer, float, np.floating, str))
    try:
        k = int(classes) if ok and not isinstance(classes, bool) else None
    except (ValueError, OverflowError):
        k = None
    if k is not None and isinstance(classes, (float, np.floating)) and k != classes:
        k = None  # 2.5 classes: never truncated
    if k is None:
        raise DimensionError(f"classes must be an integer number of classes; got {classes!r}")
    if k < 1:
        raise DimensionError(f"classes must be >= 1; got {k}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise ParamsError(f"ignore_index must be an integer code (e.g. 255); got {ignore_index!r}")
    return k


def _np_confusion(y_true: Any, y_pred: Any, classes: int, ignore_index: int) -> IntMatrix:
    t = _whole_codes(y_true, ignore_index, "y_true").ravel()
    p = _whole_codes(y_pred, ignore_index, "y_pred").ravel()
    keep = (t != ignore_index) & (p != ignore_index)
    t, p = t[keep].astype(np.int64), p[keep].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= classes or p.min() < 0 or p.max() >= classes):
        raise LabelError(
            f"class codes must lie in [0, {classes}) or equal ignore_index={ignore_index}; "
            f"got reference values {np.unique(t)[:10].tolist()} and predicted values "
            f"{np.unique(p)[:10].tolist()}. Check classes= or map no-data to {ignore_index}."
        )
    return np.bincount(t * classes + p, minlength=classes * classes).reshape(classes, classes)


def _torch_confusion(y_true: Any, y_pred: Any, classes: int, ignore_index: int) -> IntMatrix:
    import torch

    if y_true.is_floating_point() or y_pred.is_floating_point():  # rare: check by value
        return _np_confusion(y_true.cpu().numpy(), y_pred.cpu().numpy(), classes, ignore_index)
    t = y_true.reshape(-1).long()
    p = y_pred.reshape(-1).long().to(t.device)
    keep = (t != ignore_index) & (p != ignore_index)
    t, p = t[keep], p[keep]
    if t.numel():
        lo = torch.minimum(t.min(), p.min())
        hi = torch.maximum(t.max(), p.max())
        if int(lo) < 0 or int(hi) >= classes:
            return _np_confusion(t.cpu().numpy(), p.cpu().numpy(), classes, ignore_index)
    counts = torch.bincount(t * classes + p, minlength=classes * classes)
    return counts.reshape(classes, classes).cpu().numpy().astype(np.int64)


def _tree_sum(parts: list[Any]) -> Any:
    while len(parts) > 1:
        parts = [
            parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def _dask_confusion(y_true: Any, y_pred: Any, classes: int, ignore_index: int) -> Any:
    import dask
    import dask.array as da

    t, p = da.asarray(y_true), da.asarray(y_pred)
    p = p.rechunk(t.chunks)
    count = dask.delayed(_np_confusion, pure=True)
    parts = [
        count(bt, bp, classes, ignore_index)
        for bt, bp in zip(t.to_delayed().ravel(), p.to_delayed().ravel(), strict=True)
    ]
    return da.from_delayed(_tree_sum(parts), shape=(classes, classes), dtype=np.int64)


def confusion(y_true: Any, y_pred: Any, *, classes: int, ignore_index: int = IGNORE_INDEX) -> Any:
    """Count reference-versus-predicted class pairs.

    Parameters
    ----------
    y_true, y_pred
        Integer class codes of the same shape: numpy arrays, torch tensors, dask arrays
        or xarray DataArrays (numpy- or dask-backed).
    classes
        Number of classes K; codes must lie in ``[0, K)`` or equal ``ignore_index``.
    ignore_index
        Code for pixels to leave out (in either input).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        ``(K, K)`` int64 counts, rows = reference, columns = prediction; a lazy dask
        array when either input is dask-backed (call ``.compute()``).

    Raises
    ------
    DimensionError
        When the shapes differ, ``classes`` is not an integer >= 1, or the codes are
        not numbers.
    LabelError
        For codes outside ``[0, K)`` other than ``ignore_index``, or float codes that
        are not whole (never truncated; NaN counts as ``ignore_index``).

    Examples
    --------
    >>> import numpy as np
    >>> confusion(np.array([0, 1, 1, 255]), np.array([0, 1, 0, 1]), classes=2)
    array([[1, 0],
           [1, 1]])
    """
    y_true = getattr(y_true, "data", y_true) if hasattr(y_true, "dims") else y_true
    y_pred = getattr(y_pred, "data", y_pred) if hasattr(y_pred, "dims") else y_pred
    y_true = y_true if hasattr(y_true, "shape") else np.asarray(y_true)
    y_pred = y_pred if hasattr(y_pred, "shape") else np.asarray(y_pred)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise DimensionError(
            f"y_true and y_pred must have the same shape; got {tuple(y_true.shape)} and "
            f"{tuple(y_pred.shape)}"
        )
    classes = _check_classes(classes, ignore_index)
    if _is_dask(y_true) or _is_dask(y_pred):
        return _dask_confusion(y_true, y_pred, classes, ignore_index)
    if _is_torch(y_true) and _is_torch(y_pred):
        return _torch_confusion(y_true, y_pred, classes, ignore_index)
    if _is_torch(y_true):  # one torch side only: count both in numpy
        y_true = y_true.cpu().numpy()
    if _is_torch(y_pred):
        y_pred = y_pred.cpu().numpy()
    return _np_confusion(y_true, y_pred, classes, ignore_index)


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _ratio(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nanmean(x: npt.NDArray[np.float64]) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def scores(confusion: Any) -> dict[str, Any]:
    """Per-class and mean scores from a confusion matrix.

    Parameters
    ----------
    confusion
        ``(K, K)`` counts, rows = reference, columns = prediction (numpy, dask or anything
        ``numpy.asarray`` accepts).

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``iou``, ``support`` (per class,
        float arrays of length K; ``accuracy`` is Gallwey eq. 4, equal to recall);
        ``mean_accuracy`` (eq. 5), ``mean_iou`` (eq. 6 averaged), ``mean_f1`` and
        ``overall_accuracy`` (floats).

    Raises
    ------
    DimensionError
        When ``confusion`` is not square or is empty.
    SampleError
        Counts that are NaN, infinite, negative or not numbers.

    Examples
    --------
    >>> import numpy as np
    >>> s = scores(np.array([[3, 1], [0, 4]]))
    >>> s["iou"].round(3).tolist(), s["overall_accuracy"]
    ([0.75, 0.8], 0.875)
    """
    raw = np.asarray(confusion)
    if raw.dtype.kind not in "biuf":
        raise SampleError(f"confusion must hold numeric counts; got dtype {raw.dtype}")
    cm = raw.astype(np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise DimensionError(
            f"confusion must be a square (K, K) matrix with K >= 1; got shape {cm.shape}"
        )
    bad = ~np.isfinite(cm) | (cm < 0)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad))
        raise SampleError(
            f"confusion counts must be finite and >= 0; got {cm[r, c]} at reference {r}, "
            f"prediction {c}. A NaN or negative count would skew every score; fill missing "
            "cells with 0"
        )
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    recall = _ratio(tp, tp + fn)
    iou = _ratio(tp, tp + fp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    total = cm.sum()
    return {
        "accuracy": recall,
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "f1": f1,
        "iou": iou,
        "support": cm.sum(axis=1),
        "mean_accuracy": _nanmean(recall),
        "mean_iou": _nanmean(iou),
        "mean_f1": _nanmean(f1),
        "overall_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
    }


@dataclass
class ConfusionMatrix:
    """Accumulate a confusion matrix batch by batch.

    Examples
    --------
    >>> import numpy as np
    >>> cm = ConfusionMatrix(classes=2)
    >>> cm.update(np.array([0, 1]), np.array([0, 0]))
    >>> cm.update(np.array([1]), np.array([1]))
    >>> cm.matrix.tolist(), cm.scores()["recall"].tolist()
    ([[1, 0], [1, 1]], [1.0, 0.5])
    """

    classes: int
    ignore_index: int = IGNORE_INDEX
    matrix: IntMatrix = field(init=False)

    def __post_init__(self) -> None:
        self.classes = _check_classes(self.classes, self.ignore_index)
        self.matrix = np.zeros((self.classes, self.classes), dtype=np.int64)

    def update(self, y_true: Any, y_pred: Any) -> None:
        """Add the counts of one batch (numpy arrays or torch tensors)."""
        cm = confusion(y_true, y_pred, classes=self.classes, ignore_index=self.ignore_index)
        self.matrix += np.asarray(cm)

    def scores(self) -> dict[str, Any]:
        """Return :func:`scores` of the counts so far."""
        return scores(self.matrix)
