"""SSD's DetectionOutput against OpenCV dnn: the two real SSD deploy nets (narrowed trunks, the heads as
upstream) and a tiny two-scale head in every parameter variant, torch and ONNX Runtime, batch 1 and 2.

OpenCV 4.x pads its output to keep_top_k rows per image with zero rows and lists the kept rows by score,
while Caffe (and zoo) lists them by image, then label, then score: rows are compared as sets, sorted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.caffe_helpers import onnx_session, run_opencv, run_torch
from zoo import convert

DATA = Path(__file__).parent / "data"
CLASSES = 5


def engineered(text: str, folder: Path, seed: int, conf_gain: float, loc_gain: float = 1.0
               ) -> tuple[Path, Path, convert.Graph]:
    """Seeded weights with the class heads made `conf_gain` times louder, so that scores pass the
    confidence threshold (random heads give every class about 1/classes), and the box heads
    `loc_gain` times (CORNER codes: offsets smaller than the priors, so that no box is inverted)."""
    from zoo.convert.emit_caffe import write_caffemodel

    proto, weights = folder / "net.prototxt", folder / "net.caffemodel"
    proto.write_text(text)
    g = convert.random_weights(convert.load_net(proto), seed)
    for layer in g.layers:
        gain = conf_gain if layer.name.endswith("mbox_conf") else loc_gain if layer.name.endswith("mbox_loc") else 1.0
        if layer.type == "Convolution" and gain != 1.0:
            layer.blobs = [b * np.float32(gain) for b in layer.blobs]
    write_caffemodel(g, weights)
    return proto, weights, convert.load_net(proto, weights)


def canonical(rows: np.ndarray) -> np.ndarray:
    """Real rows (OpenCV's zero padding dropped), sorted by image, label, then score descending."""
    rows = rows.reshape(-1, 7)
    rows = rows[np.any(rows != 0, axis=1)]
    return rows[np.lexsort((-rows[:, 2], rows[:, 1], rows[:, 0]))]


def assert_same_detections(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    got, ref = canonical(got), canonical(ref)
    assert len(got) == len(ref), (what, len(got), len(ref))
    assert np.array_equal(got[:, :2], ref[:, :2]), what
    np.testing.assert_allclose(got[:, 2], ref[:, 2], rtol=1e-4, atol=1e-6, err_msg=what)
    scale = max(float(np.abs(ref[:, 3:]).max()), 1e-6)
    assert float(np.abs(got[:, 3:] - ref[:, 3:]).max()) / scale <= 1e-4, what


def caffe_order(rows: np.ndarray) -> bool:
    """Images ascending, then labels ascending, then scores descending (detection_output_layer.cpp)."""
    r = rows.reshape(-1, 7)
    key = [(int(a), int(b), -float(c)) for a, b, c in r[:, :3]]
    return key == sorted(key)


@pytest.mark.parametrize("fixture, gain, least", [("ssd_mobilenet_voc_narrow.prototxt", 40.0, 5),
                                                  ("ssd300_voc_narrow.prototxt", 1.0, 100)])
def test_real_ssd_nets_match_opencv_at_batch_1_and_2(tmp_path, fixture, gain, least):
    proto, weights, g = engineered((DATA / fixture).read_text(), tmp_path, seed=0, conf_gain=gain)
    assert g.outputs == ["detection_out"]
    sess = onnx_session(g, tmp_path / "ssd.onnx")
    declared = sess.get_outputs()[0].shape
    assert declared[:2] == [1, 1] and declared[3] == 7 and isinstance(declared[2], str)  # D decided by the data
    for batch in (1, 2):
        x = np.random.default_rng(batch).uniform(-1, 1, (batch, 3, 300, 300)).astype(np.float32)
        ref = run_opencv(proto, weights, x, g, ["detection_out"])["detection_out"]
        got = sess.run(["detection_out"], {"data": x})[0]
        assert got.shape[:2] == (1, 1) and got.shape[3] == 7 and caffe_order(got)
        assert len(canonical(ref)) >= least * batch, len(canonical(ref))
        assert sorted(set(got[0, 0, :, 0].tolist())) == list(range(batch))
        assert_same_detections(got, ref, f"{fixture} onnx batch {batch}")
        if batch == 1:
            assert_same_detections(run_torch(g, x, ["detection_out"])["detection_out"], ref, f"{fixture} torch")


def _head(name: str, bottom: str, boxes: int, min_size: int, max_size: int) -> str:
    conv = 'layer {{ name: "{n}" type: "Convolution" bottom: "{b}" top: "{n}" convolution_param {{ num_output: {o} ' \
           'kernel_size: 3 pad: 1 }} }}\n'
    flat = ('layer {{ name: "{n}_perm" type: "Permute" bottom: "{n}" top: "{n}_perm" permute_param {{ order: 0 order: 2 '
            'order: 3 order: 1 }} }}\nlayer {{ name: "{n}_flat" type: "Flatten" bottom: "{n}_perm" top: "{n}_flat" }}\n')
    return (conv.format(n=f"{name}_mbox_loc", b=bottom, o=boxes * 4 * LOC_CLASSES[0]) + flat.format(n=f"{name}_mbox_loc")
            + conv.format(n=f"{name}_mbox_conf", b=bottom, o=boxes * CLASSES) + flat.format(n=f"{name}_mbox_conf")
            + f'layer {{ name: "{name}_prior" type: "PriorBox" bottom: "{bottom}" bottom: "data" top: "{name}_prior" '
              f'prior_box_param {{ min_size: {min_size} max_size: {max_size} aspect_ratio: 2 flip: true clip: false '
              'variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }\n')


LOC_CLASSES = [1]


def tiny_ssd(params: str, share: bool = True) -> str:
    """Two feature maps (8x8 and 4x4 at 32x32), four boxes each, five classes, then DetectionOutput."""
    LOC_CLASSES[0] = 1 if share else CLASSES
    t = ('name: "tiny_ssd"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'
         'layer { name: "f1" type: "Convolution" bottom: "data" top: "f1" convolution_param { num_output: 8 '
         'kernel_size: 3 stride: 4 pad: 1 } }\nlayer { name: "f1r" type: "ReLU" bottom: "f1" top: "f1" }\n'
         'layer { name: "f2" type: "Convolution" bottom: "f1" top: "f2" convolution_param { num_output: 8 '
         'kernel_size: 3 stride: 2 pad: 1 } }\n')
    t += _head("h1", "f1", 4, 8, 16) + _head("h2", "f2", 4, 16, 24)
    for part, axis in (("loc", 1), ("conf", 1), ("prior", 2)):
        src = "mbox_" + part if part != "prior" else "prior"
        t += (f'layer {{ name: "mbox_{part}" type: "Concat" bottom: "h1_{src}{"_flat" if part != "prior" else ""}" '
              f'bottom: "h2_{src}{"_flat" if part != "prior" else ""}" top: "mbox_{part}" concat_param {{ axis: {axis} }} }}\n')
    t += (f'layer {{ name: "r" type: "Reshape" bottom: "mbox_conf" top: "r" reshape_param {{ shape {{ dim: 0 dim: -1 '
          f'dim: {CLASSES} }} }} }}\nlayer {{ name: "s" type: "Softmax" bottom: "r" top: "s" softmax_param {{ axis: 2 }} }}\n'
          'layer { name: "sf" type: "Flatten" bottom: "s" top: "sf" }\n'
          'layer { name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc" bottom: "sf" bottom: "mbox_prior" '
          f'top: "detection_out" detection_output_param {{ num_classes: {CLASSES} share_location: {str(share).lower()} '
          f'{params} }} }}\n')
    return t


VARIANTS = {
    "ssd": "background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CENTER_SIZE "
           "keep_top_k: 20 confidence_threshold: 0.3",
    "no_keep_top_k": "background_label_id: 0 nms_param { nms_threshold: 0.3 top_k: 40 } code_type: CENTER_SIZE "
                     "confidence_threshold: 0.3",
    "background_2": "background_label_id: 2 nms_param { nms_threshold: 0.5 top_k: 8 } code_type: CENTER_SIZE "
                    "keep_top_k: 12 confidence_threshold: 0.35",
    "corner": "background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CORNER "
              "keep_top_k: 20 confidence_threshold: 0.3",
    "variance_in_target": "background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CENTER_SIZE "
                          "variance_encoded_in_target: true keep_top_k: 20 confidence_threshold: 0.3",
}


def opencv_twin(variant: str, text: str, g: convert.Graph, folder: Path) -> tuple[Path, Path]:
    """Files OpenCV reads that mean the same net: OpenCV insists on keep_top_k (a huge one keeps all)
    and on PriorBox variances with variance_encoded_in_target (offsets divided by the variances
    beforehand say the same thing)."""
    from zoo.convert.emit_caffe import write_caffemodel

    twin = g.copy()
    if variant == "no_keep_top_k":
        text = text.replace("confidence_threshold", "keep_top_k: 100000 confidence_threshold")
    if variant == "variance_in_target":
        text = text.replace("variance_encoded_in_target: true ", "")
        for layer in twin.layers:
            if layer.name.endswith("mbox_loc") and layer.blobs:
                per = np.tile(np.float32([0.1, 0.1, 0.2, 0.2]), len(layer.blobs[1]) // 4)
                layer.blobs = [layer.blobs[0] / per[:, None, None, None], layer.blobs[1] / per]
    proto, weights = folder / "twin.prototxt", folder / "twin.caffemodel"
    proto.write_text(text)
    write_caffemodel(twin, weights)
    return proto, weights


@pytest.mark.parametrize("variant", sorted(VARIANTS) + ["unshared"])
def test_tiny_ssd_head_matches_opencv(tmp_path, variant):
    text = tiny_ssd(VARIANTS.get(variant, VARIANTS["ssd"]), share=variant != "unshared")
    _, _, g = engineered(text, tmp_path, seed=1, conf_gain=3.0, loc_gain=0.1 if variant == "corner" else 1.0)
    proto, weights = opencv_twin(variant, text, g, tmp_path)
    sess = onnx_session(g, tmp_path / "t.onnx")
    for batch in (1, 2):
        x = np.random.default_rng(batch).uniform(-1, 1, (batch, 3, 32, 32)).astype(np.float32)
        ref = run_opencv(proto, weights, x, g, ["detection_out"])["detection_out"]
        assert len(canonical(ref)) >= 3 * batch
        for how, got in (("torch", run_torch(g, x, ["detection_out"])["detection_out"]),
                         ("onnx", sess.run(["detection_out"], {"data": x})[0])):
            assert caffe_order(got), how
            assert_same_detections(got, ref, f"{variant} {how} batch {batch}")


def test_corner_size_decoding_against_numpy():
    """CORNER_SIZE (OpenCV does not read it): corners moved by variance x offset x prior size."""
    import torch
    from zoo.convert.layers.detection import CORNER_SIZE, DetectionAttrs, decode

    rng = np.random.default_rng(0)
    prior = np.sort(rng.uniform(0, 1, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)  # x0 y0 x1 y1
    prior = prior[:, [0, 2, 1, 3]].astype(np.float32)
    var, loc = np.float32([0.1, 0.1, 0.2, 0.2]), rng.normal(size=(6, 4)).astype(np.float32)
    size = np.concatenate([prior[:, 2:] - prior[:, :2]] * 2, 1)
    a = DetectionAttrs(3, True, 0, 0.45, -1, -1, None, CORNER_SIZE, False)
    got = decode(a, torch.from_numpy(loc), torch.from_numpy(prior), torch.from_numpy(np.tile(var, (6, 1))))
    np.testing.assert_allclose(got.numpy(), prior + var * loc * size, rtol=1e-6)


def test_no_detection_is_one_row_of_minus_one(tmp_path):
    """detection_output_layer.cpp: when nothing passes, the top is (1, 1, 1, 7) filled with -1."""
    text = tiny_ssd(VARIANTS["ssd"].replace("confidence_threshold: 0.3", "confidence_threshold: 0.999"))
    _, _, g = engineered(text, tmp_path, seed=1, conf_gain=1.0)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    sess = onnx_session(g, tmp_path / "none.onnx")
    for got in (run_torch(g, x, ["detection_out"])["detection_out"], sess.run(["detection_out"], {"data": x})[0]):
        assert got.shape == (1, 1, 1, 7) and np.all(got == -1)


def test_corner_size_head_runs_the_same_in_onnx_and_torch(tmp_path):
    text = tiny_ssd(VARIANTS["corner"].replace("CORNER", "CORNER_SIZE"))
    _, _, g = engineered(text, tmp_path, seed=1, conf_gain=3.0, loc_gain=0.1)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    want = run_torch(g, x, ["detection_out"])["detection_out"]
    got = onnx_session(g, tmp_path / "cs.onnx").run(["detection_out"], {"data": x})[0]
    assert len(canonical(want)) >= 6
    assert_same_detections(got, want, "corner_size")
