"""Prints that know their size: `--dpi` written as PNG pHYs, TIFF X/YResolution (inches) and JPEG
density, and `--size` spelled as a print (18x18in@300), read back with Pillow and tifffile."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image
from zoo.dream.geometry import print_size, scaled_size
from zoo.dream.output import write_image
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, read_recipe

from tests.dream_helpers import MODEL, built_home, home  # noqa: F401 - fixtures
from zoo.cli import main


@pytest.mark.parametrize("spec, pixels, dpi", [
    ("18x18in@300", "5400x5400", 300), ("2x2in@32", "64x64", 32), ("8.5x11in@100", "850x1100", 100),
    ("30cm@300", "3543", 300), ("210x297mm@300", "2480x3508", 300), ("512", "512", None), ("64x48", "64x48", None),
])
def test_print_size_in_pixels(spec, pixels, dpi):
    assert print_size(spec) == (pixels, dpi)


@pytest.mark.parametrize("spec", ["18x18in", "18x18ft@300", "in@300", "18x18in@0", "0.001in@10", "@300"])
def test_bad_print_sizes_say_so(spec):
    with pytest.raises(ValueError, match="print size|dpi|less than a pixel"):
        scaled_size(100, 100, spec)


def test_print_size_keeps_the_aspect_with_one_side():
    assert scaled_size(300, 600, "4in@100") == (200, 400)


def test_a_5400_pixel_300_dpi_picture_opens_as_18_inches(tmp_path):
    recipe = Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams(), size="5400x5400", dpi=300)
    rgb = np.zeros((5400, 5400, 3), np.uint8)
    rgb[::97, :, 0] = 255  # not a flat picture
    for ext in ("png", "jpg"):
        path = write_image(tmp_path / f"print.{ext}", rgb, recipe)
        with Image.open(path) as im:
            inches = [side / res for side, res in zip(im.size, im.info["dpi"])]
        assert inches == pytest.approx([18.0, 18.0], abs=1e-3), ext
        assert read_recipe(path).dpi == 300
    path = write_image(tmp_path / "print.tif", rgb, recipe)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        (xn, xd), (yn, yd) = page.tags["XResolution"].value, page.tags["YResolution"].value
        assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.INCH
        assert (page.shape[1] / (xn / xd), page.shape[0] / (yn / yd)) == (18.0, 18.0)
    with Image.open(path) as im:
        assert [side / res for side, res in zip(im.size, im.info["dpi"])] == pytest.approx([18.0, 18.0])


def test_recipe_without_dpi_is_byte_for_byte_what_it_was():
    plain = Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams())
    assert '"dpi"' not in plain.to_json()
    printed = plain.with_(dpi=300)
    assert Recipe.from_json(printed.to_json()).dpi == 300 and "--dpi 300" in printed.command()


def test_a_tiny_print_dreamt_end_to_end(home, tmp_path, capsys):  # noqa: F811 - the fixture
    out = tmp_path / "print.png"
    assert main(["dream", "--init", "noise", "--size", "2x2in@32", "-m", MODEL, "--iterations", "1",
                 "--octaves", "1", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (64, 64) and im.info["dpi"] == pytest.approx((32, 32), rel=1e-3)  # pHYs counts per metre
    rec = read_recipe(out)
    assert (rec.size, rec.dpi) == ("64x64", 32)
    assert main(["dream", "--init", "noise", "--size", "2x2in@32", "--dpi", "40", "-m", MODEL, "-o",
                 str(tmp_path / "x.png")]) == 1
    assert "says 32 dpi but --dpi says 40" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
