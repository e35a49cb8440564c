"""Each objective on tiny tensors, with exact values and gradients; target parsing and checking."""

from __future__ import annotations

import pytest
import torch
from zoo.dream import objectives as ob

from zoo.errors import UserError


def _grad(objective: ob.Objective, acts: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    leaves = {k: v.clone().requires_grad_(True) for k, v in acts.items()}
    value = objective(leaves)
    value.backward()
    return float(value.detach()), {k: v.grad for k, v in leaves.items()}


A = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 1, 2)  # 2 channels, 1x2 positions


def test_blob_l2_is_the_classic_objective():
    value, grads = _grad(ob.blob_l2("a"), {"a": A})
    assert value == 0.5 * (1 + 4 + 9 + 16) / 2
    assert torch.equal(grads["a"], A / 2)  # the gradient is the blob itself (per channel mean)
    assert ob.blob_l2("a").blobs == ("a",)


def test_channels_and_neuron():
    t = torch.arange(12.0).reshape(1, 3, 2, 2)
    value, grads = _grad(ob.channels("t", [1]), {"t": t})
    assert value == 4 + 5 + 6 + 7
    assert grads["t"][0, 1].eq(1).all() and grads["t"][0, [0, 2]].eq(0).all()
    value, _ = _grad(ob.channels("t", [0, 2]), {"t": t})
    assert value == ((0 + 1 + 2 + 3) + (8 + 9 + 10 + 11)) / 2
    value, grads = _grad(ob.neuron("t", 2), {"t": t})
    assert value == 11.0  # channel 2 at the centre (1, 1)
    assert grads["t"].sum() == 1 and grads["t"][0, 2, 1, 1] == 1
    value, _ = _grad(ob.neuron("t", 1, 0, 1), {"t": t})
    assert value == 5.0
    assert _grad(ob.class_output("t", 2), {"t": t})[0] == 8 + 9 + 10 + 11


def test_guide_matches_each_position_to_its_best_guide_feature():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)  # positions (1,0) and (0,1)
    guide = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]]).reshape(2, 1, 3)  # (2,0), (0,3), (1,1)
    value, grads = _grad(ob.guide("x", guide), {"x": x})
    assert value == (1 * 2 + 1 * 3) / 2
    assert grads["x"][0, :, 0].tolist() == [[1.0, 0.0], [0.0, 1.5]]


def test_objectives_compose_with_weights():
    acts = {"a": A, "b": torch.ones(1, 4, 2, 2)}
    combo = 2 * ob.blob_l2("a") - ob.channels("b", [0]) + 1.0
    value, grads = _grad(combo, acts)
    assert value == 2 * 7.5 - 4 + 1
    assert combo.blobs == ("a", "b")
    assert torch.equal(grads["a"], A) and grads["b"][0, 0].eq(-1).all()
    many = ob.blobs_l2({"a": 1.0, "b": 0.5})
    assert _grad(many, acts)[0] == 7.5 + 0.5 * 0.5 * 16 / 4
    assert _grad(ob.combine([ob.Target("a"), ob.Target("b", (1,))], [3.0]), acts)[0] == 3 * 7.5 + 4
    with pytest.raises(UserError, match="3 weights given for 2 layers"):
        ob.combine([ob.Target("a"), ob.Target("b")], [1.0, 2.0, 3.0])


def test_parse_target_shorthand():
    assert ob.parse_target("inception_4c/output") == ob.Target("inception_4c/output")
    assert ob.parse_target("conv2/3x3:7") == ob.Target("conv2/3x3", (7,))
    assert ob.parse_target("mixed:1,2,30") == ob.Target("mixed", (1, 2, 30))
    assert ob.parse_target("prob:Female") == ob.Target("prob", ("Female",))
    assert ob.parse_target("head:5@3,4") == ob.Target("head", (5,), (3, 4))
    assert str(ob.parse_target("head:5@3,4")) == "head:5@3,4"
    for bad in ("", "a:1,", "a:1,2@0,0", ":3"):
        with pytest.raises(UserError):
            ob.parse_target(bad)


def test_resolve_target_errors_name_the_fix():
    chans = {"conv1": 10, "conv2": 16, "prob": 2}
    with pytest.raises(UserError, match="no dreamable blob 'conv9'; dreamable blobs: conv1, conv2$"):
        ob.resolve_target(ob.Target("conv9"), chans, model="det1", listed=["conv1", "conv2"])
    with pytest.raises(UserError, match="'conv2' has 16 channels \\(0-15\\); channel 16 is out of range"):
        ob.resolve_target(ob.Target("conv2", (3, 16)), chans, model="det1")
    labels = {"prob": ["Male", "Female"]}
    assert ob.resolve_target(ob.Target("prob", ("Female",)), chans, labels).channels == (1,)
    with pytest.raises(UserError, match="no class 'Cat'"):
        ob.resolve_target(ob.Target("prob", ("Cat",)), chans, labels)
