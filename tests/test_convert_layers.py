"""Per-layer checks on tiny hand-made nets: torch module and ONNX Runtime against numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from tests import numpy_ref as ref
from tests.caffe_helpers import graph_from_text, rel_err, run_onnx, run_torch

TOL = 1e-5


def net(input_shape, body: str) -> str:
    dims = " ".join(f"dim: {d}" for d in input_shape)
    return f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n{body}'


def both(g, x, tmp_path, blobs=None):
    t = run_torch(g, x, blobs)
    o = run_onnx(g, x, tmp_path / "m.onnx", blobs)
    return t, o


def check(g, x, tmp_path, blob, expected, tol=TOL):
    t, o = both(g, x, tmp_path, [blob])
    assert t[blob].shape == expected.shape
    assert rel_err(t[blob], expected) < tol, f"torch: {rel_err(t[blob], expected)}"
    assert rel_err(o[blob], expected) < tol, f"onnx: {rel_err(o[blob], expected)}"


def rand(shape, seed=0, lo=-3.0, hi=3.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


@pytest.mark.parametrize("spec,kw", [
    ("kernel_size: 3 pad: 1", dict(stride=(1, 1), pad=(1, 1))),
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", dict(stride=(2, 1), pad=(1, 0))),
    ("kernel_size: 3 dilation: 2 pad: 2", dict(pad=(2, 2), dilation=(2, 2))),
    ("kernel_size: 3 group: 2 stride: 2", dict(stride=(2, 2), group=2)),
    ("kernel_size: 1 group: 4 bias_term: false", dict(group=4)),
])
def test_convolution(tmp_path, spec, kw):
    g = graph_from_text(net((2, 4, 9, 8), f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" '
                                           f'convolution_param {{ num_output: 4 {spec} }} }}'))
    x = rand((2, 4, 9, 8))
    layer = g.layer("c")
    b = layer.blobs[1] if len(layer.blobs) > 1 else None
    check(g, x, tmp_path, "c", ref.conv(x, layer.blobs[0], b, **kw))


def test_deconvolution_matches_the_adjoint_of_convolution(tmp_path):
    g = graph_from_text(net((1, 3, 5, 6), 'layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" '
                                          'convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 } }'))
    x = rand((1, 3, 5, 6))
    w, b = g.layer("d").blobs
    t, o = both(g, x, tmp_path, ["d"])
    # Caffe's definition, written out: each input pixel scatters w[c_in, c_out] * x into the output at
    # (i * stride - pad + ki, j * stride - pad + kj); the output is (in - 1) * stride - 2 * pad + kernel.
    full = np.zeros((1, 2, (5 - 1) * 2 + 3, (6 - 1) * 2 + 3))
    for c, i, j in np.ndindex(3, 5, 6):
        full[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[0, c, i, j] * w[c]
    expected = full[:, :, 1:-1, 1:-1] + b.reshape(1, -1, 1, 1)
    assert t["d"].shape == (1, 2, 9, 11)
    assert rel_err(t["d"], expected) < TOL
    # and it is the adjoint of the convolution with the same weights: <y, z> = <x, conv(z)> for any z
    # (w is (in, out, kh, kw): as a convolution from y's 2 channels to x's 3 it is already (out, in, kh, kw))
    y = t["d"] - b.reshape(1, -1, 1, 1)
    z = rand(y.shape, seed=3)
    cz = ref.conv(z, w, None, stride=(2, 2), pad=(1, 1))
    assert abs((y * z).sum() - (x * cz).sum()) < 1e-3 * abs((x * cz).sum())
    assert rel_err(o["d"], t["d"]) < TOL


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("k,s,p,size", [(3, 2, 0, 9), (3, 2, 1, 8), (3, 2, 1, 7), (2, 2, 0, 7), (3, 3, 1, 10),
                                         (5, 3, 2, 11), (3, 1, 1, 6), (4, 3, 1, 13)])
def test_pooling_caffe_rounding_and_divisor(tmp_path, method, k, s, p, size):
    g = graph_from_text(net((1, 2, size, size + 1), f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" '
                                                    f'pooling_param {{ pool: {method} kernel_size: {k} stride: {s} '
                                                    f'pad: {p} }} }}'))
    x = rand((1, 2, size, size + 1), lo=-5, hi=-1)  # all negative: zero padding must never win a MAX
    expected = ref.pool(x, method, (k, k), (s, s), (p, p))
    assert g.shapes()["p"] == expected.shape
    check(g, x, tmp_path, "p", expected)


def test_pooling_at_other_input_sizes_onnx(tmp_path):
    """Ceil rounding must follow the input size, not be frozen at the deploy size."""
    g = graph_from_text(net((1, 1, 8, 8), 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                                          'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }'))
    from tests.caffe_helpers import onnx_session

    sess = onnx_session(g, tmp_path / "p.onnx")
    for size in (7, 10, 13):
        x = rand((1, 1, size, size + 2), seed=size)
        (got,) = sess.run(["p"], {"data": x})
        assert rel_err(got, ref.pool(x, "AVE", (3, 3), (2, 2), (1, 1))) < TOL


def test_global_pooling_any_size(tmp_path):
    g = graph_from_text(net((1, 3, 5, 7), 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                                          'pooling_param { pool: AVE global_pooling: true } }'))
    x = rand((1, 3, 5, 7))
    check(g, x, tmp_path, "p", x.mean(axis=(2, 3), keepdims=True))


@pytest.mark.parametrize("k,beta,size", [(1.0, 0.75, 5), (2.0, 0.75, 5), (2.0, 0.6, 3), (1.5, 0.5, 7)])
def test_lrn_across_channels_with_k(tmp_path, k, beta, size):
    g = graph_from_text(net((2, 7, 4, 3), f'layer {{ name: "n" type: "LRN" bottom: "data" top: "n" '
                                          f'lrn_param {{ local_size: {size} alpha: 0.01 beta: {beta} k: {k} }} }}'))
    x = rand((2, 7, 4, 3), lo=-50, hi=50)
    check(g, x, tmp_path, "n", ref.lrn_across(x, size, 0.01, beta, k))


def test_lrn_within_channel(tmp_path):
    g = graph_from_text(net((1, 3, 6, 5), 'layer { name: "n" type: "LRN" bottom: "data" top: "n" '
                                          'lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 '
                                          'norm_region: WITHIN_CHANNEL } }'))
    x = rand((1, 3, 6, 5))
    expected = ref.lrn_within(x, 3, 0.5, 0.75)
    assert rel_err(expected, ref.lrn_across(x, 3, 0.5, 0.75, 1.0)) > 1e-2  # the two regions really differ
    check(g, x, tmp_path, "n", expected)


@pytest.mark.parametrize("extra,axis", [("", 1), ("transpose: true", 1), ("axis: 2", 2)])
def test_inner_product(tmp_path, extra, axis):
    g = graph_from_text(net((2, 3, 4, 5), f'layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
                                          f'inner_product_param {{ num_output: 6 {extra} }} }}'))
    x = rand((2, 3, 4, 5))
    w, b = g.layer("fc").blobs
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    y = flat @ (w if "transpose" in extra else w.T) + b
    check(g, x, tmp_path, "fc", y.reshape(*x.shape[:axis], 6))


ELEMENTWISE = {
    "ReLU": ("relu_param { negative_slope: 0.1 }", lambda x: np.where(x > 0, x, 0.1 * x)),
    "ELU": ("elu_param { alpha: 0.5 }", lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    "Sigmoid": ("", lambda x: 1 / (1 + np.exp(-x))),
    "TanH": ("", np.tanh),
    "AbsVal": ("", np.abs),
    "BNLL": ("", lambda x: np.log1p(np.exp(x))),
    "Power": ("power_param { power: 2 scale: 0.5 shift: 4 }", lambda x: (4 + 0.5 * x) ** 2),
    "Exp": ("exp_param { base: 2 scale: 0.5 shift: 1 }", lambda x: 2.0 ** (1 + 0.5 * x)),
    "Log": ("log_param { base: 10 scale: 2 shift: 7 }", lambda x: np.log10(7 + 2 * x)),
    "Threshold": ("threshold_param { threshold: 0.5 }", lambda x: (x > 0.5).astype(np.float64)),
    "Dropout": ("dropout_param { dropout_ratio: 0.5 }", lambda x: x),
}


@pytest.mark.parametrize("kind", sorted(ELEMENTWISE))
def test_elementwise(tmp_path, kind):
    param, fn = ELEMENTWISE[kind]
    g = graph_from_text(net((2, 3, 4, 5), f'layer {{ name: "y" type: "{kind}" bottom: "data" top: "y" {param} }}'))
    x = rand((2, 3, 4, 5))
    check(g, x, tmp_path, "y", fn(x.astype(np.float64)))


def test_prelu_per_channel_and_after_inner_product(tmp_path):
    g = graph_from_text(net((2, 3, 4, 4), 'layer { name: "p" type: "PReLU" bottom: "data" top: "p" }\n'
                                          'layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" '
                                          'inner_product_param { num_output: 5 } }\n'
                                          'layer { name: "p2" type: "PReLU" bottom: "fc" top: "fc" }'))
    g.layer("p").blobs[0][:] = [0.1, 0.2, 0.3]
    g.layer("p2").blobs[0][:] = [0.5, 0.1, 0.2, 0.3, 0.4]
    x = rand((2, 3, 4, 4))
    a = np.array([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)
    p = np.where(x > 0, x, a * x)
    w, b = g.layer("fc").blobs
    fc = p.reshape(2, -1) @ w.T + b
    expected = np.where(fc > 0, fc, np.array([0.5, 0.1, 0.2, 0.3, 0.4]) * fc)
    check(g, x, tmp_path, "fc", expected)


def test_softmax_axis(tmp_path):
    g = graph_from_text(net((2, 3, 4, 5), 'layer { name: "s" type: "Softmax" bottom: "data" top: "s" '
                                          'softmax_param { axis: 2 } }'))
    x = rand((2, 3, 4, 5))
    e = np.exp(x - x.max(axis=2, keepdims=True))
    check(g, x, tmp_path, "s", e / e.sum(axis=2, keepdims=True))


def test_concat_slice_split_eltwise(tmp_path):
    body = '''
layer { name: "sl" type: "Slice" bottom: "data" top: "a" top: "b" top: "c" slice_param { axis: 1 slice_point: 1 slice_point: 3 } }
layer { name: "sp" type: "Split" bottom: "a" top: "a1" top: "a2" }
layer { name: "cat" type: "Concat" bottom: "c" bottom: "a1" bottom: "b" top: "cat" }
layer { name: "sum" type: "Eltwise" bottom: "a1" bottom: "a2" bottom: "c" top: "sum" eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 3 } }
layer { name: "prod" type: "Eltwise" bottom: "a1" bottom: "c" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "a2" bottom: "c" top: "max" eltwise_param { operation: MAX } }
'''
    g = graph_from_text(net((2, 4, 3, 3), body))
    x = rand((2, 4, 3, 3))
    a, b, c = x[:, :1], x[:, 1:3], x[:, 3:]
    blobs = ["cat", "sum", "prod", "max"]
    t, o = both(g, x, tmp_path, blobs)
    expected = {"cat": np.concatenate([c, a, b], 1), "sum": 0.5 * a - 2 * a + 3 * c, "prod": a * c,
                "max": np.maximum(a, c)}
    for k in blobs:
        assert rel_err(t[k], expected[k]) < TOL and rel_err(o[k], expected[k]) < TOL, k


def test_batchnorm_scale_bias(tmp_path):
    body = '''
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" batch_norm_param { eps: 0.001 } }
layer { name: "sc" type: "Scale" bottom: "data" top: "data" scale_param { bias_term: true } }
layer { name: "bi" type: "Bias" bottom: "data" top: "out" }
'''
    g = graph_from_text(net((2, 3, 4, 4), body))
    mean, var, sf = g.layer("bn").blobs
    sf[:] = 4.0  # Caffe stores running sums: divide by the scale factor
    x = rand((2, 3, 4, 4))
    gamma, beta = g.layer("sc").blobs
    (bias,) = g.layer("bi").blobs
    r = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    y = (x - r(mean / 4)) / np.sqrt(r(var / 4) + 1e-3) * r(gamma) + r(beta) + r(bias)
    check(g, x, tmp_path, "out", y)
    # an in-place chain: each value but the last is `blob@writer`, the last keeps the blob's name
    assert list(g.inputs) == ["data@input"]
    assert [(lyr.bottoms, lyr.tops) for lyr in g.layers] == [
        (["data@input"], ["data@bn"]), (["data@bn"], ["data"]), (["data"], ["out"])]


def test_scale_with_two_bottoms(tmp_path):
    body = '''
layer { name: "pool" type: "Pooling" bottom: "data" top: "g" pooling_param { pool: AVE global_pooling: true } }
layer { name: "flat" type: "Flatten" bottom: "g" top: "gf" }
layer { name: "sc" type: "Scale" bottom: "data" bottom: "gf" top: "y" scale_param { axis: 0 } }
'''
    g = graph_from_text(net((2, 3, 4, 4), body))
    x = rand((2, 3, 4, 4))
    gf = x.mean(axis=(2, 3))
    check(g, x, tmp_path, "y", x * gf[:, :, None, None])


def test_flatten_reshape_crop(tmp_path):
    body = '''
layer { name: "fl" type: "Flatten" bottom: "data" top: "fl" flatten_param { axis: 1 end_axis: 2 } }
layer { name: "rs" type: "Reshape" bottom: "data" top: "rs" reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }
layer { name: "small" type: "Pooling" bottom: "data" top: "small" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "cr" type: "Crop" bottom: "data" bottom: "small" top: "cr" crop_param { axis: 2 offset: 1 offset: 2 } }
'''
    g = graph_from_text(net((2, 3, 6, 8), body))
    x = rand((2, 3, 6, 8))
    t, o = both(g, x, tmp_path, ["fl", "rs", "cr"])
    exp = {"fl": x.reshape(2, 18, 8), "rs": x.reshape(2, -1, 2), "cr": x[:, :, 1:4, 2:6]}
    for k, v in exp.items():
        assert t[k].shape == v.shape and rel_err(t[k], v) < TOL and rel_err(o[k], v) < TOL, k


def test_in_place_tops_are_handles(tmp_path):
    body = '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
'''
    g = graph_from_text(net((1, 1, 4, 4), body))
    x = rand((1, 1, 4, 4))
    t = run_torch(g, x, ["conv", "conv@conv"])
    assert (t["conv"] >= 0).all() and (t["conv@conv"] < 0).any()
    assert np.allclose(t["conv"], np.maximum(t["conv@conv"], 0))
    assert "conv" in g.blob_names and "conv@conv" not in g.blob_names
