"""Whole-model parity against OpenCV's dnn module, an independent implementation of Caffe.

Real weights where they exist here (MTCNN, open_nsfw, EfficientNet-Lite0); seeded He-scaled weights
written by our own Caffe writer for the big topologies whose weights cannot be downloaded.
Both the ONNX model (through ONNX Runtime) and the PyTorch module must match on the final output
and on intermediate blobs, within 1e-4 x max|reference|.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.caffe_helpers import onnx_session, rel_err, run_opencv, run_torch
from tests.conftest import MODELS, shared_or_skip
from zoo import convert

TOL = 1e-4


@dataclass(frozen=True)
class Case:
    prototxt: str
    weights: str | None  # None: seeded weights through our writer
    blobs: tuple[str, ...]  # intermediate blobs checked besides the outputs
    conv_blob: str  # deepest blob of the fully convolutional part, checked at other sizes


CASES = {
    "mtcnn_det1": Case("mtcnn/det1.prototxt", "mtcnn/det1.caffemodel", ("conv1", "pool1", "conv3"), "conv3"),
    "mtcnn_det2": Case("mtcnn/det2.prototxt", "mtcnn/det2.caffemodel", ("conv1", "pool2", "conv3"), "conv3"),
    "mtcnn_det3": Case("mtcnn/det3.prototxt", "mtcnn/det3.caffemodel", ("conv1", "pool2", "conv4", "conv5"),
                       "conv4"),
    "open_nsfw": Case("open_nsfw/deploy.prototxt", "open_nsfw/resnet_50_1by2_nsfw.caffemodel",
                      ("pool1", "eltwise_stage1_block1", "eltwise_stage3_block2", "pool"), "eltwise_stage3_block2"),
    "efficientnet_lite0": Case("efficientnet_lite0/deploy.prototxt", "efficientnet_lite0/efficientnet_lite0.caffemodel",
                               ("stem", "block4/output", "block10/output", "head", "fc"), "head"),
    "bvlc_googlenet": Case("bvlc_googlenet/deploy.prototxt", None,
                           ("conv2/3x3", "inception_3b/output", "inception_4c/output", "pool5/7x7_s1"),
                           "inception_5b/output"),
    "googlenet_places365": Case("googlenet_places365/deploy_googlenet_places365.prototxt", None,
                                ("pool1/norm1", "inception_4a/output", "inception_4e/output", "loss3/classifier"),
                                "inception_4e/output"),
    "gender_net": Case("gender_net/deploy_gender.prototxt", None, ("conv1", "norm1", "pool5", "fc7"), "pool5"),
    "age_net": Case("age_net/deploy_age.prototxt", None, ("norm2", "conv3", "fc6", "fc8"), "conv3"),
}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """(prototxt, caffemodel, graph) per case; seeded weights go through our Caffe writer."""
    cache: dict[str, tuple[Path, Path, convert.Graph]] = {}

    def get(key: str):
        if key not in cache:
            case = CASES[key]
            proto = shared_or_skip(MODELS / case.prototxt)
            if case.weights:
                weights = shared_or_skip(MODELS / case.weights)
            else:
                g = convert.random_weights(convert.load_net(proto), seed=7)
                weights = tmp_path_factory.mktemp(key) / "seeded.caffemodel"
                from zoo.convert.emit_caffe import write_caffemodel

                write_caffemodel(g, weights)
            cache[key] = (proto, weights, convert.load_net(proto, weights))
        return cache[key]

    return get


def image_like(shape, seed=0) -> np.ndarray:
    """A smooth, image-like input in Caffe's space (BGR 0-255 minus a mean), not white noise."""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    coarse = rng.uniform(-110, 130, (n, c, max(h // 8, 2), max(w // 8, 2)))
    x = np.kron(coarse, np.ones((1, 1, 8, 8)))[:, :, :h, :w]
    if x.shape[2] < h or x.shape[3] < w:
        x = np.pad(x, ((0, 0), (0, 0), (0, h - x.shape[2]), (0, w - x.shape[3])), mode="edge")
    return (x + rng.normal(0, 8, x.shape)).astype(np.float32)


@pytest.mark.parametrize("key", list(CASES))
def test_deploy_size_parity(key, model_files, tmp_path):
    proto, weights, g = model_files(key)
    n, c, h, w = g.inputs[next(iter(g.inputs))]
    x = image_like((1, c, h, w))
    blobs = list(dict.fromkeys(list(CASES[key].blobs) + list(g.outputs)))
    ref = run_opencv(proto, weights, x, g, blobs)
    got_t = run_torch(g, x, blobs)
    sess = onnx_session(g, tmp_path / f"{key}.onnx", blobs)
    got_o = dict(zip(blobs, sess.run(blobs, {sess.get_inputs()[0].name: x})))
    for b in blobs:
        assert np.abs(ref[b]).max() > 0, f"{b}: reference is all zeros; the check would be empty"
        assert rel_err(got_t[b], ref[b]) <= TOL, f"torch {key}:{b} rel err {rel_err(got_t[b], ref[b]):.2e}"
        assert rel_err(got_o[b], ref[b]) <= TOL, f"onnx {key}:{b} rel err {rel_err(got_o[b], ref[b]):.2e}"


@pytest.mark.parametrize("key", list(CASES))
def test_other_input_sizes(key, model_files, tmp_path):
    """The fully convolutional part at two sizes other than the deploy size (DeepDream octaves)."""
    proto, weights, g = model_files(key)
    blob = CASES[key].conv_blob
    part = g.truncated([blob])
    assert part.spatially_dynamic()
    sess = onnx_session(part, tmp_path / "part.onnx")
    n, c, h, w = g.inputs[next(iter(g.inputs))]
    for i, (hh, ww) in enumerate(((h + 13, w + 27), (h * 3 // 2 + 1, w + 5))):
        x = image_like((1, c, hh, ww), seed=i + 1)
        ref = run_opencv(proto, weights, x, g, [blob])[blob]
        got_t = run_torch(part, x, [blob])[blob]
        (got_o,) = sess.run([blob], {sess.get_inputs()[0].name: x})
        assert got_t.shape == ref.shape == got_o.shape
        assert rel_err(got_t, ref) <= TOL and rel_err(got_o, ref) <= TOL, (hh, ww)


@pytest.mark.parametrize("key", ["mtcnn_det3", "open_nsfw", "efficientnet_lite0", "gender_net"])
def test_onnx_checker_on_every_layer_family(key, model_files, tmp_path):
    import onnx

    _, _, g = model_files(key)
    model = onnx.load(str(convert.write_onnx(g, tmp_path / "m.onnx")))
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = next(o for o in inferred.graph.output if o.name == g.outputs[-1])
    assert out.type.tensor_type.shape.dim[-1].dim_value == g.shapes()[g.outputs[-1]][-1]


def test_onnx_checker_and_shape_inference(model_files, tmp_path):
    import onnx

    _, _, g = model_files("bvlc_googlenet")
    path = convert.write_onnx(g, tmp_path / "g.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert model.opset_import[0].version >= 17 and model.ir_version <= 10
    assert {i.name for i in model.graph.initializer} >= {"conv1/7x7_s2.weight", "loss3/classifier.bias"}
    assert not {i.name for i in model.graph.initializer} & {i.name for i in model.graph.input}
    assert any(v.name == "inception_4c/output" for v in inferred.graph.value_info)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["channel_order"] == "BGR" and meta["value_range"] == "0-255"


def test_dynamic_hw_where_the_net_allows(model_files, tmp_path):
    import onnx

    _, _, g = model_files("efficientnet_lite0")
    model = onnx.load(str(convert.write_onnx(g, tmp_path / "e.onnx")))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    proto, weights, gg = model_files("bvlc_googlenet")  # pool5 is a fixed 7x7 window into an InnerProduct
    model = onnx.load(str(convert.write_onnx(gg, tmp_path / "g.onnx")))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]  # ... but every size that pools to 7x7 runs, as in Caffe and OpenCV
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["deploy_input_shape"] == "10x3x224x224" and meta["input_sizes"] == "H 223-254, W 223-254"
    sess = onnx_session(gg, tmp_path / "g2.onnx")
    x = image_like((2, 3, 232, 240))
    (got,) = sess.run(["prob"], {"data": x})
    ref = run_opencv(proto, weights, x, gg, ["prob"])["prob"]
    assert rel_err(got, ref) <= TOL
    with pytest.raises(Exception, match="loss3/classifier"):
        sess.run(["prob"], {"data": image_like((1, 3, 288, 288))})


def test_caffe_round_trip_through_opencv(model_files, tmp_path):
    """Caffe -> our writer -> OpenCV gives the same outputs as the original files."""
    from zoo.convert.emit_caffe import write_caffe

    for key in ("mtcnn_det3", "open_nsfw"):
        proto, weights, g = model_files(key)
        p2, w2 = write_caffe(g, tmp_path / f"{key}.prototxt", tmp_path / f"{key}.caffemodel")
        x = image_like(g.inputs["data"])
        blobs = list(g.outputs) + [CASES[key].blobs[-1]]
        a = run_opencv(proto, weights, x, g, blobs)
        b = run_opencv(p2, w2, x, convert.load_net(p2, w2), blobs)
        for k in blobs:
            assert np.array_equal(a[k], b[k]), k
        assert "layers {" not in p2.read_text() and "Input" in p2.read_text()


def test_pt_file_round_trip(model_files, tmp_path):
    import torch
    from zoo.convert.emit_pt import load_pt, save_pt

    _, _, g = model_files("mtcnn_det3")
    path = save_pt(g, tmp_path / "det3.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"].startswith("zoo-caffe-pt")
    m = load_pt(path)
    x = image_like((2, 3, 48, 48))
    a, b = run_torch(g, x), m(torch.from_numpy(x))
    for k in g.outputs:
        assert np.array_equal(a[k], b[k].detach().numpy())
