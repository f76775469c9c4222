"""Segmentation losses that ignore no-data pixels.

Every loss takes logits ``(N, K, H, W)`` and integer targets ``(N, H, W)`` whose
value :data:`~vitseg.constants.IGNORE_INDEX` (255) marks pixels that contribute neither
to the loss nor to its gradient. ``K >= 2`` uses a softmax over classes (binary
mine / not-mine is ``K = 2``, as built by :func:`vitseg.models.create_model`); ``K = 1``
is also accepted and means a single sigmoid "mine" logit. Losses are computed in
float32 even under bf16 autocast.

=========== =====================================================================
name        loss
=========== =====================================================================
``ce``      class-weighted cross-entropy; for 3 classes the default weights are
            (1, 1, 0.5): Gallwey et al. §2.4 halve the weight of the majority
            vegetation class
``dice``    soft Dice, 1 - mean over classes of 2|P∩T| / (|P| + |T|)
``tversky`` 1 - mean over classes of TP / (TP + alpha FP + beta FN) (Salehi et al.
            2017; used by MineSegSAT, which VitSegh24 follows); alpha = beta = 0.5
            is Dice; beta > alpha weighs missed mines more than false alarms
``focal``   focal loss, mean of -(1 - p_t)^gamma log p_t (Lin et al. 2017)
=========== =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import DimensionError, LabelError, ParamsError

__all__ = ["LOSSES", "SegmentationLoss", "create_loss"]

#: Gallwey et al.'s class weights for (mines, built, vegetation).
GALLWEY_WEIGHTS = (1.0, 1.0, 0.5)


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise DimensionError(
            f"logits and targets must be torch tensors; got {type(logits).__name__} and "
            f"{type(target).__name__}. Convert with torch.as_tensor(...)"
        )
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[0] != target.shape[0]:
        raise DimensionError(
            "expected logits (N, K, H, W) and integer targets (N, H, W); got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[-2:] != target.shape[-2:]:
        raise DimensionError(
            f"logits {tuple(logits.shape)} and targets {tuple(target.shape)} differ in H, W"
        )


def _probs_onehot(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return class probabilities, one-hot targets (both N, K, H, W) and the valid mask."""
    logits = logits.float()
    if logits.shape[1] == 1:
        p1 = torch.sigmoid(logits)
        probs = torch.cat([1 - p1, p1], dim=1)
    else:
        probs = torch.softmax(logits, dim=1)
    k = probs.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    onehot = F.one_hot(safe, k).permute(0, 3, 1, 2).to(probs.dtype)
    mask = valid.unsqueeze(1).to(probs.dtype)
    return probs * mask, onehot * mask, valid


def _number(name: str, value: Any) -> float:
    """Return ``value`` as a finite float >= 0 (NaN makes every loss NaN, < 0 inverts it)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ParamsError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def _weights(weight: Any) -> torch.Tensor:
    ok = isinstance(weight, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(weight, str)
    values = [v.item() if hasattr(v, "item") else v for v in weight] if ok else []
    good = bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values
    )
    if not good or not any(v > 0 for v in values):
        raise ParamsError(
            f"weight must be one finite number >= 0 per class, not all 0, e.g. [1, 1, 0.5]; "
            f"got {weight!r} (a NaN, negative or all-zero weight gives a NaN loss)"
        )
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


class SegmentationLoss(nn.Module):
    """A loss over logits ``(N, K, H, W)`` and targets ``(N, H, W)`` that ignores no-data.

    Parameters
    ----------
    name
        One of :data:`LOSSES`.
    ignore_index
        Target value to ignore (default 255).
    weight
        Per-class weights (``ce`` and ``focal``).
    alpha, beta
        Tversky weights of false positives and false negatives.
    gamma
        Focal exponent.
    smooth
        Additive smoothing of Dice / Tversky ratios.
    """

    def __init__(
        self,
        name: str,
        *,
        ignore_index: int = IGNORE_INDEX,
        weight: Sequence[float] | None = None,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 2.0,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        if name not in _LOSS_FUNCS:
            raise ParamsError(f"unknown loss {name!r}; choose one of {list(_LOSS_FUNCS)}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ParamsError(f"ignore_index must be an integer code (255); got {ignore_index!r}")
        self.name = name
        self.ignore_index = int(ignore_index)
        self.alpha, self.beta, self.gamma, self.smooth = (
            _number("alpha", alpha), _number("beta", beta), _number("gamma", gamma),
            _number("smooth", smooth),
        )  # fmt: skip
        self.weight: torch.Tensor | None
        self.register_buffer("weight", None if weight is None else _weights(weight))

    def extra_repr(self) -> str:  # noqa: D102
        return f"name={self.name!r}, ignore_index={self.ignore_index}"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the scalar loss (0 with a gradient path when every pixel is ignored)."""
        _check(logits, target)
        k = max(logits.shape[1], 2)
        if self.weight is not None and self.weight.numel() != k:
            raise DimensionError(
                f"loss {self.name!r} has {self.weight.numel()} class weights but the logits "
                f"have {k} classes; pass weight= with one value per class"
            )
        if target.is_floating_point() or target.is_complex():
            raise DimensionError(
                f"targets must be integer class codes (torch.long or uint8); got {target.dtype}. "
                "Never round probabilities into codes; cast whole codes with target.long()"
            )
        valid = target != self.ignore_index
        bad = valid & ((target < 0) | (target >= k))
        any_valid, any_bad = torch.stack([valid.any(), bad.any()]).tolist()  # one sync
        if any_bad:
            found = torch.unique(target[bad])[:5].tolist()
            raise LabelError(
                f"targets hold class codes {found} outside 0..{k - 1} (logits have "
                f"{logits.shape[1]} channel(s)) and ignore_index={self.ignore_index}; check "
                "the masks' codes and the model's classes"
            )
        if not any_valid:
            return logits.float().sum() * 0.0
        fn = _LOSS_FUNCS[self.name]
        return fn(self, logits, target)

    # The individual losses -------------------------------------------------------------

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] == 1:
            valid = target != self.ignore_index
            t = valid & (target == 1)
            per_px = F.binary_cross_entropy_with_logits(logits[:, 0], t.float(), reduction="none")
            if self.weight is not None:
                w = torch.where(t, self.weight[1], self.weight[0])
                return (per_px * w)[valid].sum() / w[valid].sum()
            return per_px[valid].mean()
        return F.cross_entropy(
            logits, target.long(), weight=self.weight, ignore_index=self.ignore_index
        )

    def _tversky_terms(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        probs, onehot, _ = _probs_onehot(logits, target, self.ignore_index)
        dims = (0, 2, 3)
        tp = (probs * onehot).sum(dims)
        fp = (probs * (1 - onehot)).sum(dims)
        fn = ((1 - probs) * onehot).sum(dims)
        return tp, fp, fn

    def _dice(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = self._tversky_terms(logits, target)
        dice = (2 * tp + self.smooth) / (2 * tp + fp + fn + self.smooth)
        return 1 - dice.mean()

    def _tversky(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, fp, fn = self._tversky_terms(logits, target)
        ti = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return 1 - ti.mean()

    def _focal(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] == 1:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        valid = target != self.ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target)).long()
        logp = torch.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weight is not None:
            w = self.weight[safe]
            return (loss * w)[valid].sum() / w[valid].sum()
        return loss[valid].mean()


_LOSS_FUNCS: dict[str, Callable[[SegmentationLoss, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": SegmentationLoss._ce,
    "dice": SegmentationLoss._dice,
    "tversky": SegmentationLoss._tversky,
    "focal": SegmentationLoss._focal,
}
#: Names accepted by :func:`create_loss`.
LOSSES: tuple[str, ...] = tuple(_LOSS_FUNCS)


def create_loss(name: str, *, classes: int | None = None, **kw: Any) -> SegmentationLoss:
    """Create a loss by name.

    Parameters
    ----------
    name
        ``"ce"``, ``"dice"``, ``"tversky"`` or ``"focal"``.
    classes
        Number of classes. With ``name="ce"``, ``classes=3`` and no ``weight``, the
        weights default to Gallwey et al.'s (1, 1, 0.5) (vegetation halved); otherwise
        classes are unweighted unless ``weight`` is given.
    **kw
        ``ignore_index`` (255), ``weight``, ``alpha``/``beta`` (Tversky, default 0.3/0.7),
        ``gamma`` (focal, 2), ``smooth`` (Dice/Tversky, 1).

    Returns
    -------
    SegmentationLoss
        Call it as ``loss(logits, target)``.

    Raises
    ------
    ParamsError
        For an unknown name or option, negative Tversky weights, or ``alpha``, ``beta``,
        ``gamma``, ``smooth`` or ``weight`` that are NaN, infinite, negative or not
        numbers (each would give a NaN or inverted loss).

    Notes
    -----
    Calling the loss raises :class:`~vitseg.errors.DimensionError` for float targets
    or wrong shapes, and :class:`~vitseg.errors.LabelError` for target codes outside
    ``0..K-1`` other than ``ignore_index`` (checked before torch indexes with them,
    which on CUDA would end the process with a device-side assert).

    Examples
    --------
    >>> import torch
    >>> loss = create_loss("ce", classes=3)
    >>> loss.weight.tolist()
    [1.0, 1.0, 0.5]
    >>> target = torch.tensor([[[0, 255]]])
    >>> logits = torch.zeros(1, 3, 1, 2)
    >>> round(float(loss(logits, target)), 4)  # ln 3: the ignored pixel does not count
    1.0986
    """
    if name not in _LOSS_FUNCS:
        raise ParamsError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
    allowed = {"ignore_index", "weight", "alpha", "beta", "gamma", "smooth"}
    unknown = set(kw) - allowed
    if unknown:
        raise ParamsError(
            f"unknown option(s) {sorted(unknown)} for loss {name!r}; allowed: {sorted(allowed)}"
        )
    if classes is not None and (
        isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1
    ):
        raise ParamsError(f"classes must be an integer >= 1 or None; got {classes!r}")
    if name == "ce" and classes == 3 and kw.get("weight") is None:
        kw["weight"] = GALLWEY_WEIGHTS
    alpha, beta = kw.get("alpha", 0.3), kw.get("beta", 0.7)
    if all(isinstance(v, (int, float)) for v in (alpha, beta)) and min(alpha, beta) < 0:
        raise ParamsError(f"Tversky alpha and beta must be >= 0; got {alpha}, {beta}")
    return SegmentationLoss(name, **kw)
