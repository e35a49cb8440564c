"""User errors that were tracebacks, each one line now (exit 1, 2 for usage): seeds below zero, a
NaN noise spread, a mean or caffemodel whose shape is not sizes, unnamed layers (and names torch
reserves) as torch modules, an --out that cannot be made, a --name refused only after training."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.caffe_helpers import seeded_files
from zoo.cli import main

NET = """
name: "t"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "keys" type: "ReLU" bottom: "c" top: "r" }
layer { name: "training" type: "Convolution" bottom: "r" top: "d" convolution_param { num_output: 2 kernel_size: 1 } }
"""


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))


def one_line(capsys, code: int, args: list[str], *needles: str) -> str:
    assert main(args) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code == 1:  # one error line, last (a note such as "building the brain" may come before it)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and sum(x.startswith("error") for x in lines) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_negative_seed_is_refused_everywhere(tmp_path, capsys):
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe

    from zoo.errors import UserError

    one_line(capsys, 2, ["dream", "--init", "noise", "--size", "32", "-o", str(tmp_path / "o.png"), "--seed", "-1"],
             "--seed")
    one_line(capsys, 2, ["atlas", "--model", "efficientnet_lite0", "-o", str(tmp_path / "a"), "--seed", "-1"], "--seed")
    one_line(capsys, 2, ["train", "--dataset", str(tmp_path / "none"), "--seed", "-1", "--out", str(tmp_path / "r")],
             "--seed")  # a usage error (exit 2) from the option's one declaration, as for dream and atlas
    with pytest.raises(UserError, match="--seed -1"):
        Recipe(model="m", weights_sha256="", layers=(), params=DreamParams(), seed=-1)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "r").exists()


def test_nan_noise_spread_is_one_line(tmp_path, capsys):
    from zoo.dream.starts import make_start

    from zoo.errors import UserError

    for bad in ("nan", "inf", "-3", "1e400"):
        with pytest.raises(UserError, match="noise spread"):
            make_start(f"noise:{bad}", (8, 8), 0)
    with pytest.raises(UserError, match="gradient"):
        make_start("gradient:nan", (8, 8), 0)


def test_mean_with_dims_that_are_not_sizes(tmp_path, capsys):
    from zoo.convert.proto import caffe_pb2

    b = caffe_pb2.BlobProto()
    b.shape.dim.extend([-1, -2, 2])
    b.data.extend([0.0] * 4)
    mean = tmp_path / "mean.binaryproto"
    mean.write_bytes(b.SerializeToString())
    from zoo.convert import read_mean

    from zoo.errors import UserError

    with pytest.raises(UserError, match=r"mean\.binaryproto: mean blob shape \(-1, -2, 2\)"):
        read_mean(mean)


def _key(field: int, wt: int) -> bytes:
    return bytes([field << 3 | wt]) if field < 16 else bytes([(field << 3 | wt) & 0x7F | 0x80, (field << 3 | wt) >> 7])


def _len(field: int, body: bytes) -> bytes:
    assert len(body) < 128
    return _key(field, 2) + bytes([len(body)]) + body


def test_caffemodel_blob_dim_with_wire_type_5(tmp_path, capsys):
    shape = _key(1, 5) + struct.pack("<I", 4)  # BlobShape.dim as a fixed32: not what int64 is written as
    blob = _len(7, shape) + _len(5, np.zeros(4, "<f4").tobytes())
    layer = _len(1, b"conv") + _len(2, b"Convolution") + _len(7, blob)
    model = tmp_path / "w.caffemodel"
    model.write_bytes(_len(100, layer))
    from zoo.convert.weights import read_caffemodel

    from zoo.errors import UserError

    with pytest.raises(UserError, match=r"w\.caffemodel: not a Caffe caffemodel \(a blob shape dim has wire type 5"):
        read_caffemodel(model)


def test_unnamed_layer_and_reserved_names_become_torch_modules(tmp_path, capsys):
    import torch
    from zoo.convert.torch_module import CaffeModule

    proto, weights, g = seeded_files(NET, tmp_path)
    assert main(["convert", str(proto), "-w", str(weights), "-f", "pt", "-o", str(tmp_path / "out")]) == 0, \
        capsys.readouterr().err
    x = torch.rand(1, 3, 16, 16)
    y = CaffeModule(g)({g.input_names[0] if hasattr(g, "input_names") else next(iter(g.inputs)): x})
    assert set(y) >= {"d"}


def test_out_that_cannot_be_made_and_a_bad_name_come_before_any_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    missing = tmp_path / "empty-dataset"  # a folder: refused only when read, after --out is made
    missing.mkdir()
    missing = str(missing)
    one_line(capsys, 1, ["train", "--dataset", missing, "--out", str(blocker / "run")], "a-file/run", "cannot create")
    one_line(capsys, 2, ["train", "--dataset", missing, "--out", str(tmp_path / "r"), "--name", ".."], "--name")
    assert not (tmp_path / "r").exists()


LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes past the limit fail
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from zoo.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_safetensors_on_a_full_disk_leaves_no_onnx_behind(tmp_path):
    """det3's ONNX (1.56 MB) fits under the limit, its safetensors (1.57 MB) does not: one line, and
    neither file is there (the outputs of a convert appear together or not at all)."""
    import subprocess
    import sys

    from tests.conftest import SHARED, shared_or_skip

    models = shared_or_skip(SHARED / "models" / "mtcnn")
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run([sys.executable, "-c", LIMITED, "1560000", "convert", str(models / "det3.prototxt"), "-w",
                        str(models / "det3.caffemodel"), "-o", str(out / "det3"), "-f", "onnx", "-f", "safetensors"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.count("\n") == 1 and "cannot write" in p.stderr, p.stderr
    assert list(out.iterdir()) == []


def test_a_failed_name_registration_leaves_no_outputs(tmp_path, capsys):
    proto, weights, _ = seeded_files(NET, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # the net is fine, the registration is not: --mean-pixel with five values for three channels
    code = main(["convert", str(proto), "-w", str(weights), "-o", str(out / "n"), "--name", "okname",
                 "--mean-pixel", "1,2,3,4,5"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert list(out.iterdir()) == []


def test_a_read_only_zoo_home_dreams_with_a_built_brain(tmp_path, capsys):
    """Once efficientnet_lite0 is built, dreaming writes nothing into $ZOO_HOME (no lock file): every
    folder of it made immutable (chattr +i, which holds even for root), a dream still runs."""
    import os
    import shutil
    import subprocess

    home = Path(os.environ["ZOO_HOME"])
    assert main(["fetch", "efficientnet_lite0"]) == 0
    folders = [home, *(p for p in home.rglob("*") if p.is_dir())]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(home)]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        for d in folders:
            subprocess.run(["chattr", "+i", str(d)], check=True)
        out = tmp_path / "dream.png"
        code = main(["dream", "--init", "noise", "--size", "32", "--octaves", "1", "--iterations", "1",
                     "-m", "efficientnet_lite0", "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 0 and out.is_file(), err
    finally:
        for d in folders:
            subprocess.run(["chattr", "-i", str(d)])


@pytest.mark.parametrize("bad", [{"iter": [1]}, {"model": {"w": "not a tensor"}}, {"classes": "ab"},
                                 {"config": {"max_iter": "many"}}, {"rng": {"torch": 1}}, {"optimizer": []}])
def test_checkpoint_with_wrong_field_types_is_one_line(tmp_path, capsys, bad):
    import torch

    run = tmp_path / "run"
    run.mkdir()
    state = {"model": {"w": torch.zeros(2)}, "optimizer": {"state": {}, "param_groups": []}, "iter": 1,
             "config": {"dataset": str(tmp_path), "max_iter": 2}, "classes": ["a", "b"], **bad}
    torch.save(state, run / "ckpt.pt")
    key = next(iter(bad))
    one_line(capsys, 1, ["train", "--out", str(run), "--resume"], "ckpt.pt", repr(key) if key != "config" else
             "'max_iter'")
    one_line(capsys, 1, ["export", str(run), "--name", "fromrun"], "ckpt.pt")


def test_an_8x8_clip_dreams_without_a_flow_error(tmp_path, capsys):
    """OpenCV's DIS flow refuses frames under 12 pixels a side (a cv2.error after the first frame was
    written): tiny frames are edge-padded for the flow, which is cropped back to the frame."""
    av = pytest.importorskip("av")
    from zoo.dream.flow import flow

    a = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    for method in ("dis", "farneback"):
        f = flow(a, np.roll(a, 1, axis=1), method)
        assert f.shape == (8, 8, 2) and np.isfinite(f).all()
    clip = tmp_path / "tiny.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width = s.height = 8
        s.pix_fmt = "yuv420p"
        for i in range(3):
            frame = np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "out.mp4"
    code = main(["dream", str(clip), "-o", str(out), "-m", "efficientnet_lite0", "--layer", "stem", "--octaves", "1",
                 "--iterations", "1", "--frame-iterations", "1"])
    err = capsys.readouterr().err
    assert code == 0 and out.is_file() and "Traceback" not in err, err


def test_a_gif_decompression_bomb_is_one_line(tmp_path, capsys):
    """A 60-byte GIF declaring a 30000x30000 screen: refused by name before any decoding, whether zoo
    first asks if it is an animation or reads it as a still."""
    w = h = 30000
    gif = (b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff" + b"\x2c"
           + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00\x3b")
    bomb = tmp_path / "bomb.gif"
    bomb.write_bytes(gif)
    one_line(capsys, 1, ["dream", str(bomb), "-o", str(tmp_path / "o.png"), "-m", "efficientnet_lite0"],
             "bomb.gif", "million pixels")
    assert not (tmp_path / "o.png").exists()


def test_nproc_2_failure_is_one_line_not_torchrun_report(tmp_path):
    """Two ranks that both fail: their error is said once, and neither the ranks' tracebacks nor
    torchrun's report (ChildFailedError, ===== blocks) reach the user."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home")}
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "train", "--nproc", "2", "--model", "efficientnet_lite0",
                        "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "run")], capture_output=True,
                       text=True, env=env, timeout=300)
    errors = [x for x in p.stderr.splitlines() if x.startswith("error")]
    assert p.returncode == 1 and len(errors) == 1, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "ChildFailedError" not in p.stderr and "=====" not in p.stderr


def _immutable(folder: Path) -> bool:
    """chattr +i on `folder` (which holds even for root, unlike chmod); False where it cannot be done."""
    import shutil
    import subprocess

    return shutil.which("chattr") is not None and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0


def test_a_clip_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys):
    """-o into a folder nobody may write to (immutable): one line naming what could not be written
    (the clip's frame folder beside the output), exit 1, and nothing appears there."""
    import subprocess

    pytest.importorskip("av")
    from tests.video_helpers import make_clip

    clip = make_clip(tmp_path / "c.mp4", n=3, side=32, audio=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    if not _immutable(locked):
        pytest.skip("chattr +i is not available here")
    try:
        one_line(capsys, 1, ["dream", str(clip), "-o", str(locked / "out.mp4"), "-m", "efficientnet_lite0",
                             "--layer", "stem", "--octaves", "1", "--iterations", "1", "--frame-iterations", "1"],
                 "locked/out", "not permitted")
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(locked)])


def test_a_clip_on_a_full_disk_is_one_line_and_leaves_no_half_video(tmp_path):
    """The disk fills (RLIMIT_FSIZE: no file over 12 kB) while the built-in brain is built and the
    clip's frames are written: one line, exit 1, and no out.mp4 (a half-written video never takes
    the output's name)."""
    import subprocess
    import sys

    pytest.importorskip("av")
    from tests.video_helpers import make_clip

    clip = make_clip(tmp_path / "c.mp4", n=6, side=96, audio=False)
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    env = {**__import__("os").environ, "ZOO_HOME": str(tmp_path / "home")}
    p = subprocess.run([sys.executable, "-c", LIMITED, "12000", "dream", str(clip), "-o", str(out), "-m",
                        "efficientnet_lite0", "--layer", "stem", "--octaves", "1", "--iterations", "1",
                        "--frame-iterations", "1"], capture_output=True, text=True, timeout=300, env=env)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert err[-1].startswith("error: ") and sum(x.startswith("error") for x in err) == 1, p.stderr
    assert not out.exists()


def test_a_missing_dataset_is_refused_before_the_run_folder_or_the_brain(tmp_path, capsys):
    """No --out folder made, and no brain fetched (offline that was a network error first)."""
    one_line(capsys, 1, ["train", "--dataset", str(tmp_path / "gone"), "--out", str(tmp_path / "run")],
             "gone: no such folder")
    assert not (tmp_path / "run").exists() and not (tmp_path / "home" / "models").exists()


def test_info_on_a_fifo_says_what_it_is(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line(capsys, 1, ["info", str(fifo)], "pipe: not a regular file")


@pytest.mark.parametrize("command", [["dream", "--size", "24"], ["dream"], ["classify"]])
def test_a_picture_that_declares_no_pixels_is_one_line(tmp_path, capsys, command):
    """A JPEG behind HDF5's eight magic bytes opens in PIL as a 0x0 image (its HDF5 stub); with
    --size that was a ZeroDivisionError traceback (found by scripts/fuzz_cli.py)."""
    from PIL import Image

    jpeg = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8), "red").save(jpeg)
    odd = tmp_path / "odd.jpg"
    odd.write_bytes(b"\x89HDF\r\n\x1a\n" + jpeg.read_bytes())
    out = tmp_path / "out.png"
    args = [command[0], str(odd), "-m", "efficientnet_lite0", *command[1:]] + (["-o", str(out)] if command[0] == "dream" else [])
    err = one_line(capsys, 1, args, "odd.jpg")
    assert "0x0" in err or "cannot decode" in err, err
    assert not out.exists()


def _png_with_exif(path: Path, exif: bytes) -> Path:
    """A 16x8 PNG with an eXIf chunk right after IHDR (where PIL writes it)."""
    import io
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 120, 40)).save(buf, format="PNG")
    png = buf.getvalue()
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    path.write_bytes(png[:33] + chunk + png[33:])
    return path


def test_exif_cut_short_is_one_line_and_damaged_exif_is_read_past_quietly(tmp_path, capsys):
    """EXIF ending inside its TIFF header (struct.error in PIL: a traceback in `zoo dream` before) is
    one line; EXIF whose description claims more bytes than there are (PIL skips the tag with a
    UserWarning: two lines of PIL's source on stderr before) dreams, turned by its orientation, and
    says nothing of it."""
    from PIL import Image

    cut = _png_with_exif(tmp_path / "cut.png", b"Exif\x00\x00MM\x00*")
    one_line(capsys, 1, ["dream", str(cut), "-m", "efficientnet_lite0", "-o", str(tmp_path / "a.png")], "cut.png")
    exif = Image.Exif()
    exif[0x0112], exif[0x010E] = 6, "hello"
    raw = bytearray(exif.tobytes())
    raw[20:24] = struct.pack(">I", 0x00FF0006)  # the description's count: far past the end of the block
    lying = _png_with_exif(tmp_path / "lying.png", bytes(raw))
    out = tmp_path / "b.png"
    assert main(["dream", str(lying), "-m", "efficientnet_lite0", "--size", "32", "--iterations", "1", "--octaves",
                 "1", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Warning" not in err and "PIL" not in err, err
    assert Image.open(out).size == (32, 64)  # orientation 6: 16x8 is shown 8 wide, 16 tall; --size 32 is its width
