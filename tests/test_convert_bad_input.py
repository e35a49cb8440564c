"""Bad input: one clear line naming the file and the problem, exit code 1, nothing left behind."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo.convert.errors import ConvertError
from zoo.convert.torch_module import CaffeModule

from tests.conftest import MODELS
from zoo import convert

DET3 = MODELS / "mtcnn" / "det3.prototxt"
DET3_W = MODELS / "mtcnn" / "det3.caffemodel"


def zoo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('name: "x"\ninput: "data"\nlayer {\n  name: "c"\n  type: "Convolution"\n  bottom "data"\n}\n')
    with pytest.raises(ConvertError, match=re.escape(f"{bad}:6:")):
        convert.load_net(bad)
    line = one_line_error(zoo("info", bad))
    assert f"{bad}:6:" in line


def test_unknown_layer_types_are_all_reported_at_once(tmp_path):
    p = tmp_path / "net.prototxt"
    p.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                 'layer { name: "a" type: "Frobnicate" bottom: "data" top: "a" }\n'
                 'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n'
                 'layer { name: "c" type: "Python" bottom: "b" top: "c" python_param { module: "m" layer: "L" } }\n'
                 'layer { name: "d" type: "Warp" bottom: "c" top: "d" }\n')
    with pytest.raises(ConvertError) as e:
        convert.load_net(p)
    msg = str(e.value)
    assert "a (Frobnicate)" in msg and "d (Warp)" in msg


def test_truncated_and_foreign_weights(tmp_path):
    data = DET3_W.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConvertError, match="truncated"):
        convert.load_net(DET3, cut)
    png = tmp_path / "image.caffemodel"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(ConvertError, match=str(png)):
        convert.load_net(DET3, png)
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(ConvertError, match="empty"):
        convert.load_net(DET3, empty)


def test_weights_that_do_not_match_the_prototxt(tmp_path):
    with pytest.raises(ConvertError, match="no weights for layers prelu1"):
        convert.load_net(DET3, MODELS / "mtcnn" / "det1.caffemodel")
    wrong = tmp_path / "det3_wide.prototxt"
    wrong.write_text(DET3.read_text().replace("num_output: 32", "num_output: 40", 1))
    with pytest.raises(ConvertError) as e:
        convert.load_net(wrong, DET3_W)
    msg = str(e.value)
    assert "conv1" in msg and "(32, 3, 3, 3)" in msg and "(40, 3, 3, 3)" in msg


def test_bottom_that_nothing_produces_and_cycles(tmp_path):
    p = tmp_path / "net.prototxt"
    p.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                 'layer { name: "r" type: "ReLU" bottom: "nowhere" top: "r" }\n')
    with pytest.raises(ConvertError, match="'nowhere', which no earlier layer produces"):
        convert.load_net(p)
    p.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                 'layer { name: "a" type: "Eltwise" bottom: "data" bottom: "b" top: "a" }\n'
                 'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n')
    with pytest.raises(ConvertError, match="'b', which no earlier layer produces"):
        convert.load_net(p)


def test_huge_input_is_refused_before_allocating():
    g = convert.load_net(DET3, DET3_W)
    g = g.truncated(["conv4"])
    m = CaffeModule(g)
    x = torch.empty((1, 3, 40000, 40000), device="meta")  # no memory behind it
    with pytest.raises(ConvertError, match="GiB"):
        m(x)
    with pytest.raises(ConvertError, match="too small|smaller"):
        m(torch.zeros(1, 3, 4, 4))


def test_input_that_does_not_fit_the_classifier():
    m = CaffeModule(convert.load_net(DET3, DET3_W))
    with pytest.raises(ConvertError, match="conv5"):
        m(torch.zeros(1, 3, 64, 64))


def test_cli_failures_leave_no_output(tmp_path):
    out = tmp_path / "out"
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(DET3_W.read_bytes()[:1000])
    line = one_line_error(zoo("convert", DET3, "--weights", cut, "-o", out))
    assert str(cut) in line
    assert list(tmp_path.iterdir()) == [cut]
    proc = zoo("convert", DET3, "--input-shape", "1,3")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_cli_convert_writes_every_format(tmp_path):
    proc = zoo("convert", DET3, "--weights", DET3_W, "-o", tmp_path / "det3", "-f", "onnx", "-f", "caffe", "-f", "pt")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["det3.caffemodel", "det3.deploy.prototxt", "det3.onnx", "det3.pt"]
    g = convert.load_net(tmp_path / "det3.deploy.prototxt", tmp_path / "det3.caffemodel")
    assert [lyr.name for lyr in g.layers] == [lyr.name for lyr in convert.load_net(DET3, DET3_W).layers]


def test_cli_info_table():
    proc = zoo("info", MODELS / "bvlc_googlenet" / "deploy.prototxt", "--input-shape", "1,3,224,224")
    assert proc.returncode == 0, proc.stderr
    assert "inception_4c/output" in proc.stdout and "512×14×14" in proc.stdout.replace("x", "×")
    assert "7.0M" in proc.stdout and "1.6G" in proc.stdout  # GoogLeNet: 7 M parameters, 1.6 G mult-adds


def test_train_val_becomes_deploy(tmp_path):
    """Data layers become an input, losses and the aux heads that only fed them go."""
    p = tmp_path / "train_val.prototxt"
    p.write_text('''name: "tv"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { crop_size: 16 mirror: true } data_param { source: "x" batch_size: 4 } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 16 } data_param { source: "y" batch_size: 2 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "aux/fc" type: "InnerProduct" bottom: "conv" top: "aux/fc" inner_product_param { num_output: 3 } }
layer { name: "aux/loss" type: "SoftmaxWithLoss" bottom: "aux/fc" bottom: "label" top: "aux/loss" loss_weight: 0.3 }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" include { phase: TRAIN } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }
''')
    g = convert.load_net(p)
    assert g.inputs == {"data": (2, 3, 16, 16)}
    assert [lyr.name for lyr in g.layers] == ["conv", "relu", "fc", "prob"]
    assert g.outputs == ["prob"]
    g = convert.load_net(p, input_shape=(1, 3, 20, 20))
    assert g.shapes()["prob"] == (1, 3)


def test_hdf5_weights_and_v1_caffemodel(tmp_path):
    import h5py

    g = convert.load_net(DET3, DET3_W)
    h5 = tmp_path / "det3.caffemodel.h5"
    with h5py.File(h5, "w") as f:
        for layer in g.layers:
            for i, b in enumerate(layer.blobs):
                f.create_dataset(f"data/{layer.name}/{i}", data=b)
    g2 = convert.load_net(DET3, h5)
    for a, b in zip(g.layers, g2.layers):
        assert all(np.array_equal(x, y) for x, y in zip(a.blobs, b.blobs))
    # a V1 caffemodel with legacy 4-D blobs: written with the V1 schema, read back through the upgrade
    from zoo.convert.proto import caffe_pb2

    net = caffe_pb2.NetParameter(name="v1")
    for layer in g.layers:
        if not layer.blobs:
            continue
        v1 = net.layers.add(name=layer.name, type=caffe_pb2.V1LayerParameter.CONVOLUTION)
        for b in layer.blobs:
            legacy = (1,) * (4 - b.ndim) + tuple(b.shape)
            blob = v1.blobs.add(num=legacy[0], channels=legacy[1], height=legacy[2], width=legacy[3])
            blob.data.extend(b.ravel().tolist())
    v1file = tmp_path / "v1.caffemodel"
    v1file.write_bytes(net.SerializeToString())
    g3 = convert.load_net(DET3, v1file)
    assert g3.layer("conv5").blobs[0].shape == g.layer("conv5").blobs[0].shape


def test_mean_file_and_its_metadata(tmp_path):
    import onnx

    mean = MODELS / "gender_net" / "mean.binaryproto"
    m = convert.read_mean(mean)
    assert m.shape == (3, 256, 256)
    assert np.allclose(m.mean(axis=(1, 2)), [78.42634, 87.76892, 114.89584], atol=1e-3)
    g = convert.random_weights(convert.load_net(MODELS / "gender_net" / "deploy_gender.prototxt", mean=mean))
    model = onnx.load(str(convert.write_onnx(g, tmp_path / "g.onnx")))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["mean"].startswith("78.42")
    bad = tmp_path / "mean.binaryproto"
    shutil.copy(DET3_W, bad)
    with pytest.raises(ConvertError, match=str(bad)):
        convert.read_mean(bad)


def test_convert_to_onnx_never_imports_torch(tmp_path):
    code = ("import sys; from zoo.cli import main; "
            f"rc = main(['convert', {str(DET3)!r}, '-w', {str(DET3_W)!r}, '-o', {str(tmp_path / 'd')!r}, '-f', 'onnx']); "
            "print(rc, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split()[-2:] == ["0", "False"], proc.stdout + proc.stderr
    assert (tmp_path / "d.onnx").is_file()


def test_the_three_ways_to_declare_an_input_and_dummy_data(tmp_path):
    body = 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n'
    forms = {
        "input_dim": 'input: "data" input_dim: 2 input_dim: 3 input_dim: 5 input_dim: 7\n',
        "input_shape": 'input: "data" input_shape { dim: 2 dim: 3 dim: 5 dim: 7 }\n',
        "Input layer": 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } } }\n',
        "DummyData": 'layer { name: "in" type: "DummyData" top: "data" dummy_data_param { num: 2 channels: 3 height: 5 width: 7 } }\n',
    }
    for form, head in forms.items():
        p = tmp_path / "net.prototxt"
        p.write_text(head + body)
        g = convert.load_net(p)
        assert g.inputs == {"data": (2, 3, 5, 7)}, form
        assert g.shapes()["r"] == (2, 3, 5, 7), form
    p.write_text('input: "data"\n' + body)
    with pytest.raises(ConvertError, match="--input-shape"):
        convert.load_net(p)
    assert convert.load_net(p, input_shape=(1, 3, 4, 4)).inputs == {"data": (1, 3, 4, 4)}
