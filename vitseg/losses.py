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

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vitseg.constants import IGNORE_INDEX
from vitseg.errors import DimensionError, ParamsError

__all__ = ["LOSSES", "SegmentationLoss", "create_loss"]

#: Gallwey et al.'s class weights for (mines, built, vegetation).
GALLWEY_WEIGHTS = (1.0, 1.0, 0.5)


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
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
        self.name = name
        self.ignore_index = int(ignore_index)
        self.alpha, self.beta, self.gamma, self.smooth = (
            float(alpha), float(beta), float(gamma), float(smooth),
        )  # fmt: skip
        self.weight: torch.Tensor | None
        self.register_buffer(
            "weight", None if weight is None else torch.tensor(list(weight), dtype=torch.float32)
        )

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
        valid = target != self.ignore_index
        if not bool(valid.any()):
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
        For an unknown name or option, or negative Tversky weights.

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
    if name == "ce" and classes == 3 and kw.get("weight") is None:
        kw["weight"] = GALLWEY_WEIGHTS
    if float(kw.get("alpha", 0.3)) < 0 or float(kw.get("beta", 0.7)) < 0:
        raise ParamsError(
            f"Tversky alpha and beta must be >= 0; got {kw.get('alpha')}, {kw.get('beta')}"
        )
    return SegmentationLoss(name, **kw)
