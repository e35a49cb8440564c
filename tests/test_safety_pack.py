"""`zoo data pack` (and training) refuse dataset roots nobody means: a file system root, the home folder
and the folders above it, $ZOO_HOME; a tree that is not one sub-folder per class stops with one line
before it is walked deep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from zoo.train import datasets

import zoo.cli


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/{user (HOME), zoo (ZOO_HOME)}; the cwd is tmp/work."""
    (tmp_path / "user").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.delenv("ZOO_PACK_DIR", raising=False)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def _pack(capsys, folder: Path | str) -> tuple[int, list[str]]:
    code = zoo.cli.main(["data", "pack", str(folder), "--size", "16"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("where", ["/", "home", "above home", "zoo home", "home via a link"])
def test_roots_nobody_means_are_refused_in_one_line(homes: Path, capsys, where: str) -> None:
    folder = {"/": Path("/"), "home": homes / "user", "above home": homes, "zoo home": homes / "zoo",
              "home via a link": homes / "work" / "link"}[where]
    (homes / "zoo").mkdir(exist_ok=True)
    (homes / "work" / "link").symlink_to(homes / "user")
    _image(homes / "user" / "cats" / "a.png")  # a home folder that would even pass as a dataset
    before = sorted(str(p) for p in homes.rglob("*"))
    code, err = _pack(capsys, folder)
    assert code == 1 and len(err) == 1 and "Traceback" not in err[0], err
    said = {"/": "a file system root is not a dataset", "home": "your home folder is not a dataset",
            "above home": "a folder above your home folder", "zoo home": "($ZOO_HOME) is not a dataset",
            "home via a link": "your home folder is not a dataset"}[where]
    assert said in err[0], err
    assert sorted(str(p) for p in homes.rglob("*")) == before  # no pack, no folder made


def test_a_tree_that_is_not_class_per_folder_stops_before_the_deep_walk(homes: Path, capsys) -> None:
    root = homes / "work" / "docs"
    _image(root / "a" / "b" / "c" / "d" / "e" / "deep.png")  # deeper than the probe looks
    (root / "x").mkdir()
    (root / "x" / "readme.txt").write_text("no images here")
    code, err = _pack(capsys, root)
    assert code == 1 and len(err) == 1 and "no class folders with images" in err[0] and str(root) in err[0], err
    loose = homes / "work" / "loose"
    _image(loose / "one.png")
    _image(loose / "two.jpg")
    code, err = _pack(capsys, loose)
    assert code == 1 and len(err) == 1 and "move them into one sub-folder per class" in err[0], err
    assert not (homes / "zoo" / "datasets").exists()


def test_class_folders_are_probed_and_empty_ones_left_out(homes: Path, capsys) -> None:
    root = homes / "work" / "set"
    for cls in ("cat", "dog"):
        for i in range(2):
            _image(root / cls / "2024" / f"{i}.png")  # images one level down still count
    (root / "empty" / "sub").mkdir(parents=True)
    code, err = _pack(capsys, root)
    assert code == 0, err
    images = datasets.scan_folder(root)
    assert images.classes == ["cat", "dog"] and len(images.items) == 4


def test_the_probe_looks_at_a_bounded_number_of_entries_and_levels(homes: Path) -> None:
    many = homes / "work" / "many"
    many.mkdir()
    for i in range(datasets.PROBE_ENTRIES + 5):
        (many / f"n{i:05d}.txt").write_bytes(b"")
    assert not datasets._holds_images(many)  # gave up after PROBE_ENTRIES entries
    _image(homes / "work" / "three" / "a" / "b" / "x.png")  # at the probe's depth (3 levels below)
    _image(homes / "work" / "four" / "a" / "b" / "c" / "x.png")
    assert datasets.PROBE_DEPTH == 3
    assert datasets._holds_images(homes / "work" / "three") and not datasets._holds_images(homes / "work" / "four")
