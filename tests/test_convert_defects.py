"""Issue 11's defects, each on a minimal synthetic net with seeded weights from our writer: the torch
module and ONNX Runtime against OpenCV dnn at the deploy size and at two other sizes or batches."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from zoo.convert.errors import ConvertError

from tests.caffe_helpers import check_everywhere, onnx_session, rel_err, run_opencv, run_torch, seeded_files
from zoo import convert


def net(shape, body: str) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n{body}'


def test_ceil_pool_with_padding_drops_the_window_that_starts_in_the_padding(tmp_path):
    """Defect 1. k2 s2 p1 on an odd size: ONNX's ceil rule gives one more row than Caffe. With the sizes
    declared (as for a net whose head fixes them), ONNX Runtime's shape inference met Caffe's size at the
    Concat, and the model did not load: "Can't merge shape info ... Inferred=4 Declared=5" on de43284."""
    body = '''
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "ave" type: "Pooling" bottom: "data" top: "ave" pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 3 kernel_size: 1 stride: 2 } }
layer { name: "cat" type: "Concat" bottom: "pool" bottom: "ave" bottom: "conv" top: "cat" }
'''
    g = check_everywhere(net((1, 3, 7, 9), body), tmp_path, [(1, 3, 7, 9), (2, 3, 11, 5), (1, 3, 13, 15)],
                         ["pool", "ave", "cat"])
    assert g.shapes()["pool"] == (1, 3, 4, 5)
    path = convert.write_onnx(g, tmp_path / "static.onnx", dynamic=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # loads at all: the defect
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["N", 9, 4, 5]
    (tmp_path / "ref").mkdir()
    proto, weights, _ = seeded_files(net((1, 3, 7, 9), body), tmp_path / "ref")
    for batch in (1, 2, 3):  # the deploy size and two other batches, torch and ORT against OpenCV
        x = np.random.default_rng(batch).uniform(-2, 2, (batch, 3, 7, 9)).astype(np.float32)
        ref = run_opencv(proto, weights, x, g, ["cat"])["cat"]
        (got,) = sess.run(["cat"], {"data": x})
        assert got.shape == ref.shape == (batch, 9, 4, 5) and rel_err(got, ref) <= 1e-4
        assert rel_err(run_torch(g, x, ["cat"])["cat"], ref) <= 1e-4


def test_pool_with_pad_over_half_the_kernel(tmp_path):
    """Caffe allows any pad below the kernel; torch's pooling refuses pad > kernel / 2."""
    body = '''
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 3 pad: 2 } }
layer { name: "ave" type: "Pooling" bottom: "data" top: "ave" pooling_param { pool: AVE kernel_size: 3 stride: 3 pad: 2 } }
'''
    check_everywhere(net((1, 2, 7, 8), body), tmp_path, [(1, 2, 7, 8), (2, 2, 10, 5), (1, 2, 4, 13)])


SE = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc1" type: "InnerProduct" bottom: "gap" top: "fc1" inner_product_param { num_output: 2 } }
layer { name: "relu" type: "ReLU" bottom: "fc1" top: "fc1" }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2" inner_product_param { num_output: 4 } }
layer { name: "sig" type: "Sigmoid" bottom: "fc2" top: "fc2" }
layer { name: "scale" type: "Scale" bottom: "conv" bottom: "fc2" top: "se" scale_param { axis: 0 } }
'''


def test_two_bottom_scale_takes_its_shape_at_run_time(tmp_path):
    g = check_everywhere(net((1, 3, 8, 8), SE), tmp_path, [(1, 3, 8, 8), (3, 3, 8, 8), (2, 3, 13, 6)])
    assert g.outputs == ["se"]


def test_silence_keeps_the_branch_it_ends(tmp_path):
    """Defect 3. Silence only discards the blob version it reads. Here the net ends in a Silence of an
    auxiliary blob, and an earlier Silence discards the raw scores before an in-place Sigmoid rewrites
    them: Caffe's and OpenCV's output is the sigmoid `score`. Before the fix (de43284) Silence was a loss
    whose bottoms' names were excluded from the outputs, so this net had none ("the net has no output")."""
    body = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "score" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "raw" type: "Silence" bottom: "score" }
layer { name: "sig" type: "Sigmoid" bottom: "score" top: "score" }
layer { name: "aux" type: "ReLU" bottom: "data" top: "aux" }
layer { name: "silence" type: "Silence" bottom: "aux" }
'''
    g = check_everywhere(net((1, 2, 6, 6), body), tmp_path, [(1, 2, 6, 6), (2, 2, 9, 7), (1, 2, 5, 12)])
    assert g.outputs == ["score"]
    # a net that silences every result (colorization's class8_ab) keeps what was silenced as its outputs,
    # every silenced version, and says so in a note (the rule of convert/build.py since the brains branch)
    p = tmp_path / "only.prototxt"
    p.write_text(net((1, 2, 6, 6), body.replace('bottom: "aux" }', 'bottom: "aux" bottom: "score" }')))
    g = convert.load_net(p)
    assert g.outputs == ["score@conv", "score", "aux"]
    assert any("every output is silenced (Silence); kept score@conv, score, aux as outputs" in n for n in g.notes)


def test_duplicate_layer_names_are_kept_and_renamed(tmp_path):
    """An official edge-detection deploy reuses `crop`; Caffe and OpenCV keep every layer."""
    body = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "a" convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
layer { name: "up" type: "Deconvolution" bottom: "a" top: "b" convolution_param { num_output: 3 kernel_size: 4 stride: 2 } }
layer { name: "crop" type: "Crop" bottom: "b" bottom: "data" top: "c" crop_param { axis: 2 offset: 1 } }
layer { name: "crop" type: "Crop" bottom: "b" bottom: "a" top: "d" crop_param { axis: 2 offset: 0 } }
layer { name: "relu" type: "ReLU" bottom: "d" top: "d" }
layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }
'''
    g = check_everywhere(net((1, 3, 6, 7), body), tmp_path, [(1, 3, 6, 7), (2, 3, 9, 4), (1, 3, 11, 8)],
                         ["c", "d"])
    assert [lyr.name for lyr in g.layers] == ["conv", "up", "crop", "crop_1", "relu", "relu_1"]
    assert len(g.notes) == 1 and "crop_1" in g.notes[0] and "relu_1" in g.notes[0]


def test_fork_ceil_mode_false_means_floor(tmp_path):
    body = '''
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }
layer { name: "ave" type: "Pooling" bottom: "data" top: "ave"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 ceil_mode: false } }
'''
    g = check_everywhere(net((1, 2, 8, 10), body), tmp_path, [(1, 2, 8, 10), (2, 2, 9, 7), (1, 2, 12, 13)])
    assert g.shapes()["pool"] == (1, 2, 3, 4)  # ceil would give 4x5


def test_unknown_fields_and_types_are_reported_at_once_by_layer(tmp_path):
    body = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 quantize { bits: 8 } } }
layer { name: "odd" type: "Frobnicate" bottom: "conv" top: "odd" frob_param { level: 3 } }
layer { name: "relu" type: "ReLU" bottom: "odd" top: "relu" relu_param { engine: CAFFE fancy: true } }
'''
    p = tmp_path / "fork.prototxt"
    p.write_text(net((1, 2, 6, 6), body))
    with pytest.raises(ConvertError) as e:
        convert.load_net(p)
    msg = str(e.value)
    assert "conv (Convolution with fields zoo does not know: `ConvolutionParameter quantize { bits: 8 } `" \
        in msg.replace("}`", "} `")
    assert "odd (Frobnicate)" in msg and "relu (ReLU" in msg and "fancy: true" in msg


GOOGLENET_HEAD = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 3 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "gap" type: "Pooling" bottom: "pool" top: "gap" pooling_param { pool: AVE kernel_size: 4 stride: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "gap" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
'''


def test_fixed_size_head_declares_dynamic_hw_and_names_the_layer_at_a_wrong_size(tmp_path):
    """Like GoogLeNet at 232x240: every size whose pooled map still fits the InnerProduct runs."""
    g = check_everywhere(net((1, 3, 16, 16), GOOGLENET_HEAD), tmp_path, [(1, 3, 16, 16), (2, 3, 17, 15),
                                                                         (1, 3, 18, 16)])
    model = onnx.load(str(tmp_path / "net.onnx"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["deploy_input_shape"] == "1x3x16x16" and meta["input_sizes"] == "H 15-18, W 15-18"
    sess = onnx_session(g, tmp_path / "g.onnx")
    with pytest.raises(Exception, match="fc"):  # 24x24 pools to 2x2: does not fit fc's weights
        sess.run(None, {"data": np.zeros((1, 3, 24, 24), np.float32)})
