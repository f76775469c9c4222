import math

import pytest
import torch

from vitseg.errors import DimensionError, ParamsError
from vitseg.losses import LOSSES, create_loss


def _logits(*values_per_pixel):
    """(1, K, 1, P) logits from per-pixel class-score lists."""
    t = torch.tensor(values_per_pixel, dtype=torch.float32).T  # (K, P)
    return t[None, :, None, :].clone()


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("classes", [2, 3])
def test_ignored_pixels_change_nothing(name, classes):
    torch.manual_seed(0)
    loss = create_loss(name, classes=classes)
    logits = torch.randn(2, classes, 4, 4, requires_grad=True)
    target = torch.randint(0, classes, (2, 4, 4))
    target[0, :2] = 255
    value = loss(logits, target)
    value.backward()
    value = value.detach()
    # no gradient flows into ignored pixels
    assert float(logits.grad[0, :, :2].abs().sum()) == 0.0
    # changing logits at ignored pixels leaves the loss unchanged
    other = logits.detach().clone()
    other[0, :, :2] = 100 * torch.randn(classes, 2, 4)
    assert float(loss(other, target)) == pytest.approx(value.item(), rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_all_ignored_gives_zero_with_grad(name):
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    value = create_loss(name)(logits, torch.full((1, 2, 2), 255))
    value.backward()
    assert value.item() == 0.0 and logits.grad is not None


def test_ce_hand_checked_with_gallwey_weights():
    # pixel A: class 0, logits (0,0,0) -> -ln(1/3); pixel B: class 2, logits (0, 0, ln 2) -> -ln(1/2)
    # pixel C: ignored.  Weighted mean = (1*ln3 + 0.5*ln2) / (1 + 0.5)
    loss = create_loss("ce", classes=3)
    logits = _logits([0, 0, 0], [0, 0, math.log(2)], [9, -9, 0])
    target = torch.tensor([[[0, 2, 255]]])
    expected = (math.log(3) + 0.5 * math.log(2)) / 1.5
    assert float(loss(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_ce_unweighted_binary_and_single_logit_agree():
    # a 2-logit softmax with logits (0, z) equals a sigmoid of z
    z = torch.tensor([[[[0.3, -1.2, 2.0]]]])
    target = torch.tensor([[[1, 0, 255]]])
    two = torch.cat([torch.zeros_like(z), z], dim=1)
    for name in LOSSES:
        a = float(create_loss(name)(two, target))
        b = float(create_loss(name)(z, target))
        assert a == pytest.approx(b, rel=1e-5), name


def test_dice_hand_checked():
    # two pixels, binary, hard-ish probabilities via large logits: perfect prediction -> 0
    logits = _logits([20, -20], [-20, 20], [0, 0])
    target = torch.tensor([[[0, 1, 255]]])
    assert float(create_loss("dice", smooth=0.0)(logits, target)) == pytest.approx(0.0, abs=1e-6)
    # uniform probabilities (0.5, 0.5): per class TP=.5, FP=.5, FN=.5 -> dice = 1/2
    logits = _logits([0, 0], [0, 0])
    target = torch.tensor([[[0, 1]]])
    assert float(create_loss("dice", smooth=0.0)(logits, target)) == pytest.approx(0.5)


def test_tversky_alpha_ne_beta_hand_checked():
    # pixels: p(mine) = 0.8 (true mine), 0.4 (true background), 0.3 (true mine), ignored one
    p = torch.tensor([0.8, 0.4, 0.3, 0.99])
    z = torch.log(p / (1 - p))
    logits = torch.stack([torch.zeros(4), z])[None, :, None, :]
    target = torch.tensor([[[1, 0, 1, 255]]])
    alpha, beta = 0.3, 0.7
    # mine class: TP = .8 + .3 = 1.1; FP = .4; FN = .2 + .7 = .9
    ti_mine = 1.1 / (1.1 + alpha * 0.4 + beta * 0.9)
    # background: probs (.2, .6, .7); TP = .6; FP = .2 + .7 = .9; FN = .4
    ti_bg = 0.6 / (0.6 + alpha * 0.9 + beta * 0.4)
    expected = 1 - (ti_mine + ti_bg) / 2
    loss = create_loss("tversky", alpha=alpha, beta=beta, smooth=0.0)
    assert float(loss(logits, target)) == pytest.approx(expected, rel=1e-5)
    # swapping alpha and beta changes the value; alpha = beta = .5 equals Dice
    swapped = create_loss("tversky", alpha=beta, beta=alpha, smooth=0.0)
    assert float(swapped(logits, target)) != pytest.approx(expected, rel=1e-3)
    half = create_loss("tversky", alpha=0.5, beta=0.5, smooth=0.0)
    dice = create_loss("dice", smooth=0.0)
    assert float(half(logits, target)) == pytest.approx(float(dice(logits, target)))


def test_focal_hand_checked():
    # p_t = 0.5 for both pixels: loss = (0.5)^2 * ln 2; gamma = 0 is cross-entropy
    logits = _logits([0, 0], [0, 0], [5, 1])
    target = torch.tensor([[[0, 1, 255]]])
    assert float(create_loss("focal")(logits, target)) == pytest.approx(0.25 * math.log(2))
    assert float(create_loss("focal", gamma=0.0)(logits, target)) == pytest.approx(math.log(2))


def test_errors():
    with pytest.raises(ParamsError, match="unknown loss 'lovasz'"):
        create_loss("lovasz")
    with pytest.raises(ParamsError, match=r"unknown option\(s\) \['gama'\]"):
        create_loss("focal", gama=2)
    with pytest.raises(ParamsError, match="alpha and beta must be >= 0"):
        create_loss("tversky", alpha=-1)
    with pytest.raises(DimensionError, match="3 class weights but the logits have 2"):
        create_loss("ce", weight=[1, 1, 0.5])(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(DimensionError, match="expected logits"):
        create_loss("ce")(torch.zeros(2, 2, 2), torch.zeros(2, 2))


# ---------------------------------------------- added from mutation testing (docs/mutation.md)


def _three_pixels():
    """p(mine) = 0.8 (mine), 0.4 (background), 0.3 (mine) and one ignored pixel."""
    p = torch.tensor([0.8, 0.4, 0.3, 0.99])
    z = torch.log(p / (1 - p))
    logits = torch.stack([torch.zeros(4), z])[None, :, None, :]
    return logits, torch.tensor([[[1, 0, 1, 255]]])


def test_default_smoothing_and_tversky_weights_hand_checked():
    # mine: TP 1.1, FP .4, FN .9; background: TP .6, FP .9, FN .4 (see the test above)
    logits, target = _three_pixels()
    dice = 1 - (3.2 / 4.5 + 2.2 / 3.5) / 2  # (2 TP + 1) / (2 TP + FP + FN + 1)
    assert float(create_loss("dice")(logits, target)) == pytest.approx(dice, rel=1e-5)
    # defaults alpha = 0.3, beta = 0.7, smooth = 1
    tversky = 1 - (2.1 / (1.1 + 0.12 + 0.63 + 1) + 1.6 / (0.6 + 0.27 + 0.28 + 1)) / 2
    loss = create_loss("tversky")
    assert (loss.alpha, loss.beta, loss.gamma, loss.smooth) == (0.3, 0.7, 2.0, 1.0)
    assert float(loss(logits, target)) == pytest.approx(tversky, rel=1e-5)


def test_single_logit_weighted_ce_hand_checked():
    # targets (mine, background, ignored), sigmoid(z) = (.5, .75): per-pixel BCE (ln 2, ln 4)
    z = torch.tensor([[[[0.0, math.log(3.0), 7.0]]]])
    target = torch.tensor([[[1, 0, 255]]])
    loss = create_loss("ce", weight=[1.0, 3.0])
    expected = (3 * math.log(2) + 1 * math.log(4)) / 4
    assert float(loss(z, target)) == pytest.approx(expected, rel=1e-6)


def test_zero_tversky_weights_are_allowed_and_repr():
    loss = create_loss("tversky", alpha=0, beta=0)
    assert (loss.alpha, loss.beta) == (0.0, 0.0)
    assert "name='tversky', ignore_index=255" in repr(create_loss("tversky"))


def test_height_width_mismatch():
    with pytest.raises(DimensionError, match="differ in H, W"):
        create_loss("dice")(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2))
