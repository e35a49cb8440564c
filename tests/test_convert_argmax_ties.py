"""ArgMax ties: Caffe's argmax_layer.cpp partially sorts (value, index) pairs descending, so among equal
values the LAST index wins (SegNet's labels differ exactly at tied pixels otherwise). Checked against
a numpy reference of that rule, torch and ONNX Runtime, one ONNX session at two sizes and batches."""

from __future__ import annotations

import numpy as np
import pytest

from tests.caffe_helpers import onnx_session, run_torch, seeded_files
from tests.test_convert_defects import net

SIZES = [(1, 5, 4, 6), (2, 5, 7, 3)]


def caffe_topk(x: np.ndarray, k: int, axis: int | None, out_max_val: bool) -> np.ndarray:
    """argmax_layer.cpp in numpy: per slice, the pairs (value, index) in descending order, first k."""
    if axis is None:
        flat = x.reshape(x.shape[0], -1)
        rows = []
        for row in flat:
            pairs = sorted(((float(v), i) for i, v in enumerate(row)), reverse=True)[:k]
            rows.append([[i for _, i in pairs]] + ([[v for v, _ in pairs]] if out_max_val else []))
        return np.asarray(rows, dtype=np.float64)[..., None]
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1] + (k,))
    for pos in np.ndindex(moved.shape[:-1]):
        pairs = sorted(((float(v), i) for i, v in enumerate(moved[pos])), reverse=True)[:k]
        out[pos] = [v if out_max_val else i for v, i in pairs]
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("param, axis, k, values", [
    ("axis: 1", 1, 1, False), ("axis: 1 top_k: 3", 1, 3, False), ("axis: 3 top_k: 2", 3, 2, False),
    ("top_k: 4", None, 4, False), ("top_k: 2 out_max_val: true", None, 2, True),
])
def test_ties_take_the_last_index(tmp_path, param, axis, k, values):
    text = f'layer {{ name: "a" type: "ArgMax" bottom: "data" top: "y" argmax_param {{ {param} }} }}'
    _, _, g = seeded_files(net(SIZES[0], text), tmp_path)
    sess = onnx_session(g, tmp_path / "a.onnx")
    for i, shape in enumerate(SIZES):
        x = np.random.default_rng(i).integers(0, 3, shape).astype(np.float32)  # many ties
        want = caffe_topk(x, k, axis, values)
        for got in (run_torch(g, x, ["y"])["y"], sess.run(["y"], {sess.get_inputs()[0].name: x})[0]):
            assert got.shape == want.shape, (shape, got.shape, want.shape)
            assert np.array_equal(got, want), (shape, got.ravel()[:12], want.ravel()[:12])


def test_numpy_reference_is_last_index_on_a_tie():
    x = np.array([[[[1.0]], [[3.0]], [[3.0]], [[0.0]]]], np.float32)  # (1, 4, 1, 1): channels 1 and 2 tie
    assert caffe_topk(x, 1, 1, False).ravel().tolist() == [2.0]
    assert caffe_topk(x, 3, 1, False).ravel().tolist() == [2.0, 1.0, 0.0]
