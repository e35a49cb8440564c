"""The PyTorch module: named blobs, truncation, gradients to the input, Caffe's lr/decay multipliers."""

from __future__ import annotations

import torch
from zoo.convert.torch_module import CaffeModule

from tests.conftest import MODELS
from zoo import convert


def googlenet() -> CaffeModule:
    return CaffeModule(convert.random_weights(convert.load_net(MODELS / "bvlc_googlenet" / "deploy.prototxt"), 3))


def test_runs_only_what_the_requested_blob_needs():
    m = googlenet()
    steps = m.plan(("inception_4c/output",))
    names = [m.graph.layers[i].name for i, _ in steps]
    assert "inception_4c/output" in names and "inception_4d/1x1" not in names and "loss3/classifier" not in names
    assert len(names) < 0.7 * len(m.graph.layers)
    x = torch.zeros(1, 3, 300, 260, requires_grad=True)
    out = m(x, outputs=["inception_4c/output", "conv2/3x3"])
    assert set(out) == {"inception_4c/output", "conv2/3x3"}
    assert (out["conv2/3x3"] >= 0).all()  # after its in-place ReLU
    out["inception_4c/output"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_param_groups_follow_lr_mult_and_decay_mult():
    m = googlenet()
    groups = {g["name"]: g for g in m.param_groups(base_lr=0.01, weight_decay=2e-4)}
    w, b = groups["conv1/7x7_s2.weight"], groups["conv1/7x7_s2.bias"]
    assert (w["lr"], w["weight_decay"]) == (0.01, 2e-4)
    assert b["lr"] == 0.02 and b["weight_decay"] == 0
    assert m.layers["conv1/7x7_s2"].weight is w["params"][0]


def test_to_graph_carries_trained_weights():
    m = googlenet()
    with torch.no_grad():
        m.layers["loss3/classifier"].bias.add_(1.0)
    g = m.to_graph()
    before = m.graph.layer("loss3/classifier").blobs[1]
    assert abs(g.layer("loss3/classifier").blobs[1] - before - 1.0).max() < 1e-6
