"""The legible look's parts against independent references (numpy), and its recipes and CLI.

Transforms against numpy's rotations and block means, parametrisations against exact round trips
and numpy's covariance, objectives against hand sums, recipes against tampering, and the CLI on
efficientnet_lite0 at a few pixels and steps (the look itself is measured by scripts/).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from zoo.dream import params, transforms
from zoo.dream.objectives import Objective, channel_per_row
from zoo.dream.presets import Legible
from zoo.dream.recipe import Recipe, read_recipe

from tests import dream_helpers
from zoo.cli import main
from zoo.errors import UserError

built_home, home = dream_helpers.built_home, dream_helpers.home  # the shared fixtures
MODEL = dream_helpers.MODEL


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_rotate_by_a_quarter_is_numpys_rot90():
    x = torch.rand(1, 3, 8, 8, generator=_gen())
    got = transforms.random_rotate([90])(x, _gen()).numpy()
    want = np.rot90(x.numpy(), k=-1, axes=(2, 3))
    assert np.allclose(got, want, atol=1e-5) or np.allclose(got, np.rot90(x.numpy(), k=1, axes=(2, 3)), atol=1e-5)


def test_half_scale_is_the_mean_of_2x2_blocks_and_pad_is_grey():
    x = torch.rand(1, 3, 8, 6, generator=_gen())
    got = transforms.random_scale([0.5])(x, _gen()).numpy()
    want = x.numpy().reshape(1, 3, 4, 2, 3, 2).mean(axis=(3, 5))
    assert np.allclose(got, want, atol=1e-6)
    padded = transforms.pad(2)(x, _gen()).numpy()
    assert padded.shape == (1, 3, 12, 10) and np.all(padded[..., :2, :] == 0.5)


def test_jitter_crops_and_the_same_seed_gives_the_same_views():
    x = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).reshape(2, 3, 20, 20)
    chain = transforms.compose(transforms.standard(20))
    a, b = chain(x, _gen(5)), chain(x, _gen(5))
    assert torch.equal(a, b) and not torch.equal(a, chain(x, _gen(6)))
    crop = transforms.jitter(5)(x, _gen())
    assert crop.shape[-2:] == (16, 16)
    dy, dx = (int(v) for v in torch.randint(5, (2,), generator=_gen()))
    assert torch.equal(crop, x[..., dy:dy + 16, dx:dx + 16])


@pytest.mark.parametrize("kind", list(params.PARAMS))
def test_a_photo_start_is_the_photo(kind):
    rgb = torch.rand(2, 3, 16, 12, generator=_gen()) * 0.9 + 0.05
    p = params.PARAMS[kind]((2, 3, 16, 12), params.Colour(params.imagenet_colour()), _gen())
    p.from_rgb(rgb)
    assert torch.allclose(p.rgb(), rgb, atol=1e-4)


def test_colour_transform_squares_to_the_covariance():
    m = params.imagenet_colour().astype(np.float64)
    cov = params.IMAGENET_EIGVEC @ np.diag(params.IMAGENET_EIGVAL) @ params.IMAGENET_EIGVEC.T
    ratio = (m @ m.T) / cov
    assert np.allclose(ratio, ratio[0, 0], rtol=1e-3)  # the same up to one scale
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.8, 0.6], [0.0, 0.5, 0.3], [0.0, 0.0, 0.2]])
    pixels = (rng.normal(size=(20000, 3)) @ mix.T * 30 + 128).reshape(100, 200, 3)
    d = params.dataset_colour([pixels]).astype(np.float64)
    want = np.cov(pixels.reshape(-1, 3)[::7].T)
    got = d @ d.T
    assert np.allclose(got / got[0, 0], want / want[0, 0], atol=0.02)


def test_objectives_sum_with_weights_and_negatives_and_rows_pull_their_own_channel():
    acts = {"a": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)}
    one = Objective(lambda a: a["a"][:, 0].sum(), ["a"], "c0")
    two = Objective(lambda a: a["a"][:, 1].sum(), ["a"], "c1")
    total = Objective.sum([one, two], [2.0, -0.5])
    assert float(total(acts)) == 2.0 * float(acts["a"][:, 0].sum()) - 0.5 * float(acts["a"][:, 1].sum())
    x = acts["a"].clone().requires_grad_(True)
    channel_per_row("a", [2, 0])({"a": x}).backward()
    want = np.zeros((2, 3, 2, 2))
    want[0, 2], want[1, 0] = 0.25, 0.25
    assert np.array_equal(x.grad.numpy(), want)


def test_legible_recipe_round_trips_and_tampering_is_one_line():
    rec = Recipe(model="m", weights_sha256="", layers=("prob:1",), params=__import__("zoo.dream.presets").dream
                 .presets.DreamParams(), look="legible", legible=Legible(steps=9, colour=((1.0, 0, 0),) * 3),
                 balance=(0.5,))
    again = Recipe.from_json(rec.to_json())
    assert again == rec
    data = json.loads(rec.to_json())
    data["legible"]["param"] = "wavelets"
    with pytest.raises(UserError, match="legible.param"):
        Recipe.from_json(json.dumps(data))
    plain = json.loads(rec.with_(look="classic", legible=None, balance=()).to_json())
    assert not {"look", "legible", "balance", "guide_mode"} & set(plain)  # the classic path's JSON as before


def test_class_target_is_legible_by_default_and_reproduces(home, tmp_path, capsys):
    out = tmp_path / "fish.png"
    assert main(["dream", "--init", "noise", "--size", "48", "-o", str(out), "--model", MODEL,
                 "--layer", "prob:goldfish", "--iterations", "3", "--diversity", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("legible look for prob:goldfish") == 1, err
    rec = read_recipe(out)
    assert rec.look == "legible" and rec.legible.steps == 3 and rec.legible.diversity == 2
    assert Image.open(out).size == (96, 48)  # two pictures side by side
    again = tmp_path / "again.png"
    assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    classic = tmp_path / "classic.png"
    assert main(["dream", "--init", "noise", "--size", "48", "-o", str(classic), "--model", MODEL,
                 "--layer", "prob:goldfish", "--octaves", "1", "--iterations", "1", "--look", "classic"]) == 0
    assert read_recipe(classic).legible is None


def test_one_weight_for_two_layers_is_refused(home, tmp_path, capsys):
    code = main(["dream", "--init", "noise", "--size", "48", "-o", str(tmp_path / "x.png"), "--model", MODEL,
                 "--layer", "block4/output", "--layer", "block7/output", "--weight", "2"])
    assert code == 2 and "one --weight for 2 layers" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_two_layers_are_balanced_and_recorded(home, tmp_path):
    out = tmp_path / "mix.png"
    assert main(["dream", "--init", "gradient", "--size", "48", "-o", str(out), "--model", MODEL, "--layer",
                 "block4/output", "--layer", "block10/output", "--octaves", "1", "--iterations", "1"]) == 0
    rec = read_recipe(out)
    assert len(rec.balance) == 2 and all(s > 0 for s in rec.balance) and rec.balance[0] != rec.balance[1]


def test_channel_atlas_is_batched_cached_and_resumes(home, tmp_path, capsys):
    from zoo.dream import channels
    from zoo.dream.brain import load_brain

    brain = load_brain(MODEL)
    cache, made = tmp_path / "cache", []
    settings = channels.SETTINGS.with_(steps=2)
    where = channels.render(brain, "block2/output", cache, size=32, settings=settings, batch=12,
                            on_done=made.append)
    assert [d.channel for d in made] == list(range(24)) and len(list(where.glob("ch*.png"))) == 24
    for c in (3, 17):
        channels.picture(where, c).unlink()  # as if killed before these were written
    made.clear()
    channels.render(brain, "block2/output", cache, size=32, settings=settings, batch=12, on_done=made.append)
    assert [d.channel for d in made] == [3, 17]
    out = tmp_path / "pages"
    pages = channels.write_pages(brain, ["block2/output"], out, cache, size=32, settings=settings, batch=12)
    text = pages[0].read_text()
    assert text.count("<figure") == 24 and "--layer block2/output:23" in text
    assert (out / "channels-block2-output.png").is_file()


def test_layout_guide_lines_up_with_the_tile_and_the_roll():
    """On a crop of a rolled image, the guide term is the whole-image term restricted to that crop."""
    from zoo.dream.objectives import REGION, Region, guide_layout

    g = torch.rand(4, 8, 8, generator=_gen(1))  # the guide's blob, already the image's blob size
    x = torch.rand(1, 4, 8, 8, generator=_gen(2))
    term = guide_layout("b", g)
    whole = float((x * g[None]).sum() / 4)
    assert abs(float(term({"b": x})) - whole) < 1e-4
    rolled = torch.roll(x, (2, 3), dims=(2, 3))
    crop = rolled[:, :, 2:6, 4:8]  # net-space pixels = blob positions here (stride 1)
    token = REGION.set(Region((2, 4), (4, 4), (2, 3), (8, 8)))
    try:
        got = float(term({"b": crop}))
    finally:
        REGION.reset(token)
    want = float((crop * torch.roll(g, (2, 3), dims=(1, 2))[None, :, 2:6, 4:8]).sum() / 4)
    assert abs(got - want) < 1e-4


def test_channel_atlas_of_an_unknown_blob_is_one_line(home, tmp_path, capsys):
    code = main(["atlas", "-m", MODEL, "--channels", "block99/output", "-o", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 1 and "no dreamable blob 'block99/output'" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "a").exists()
