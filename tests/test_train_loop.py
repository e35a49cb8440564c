"""Training runs end to end on tiny real nets: resume after SIGKILL is bit-identical, 2 torchrun
processes equal 1 process, the exported caffemodel matches the trained module in OpenCV dnn, and
user errors are one line with exit code 1."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo.train import checkpoint

import zoo.cli
from tests.conftest import SHARED, shared_or_skip

DET3 = SHARED / "models" / "mtcnn"
DET3_ARGS = ["--model", str(DET3 / "det3.prototxt"), "--weights", str(DET3 / "det3.caffemodel"), "--like", "mtcnn_det3"]
TINY_PROTOTXT = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 24 dim: 24 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 6 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
  inner_product_param { num_output: 7 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """16 real LFW faces per gender (and the real MTCNN O-Net the tests start from)."""
    shared_or_skip(DET3 / "det3.caffemodel")
    lfw = shared_or_skip(SHARED / "datasets" / "lfw_gender")
    root = tmp_path_factory.mktemp("faces")
    for g in ("female", "male"):
        (root / g).mkdir()
        for f in sorted((lfw / g).glob("*.jpg"))[:16]:
            shutil.copy(f, root / g / f.name)
    return root


@pytest.fixture()
def zoo_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "zoohome"
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home


def common(dataset: Path, out: Path, iters: int = 8) -> list[str]:
    return ["train", "--dataset", str(dataset), "--out", str(out), "--max-iter", str(iters), "--batch", "8",
            "--micro-batch", "4", "--ckpt-every", "2", "--eval-every", "4", "--log-every", "2", "--seed", "5",
            "--no-preview", "-q"]  # fmt: skip


def cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)  # fmt: skip


def weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run)["model"]


def test_resume_after_sigkill_is_bit_identical(faces, tmp_path, zoo_home):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert zoo.cli.main(common(faces, whole, iters=6) + DET3_ARGS + ["--workers", "0"]) == 0
    # killed mid-way between checkpoints (after iteration 3; the last checkpoint is iteration 2)
    p = cli(common(faces, broken, iters=6) + DET3_ARGS + ["--workers", "1"], {"ZOO_TRAIN_KILL_AT": "iter:3"})
    assert p.returncode == -9, p.stderr
    assert checkpoint.load(broken)["iter"] == 2
    at_2 = weights(broken)
    # resumed, then killed while writing the checkpoint of iteration 4 (iteration 2's survives)
    p = cli(["train", "--out", str(broken), "--resume", "-q"], {"ZOO_TRAIN_KILL_AT": "ckpt:4"})
    assert p.returncode == -9, p.stderr
    assert checkpoint.load(broken)["iter"] == 2 and list(broken.glob(".ckpt.pt.*.part"))
    assert zoo.cli.main(["train", "--out", str(broken), "--resume", "-q", "--workers", "0"]) == 0
    assert not list(broken.glob(".ckpt.pt.*"))
    a, b = weights(whole), weights(broken)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [k for k in a if not torch.equal(a[k], at_2[k])], "the resumed iterations 3-6 changed nothing"
    start = torch.load(whole / "ckpt.pt", weights_only=True)
    assert start["iter"] == 6 and start["classes"] == ["female", "male"]
    log = (broken / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["2", "4", "6"]  # no duplicate rows after resumes
    assert (broken / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.xdist_group("torchrun")  # torchrun launches share one worker: never two gloo groups at once
def test_two_torchrun_processes_equal_one(faces, tmp_path, zoo_home):
    proto = tmp_path / "tiny.prototxt"
    proto.write_text(TINY_PROTOTXT)
    args = ["--model", str(proto), "--init", "scratch", "--workers", "0"]
    one, two, half = tmp_path / "one", tmp_path / "two", tmp_path / "half"
    assert zoo.cli.main(common(faces, one, iters=4) + args) == 0
    p = cli(common(faces, two, iters=4) + args + ["--nproc", "2"])
    assert p.returncode == 0, p.stderr[-2000:]
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)
    assert checkpoint.load(two)["config"]["nproc"] == 2
    # the equality above is worth something only if the steps moved the weights: the same run stopped
    # after 2 of the 4 iterations must differ in every learnable tensor (conv1 and fc, weights and biases)
    assert zoo.cli.main(common(faces, half, iters=2) + args) == 0
    h = weights(half)
    assert len(a) == 4 and h.keys() == a.keys(), list(a)
    unmoved = [k for k in a if torch.equal(a[k], h[k])]
    assert not unmoved, f"{unmoved} did not change between iterations 2 and 4"


def _toy_colours(root: Path, per_class: int = 20) -> Path:
    """A learnable toy set: noisy textures whose class is their dominant colour (red or blue)."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 110, (40, 40, 3)).astype(np.uint8)
            img[..., channel] = rng.integers(150, 256, (40, 40))
            Image.fromarray(img).save(root / name / f"{i:02d}.png")
    return root


def test_loss_falls_on_a_learnable_toy_set(tmp_path, zoo_home):
    """Training learns: on a set a tiny net can separate, the loss falls well below chance and the held-out
    images are classified right (a no-op optimiser step fails here, whatever two runs agree on)."""
    proto = tmp_path / "tiny.prototxt"
    proto.write_text(TINY_PROTOTXT)
    data, run = _toy_colours(tmp_path / "toy"), tmp_path / "toy_run"
    args = ["train", "--dataset", str(data), "--out", str(run), "--model", str(proto), "--init", "scratch",
            "--max-iter", "24", "--batch", "8", "--micro-batch", "8", "--base-lr", "0.05", "--lr-policy", "fixed",
            "--augment", "none", "--log-every", "4", "--eval-every", "24", "--ckpt-every", "24", "--seed", "1",
            "--workers", "0", "--no-preview", "-q"]  # fmt: skip
    assert zoo.cli.main(args) == 0
    rows = list(csv.DictReader((run / "log.csv").open()))
    losses = [float(r["loss"]) for r in rows if r["loss"]]
    assert len(losses) == 6
    assert losses[0] > 0.4  # about ln 2 = 0.69 at the start: the net knows nothing yet
    assert losses[-1] < 0.25 * losses[0], losses
    assert float(rows[-1]["val_top1"]) == 1.0


def test_exported_caffemodel_matches_module_in_opencv(faces, tmp_path, zoo_home):
    import cv2
    from zoo.train.export import export_run, restore

    run = tmp_path / "run"
    assert zoo.cli.main(common(faces, run, iters=2) + DET3_ARGS + ["--workers", "0"]) == 0
    ex = export_run(run, "faces_test")
    net, _, classes, _ = restore(run)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, 48, 48)).astype(np.float32))
    with torch.no_grad():
        want = net.module(x, outputs=["prob1"])["prob1"].numpy()
    cv = cv2.dnn.readNetFromCaffe(str(ex.prototxt), str(ex.caffemodel))
    cv.enableWinograd(False)
    cv.setInput(x.numpy(), "data")
    got = cv.forward("prob1")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert want.shape == (2, 2) and classes == ["female", "male"]
    # registered: the zoo's registry knows the brain and `zoo classify` runs it
    from zoo.registry import load_registry

    card = load_registry().get("faces_test")
    assert card.labels.names == ("female", "male") and card.num_classes == 2 and card.output == "prob1"
    # the training pictures' colour covariance, measured at training time, is the card's and the brain's
    cov = np.array(checkpoint.load(run)["colour_cov"])
    assert cov.shape == (3, 3) and np.all(np.linalg.eigvalsh(cov) > 0) and card.colour_cov == tuple(map(tuple, cov))
    from zoo.dream.brain import load_brain

    assert load_brain("faces_test").colour_cov == card.colour_cov
    assert "conv6-2" not in ex.prototxt.read_text()  # the box regressor is not part of the classifier
    img = next((faces / "female").glob("*.jpg"))
    assert zoo.cli.main(["classify", "--model", "faces_test", str(img)]) == 0
    # a re-export replaces the entry instead of duplicating it
    export_run(run, "faces_test")
    assert (zoo_home / "models.toml").read_text().count("[models.faces_test]") == 1


def test_user_errors_are_one_line(faces, tmp_path, zoo_home, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert zoo.cli.main(["train", "--dataset", str(empty), "--out", str(tmp_path / "r")] + DET3_ARGS) == 1
    assert zoo.cli.main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 1
    assert zoo.cli.main(common(faces, tmp_path / "r2") + DET3_ARGS + ["--freeze-to", "conv9"]) == 1
    assert zoo.cli.main(common(faces, tmp_path / "r3") + DET3_ARGS + ["--batch", "6"]) == 1
    assert zoo.cli.main(["export", str(tmp_path / "none"), "--name", "x"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 5, err
    assert "no class folders" in lines[0] and "no checkpoint" in lines[1] and "conv9" in lines[2]
    assert "--micro-batch" in lines[3]
    assert zoo.cli.main(["train"]) == 2  # usage error


def test_resume_with_a_different_config_is_refused(faces, tmp_path, zoo_home, capsys):
    run = tmp_path / "run"
    assert zoo.cli.main(common(faces, run, iters=2) + DET3_ARGS + ["--workers", "0"]) == 0
    assert zoo.cli.main(["train", "--out", str(run), "--resume", "--base-lr", "0.5"]) == 1
    assert "checkpoint was trained with --base-lr 0.01, not 0.5" in capsys.readouterr().err
    assert zoo.cli.main(common(faces, run, iters=2) + DET3_ARGS) == 1  # would overwrite the run
    assert "already has a checkpoint" in capsys.readouterr().err
