"""Issue 8's converter cases: malformed layers and weights, and outputs that cannot be written,
each one line on stderr (exit 1), no traceback, no partial output left behind."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from zoo.convert.errors import ConvertError

from tests.test_convert_bad_input import DET3, DET3_W, one_line_error, zoo
from zoo import convert

HEAD = 'input: "data" input_dim: 1 input_dim: 4 input_dim: 6 input_dim: 6\n'


@pytest.mark.parametrize("layer", [
    'layer { name: "x" type: "ReLU" top: "x" }',
    'layer { name: "x" type: "Concat" top: "x" }',
    'layer { name: "x" type: "Eltwise" top: "x" }',
    'layer { name: "x" type: "LRN" top: "x" }',
    'layer { name: "x" type: "Slice" top: "x" top: "y" }',
    'layer { name: "x" type: "Split" top: "x" }',
    'layer { name: "x" type: "Reshape" top: "x" reshape_param { shape { dim: 0 } } }',
    'layer { name: "x" type: "Flatten" top: "x" }',
    'layer { name: "x" type: "Crop" bottom: "data" top: "x" }',
    'layer { name: "x" type: "Crop" bottom: "data" bottom: "data" bottom: "data" top: "x" }',
    'layer { name: "x" type: "Reshape" bottom: "data" top: "x" '
    'reshape_param { shape { dim: 0 dim: 0 dim: 0 dim: 0 dim: 0 } } }',
])
def test_layers_with_missing_or_extra_bottoms(tmp_path, layer):
    p = tmp_path / "net.prototxt"
    p.write_text(HEAD + layer + "\n")
    with pytest.raises(ConvertError, match="'x'"):
        convert.load_net(p)
    if "ReLU" in layer:  # the CLI path once (each run is a subprocess)
        assert "'x'" in one_line_error(zoo("info", p))


def _h5(path, build):
    import h5py

    with h5py.File(path, "w") as f:
        build(f)
    return path


@pytest.mark.parametrize("build,match", [
    (lambda f: f.create_dataset("data", data=np.zeros(4, np.float32)), "no /data group"),
    (lambda f: f.create_dataset("data/conv1", data=np.zeros(4, np.float32)), "/data/conv1 is a dataset"),
    (lambda f: f.create_dataset("data/conv1/0", shape=(75 * 2**28,), dtype="f4", chunks=(1 << 16,)),
     "declares 75.0 GiB"),
    (lambda f: f.create_dataset("data/conv1/w", data=np.zeros(4, np.float32)), "not blobs named 0, 1"),
])
def test_malformed_hdf5_weights(tmp_path, build, match):
    h5 = _h5(tmp_path / "w.caffemodel.h5", build)
    assert h5.stat().st_size < 1 << 20
    with pytest.raises(ConvertError, match=match):
        convert.load_net(DET3, h5)
    if "GiB" in match:
        assert match in one_line_error(zoo("convert", DET3, "-w", h5, "-o", tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.caffemodel.h5"]


def test_a_missing_output_folder_is_made(tmp_path):
    """The README's `zoo convert deploy.prototxt --weights net.caffemodel -o out/net` on a fresh folder."""
    proc = zoo("convert", DET3, "-w", DET3_W, "-o", tmp_path / "out" / "net")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["net.onnx", "net.safetensors"]


def test_output_path_through_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(zoo("convert", DET3, "-w", DET3_W, "-o", blocker / "det3"))
    assert "not a folder" in line and str(blocker) in line


@contextlib.contextmanager
def immutable(folder):
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)])


def test_read_only_or_immutable_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with immutable(out):
        line = one_line_error(zoo("convert", DET3, "-w", DET3_W, "-o", out / "det3", "-f", "onnx", "-f", "caffe"))
        assert "cannot write" in line and "nothing written" in line
        assert list(out.iterdir()) == []


LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes past the limit fail with an OSError
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from zoo.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_full_disk_leaves_neither_caffe_file(tmp_path):
    """-f caffe: the prototxt fits, the caffemodel does not; neither may be left behind."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", LIMITED, "60000", "convert", str(DET3), "-w", str(DET3_W),
                           "-o", str(out / "det3"), "-f", "caffe"], capture_output=True, text=True, timeout=120)
    line = one_line_error(proc)
    assert "cannot write" in line
    assert list(out.iterdir()) == []
    proc = subprocess.run([sys.executable, "-c", LIMITED, "60000", "convert", str(DET3), "-w", str(DET3_W),
                           "-o", str(out / "det3"), "-f", "onnx", "-f", "pt"], capture_output=True, text=True,
                          timeout=120)
    assert "cannot write" in one_line_error(proc)
    assert list(out.iterdir()) == []


def test_a_failed_convert_takes_away_the_folders_it_made_for_o(tmp_path):
    """-o out/a/b/det3 on a "full disk": the three folders made for it are gone again, out/ stays."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", LIMITED, "60000", "convert", str(DET3), "-w", str(DET3_W),
                           "-o", str(out / "a" / "b" / "c" / "det3"), "-f", "caffe"], capture_output=True, text=True,
                          timeout=120)
    assert "cannot write" in one_line_error(proc)
    assert list(out.iterdir()) == []


def test_output_name_with_a_dot_keeps_it(tmp_path):
    proc = zoo("convert", DET3, "-w", DET3_W, "-o", tmp_path / "det3.v2", "-f", "onnx", "-f", "caffe")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det3.v2.caffemodel", "det3.v2.deploy.prototxt",
                                                          "det3.v2.onnx"]


def test_duplicate_names_are_said_once_on_the_cli(tmp_path):
    p = tmp_path / "dup.prototxt"
    p.write_text(HEAD + 'layer { name: "r" type: "ReLU" bottom: "data" top: "a" }\n'
                 'layer { name: "r" type: "ReLU" bottom: "a" top: "b" }\n')
    proc = zoo("info", p)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("r_1") == 1 and "Traceback" not in proc.stderr


def test_python_layer_is_reported_by_name(tmp_path):
    p = tmp_path / "frcnn.prototxt"
    p.write_text(HEAD + 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
                 'convolution_param { num_output: 2 kernel_size: 1 } }\n'
                 'layer { name: "proposal" type: "Python" bottom: "conv" bottom: "data" top: "rois" '
                 "python_param { module: 'rpn.proposal_layer' layer: 'ProposalLayer' } }\n")
    line = one_line_error(zoo("info", p))
    assert "proposal (Python layer rpn.proposal_layer.ProposalLayer: runs Python code, not convertible)" in line




def test_detection_output_whose_bottoms_do_not_match_names_the_layer(tmp_path):
    p = tmp_path / "ssd.prototxt"
    p.write_text(HEAD + 'layer { name: "detection_out" type: "DetectionOutput" bottom: "data" bottom: "data" '
                 'bottom: "data" top: "det" detection_output_param { num_classes: 21 share_location: true '
                 'background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 400 } code_type: CENTER_SIZE '
                 'keep_top_k: 200 confidence_threshold: 0.01 } }\n')
    with pytest.raises(ConvertError, match="'detection_out': its third bottom must be PriorBox's"):
        convert.load_net(p)
