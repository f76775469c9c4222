"""Tests for vitseg.losses added from mutation testing (docs/mutation.md, issue 20).

Each test pins a value worked out by hand (or an exact error boundary) that a surviving
mutant of vitseg/losses.py (after the issue 22 input-checking sweep) did not change; the
mutant it kills is named in a comment.
"""

import math

import numpy as np
import pytest
import torch

from vitseg.errors import DimensionError, LabelError, ParamsError
from vitseg.losses import create_loss


@pytest.mark.parametrize(
    ("logits", "target"),
    [
        (torch.zeros(1, 2, 1, 2), np.zeros((1, 1, 2), "int64")),
        (np.zeros((1, 2, 1, 2), "float32"), torch.zeros(1, 1, 2, dtype=torch.long)),
    ],
    ids=["numpy-target", "numpy-logits"],
)
def test_one_non_tensor_input_is_refused(logits, target):
    # mutant #7 (`or` -> `and`): only both inputs being non-tensors was refused, and a
    # single numpy array reached torch code further on (AttributeError, not DimensionError)
    with pytest.raises(DimensionError, match=r"must be torch tensors; got (Tensor|ndarray)"):
        create_loss("ce")(logits, target)


def test_one_class_is_a_valid_class_count():
    # mutants #103 (`classes <= 1`) and #137 (`classes < 2`): classes=1 (a single sigmoid
    # "mine" logit) is allowed, 0 is the first refused value
    loss = create_loss("ce", classes=1)
    assert loss.weight is None
    # z = 0 and target mine: BCE = ln 2; z = ln 3 and target background: -ln(1 - 3/4) = ln 4
    z = torch.tensor([[[[0.0, math.log(3.0)]]]])
    target = torch.tensor([[[1, 0]]])
    assert float(loss(z, target)) == pytest.approx((math.log(2) + math.log(4)) / 2, rel=1e-6)
    assert create_loss("dice", classes=np.int64(1)).name == "dice"
    with pytest.raises(ParamsError, match="classes must be an integer >= 1 or None; got 0"):
        create_loss("ce", classes=0)


def test_a_zero_class_weight_is_allowed_and_drops_its_pixels():
    # mutant #142 (each weight `v >= 0` -> `v > 0`): a weight of 0 is allowed (only all-zero
    # weights are refused). Pixel A: class 0, logits (0, ln 3) -> p0 = 1/4, loss ln 4;
    # pixel B: class 1, logits (0, 0) -> loss ln 2. Weights (0, 1): (0 ln 4 + 1 ln 2) / 1.
    loss = create_loss("ce", weight=[0, 1])
    assert loss.weight.tolist() == [0.0, 1.0]
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])[None, :, None, :]
    target = torch.tensor([[[0, 1]]])
    assert float(loss(logits, target)) == pytest.approx(math.log(2), rel=1e-6)
    unweighted = (math.log(4) + math.log(2)) / 2
    assert float(create_loss("ce")(logits, target)) == pytest.approx(unweighted, rel=1e-6)
    with pytest.raises(ParamsError, match="not all 0"):
        create_loss("ce", weight=[0, 0])


def test_out_of_range_codes_listed_up_to_five():
    # mutant #166 (`[:5]` -> `[:6]`): six distinct bad codes 2..7, the message lists the
    # five smallest; the ignored 255 is not among them
    logits = torch.zeros(1, 2, 1, 8)
    target = torch.tensor([[[0, 7, 6, 5, 4, 3, 2, 255]]])
    with pytest.raises(LabelError, match=r"class codes \[2, 3, 4, 5, 6\] outside 0\.\.1 "):
        create_loss("dice")(logits, target)
