"""A brain's colours: `zoo train` records its training pictures' RGB covariance in the card, and the
legible look draws its colours through that covariance's square root (ImageNet's for ImageNet brains).

References are numpy's: np.cov on the same pixels, np.linalg.eigh for the square root.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from zoo.dream import legible, params, transforms
from zoo.dream.brain import Brain
from zoo.dream.objectives import Target
from zoo.dream.presets import DreamParams, Legible
from zoo.dream.recipe import Recipe
from zoo.train.loop import colour_cov

from zoo.registry import RegistryError, load_registry, parse_card


def _pictures(seed: int = 0) -> list[np.ndarray]:
    """Pictures of correlated colours, of two sizes (0..255)."""
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.8, 0.6], [0.0, 0.5, 0.3], [0.2, 0.0, 0.4]])
    out = []
    for h, w in ((40, 30), (25, 52), (33, 33)):
        px = rng.normal(size=(h * w, 3)) @ mix.T * 30 + 120
        out.append(np.clip(px, 0, 255).reshape(h, w, 3).astype(np.uint8))
    return out


def _numpy_sqrt(cov: np.ndarray) -> np.ndarray:
    val, vec = np.linalg.eigh(cov)
    m = vec @ np.diag(np.sqrt(np.clip(val, 0, None))) @ vec.T
    return m / np.linalg.norm(m, axis=0).max()


def test_colour_covariance_is_numpys_on_the_same_pixels():
    pics = _pictures()
    same = np.concatenate([p.reshape(-1, 3)[::7] for p in pics]).astype(np.float64) / 255.0
    want = np.cov(same.T, bias=True)
    got = params.colour_covariance(pics)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)
    root = params.colour_from_covariance(got).astype(np.float64)
    assert np.allclose(root, _numpy_sqrt(want), atol=1e-5)
    assert np.allclose(root @ root.T / (root @ root.T)[0, 0], want / want[0, 0], atol=1e-4)


def test_training_records_the_covariance_of_an_even_sample_of_its_pictures():
    pics = _pictures() * 30  # 90 pictures: 64 of them, evenly spread, are measured
    idx = np.arange(len(pics))
    got = np.array(colour_cov(pics, idx))
    picks = sorted(set(np.linspace(0, 89, 64).round().astype(int)))
    same = np.concatenate([pics[i].reshape(-1, 3)[::7] for i in picks]).astype(np.float64) / 255.0
    assert len(picks) == 64 and np.allclose(got, np.cov(same.T, bias=True), atol=1e-12)
    assert got.tolist() == np.array(got).T.tolist()  # exactly symmetric, as the card demands
    json.dumps(colour_cov(pics, idx[:5]))  # plain floats: it goes into a checkpoint and a TOML card


CARD = {"title": "t", "task": "classify", "license": "l", "origin": "o", "input_size": [8, 8],
        "channel_order": "RGB", "num_classes": 2, "output": "prob", "default_blob": "prob", "mean": [0, 0, 0],
        "labels": {"names": ["a", "b"]}, "builtin": "x"}


def test_the_card_keeps_a_covariance_and_refuses_a_bad_one():
    cov = [[0.06, 0.05, 0.04], [0.05, 0.06, 0.05], [0.04, 0.05, 0.07]]
    card = parse_card("mine", {**CARD, "colour_cov": cov}, "models.toml")
    assert card.colour_cov == tuple(tuple(r) for r in cov)
    assert parse_card("mine", card.to_table(), "again").colour_cov == card.colour_cov
    assert "colour_cov" not in parse_card("mine", CARD, "x").to_table()  # absent: ImageNet's, not written
    for bad in ([[0.06, 0.01, 0.0], [0.02, 0.06, 0.0], [0.0, 0.0, 0.06]], [[1.0, 0.0], [0.0, 1.0]],
                [[-0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]], [[float("nan")] * 3] * 3):
        with pytest.raises(RegistryError, match=r"models.toml: \[models.mine\]: colour_cov must be"):
            parse_card("mine", {**CARD, "colour_cov": bad}, "models.toml")
    assert all(c.colour_cov == () for c in load_registry().cards.values())  # the zoo's brains: ImageNet's


def _brain(cov=()) -> Brain:
    return Brain(name="b", net=None, preprocess=None, channels={"prob": 2}, dreamable={}, default_blob="prob",
                 labels={"prob": ["a", "b"]}, colour_cov=cov)


def test_a_class_dream_uses_the_brains_colours_and_records_whose():
    rec = Recipe(model="b", weights_sha256="", layers=("prob:a",), params=DreamParams(), look="auto")
    cov = params.colour_covariance(_pictures(1))
    done, note = legible.choose(rec, _brain(tuple(map(tuple, cov))), [Target("prob", (0,))])
    assert done.legible.colour_from == "its training pictures" and "training pictures" in note
    assert np.allclose(np.array(done.legible.colour), _numpy_sqrt(cov), atol=1e-5)
    plain, note = legible.choose(rec, _brain(), [Target("prob", (0,))])
    assert plain.legible.colour_from == "ImageNet" and "ImageNet" in note
    assert np.allclose(np.array(plain.legible.colour), params.imagenet_colour(), atol=1e-6)
    assert Recipe.from_json(done.to_json()) == done
    assert done.legible.decay == (1.0 if rec.init == "image" else 1.5)
    noise, _ = legible.choose(rec.with_(init="noise"), _brain(), [Target("prob", (0,))])
    assert noise.legible.decay == 1.5 and noise.legible.transforms == "crops"
    photo, _ = legible.choose(rec.with_(init="image"), _brain(), [Target("prob", (0,))])
    assert photo.legible.decay == 1.0 and photo.legible.transforms == "zoom"


def test_zoom_views_run_from_a_half_crop_enlarged_to_the_whole_picture_shrunk():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    chain = transforms.compose(transforms.zoom(64))
    gen = torch.Generator().manual_seed(3)
    sides = {tuple(chain(x, gen).shape[-2:]) for _ in range(300)}
    view = 64 + 2 * 12 - 7  # padded by 12, cut by the first jitter (8): then cropped, shrunk, cut by jitter(4)
    want = {(round(view * s) - 3,) * 2 for s in (0.6 + i / 20 for i in range(9))}
    assert sides == want  # every shrink from 0.6 to 1 of the view, and nothing else


def test_legible_recipes_written_before_the_decay_keep_lucids_spectrum():
    old = {k: v for k, v in Legible(steps=3).to_dict().items() if k not in ("decay", "colour_from")}
    assert Legible.from_dict(old).decay == 1.0 and Legible.from_dict(old).for_start(False).decay == 1.0
    assert Legible().for_start(False).decay == 1.5 and Legible().for_start(True).decay == 1.0
    gen = torch.Generator().manual_seed(0)
    f = params.Fourier((1, 3, 10, 14), params.Colour(None), gen, decay=1.0)
    fy, fx = np.fft.fftfreq(10)[:, None], np.fft.rfftfreq(14)[None, :]
    want = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1 / 14) / 4.0
    assert np.allclose(f.scale.numpy(), want, rtol=1e-6)
    steep = params.Fourier((1, 3, 10, 14), params.Colour(None), gen, decay=1.5).scale.numpy()
    assert np.allclose(steep, want * (np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1 / 14) * 14) ** -0.5, rtol=1e-5)
