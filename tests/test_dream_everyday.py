"""The artist's everyday path: a gradient start that turns, a note when --octaves cannot all run, a
moved folder whose input is found by the recipe's layout, an --nproc picture reproduced by --recipe,
and an ambiguous class listed with what tells its candidates apart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2hsv
from zoo.dream.recipe import locate, read_recipe
from zoo.dream.starts import gradient

from tests.dream_helpers import MODEL, built_home, home  # noqa: F401 - fixtures
from zoo.cli import main
from zoo.errors import UserError
from zoo.labels import DATA_DIR, match_label


def _hue_direction(rgb: np.ndarray) -> np.ndarray:
    """The unit direction in which hue grows, from the mean hue differences away from the wrap."""
    hue = rgb2hsv(rgb / 255.0)[..., 0]
    dx, dy = np.diff(hue, axis=1), np.diff(hue, axis=0)
    gx, gy = np.median(dx[np.abs(dx) < 0.2]), np.median(dy[np.abs(dy) < 0.2])
    v = np.array([gx, gy])
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("deg, direction", [("0", (1, 0)), ("90", (0, 1)), ("45", (0.7071, 0.7071)),
                                            ("180", (-1, 0))])
def test_gradient_degrees_turn_the_direction(deg, direction):
    rgb = gradient((60, 80), deg, np.random.default_rng(0))
    np.testing.assert_allclose(_hue_direction(rgb), direction, atol=0.05)


def test_gradient_45_and_90_sweep_differently():
    a, b = (gradient((60, 80), d, np.random.default_rng(0)) for d in ("45", "90"))
    assert abs(float(_hue_direction(a) @ _hue_direction(b))) < 0.8


def test_more_octaves_than_fit_are_said(home, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "o.png"
    assert main(["dream", "--init", "noise", "--size", "64", "-m", MODEL, "--octaves", "12", "--iterations", "1",
                 "-o", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    m = re.search(r"note: --octaves 12: (\d+) fit .*?; dreaming (\d+)", err)
    assert m is not None, err
    assert 1 <= int(m[1]) < 12 and m[1] == m[2]


def test_a_moved_folder_finds_its_input_by_layout(tmp_path):
    project = tmp_path / "project"
    (project / "in").mkdir(parents=True)
    (project / "out").mkdir()
    (project / "in" / "photo.png").write_bytes(b"the input")
    from zoo.dream.recipe import file_sha256

    stored, sha = str(project / "in" / "photo.png"), file_sha256(project / "in" / "photo.png")
    moved = tmp_path / "elsewhere" / "project2"
    moved.parent.mkdir()
    shutil.move(str(project), str(moved))
    picture = moved / "out" / "dream.png"
    assert locate(stored, picture, "input", sha) == moved / "in" / "photo.png"
    from zoo.dream.recipe import layout_candidates

    assert moved / "in" / "photo.png" in layout_candidates(stored, picture)
    (moved / "out" / "photo.png").write_bytes(b"a stranger with the same name")  # beside, but not it
    assert locate(stored, picture, "input", sha) == moved / "in" / "photo.png"
    (moved / "in" / "photo.png").write_bytes(b"changed")
    with pytest.raises(UserError, match="sha256 differs"):
        locate(stored, picture, "input", sha)


def test_a_moved_folder_reproduces_end_to_end(home, tmp_path):  # noqa: F811
    project = tmp_path / "project"
    (project / "in").mkdir(parents=True)
    (project / "out").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(project / "in" / "photo.png")
    assert main(["dream", str(project / "in" / "photo.png"), "-m", MODEL, "--octaves", "1", "--iterations", "1",
                 "-o", str(project / "out" / "dream.png")]) == 0
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))
    again = tmp_path / "again.png"
    assert main(["dream", "--recipe", str(moved / "out" / "dream.png"), "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(moved / "out" / "dream.png")))


def _cli(zoo_home: Path, threads: int, *args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_HOME": str(zoo_home), "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run([sys.executable, "-m", "zoo.cli", "dream", *map(str, args)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.xdist_group("torchrun")
def test_an_nproc_picture_is_reproduced_by_its_recipe(built_home, tmp_path):  # noqa: F811
    """Two ranks of one thread each; the reproduction runs in one process of a shell with two threads
    (where a convolution adds its sums in another order) and must still give the same pixels."""
    made, again = tmp_path / "made.png", tmp_path / "again.png"
    _cli(built_home, 1, "--init", "noise", "--size", "160", "-m", MODEL, "--octaves", "2", "--iterations", "2",
         "--nproc", "2", "-o", made)
    r = _cli(built_home, 2, "--recipe", made, "-o", again)
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(made)))
    assert read_recipe(made).threads == 1 and "1 CPU thread a process, as recorded" in r.stderr


def test_an_ambiguous_class_lists_what_tells_them_apart():
    names = [line.split(" ", 1)[1] for line in (DATA_DIR / "imagenet_classes.txt").read_text().splitlines()]
    with pytest.raises(UserError) as e:
        match_label(names, "crane")
    lines = str(e.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == ["134", "517"]
    assert "bittern" in lines[0] and "limpkin" in lines[0] and "cradle" in lines[1]
    assert len(set(line.split(":", 1)[1] for line in lines)) == 2  # the two lines differ beyond the index
