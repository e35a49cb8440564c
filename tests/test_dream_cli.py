"""`zoo dream`, `zoo layers` and `zoo atlas` end to end, with efficientnet_lite0 registered by `zoo convert --name`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from zoo.dream.sequence import zoom_rotate

from tests.conftest import SHARED, interruptible
from zoo.cli import main

EFF = SHARED / "models" / "efficientnet_lite0"
MODEL = "effl0_test"


@pytest.fixture(scope="module")
def registered_home(tmp_path_factory):
    """A ZOO_HOME where `zoo convert --name` has registered the shared efficientnet_lite0 files."""
    home = tmp_path_factory.mktemp("dream_zoo_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        code = main(["convert", str(EFF / "deploy.prototxt"), "-w", str(EFF / "efficientnet_lite0.caffemodel"),
                     "--name", MODEL, "-o", str(home), "-f", "onnx"])
    assert code == 0
    return home


@pytest.fixture
def zoo_home(registered_home, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(registered_home))
    return registered_home


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((128, 128), Image.LANCZOS).save(path)
    return path


def _activation(path: Path, blob: str) -> float:
    from zoo.dream.brain import load_brain

    brain = load_brain(MODEL)
    x = torch.from_numpy(brain.preprocess.to_net(np.asarray(Image.open(path).convert("RGB"), np.float32)))[None]
    with torch.no_grad():
        return float(brain.net_for([blob])(x, outputs=[blob])[blob].pow(2).mean())


def test_dream_raises_the_target_activation_and_reproduces_bit_identically(zoo_home, astronaut, tmp_path):
    out = tmp_path / "dream.png"
    args = [str(astronaut), "-o", str(out), "--model", MODEL, "--layer", "head", "--octaves", "2",
            "--iterations", "5", "--jitter", "8", "--seed", "3"]
    assert main(["dream", *args]) == 0
    before, after = np.asarray(Image.open(astronaut)), np.asarray(Image.open(out))
    assert after.shape == before.shape and np.abs(after.astype(int) - before).mean() > 2
    assert _activation(out, "head") >= 2 * _activation(astronaut, "head")
    with Image.open(out) as im:
        recipe = json.loads(im.text["zoo:recipe"])
    assert recipe["model"] == MODEL and recipe["layers"] == ["head"] and recipe["seed"] == 3
    assert recipe["weights_sha256"] == "0e0359f119522f8372773e6fbaf5f1f11dd7b151d4f066de556464008b522053"
    assert recipe["params"]["octaves"] == 2 and recipe["params"]["tile"] > 0 and recipe["version"]
    again = tmp_path / "again.png"
    assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_guide_channels_and_generated_starts(zoo_home, tmp_path):
    guide = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).resize((96, 64)).save(guide)
    out = tmp_path / "guided.png"
    assert main(["dream", "--init", "gradient", "--size", "64x48", "-o", str(out), "--model", MODEL,
                 "--layer", "block7/output", "--guide", str(guide), "--octaves", "1", "--iterations", "2"]) == 0
    assert Image.open(out).size == (64, 48)
    out2 = tmp_path / "chans.png"
    assert main(["dream", "--init", "noise", "--size", "48", "-o", str(out2), "--model", MODEL,
                 "--layer", "block7/output:3,5", "--layer", "head", "--weight", "2", "--weight", "0.5",
                 "--octaves", "1", "--iterations", "2"]) == 0
    with Image.open(out2) as im:
        assert json.loads(im.text["zoo:recipe"])["weights"] == [2.0, 0.5] and im.size == (48, 48)


def test_bad_input_is_one_line_exit_1_and_no_output(zoo_home, astronaut, tmp_path, capsys):
    out = tmp_path / "x.png"
    cases = [
        (["--layer", "block99/output"], "has no dreamable blob 'block99/output'; dreamable blobs: "),
        (["--layer", "block7/output:80"], "'block7/output' has 80 channels (0-79); channel 80 is out of range"),
        (["--size", "12"], "is too small for"),
    ]
    for extra, message in cases:
        assert main(["dream", str(astronaut), "-o", str(out), "--model", MODEL, "--iterations", "1", *extra]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    assert main(["dream", str(bad), "-o", str(out), "--model", MODEL]) == 1
    assert "bad.jpg: cannot decode as an image" in capsys.readouterr().err
    assert main(["dream", str(astronaut), "-o", str(tmp_path / "missing" / "x.png"), "--model", MODEL]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["dream", str(astronaut), "-o", str(out), "--octaves", "0"]) == 2  # a usage error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]


def test_layers_lists_blobs_with_channels(zoo_home, capsys):
    """Each listed blob's channels and shape are what OpenCV dnn computes on the real files (not what the
    code under test says); the default is marked once."""
    import cv2

    assert main(["layers", MODEL]) == 0
    text = capsys.readouterr().out
    rows = [re.match(r"(\S+?)( \(default\))?\t(\d+)\t(\d+(?:×\d+)+)\t", line) for line in text.splitlines()]
    rows = [m for m in rows if m]
    assert len(rows) >= 4 and sum(1 for m in rows if m.group(2)) == 1, text
    net = cv2.dnn.readNetFromCaffe(str(EFF / "deploy.prototxt"), str(EFF / "efficientnet_lite0.caffemodel"))
    net.setInput(np.zeros((1, 3, 224, 224), np.float32))
    producers = {}
    for block in re.findall(r"layer \{.*?\n\}", (EFF / "deploy.prototxt").read_text(), re.S):
        name = re.search(r'name: "([^"]+)"', block).group(1)
        for top in re.findall(r'top: "([^"]+)"', block):
            producers[top] = name  # a blob's value is the output of its last writer
    outs = net.forward([producers[m.group(1)] for m in rows])
    for m, out in zip(rows, outs):
        shape = tuple(out.shape[1:])
        assert int(m.group(3)) == shape[0] and m.group(4) == "×".join(map(str, shape)), (m.group(0), shape)


def test_zoom_sequence_writes_frames_and_animation(zoo_home, astronaut, tmp_path):
    anim = tmp_path / "zoom.gif"
    assert main(["dream", str(astronaut), "--size", "48", "-o", str(anim), "--model", MODEL, "--frames", "3",
                 "--zoom", "1.1", "--rotate", "5", "--octaves", "1", "--iterations", "1"]) == 0
    with Image.open(anim) as im:
        assert im.n_frames == 3 and im.size == (48, 48)
    frames = sorted((tmp_path / "zoom-frames").iterdir())
    assert [f.name for f in frames] == ["frame-0001.png", "frame-0002.png", "frame-0003.png"]


def test_zoom_rotate_geometry():
    rgb = np.random.default_rng(0).uniform(0, 255, (6, 6, 3)).astype(np.float32)
    assert zoom_rotate(rgb, 1.0, 0.0) is rgb
    np.testing.assert_allclose(zoom_rotate(rgb, 1.0, 90.0), np.rot90(rgb, 1), atol=1e-4)
    z = zoom_rotate(np.tile(np.arange(8, dtype=np.float32)[None, :, None], (8, 1, 3)), 2.0, 0.0)
    np.testing.assert_allclose(z[0, :, 0], [1.75, 2.25, 2.75, 3.25, 3.75, 4.25, 4.75, 5.25], atol=1e-5)


def test_atlas_writes_sheet_page_and_one_picture_per_blob(zoo_home, tmp_path):
    folder = tmp_path / "atlas"
    assert main(["atlas", "--model", MODEL, "--blobs", "block1/dw/conv", "--blobs", "block6/project",
                 "--size", "40", "--octaves", "1", "--iterations", "2", "-o", str(folder)]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["01-block1-dw-conv.png", "02-block6-project.png", "atlas.png", "index.html"]
    page = (folder / "index.html").read_text()
    assert "block6/project" in page and "02-block6-project.png" in page
    import cv2  # the captions give each blob's shape in the 40x40 picture (OpenCV's), not at the deploy 224

    net = cv2.dnn.readNetFromCaffe(str(EFF / "deploy.prototxt"), str(EFF / "efficientnet_lite0.caffemodel"))
    net.setInput(np.zeros((1, 3, 40, 40), np.float32))
    for blob in ("block1/dw/conv", "block6/project"):
        shape = "×".join(map(str, net.forward(blob).shape[1:]))
        assert f"<b>{blob}</b> <span>{shape}</span>" in page, (blob, shape)
    sheet = Image.open(folder / "atlas.png")
    assert sheet.size[0] > 2 * 40 and sheet.size[1] > 40  # cells as large as the pictures
    assert (folder / "atlas.png").stat().st_mode & 0o044 == 0o044  # readable like any file (umask 022)
    with Image.open(folder / "02-block6-project.png") as im:
        assert json.loads(im.text["zoo:recipe"])["layers"] == ["block6/project"]


def test_ctrl_c_writes_the_image_so_far(zoo_home, astronaut, tmp_path):
    out = tmp_path / "partial.png"
    env = {**os.environ, "ZOO_HOME": str(zoo_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli", "dream", str(astronaut), "-o", str(out), "--model", MODEL,
         "--octaves", "1", "--iterations", "100000"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=interruptible)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # printed just before the loop starts
    assert line.startswith("dreaming 128x128"), line
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "wrote the dream so far" in err
    with Image.open(out) as im:
        assert im.size == (128, 128) and json.loads(im.text["zoo:recipe"])["interrupted"] is True
