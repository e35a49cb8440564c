"""Every brain in ../shared/models, every blob: the minimum size, stride and tile plan hold, and every
`--layer` form the README documents dreams (real weights where we have them, seeded ones elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from zoo.dream import pipeline, render, run
from zoo.dream.brain import from_graph
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, read_recipe

from tests.conftest import MODELS, shared_or_skip
from zoo import convert
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


def _forms(brain, size):
    """The README's --layer forms on this brain: blob, channels, one neuron in the middle of the blob
    at this size, and two blobs with weights and a guide."""
    blob = brain.default_blob
    h, w = size
    net = (w, h) if brain.preprocess.transpose else (h, w)
    g = brain.graph
    shape = g.truncated([blob]).shapes({next(iter(g.inputs)): (1, 3, *net)})[blob]
    other = list(brain.dreamable)[0]
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (1, 3, *net)).astype(np.float32))
    with torch.no_grad():  # channels that are alive on this start (real nets have dead ones)
        live = brain.net_for([blob])(x, outputs=[blob])[blob][0].flatten(1).abs().sum(1).argsort(descending=True)
    a, b = int(live[0]), int(live[1])
    return [[blob], [f"{blob}:{a},{b}"], [f"{blob}:{a}@{shape[2] // 2},{shape[3] // 2}"], [blob, other]]


def _dream(brain, layers, size, tmp_path, name):
    rgb = np.random.default_rng(1).uniform(0, 255, (*size, 3)).astype(np.float32)
    start = tmp_path / f"{name}-start.png"
    Image.fromarray(rgb.astype(np.uint8)).save(start)
    rgb = np.asarray(Image.open(start), np.float32)
    rec = Recipe(model=brain.name, weights_sha256="", layers=tuple(layers), params=DreamParams(octaves=1, iterations=1,
                 jitter=4), weights=(2.0, 0.5)[:len(layers)] if len(layers) > 1 else (),
                 input=str(start), guide=str(start) if len(layers) > 1 else None)
    out = tmp_path / f"{name}.png"
    done = run.run(run.prepare(rec, brain=brain), out)
    assert not done.interrupted and out.exists(), layers
    back = np.asarray(Image.open(out), np.float32)
    assert back.shape == (*size, 3) and np.abs(back - rgb).mean() > 0.01, layers
    assert read_recipe(out).layers  # the recipe came along


SAME_AS_GOOGLENET = pytest.mark.slow  # bvlc_googlenet's topology again: run with -m slow


@pytest.mark.parametrize("name", [pytest.param(n, marks=SAME_AS_GOOGLENET) if n == "googlenet_places365" else n
                                  for n in NETS])
def test_every_layer_form_dreams_on_every_brain(name, tmp_path):
    brain = brain_for(name)
    need = pipeline.min_side(brain, [brain.default_blob, list(brain.dreamable)[0]])
    size = (need + 3, need + 11)  # not square, not aligned: the tiles must cover it
    for i, layers in enumerate(_forms(brain, size)):
        _dream(brain, layers, size, tmp_path, f"form{i}")
    cls = next(iter(brain.labels))
    for text, index in ((f"{cls}:class 0", 0), (f"{cls}:label 1, name1", 1), (f"{cls}:NAME1", 1), (f"{cls}:1", 1)):
        assert pipeline.targets_for(brain, [text])[0].channels == (index,), text
    side = pipeline.min_side(brain, [brain.logits(cls)])
    _dream(brain, [f"{cls}:name1"], (side, side + 11), tmp_path, "class")  # windows of a fixed head, if any


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
