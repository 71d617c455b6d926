from __future__ import annotations

import math

import pytest
import torch

from recassets.models import SampledSoftmaxLoss


def test_logq_softmax_matches_a_hand_computation_on_3x3():
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    item = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    q = torch.tensor([0.5, 0.25, 0.25])
    # s[i, j] = <u_i, v_j> / 0.5 - log q_j, so exp(s[i, j]) = exp(2 <u_i, v_j>) / q_j:
    #   row 0: dots (1, 0, .6) -> (2e^2, 4, 4e^1.2), positive column 0
    #   row 1: dots (0, 1, .8) -> (2, 4e^2, 4e^1.6), positive column 1
    #   row 2: dots (1, 0, .6) -> (2e^2, 4, 4e^1.2), positive column 2
    rows = [
        ([2 * math.e**2, 4.0, 4 * math.exp(1.2)], 0),
        ([2.0, 4 * math.e**2, 4 * math.exp(1.6)], 1),
        ([2 * math.e**2, 4.0, 4 * math.exp(1.2)], 2),
    ]
    expected = sum(-math.log(e[t] / sum(e)) for e, t in rows) / 3
    assert expected == pytest.approx(0.7361387008, abs=1e-9)

    loss = SampledSoftmaxLoss(temperature=0.5)(user, item, torch.log(q))
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    # without the correction the popular item 0 is not favoured: a different value
    uncorrected = SampledSoftmaxLoss(temperature=0.5)(user, item)
    assert uncorrected.item() == pytest.approx(0.7705562321, rel=1e-6)


def test_accidental_hits_are_masked_out_of_the_negatives():
    user = torch.eye(3)
    item = torch.eye(3)
    loss_fn = SampledSoftmaxLoss(temperature=1.0)
    same = torch.tensor([7, 7, 9])  # rows 0 and 1 hold the same item
    logits = loss_fn.logits(user, item, item_ids=same)
    assert logits[0, 1] < -1e30 and logits[1, 0] < -1e30
    assert logits[0, 0] == 1.0 and logits[2, 0] == 0.0
    # row 0 only competes with column 2 now: -log(e / (e + 1))
    per_row = torch.nn.functional.cross_entropy(logits, torch.arange(3), reduction="none")
    assert per_row[0].item() == pytest.approx(-math.log(math.e / (math.e + 1)), rel=1e-6)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError):
        SampledSoftmaxLoss(temperature=0.0)
