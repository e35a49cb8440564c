"""Fork and rare layers, written in the forks' own prototxt syntax: against OpenCV dnn where it has
the layer, else a numpy reference of the fork's forward; both emitters at three sizes or batches."""

from __future__ import annotations

import numpy as np
import pytest
from zoo.convert.errors import ConvertError

from tests import numpy_ref as ref
from tests.caffe_helpers import check_everywhere, rel_err, run_onnx, run_torch, seeded_files
from tests.test_convert_defects import net
from zoo import convert

SIZES = [(1, 4, 6, 8), (2, 4, 9, 7), (1, 4, 12, 5)]

OPENCV_CASES = {
    "ConvolutionDepthwise": '''layer { name: "dw" type: "ConvolutionDepthwise" bottom: "data" top: "y"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 group: 4 } }''',
    "ShuffleChannel": '''layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "y" shuffle_channel_param { group: 2 } }''',
    "Permute": '''layer { name: "perm" type: "Permute" bottom: "data" top: "y" permute_param { order: 0 order: 2 order: 3 order: 1 } }''',
    "Normalize": '''layer { name: "norm" type: "Normalize" bottom: "data" top: "y"
  norm_param { across_spatial: false scale_filler { type: "constant" value: 20 } channel_shared: false } }''',
    "Normalize/spatial": '''layer { name: "norm" type: "Normalize" bottom: "data" top: "y" norm_param { across_spatial: true } }''',
    "Interp/zoom": '''layer { name: "interp" type: "Interp" bottom: "data" top: "y" interp_param { zoom_factor: 3 } }''',
    "Interp/size": '''layer { name: "interp" type: "Interp" bottom: "data" top: "y" interp_param { height: 9 width: 5 } }''',
    "MVN": '''layer { name: "mvn" type: "MVN" bottom: "data" top: "y" }''',
    "MVN/across": '''layer { name: "mvn" type: "MVN" bottom: "data" top: "y" mvn_param { across_channels: true } }''',
    "MVN/mean": '''layer { name: "mvn" type: "MVN" bottom: "data" top: "y" mvn_param { normalize_variance: false } }''',
}


@pytest.mark.parametrize("kind", sorted(OPENCV_CASES))
def test_against_opencv(kind, tmp_path):
    g = check_everywhere(net(SIZES[0], OPENCV_CASES[kind]), tmp_path, SIZES, ["y"])
    assert g.layers[-1].type == kind.split("/")[0]


def _both(g, x, tmp_path, blob="y"):
    return run_torch(g, x, [blob])[blob], run_onnx(g, x, tmp_path / "m.onnx", [blob])[blob]


def _check(text, tmp_path, expected_fn, sizes=SIZES, lo=-2.0, hi=2.0):
    _, _, g = seeded_files(net(sizes[0], text), tmp_path)
    for i, s in enumerate(sizes):
        x = np.random.default_rng(i).uniform(lo, hi, s).astype(np.float32)
        want = expected_fn(x, g)
        for got in _both(g, x, tmp_path):
            assert got.shape == want.shape and rel_err(got, want) < 1e-5, (s, rel_err(got, want))
    return g


def test_segnet_bn_inference_mode(tmp_path):
    text = '''layer { name: "bn" type: "BN" bottom: "data" top: "y"
  bn_param { scale_filler { type: "constant" value: 1 } shift_filler { type: "constant" value: 0.001 } bn_mode: INFERENCE } }'''
    _check(text, tmp_path, lambda x, g: x * g.layer("bn").blobs[0] + g.layer("bn").blobs[1])


def test_pspnet_bn_with_statistics(tmp_path):
    text = '''layer { name: "bn" type: "BN" bottom: "data" top: "y"
  bn_param { slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } frozen: true momentum: 0.95 eps: 0.0001 } }'''

    def want(x, g):
        s, b, m, v = g.layer("bn").blobs
        return s * (x - m) / np.sqrt(v + 1e-4) + b

    _check(text, tmp_path, want)
    p = tmp_path / "learn.prototxt"
    p.write_text(net(SIZES[0], text.replace("frozen: true", "bn_mode: LEARN")))
    with pytest.raises(ConvertError, match="batch statistics"):
        convert.load_net(p)


def test_stochastic_pooling_at_test_time(tmp_path):
    text = 'layer { name: "p" type: "Pooling" bottom: "data" top: "y" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 } }'
    _check(text, tmp_path, lambda x, g: ref.stochastic_test(x, 3, 2), lo=0.0, hi=3.0)


def test_segnet_upsample_with_the_pooling_mask(tmp_path):
    text = '''layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" top: "mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pool" bottom: "mask" top: "y" upsample_param { scale: 2 } }'''
    sizes = [(1, 4, 6, 8), (2, 4, 10, 6), (1, 4, 4, 12)]

    def want(x, g):
        m = ref.max_mask(x, 2, 2)
        pooled = ref.pool(x, "MAX", (2, 2), (2, 2), (0, 0))
        return ref.unpool(pooled, m, x.shape[2], x.shape[3])

    _check(text, tmp_path, want, sizes)
    _, _, g = seeded_files(net(sizes[0], text), tmp_path)
    x = np.random.default_rng(3).uniform(-2, 2, sizes[1]).astype(np.float32)
    for got in (run_torch(g, x, ["mask"])["mask"], run_onnx(g, x, tmp_path / "k.onnx", ["mask"])["mask"]):
        assert np.array_equal(got, ref.max_mask(x, 2, 2))


@pytest.mark.parametrize("param,fn", [
    ("axis: 1", lambda x: np.argsort(-x, axis=1, kind="stable")[:, :1].astype(np.float64)),
    ("axis: 2 top_k: 2 out_max_val: true", lambda x: -np.sort(-x, axis=2)[:, :, :2]),
    ("top_k: 3", lambda x: np.argsort(-x.reshape(x.shape[0], -1), axis=1, kind="stable")[:, None, :3, None]),
])
def test_argmax(tmp_path, param, fn):
    _check(f'layer {{ name: "a" type: "ArgMax" bottom: "data" top: "y" argmax_param {{ {param} }} }}', tmp_path,
           lambda x, g: fn(x.astype(np.float64)))


@pytest.mark.parametrize("op,axis,fn", [
    ("SUM", 1, lambda x: x.sum(axis=(1, 2, 3))), ("ASUM", 2, lambda x: np.abs(x).sum(axis=(2, 3))),
    ("SUMSQ", 0, lambda x: (x ** 2).sum()), ("MEAN", -1, lambda x: x.mean(axis=3)),
])
def test_reduction(tmp_path, op, axis, fn):
    text = f'layer {{ name: "r" type: "Reduction" bottom: "data" top: "y" reduction_param {{ operation: {op} axis: {axis} coeff: 0.5 }} }}'
    _check(text, tmp_path, lambda x, g: 0.5 * fn(x.astype(np.float64)))


def test_tile(tmp_path):
    _check('layer { name: "t" type: "Tile" bottom: "data" top: "y" tile_param { axis: 2 tiles: 3 } }', tmp_path,
           lambda x, g: np.tile(x, (1, 1, 3, 1)))


def test_embed(tmp_path):
    text = 'layer { name: "e" type: "Embed" bottom: "data" top: "y" embed_param { num_output: 3 input_dim: 10 } }'
    sizes = [(2, 5), (3, 5), (1, 5)]
    _, _, g = seeded_files(net(sizes[0], text), tmp_path)
    w, b = g.layer("e").blobs
    for i, s in enumerate(sizes):
        x = np.random.default_rng(i).integers(0, 10, s).astype(np.float32)
        for got in _both(g, x, tmp_path):
            assert rel_err(got, w[x.astype(int)] + b) < 1e-6


def test_fork_prototxt_with_every_new_layer_parses(tmp_path):
    """An SSD-, ShuffleNet- and SegNet-flavoured deploy in the forks' syntax reads and converts."""
    text = net((1, 4, 8, 8), '\n'.join(OPENCV_CASES[k].replace('top: "y"', f'top: "y{i}"').replace(
        'name: "', f'name: "{i}_') for i, k in enumerate(["ShuffleChannel", "Permute", "Normalize", "MVN"])))
    p = tmp_path / "fork.prototxt"
    p.write_text(text)
    g = convert.load_net(p)
    assert {lyr.type for lyr in g.layers} == {"ShuffleChannel", "Permute", "Normalize", "MVN"}


def test_axpy_follows_the_senet_fork(tmp_path):
    """axpy_layer (SENet's fork): F = a * X + Y with a = bottom[0], X = bottom[1], Y = bottom[2].
    OpenCV 4.14 computes a * bottom[2] + bottom[1], so the reference is the fork's formula."""
    text = '''layer { name: "gap" type: "Pooling" bottom: "data" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "sig" type: "Sigmoid" bottom: "gap" top: "gap" }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "axpy" type: "Axpy" bottom: "gap" bottom: "conv" bottom: "data" top: "y" }'''

    def want(x, g):
        w, b = g.layer("conv").blobs
        conv = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]
        a = 1 / (1 + np.exp(-x.mean(axis=(2, 3), keepdims=True)))
        return a * conv + x

    _check(text, tmp_path, want)


def test_mvn_eps_is_added_to_the_standard_deviation(tmp_path):
    """mvn_layer.cpp: (x - mean) / (sqrt(var) + eps) (OpenCV puts eps under the root)."""
    text = 'layer { name: "m" type: "MVN" bottom: "data" top: "y" mvn_param { across_channels: true eps: 0.01 } }'

    def want(x, g):
        d = x - x.mean(axis=(1, 2, 3), keepdims=True)
        return d / (np.sqrt((d ** 2).mean(axis=(1, 2, 3), keepdims=True)) + 0.01)

    _check(text, tmp_path, want, lo=-0.1, hi=0.1)


def test_interp_shrink_and_crop(tmp_path):
    """interp_layer.cpp: crop by the pads, out = (n - 1) // shrink + 1, bilinear with aligned corners."""
    text = '''layer { name: "i" type: "Interp" bottom: "data" top: "y"
  interp_param { shrink_factor: 2 pad_beg: -1 pad_end: -1 } }'''

    def want(x, g):
        x = x[:, :, 1:-1, 1:-1].astype(np.float64)
        h, w = x.shape[2:]
        oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        ys = np.arange(oh) * ((h - 1) / (oh - 1) if oh > 1 else 0)
        xs = np.arange(ow) * ((w - 1) / (ow - 1) if ow > 1 else 0)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        g_ = lambda a, b: x[:, :, a][:, :, :, b]  # noqa: E731
        return (g_(y0, x0) * (1 - fy) * (1 - fx) + g_(y0, x1) * (1 - fy) * fx + g_(y1, x0) * fy * (1 - fx)
                + g_(y1, x1) * fy * fx)

    _check(text, tmp_path, want)


def test_ssd_priorbox_against_opencv(tmp_path):
    body = '''layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "prior" type: "PriorBox" bottom: "conv" bottom: "data" top: "y"
  prior_box_param { min_size: 4 max_size: 9 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: true
                    variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5 } }
layer { name: "prior2" type: "PriorBox" bottom: "conv" bottom: "data" top: "y2"
  prior_box_param { min_size: 3 aspect_ratio: 2 flip: false clip: false variance: 0.1 step: 2 } }'''
    check_everywhere(net((1, 3, 12, 16), body), tmp_path, [(1, 3, 12, 16), (2, 3, 9, 14), (1, 3, 20, 11)],
                     ["y", "y2"], tol=1e-5)


def test_fast_rcnn_roi_pooling_against_opencv(tmp_path):
    import cv2

    text = '''name: "frcnn"
input: "data" input_shape { dim: 1 dim: 3 dim: 20 dim: 24 }
input: "rois" input_shape { dim: 4 dim: 5 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "roi" type: "ROIPooling" bottom: "conv" bottom: "rois" top: "y"
  roi_pooling_param { pooled_w: 3 pooled_h: 2 spatial_scale: 0.5 } }'''
    proto, weights, g = seeded_files(text, tmp_path)
    sess = __import__("tests.caffe_helpers", fromlist=["onnx_session"]).onnx_session(g, tmp_path / "r.onnx")
    cvnet = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    cvnet.enableWinograd(False)
    import torch
    from zoo.convert.torch_module import CaffeModule

    m = CaffeModule(g)
    for i, (n, h, w) in enumerate([(1, 20, 24), (2, 17, 30), (1, 26, 19)]):
        rng = np.random.default_rng(i)
        x = rng.uniform(-2, 2, (n, 3, h, w)).astype(np.float32)
        x1, y1 = rng.uniform(0, w / 2, 4), rng.uniform(0, h / 2, 4)
        rois = np.stack([rng.integers(0, n, 4), x1, y1, x1 + rng.uniform(1, w / 2, 4), y1 + rng.uniform(1, h / 2, 4)],
                        1).astype(np.float32)
        cvnet.setInput(x, "data")
        cvnet.setInput(rois, "rois")
        want = cvnet.forward("roi")
        (got_o,) = sess.run(["y"], {"data": x, "rois": rois})
        with torch.no_grad():
            got_t = m({"data": torch.from_numpy(x), "rois": torch.from_numpy(rois)})["y"].numpy()
        assert rel_err(got_o, want) < 1e-6 and rel_err(got_t, want) < 1e-6


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_spp_follows_the_input_size(tmp_path, method):
    text = f'''layer {{ name: "spp" type: "SPP" bottom: "data" top: "y" spp_param {{ pyramid_height: 3 pool: {method} }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "y" top: "fc" inner_product_param {{ num_output: 3 }} }}'''
    sizes = [(1, 4, 6, 8), (2, 4, 9, 7), (1, 4, 12, 10)]
    g = _check(text, tmp_path, lambda x, g: ref.spp(x.astype(np.float64), 3, method), sizes)
    assert g.input_sizes() == "any"
    with pytest.raises(ConvertError, match="SPP level 2 cannot pool a size of 5"):
        g.shapes({"data": (1, 4, 8, 5)})
