"""Bad input to `zoo dream` is one line on stderr, exit 1 (2 for usage), and nothing written:
decompression bombs, sizes beyond memory, neurons outside their blob, tampered recipes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import KEY, Recipe

from tests import dream_helpers
from zoo.cli import main

MODEL = dream_helpers.MODEL
built_home, home = dream_helpers.built_home, dream_helpers.home  # the shared fixtures


@pytest.fixture
def small(tmp_path) -> Path:
    from skimage import data

    path = tmp_path / "in" / "coffee.png"
    path.parent.mkdir()
    Image.fromarray(data.coffee()).resize((96, 64)).save(path)
    return path


def _one_line_error(capsys, code: int, args: list[str], *needles: str) -> str:
    assert main(args) == code
    err = capsys.readouterr().err
    assert (err.count("\n") == 1 or code == 2) and "Traceback" not in err, err  # usage errors: click's format
    for n in needles:
        assert n in err, err
    return err


def _png_declaring(path: Path, w: int, h: int) -> Path:
    """A PNG whose header declares w x h pixels (one tiny IDAT): what a decompression bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_bomb_png_huge_size_and_neuron_out_of_range_are_one_line(home, small, tmp_path, capsys):
    out = tmp_path / "out.png"
    bomb = _png_declaring(tmp_path / "bomb.png", 30000, 30000)
    _one_line_error(capsys, 1, ["dream", str(bomb), "-o", str(out), "-m", MODEL], "bomb.png", "million pixels")
    _one_line_error(capsys, 2, ["dream", str(small), "-o", str(out), "-m", MODEL, "--size", "100000"],
                    '--size: "100000" is out of range (1 to 20000 pixels a side)')  # what a recipe refuses too
    _one_line_error(capsys, 1, ["dream", str(small), "-o", str(out), "-m", MODEL, "-l", "block10/output:3@999,999"],
                    "position 999,999 is outside block10/output, which is 4x6")
    _one_line_error(capsys, 1, ["dream", str(small), "-o", str(out), "-m", MODEL, "--size", "20"],
                    "coffee.png: 20x13 is too small")
    _one_line_error(capsys, 2, ["dream", str(small), "-o", str(out), "-m", MODEL, "--device", "tpu"], "tpu")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png", "in"]


def test_a_real_20000_square_image_beyond_memory_is_refused_before_decoding(home, tmp_path, capsys):
    from zoo.convert.graph import available_memory
    from zoo.dream.starts import BYTES_PER_PIXEL

    if available_memory() > 20000 * 20000 * BYTES_PER_PIXEL:
        pytest.skip("this machine has the memory to dream 20000x20000")
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:  # a valid grey 20000x20000 PNG, streamed (400 MB of pixels, ~0.4 MB file)
        def chunk(kind: bytes, data: bytes) -> None:
            f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

        f.write(b"\x89PNG\r\n\x1a\n")
        chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
        comp, row = zlib.compressobj(1), b"\0" * 20001
        data = b"".join(comp.compress(row) for _ in range(20000)) + comp.flush()
        chunk(b"IDAT", data)
        chunk(b"IEND", b"")
    with Image.open(path) as im:
        assert im.size == (20000, 20000)
    _one_line_error(capsys, 1, ["dream", str(path), "-o", str(tmp_path / "o.png"), "-m", MODEL],
                    "huge.png: 20000x20000 needs about 23.8 GiB")


def _recipe_png(path: Path, recipe_text: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(KEY, recipe_text)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path, pnginfo=info)
    return path


GOOD = json.loads(Recipe(model=MODEL, weights_sha256="", layers=("block7/output",),
                         params=DreamParams(octaves=1, iterations=1), init="noise", size="64").to_json())


@pytest.mark.parametrize("field,value,says", [
    ("model", 5, "'model' must be text"),
    ("params.octave_scale", 0, "'params.octave_scale' must be above 1"),
    ("params.iterations", "abc", "'params.iterations' must be a whole number"),
    ("seed", "x", "'seed' must be a whole number"),
    ("size", "100000x100000", "'size'"),
    ("frames", 0, "'frames' must be between 1"),
    ("params.tile", -5, "'params.tile' must be between 16"),
    ("params.step", float("nan"), "'params.step' must be a finite number"),
    ("layers", "block7/output", "'layers' must be a list"),
    ("deep", None, "not valid JSON (or nested too deeply)"),
])
def test_tampered_recipes_are_refused_naming_the_field(home, tmp_path, capsys, field, value, says):
    data = json.loads(json.dumps(GOOD))
    if field == "deep":
        text = "[" * 100_000 + "]" * 100_000
    else:
        where, key = (data["params"], field.split(".")[1]) if field.startswith("params.") else (data, field)
        where[key] = value
        text = json.dumps(data)
    png = _recipe_png(tmp_path / "tampered.png", text)
    out = tmp_path / "again.png"
    _one_line_error(capsys, 1, ["dream", "--recipe", str(png), "-o", str(out)], "tampered.png", says)
    assert not out.exists()


def test_an_untampered_recipe_runs(home, tmp_path, capsys):
    png = _recipe_png(tmp_path / "good.png", json.dumps(GOOD))
    out = tmp_path / "again.png"
    assert main(["dream", "--recipe", str(png), "-o", str(out)]) == 0, capsys.readouterr().err
    assert Image.open(out).size == (64, 64)


def test_help_does_not_import_torch():
    code = "import sys; from zoo.cli import main; sys.argv = ['zoo', '--help']\n" \
           "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert res.stdout.strip().splitlines()[-1] == "False", res.stdout + res.stderr
