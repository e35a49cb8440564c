"""The fast convert path: the ONNX wire writer, safetensors weights, and what the command imports."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from zoo.convert.emit_safetensors import load_safetensors, save_safetensors, tensor_key
from zoo.convert.errors import ConvertError
from zoo.convert.proto import caffe_pb2

from tests.conftest import MODELS, shared_or_skip
from zoo import convert

NSFW = MODELS / "open_nsfw" / "deploy.prototxt"
NSFW_W = MODELS / "open_nsfw" / "resnet_50_1by2_nsfw.caffemodel"
DET3 = MODELS / "mtcnn" / "det3.prototxt"
DET3_W = MODELS / "mtcnn" / "det3.caffemodel"


def caffe_blobs(caffemodel) -> dict[str, list[np.ndarray]]:
    """Every layer's blobs as float32, read by protobuf's own parser (independent of our reader)."""
    net = caffe_pb2.NetParameter.FromString(caffemodel.read_bytes())
    out = {}
    for layer in list(net.layer) + list(net.layers):
        if layer.blobs:
            out[layer.name] = [np.asarray(b.data if len(b.data) else b.double_data, dtype=np.float32)
                               for b in layer.blobs]
    return out


def read_safetensors_raw(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The file parsed by hand from its documented layout: u64 header size, JSON header, buffer."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    arrays = {}
    for key, info in header.items():
        assert info["dtype"] == "F32", key
        a, b = info["data_offsets"]
        arrays[key] = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(info["shape"])
    return meta, arrays


def test_safetensors_round_trip_equals_the_caffemodel_bit_for_bit(tmp_path):
    shared_or_skip(NSFW_W)
    g = convert.load_net(NSFW, NSFW_W)
    path = save_safetensors(g, tmp_path / "nsfw.safetensors")
    ref = caffe_blobs(NSFW_W)
    meta, raw = read_safetensors_raw(path)
    back = load_safetensors(path)
    assert [lyr.name for lyr in back.layers] == [lyr.name for lyr in g.layers]
    checked = 0
    for layer in back.layers:
        assert len(layer.blobs) == len(ref.get(layer.name, [])), layer.name
        for name, got, want in zip(layer.blob_names, layer.blobs, ref.get(layer.name, [])):
            assert got.dtype == np.float32
            assert got.tobytes() == want.tobytes(), (layer.name, name)  # bit for bit, shape aside
            assert raw[tensor_key(layer.name, name)].tobytes() == want.tobytes()
            checked += 1
    assert checked == sum(len(v) for v in ref.values()) > 100
    info = json.loads(meta["zoo_graph"])
    assert [x["name"] for x in info["layers"]] == [lyr.name for lyr in g.layers]
    assert back.outputs == g.outputs and back.inputs == g.inputs


def test_safetensors_module_computes_what_the_caffemodel_does(tmp_path):
    """The loaded file as a torch module against OpenCV dnn on the original caffemodel."""
    import cv2
    from zoo.convert.emit_safetensors import load_module

    shared_or_skip(DET3_W)
    g = convert.load_net(DET3, DET3_W)
    m = load_module(save_safetensors(g, tmp_path / "det3.safetensors"))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 48, 48)).astype(np.float32)
    cv = cv2.dnn.readNetFromCaffe(str(DET3), str(DET3_W))
    cv.setInput(x)
    import torch

    got = m(torch.from_numpy(x))
    for out in g.outputs:
        want = cv.forward(out)
        assert np.allclose(got[out].detach().numpy().reshape(want.shape), want, atol=1e-4), out


def test_load_safetensors_refuses_foreign_and_broken_files(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(ConvertError, match="not a zoo .safetensors"):
        load_safetensors(foreign)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff" * 64)
    with pytest.raises(ConvertError, match=str(broken)):
        load_safetensors(broken)
    pickle = tmp_path / "pickle.safetensors"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)  # a pickle's opening bytes: never unpickled
    with pytest.raises(ConvertError, match=str(pickle)):
        load_safetensors(pickle)


def test_default_convert_imports_neither_torch_nor_onnx_nor_typers_coercion(tmp_path):
    """torch, the onnx package, typer's pydantic coercion and rich: each a large part of a conversion."""
    shared_or_skip(DET3_W)
    code = ("import sys; from zoo.cli import main; "
            f"rc = main(['convert', {str(DET3)!r}, '-w', {str(DET3_W)!r}, '-o', {str(tmp_path / 'd')!r}]); "
            "print(rc, *(m in sys.modules for m in ('torch', 'onnx', 'pydantic', 'rich')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split()[-5:] == ["0", "False", "False", "False", "False"], proc.stdout + proc.stderr
    assert f"wrote {tmp_path / 'd.onnx'}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx", "d.safetensors"]


def test_wire_written_onnx_passes_the_checker_and_runs(tmp_path):
    """Our own protobuf writer, read by onnx (checker, strict shape inference) and ONNX Runtime
    against OpenCV dnn on the caffemodel."""
    import cv2
    import onnx
    import onnxruntime as ort

    shared_or_skip(NSFW_W)
    g = convert.load_net(NSFW, NSFW_W)
    path = convert.write_onnx(g, tmp_path / "nsfw.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert model.opset_import[0].version == 17 and model.producer_name == "zoo"
    assert {p.key for p in model.metadata_props} >= {"source", "channel_order", "input_layout"}
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    cv = cv2.dnn.readNetFromCaffe(str(NSFW), str(NSFW_W))
    cv.setInput(x)
    want = cv.forward()
    assert np.allclose(got.reshape(want.shape), want, atol=1e-4)


def test_wire_attributes_match_onnx_helper():
    """Each attribute kind the handlers pass, encoded by us and by onnx.helper: same message."""
    from onnx import AttributeProto, helper
    from zoo.convert.emit_onnx import encode_attribute

    for name, value in [("axis", 1), ("axis", -1), ("alpha", 0.1), ("to", 1), ("kernel_shape", [3, 3]),
                        ("pads", [0, -1, 2, 3]), ("scales", [1.0, 2.5]), ("mode", "nearest"),
                        ("names", ["a", "b"]), ("transB", True)]:
        ours = AttributeProto.FromString(encode_attribute(name, value))
        assert ours == helper.make_attribute(name, value), (name, value)


def test_pt_stays_available(tmp_path):
    shared_or_skip(DET3_W)
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "convert", str(DET3), "-w", str(DET3_W), "-o",
                           str(tmp_path / "d"), "-f", "pt"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pt"]
