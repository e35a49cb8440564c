"""Every brain in ../shared/models, every blob: the minimum size, stride and tile plan hold, and every
`--layer` form the README documents dreams through `zoo convert --name` and `zoo dream` (real weights
where we have them, seeded ones elsewhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from zoo.dream import pipeline, render, run
from zoo.dream.brain import from_graph
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, read_recipe

from tests.caffe_helpers import seeded_files
from tests.conftest import MODELS, shared_or_skip
from zoo import convert
from zoo.cli import main
from zoo.errors import UserError
from zoo.preprocess import Preprocess

NETS = {  # name: (prototxt, real caffemodel or None)
    "bvlc_googlenet": ("bvlc_googlenet/deploy.prototxt", None),
    "gender_net": ("gender_net/deploy_gender.prototxt", None),
    "age_net": ("age_net/deploy_age.prototxt", None),
    "googlenet_places365": ("googlenet_places365/deploy_googlenet_places365.prototxt", None),
    "mtcnn_det1": ("mtcnn/det1.prototxt", "mtcnn/det1.caffemodel"),
    "mtcnn_det2": ("mtcnn/det2.prototxt", "mtcnn/det2.caffemodel"),
    "mtcnn_det3": ("mtcnn/det3.prototxt", "mtcnn/det3.caffemodel"),
    "open_nsfw": ("open_nsfw/deploy.prototxt", "open_nsfw/resnet_50_1by2_nsfw.caffemodel"),
    "efficientnet_lite0": ("efficientnet_lite0/deploy.prototxt", "efficientnet_lite0/efficientnet_lite0.caffemodel"),
}
_BRAINS: dict = {}


def brain_for(name: str):
    if name not in _BRAINS:
        proto, weights = NETS[name]
        proto_path = shared_or_skip(MODELS / proto)
        g = convert.load_net(proto_path, MODELS / weights if weights else None)
        if weights is None:
            g = convert.random_weights(g, seed=0)
        first = next(iter(g.inputs))
        size = tuple(int(d) for d in g.inputs[first][2:])
        shapes = g.shapes()
        classes = {b: ["class 0", *(f"label {i}, name{i}" for i in range(1, shapes[b][1]))]
                   for b in g.outputs if len(shapes[b]) in (2, 4) and shapes[b][1] >= 2}
        _BRAINS[name] = from_graph(name, g, Preprocess(input_size=size, resize=0), input_size=size, labels=classes)
    return _BRAINS[name]


@pytest.mark.parametrize("name", list(NETS))
def test_min_size_stride_and_plan_hold_for_every_blob(name):
    brain = brain_for(name)
    g = brain.graph
    first = next(iter(g.inputs))
    for blob in brain.channels:
        need = pipeline.min_side(brain, [blob])
        stride = pipeline.stride_of(brain, [blob])
        plan = pipeline.plan_for(brain, [blob], DreamParams(), "cpu")
        assert stride >= 1 and stride & (stride - 1) == 0, (blob, stride)
        assert plan.tiles.tile >= need and plan.tiles.tile - 2 * plan.tiles.margin >= plan.tiles.margin
        sub = g.truncated([blob])
        if brain.is_fixed(blob):
            assert need == max(brain.input_size)  # windows of the deploy size
            sub.shapes({first: (1, 3, *brain.input_size)})
            assert not _reaches(sub, blob, brain.input_size[0] + 37, brain.input_size[1] + 51)  # a fixed head
        else:
            for side in (need, need + 1, need + 13, 2 * need + 7):  # any size from the minimum on works
                assert _reaches(sub, blob, side, side + 5), (blob, side)
            assert need == 1 or not _reaches(sub, blob, need - 1, need - 1), blob


def _reaches(g, blob: str, h: int, w: int) -> bool:
    try:
        return bool(np.prod(g.shapes({next(iter(g.inputs)): (1, 3, h, w)})[blob]) > 0)
    except UserError:
        return False


# --- every --layer form through the CLI, on every brain registered with `zoo convert --name` ---------

CLASSES = {  # name: (class output, its number of classes), read off each deploy prototxt
    "bvlc_googlenet": ("prob", 1000), "gender_net": ("prob", 2), "age_net": ("prob", 8),
    "googlenet_places365": ("prob", 365), "mtcnn_det1": ("prob1", 2), "mtcnn_det2": ("prob1", 2),
    "mtcnn_det3": ("prob1", 2), "open_nsfw": ("prob", 2), "efficientnet_lite0": ("prob", 1000),
}
MTCNN_PIXELS = ["--mean-pixel", "127.5,127.5,127.5", "--scale", "0.0078125", "--channel-order", "RGB"]


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    """One ZOO_HOME for the module; each brain is registered in it on first use (`registered`)."""
    return tmp_path_factory.mktemp("every_brain_home"), {}


def registered(cli_home, name: str) -> tuple[str, tuple[int, int]]:
    """`zoo convert PROTOTXT -w WEIGHTS --name t_NAME --labels FILE` (seeded weights from our own
    Caffe writer where no real ones are shared); returns the zoo name and the deploy size (H, W)."""
    home, done = cli_home
    if name not in done:
        proto, weights = NETS[name]
        proto = shared_or_skip(MODELS / proto)
        folder = home.parent / f"files_{name}"
        folder.mkdir(exist_ok=True)
        if weights is None:
            proto, weights, g = seeded_files(proto.read_text(), folder, seed=0)
        else:
            weights = MODELS / weights
            g = convert.load_net(proto)
        _, (_, _, h, w) = next(iter(g.inputs.items()))
        n = CLASSES[name][1]
        labels = folder / "labels.txt"
        labels.write_text("\n".join(["class 0", *(f"label {i}, name{i}" for i in range(1, n))]) + "\n")
        code = main(["convert", str(proto), "--weights", str(weights), "--name", f"t_{name}", "-o", str(folder),
                     "-f", "onnx", "--labels", str(labels), *(MTCNN_PIXELS if name.startswith("mtcnn") else [])])
        assert code == 0, name
        done[name] = (f"t_{name}", (int(h), int(w)))
    return done[name]


def _noise(path: Path, h: int, w: int, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _zoo_dream(capsys, start: Path, out: Path, model: str, *args: str) -> np.ndarray:
    """`zoo dream` at one octave and one step: exit 0, and a PNG of the input's size that decodes."""
    code = main(["dream", str(start), "-o", str(out), "--model", model, "--octaves", "1", "--iterations", "1",
                 "--seed", "1", *args])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, (model, args, err[-2000:])
    with Image.open(out) as im:
        im.load()
        assert im.size == Image.open(start).size and im.mode == "RGB", (model, args, im.size)
        return np.asarray(im, np.float32)


@pytest.mark.parametrize("name", list(NETS))
def test_every_layer_form_dreams_through_the_cli(name, cli_home, tmp_path, monkeypatch, capsys):
    """The README's forms: --layer BLOB, BLOB:C1,C2 (channels), BLOB:C@Y,X (one neuron), several --layer
    with --weight, --guide, at a few pixels over the blobs' minimum size (not square, not aligned), and
    prob:LABEL (by a comma name, any case) at the deploy size (one window of a fixed head; more windows:
    test_fixed_head_class_term_is_the_sum_over_windows)."""
    from zoo.registry import get_card

    monkeypatch.setenv("ZOO_HOME", str(cli_home[0]))
    model, (h, w) = registered(cli_home, name)
    card = get_card(model)
    blob, first = card.default_blob, card.dream_blobs[0].name
    need = pipeline.min_side(brain_for(name), [blob, first])  # only to pick a small size that works
    start = _noise(tmp_path / "start.png", need + 3, need + 11, seed=1)
    guide = _noise(tmp_path / "guide.png", need, need, seed=2)
    plain = _zoo_dream(capsys, start, tmp_path / "plain.png", model, "--layer", blob)
    assert np.abs(plain - np.asarray(Image.open(start), np.float32)).mean() > 0.01  # the step moved pixels
    assert read_recipe(tmp_path / "plain.png").layers == (blob,)
    layers = (f"{blob}:0,1", f"{first}:0@0,0")
    _zoo_dream(capsys, start, tmp_path / "mixed.png", model, "--layer", layers[0], "--layer", layers[1],
               "--weight", "2", "--weight", "0.5", "--guide", str(guide))
    rec = read_recipe(tmp_path / "mixed.png")
    assert rec.layers == layers and tuple(rec.weights) == (2.0, 0.5) and Path(rec.guide) == guide.resolve()
    cls = CLASSES[name][0]
    deploy = _noise(tmp_path / "deploy.png", h, w, seed=3)
    _zoo_dream(capsys, deploy, tmp_path / "class.png", model, "--layer", f"{cls}:NAME1")
    assert read_recipe(tmp_path / "class.png").layers == (f"{cls}:1",)  # "label 1, name1" is class 1


def test_fixed_head_class_term_is_the_sum_over_windows():
    """mtcnn_det3 (real weights): on a 96x96 image the class term is the sum of the four windows' logits."""
    brain = brain_for("mtcnn_det3")
    assert brain.is_fixed("prob1") and not brain.is_fixed("conv3")
    logit = brain.logits("prob1")
    assert logit != "prob1"
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, (1, 3, 96, 96)).astype(np.float32))
    with torch.no_grad():
        got = brain.net_for([logit])(x, outputs=[logit])[logit][:, 1].sum()
        whole = brain._module([logit], "cpu")
        ref = sum(whole(x[:, :, r:r + 48, c:c + 48], outputs=[logit])[logit][0, 1] for r in (0, 48) for c in (0, 48))
    assert float(got) == pytest.approx(float(ref), rel=1e-5)
    assert render.fits(brain.net_for([logit]), [logit], (48, 60)) and not render.fits(
        brain.net_for([logit]), [logit], (40, 60))


def test_windows_cover_evenly():
    from zoo.dream.brain import window_starts

    assert window_starts(48, 48) == [0]
    assert window_starts(100, 48) == [0, 26, 52]
    for length in range(48, 300, 7):
        starts = window_starts(length, 48)
        assert starts[0] == 0 and starts[-1] == length - 48
        assert all(b - a <= 48 for a, b in zip(starts, starts[1:]))  # no gap


def test_a_fine_tune_whose_default_blob_was_not_trained_is_warned_about(tmp_path):
    """A brain whose card lists trained_blobs without its default blob: one warning naming the first."""
    import dataclasses

    base = brain_for("mtcnn_det1")
    brain = dataclasses.replace(base, trained_blobs=("conv3",), default_blob="conv2", _nets={})
    start = tmp_path / "s.png"
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(start)
    rec = Recipe(model=brain.name, weights_sha256="", layers=(), params=DreamParams(octaves=1, iterations=1),
                 input=str(start))
    (note,) = run.prepare(rec, brain=brain).notes
    assert "conv2 was not changed by its fine-tune" in note and "--layer conv3" in note
    assert not run.prepare(rec.with_(layers=("conv2",)), brain=brain).notes
    assert not run.prepare(rec, brain=dataclasses.replace(brain, trained_blobs=("conv2",))).notes
