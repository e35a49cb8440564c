"""Graph surgery for fine-tuning, Caffe's rates and fillers, the SGD update and the net input."""


import numpy as np
import pytest
import torch
from zoo.train.data import NetInput
from zoo.train.fillers import scratch_weights
from zoo.train.model import (
    CaffeSGD,
    ModelError,
    Source,
    aux_heads,
    build,
    find_classifier,
    load_source,
    param_groups,
    set_lr,
)

from tests.conftest import SHARED
from zoo import convert
from zoo.preprocess import Preprocess

DET3 = SHARED / "models" / "mtcnn"
AUX_NET = """
name: "aux"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop" type: "Dropout" bottom: "conv1" top: "conv1" dropout_param { dropout_ratio: 0.5 } }
layer { name: "loss1/classifier" type: "InnerProduct" bottom: "conv1" top: "loss1/classifier"
  inner_product_param { num_output: 10 } }
layer { name: "loss1/prob" type: "Softmax" bottom: "loss1/classifier" top: "loss1/prob" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture(scope="module")
def det3():
    return load_source(str(DET3 / "det3.prototxt"), init="pretrained", seed=0,
                       weights=str(DET3 / "det3.caffemodel"), like="mtcnn_det3")  # fmt: skip


@pytest.fixture()
def aux_source(tmp_path):
    p = tmp_path / "aux.prototxt"
    p.write_text(AUX_NET)
    return load_source(str(p), init="scratch", seed=1)


def test_classifier_is_found_through_softmax(det3):
    assert find_classifier(det3.graph, "prob1").name == "conv6-1"
    g = convert.load_net(SHARED / "models" / "bvlc_googlenet" / "deploy.prototxt")
    assert find_classifier(g, "prob").name == "loss3/classifier"
    with pytest.raises(ModelError, match="no InnerProduct"):
        find_classifier(det3.graph, "pool1")


def test_head_is_replaced_in_place_and_keeps_the_rest(det3):
    net = build(det3, 5, seed=0)
    g = net.module.graph
    names = [layer.name for layer in g.layers]
    assert names == [layer.name for layer in det3.graph.layers]
    head = g.layer("conv6-1")
    assert head.attrs.num_output == 5 and head.blobs[0].shape == (5, 256) and head.bottoms == ["conv5"]
    assert net.logits == "conv6-1" and net.output == "prob1"
    # every other weight is the pretrained one
    np.testing.assert_array_equal(g.layer("conv3").blobs[0], det3.graph.layer("conv3").blobs[0])
    logits, aux = net.forward(torch.zeros(3, 3, 48, 48))
    assert logits.shape == (3, 5) and aux == []
    assert g.shapes()["prob1"] == (1, 5)


def test_param_groups_follow_prototxt_or_caffe_convention(det3, aux_source):
    groups = {g["name"]: g for g in param_groups(build(det3, 2, seed=0).module, 2e-4)}
    assert groups["conv1.bias"]["lr_mult"] == 2.0 and groups["conv1.bias"]["weight_decay"] == pytest.approx(2e-4)
    assert groups["conv1.weight"]["lr_mult"] == 1.0
    assert "prelu1.weight" in groups
    plain = {g["name"]: g for g in param_groups(build(aux_source, 3, seed=0).module, 2e-4)}
    assert plain["fc.bias"]["lr_mult"] == 2.0 and plain["fc.bias"]["weight_decay"] == 0.0
    assert plain["fc.weight"]["lr_mult"] == 1.0 and plain["fc.weight"]["weight_decay"] == pytest.approx(2e-4)


def test_freeze_to_freezes_everything_below_the_blob(det3):
    net = build(det3, 2, seed=0, freeze_to="conv3")
    names = {g["name"] for g in param_groups(net.module, 0.0)}
    assert not any(n.startswith(("conv1.", "prelu1.", "conv2.", "prelu2.", "conv3.", "prelu3.")) for n in names)
    assert {"conv4.weight", "conv5.weight", "conv6-1.weight"} <= names
    with pytest.raises(ModelError, match="did you mean conv3"):
        build(det3, 2, seed=0, freeze_to="conv33")


def test_aux_heads_train_and_dropout_drops_in_training_only(aux_source):
    assert [layer.name for layer in aux_heads(aux_source.graph, "fc")] == ["loss1/classifier"]
    net = build(aux_source, 3, seed=0)
    x = torch.ones(2, 3, 16, 16)
    logits, aux = net.forward(x)
    assert logits.shape == (2, 3) and len(aux) == 1 and aux[0].shape == (2, 3)
    torch.manual_seed(0)
    conv = net.module(x, outputs=["conv1"])["conv1"]
    assert (conv == 0).float().mean() > 0.3  # dropout 0.5 (plus ReLU zeros)
    net.module.eval()
    a = net.module(x, outputs=["fc"])["fc"]
    b = net.module(x, outputs=["fc"])["fc"]
    assert torch.equal(a, b)


def test_scratch_uses_caffe_fillers(det3):
    g = scratch_weights(det3.graph, seed=3)
    w = g.layer("conv1").blobs[0]
    bound = np.sqrt(3.0 / 27)  # xavier, fan in 3*3*3
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.all(g.layer("conv1").blobs[1] == 0) and np.all(g.layer("prelu1").blobs[0] == 0.25)
    assert not np.array_equal(w, det3.graph.layer("conv1").blobs[0])


def test_caffe_sgd_matches_hand_computation():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = CaffeSGD([{"params": [p], "lr_mult": 2.0, "weight_decay": 0.1}], momentum=0.9)
    set_lr(opt, 0.5)  # group lr = 1.0
    p.grad = torch.tensor([0.5, 0.5])
    opt.step()
    v1 = 1.0 * (torch.tensor([0.5, 0.5]) + 0.1 * torch.tensor([1.0, -2.0]))  # [0.6, 0.3]
    assert torch.allclose(p.data, torch.tensor([1.0, -2.0]) - v1)
    set_lr(opt, 0.25)  # lr changes: Caffe keeps lr inside the history
    w1 = p.data.clone()
    p.grad = torch.tensor([1.0, 0.0])
    opt.step()
    v2 = 0.9 * v1 + 0.5 * (torch.tensor([1.0, 0.0]) + 0.1 * w1)
    assert torch.allclose(p.data, w1 - v2)


def test_net_input_is_the_zoo_preprocessing():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3)).astype(np.float32)
    bgr = torch.from_numpy(rgb[:, :, ::-1].transpose(2, 0, 1).copy())[None]
    for p in (
        Preprocess(),
        Preprocess(channel_order="RGB", mean=(127.5, 127.5, 127.5), scale=0.0078125, transpose=True),
    ):
        got = NetInput.from_preprocess(p)(bgr)[0].numpy()
        np.testing.assert_allclose(got, p.to_net(rgb), rtol=0, atol=1e-5)


def test_one_class_is_refused(det3):
    with pytest.raises(ModelError, match="at least 2"):
        build(Source(det3.graph, det3.preprocess, "prob1"), 1, seed=0)


def test_export_graph_drops_aux_heads_and_checks_the_class_count(aux_source):
    from zoo.train.export import deploy_graph

    from zoo.errors import UserError

    net = build(aux_source, 3, seed=0)
    g = deploy_graph(net, ["a", "b", "c"])
    assert g.outputs == ["prob"] and not any(layer.name.startswith("loss1") for layer in g.layers)
    assert g.layer("fc").blobs[0].shape[0] == 3
    with pytest.raises(UserError, match="3 outputs do not fit 2 class names"):
        deploy_graph(net, ["a", "b"])
