"""Starts, recipes in PNG text chunks, and atomic, checked output."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from zoo.dream import output, starts
from zoo.dream.presets import PRESETS, DreamParams, get_preset
from zoo.dream.recipe import Recipe, png_info, read_recipe

from zoo.errors import UserError


def test_generated_starts_have_the_size_and_look_asked_for():
    n1 = starts.make_start("noise", (5, 7), seed=3)
    assert n1.shape == (5, 7, 3) and n1.dtype == np.float32
    assert np.array_equal(n1, starts.make_start("noise", (5, 7), seed=3))
    assert not np.array_equal(n1, starts.make_start("noise", (5, 7), seed=4))
    assert n1.min() >= 100 and n1.max() < 132
    c = starts.make_start("color:#ff8000", (2, 3), seed=0)
    assert c.shape == (2, 3, 3) and (c == [255, 128, 0]).all()
    assert (starts.make_start("color", (1, 1), 0) == 128).all()
    g = starts.make_start("gradient", (4, 6), seed=0)
    assert g.shape == (4, 6, 3)
    # hue 0 (red) at the left of the saturated top row, hue 1/3 (green) a third of the way across
    np.testing.assert_allclose(g[0, 0], [229.5, 0, 0], atol=1e-3)
    np.testing.assert_allclose(g[0, 2], [0, 229.5, 0], atol=1e-3)
    assert g[3].std() < g[0].std()  # saturation fades downward


def test_start_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown start"):
        starts.parse_init("plasma")
    with pytest.raises(UserError, match="not a colour"):
        starts.make_start("color:notacolour", (2, 2), 0)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match="broken.png: cannot decode"):
        starts.load_image(bad)
    with pytest.raises(UserError, match="no such file"):
        starts.load_image(tmp_path / "missing.jpg")


def test_load_and_resize_image(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = [255, 0, 0]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img = starts.load_image(tmp_path / "a.png")
    assert img.shape == (4, 6, 3) and img.dtype == np.float32 and img[0, 0].tolist() == [255, 0, 0]
    small = starts.resize_rgb(img, (2, 3))
    assert small.shape == (2, 3, 3) and small.min() >= 0 and small.max() <= 255


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("orientation, shown", [(1, (4, 6)), (3, (4, 6)), (6, (6, 4)), (8, (6, 4))])
def test_the_size_read_from_the_header_is_the_size_decoded(tmp_path, orientation, shown, suffix):
    """EXIF orientations 5-8 show the picture a quarter turned (EXIF 2.32, tag 0x0112): the header's
    size and the decoded picture both swap, so a dream's canvas matches its start."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"turned{suffix}"
    Image.new("RGB", (6, 4), (10, 200, 30)).save(path, exif=exif)
    assert starts.image_size(path) == shown
    assert starts.load_image(path).shape[:2] == shown


def _recipe(**kw) -> Recipe:
    base = dict(model="det1", weights_sha256="ab" * 32, layers=("conv3:1",), params=DreamParams(tile=256),
                seed=7, weights=(2.0,), input="in.png", input_sha256="cd" * 32)
    base.update(kw)
    return Recipe(**base)


def test_recipe_round_trips_through_png_text_chunks(tmp_path):
    recipe = _recipe()
    path = output.write_image(tmp_path / "out.png", np.full((3, 4, 3), 9.4, np.float32), png_info(recipe))
    back = read_recipe(path)
    assert back == recipe
    with Image.open(path) as im:
        assert im.text["Software"].startswith("zoo ")
        assert im.text["Description"].startswith("zoo dream in.png --model det1 --layer conv3:1")
        assert np.asarray(im).max() == 9


def test_recipe_errors(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "plain.png")
    with pytest.raises(UserError, match="carries no zoo recipe"):
        read_recipe(tmp_path / "plain.png")
    with pytest.raises(UserError, match="unknown keys: bogus"):
        Recipe.from_json(_recipe().to_json().replace('"device"', '"bogus"'))
    with pytest.raises(UserError, match="not valid JSON"):
        Recipe.from_json("{")


def test_classic_preset_is_the_notebook():
    classic = get_preset("classic")
    assert classic.params == DreamParams(octaves=4, octave_scale=1.4, iterations=10, step=1.5, jitter=32)
    assert (classic.model, classic.layer) == ("bvlc_googlenet", "inception_4c/output")
    assert "classic" in PRESETS
    with pytest.raises(UserError, match="presets: classic"):
        get_preset("psychedelic")
    assert DreamParams().with_(octaves=2, step=None).octaves == 2


def test_output_is_checked_early_and_never_left_half_written(tmp_path):
    with pytest.raises(UserError, match="folder .* does not exist"):
        output.check_writable(tmp_path / "nope" / "x.png")
    with pytest.raises(UserError, match="unsupported output type"):
        output.check_writable(tmp_path / "x.bmp")
    with pytest.raises(UserError, match="it is a folder"):
        output.check_writable(tmp_path)
    target = tmp_path / "x.png"
    with pytest.raises(RuntimeError), output.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(UserError, match="permission denied"):
            output.check_writable(ro / "x.png")


def test_contact_sheet_and_page():
    from zoo.dream import atlas

    red = np.zeros((20, 30, 3), np.float32)
    red[..., 0] = 255
    sheet = atlas.contact_sheet([("a/b", red), ("c", red), ("d", red)], columns=2, gap=4)
    assert sheet.shape == (2 * (30 + atlas.LABEL_HEIGHT + 4) + 4, 2 * (30 + 4) + 4, 3)
    assert sheet[4 + 15, 4 + 15].tolist() == [255, 0, 0] and sheet[0, 0].tolist() == [18, 18, 18]
    page = atlas.html_page("m<1>", [atlas.Entry("a/b", "01-a-b.png", (3, 4, 5), "swirls")], "atlas.png", "zoo atlas")
    assert "m&lt;1&gt;" in page and '<img src="01-a-b.png"' in page and "3×4×5" in page and "swirls" in page
    assert atlas.file_name(7, "inception_4c/output") == "07-inception_4c-output.png"
