"""Issue 8's security holes: nothing a registry entry, a model name or a mirror says escapes the cache.

Each case runs the real `zoo` command in-process against a temporary $ZOO_HOME and checks the files
around it: a snapshot of everything under a sandbox folder before and after must differ only where
the command is allowed to write.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

import zoo.cli
from zoo import cache
from zoo.names import InvalidName, inside, model_file, validate_filename, validate_name

try:
    from fault_server import FaultServer
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer

from tests.conftest import SHARED

MTCNN = SHARED / "models" / "mtcnn"
PAYLOAD = b"not a model, but checksummed\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root -> its bytes (None for folders)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/{home (ZOO_HOME, with a cached model and a sentinel), victim (outside files), work (cwd)}."""
    home = tmp_path / "home"
    (home / "models" / "kept").mkdir(parents=True)
    (home / "models" / "kept" / "w.bin").write_bytes(b"cached")
    (home / "sentinel.txt").write_text("still here")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch")
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def card(name: str, files: str) -> str:
    return (f'[models."{name}"]\ntitle="t"\ntask="classify"\nlicense="l"\norigin="o"\ninput_size=[8,8]\n'
            f'channel_order="BGR"\nmean=[1,2,3]\nnum_classes=2\noutput="prob"\ndefault_blob="prob"\nlabels={{names=["a","b"]}}\n'
            + files)


# --- the rule itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".", "..", "a.b", "../x", "a/b", "a\\b", "/abs", "-lead", "_lead", "x" * 65,
                                 "sp ace", "ü", "a\n", 5, None])
def test_invalid_model_names(bad: object) -> None:
    with pytest.raises(InvalidName):
        validate_name(bad)


@pytest.mark.parametrize("good", ["bvlc_googlenet", "a", "A-1_b", "x" * 64, "9lives"])
def test_valid_model_names(good: str) -> None:
    assert validate_name(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", ".hidden", "../x", "a/b", "/etc/passwd", "C:\\x", "a\0b", "x.part",
                                 "x.lock"])
def test_invalid_file_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        validate_filename(bad)


def test_inside_refuses_a_symlink_out_of_the_cache(sandbox: Path) -> None:
    models = sandbox / "home" / "models"
    os.symlink(sandbox / "victim", models / "evil")
    with pytest.raises(Exception, match="leads outside"):
        model_file(models, "evil", "weights", "precious.txt")
    with pytest.raises(Exception, match="leads outside"):
        inside(models, "kept", "..", "..", "sentinel.txt")
    assert model_file(models, "kept", "weights", "w.bin") == (models / "kept" / "w.bin").resolve()


# --- hole 1: registry file names --------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["../../../escaped.bin", "/ABS/escaped.bin", "..", "sub/escaped.bin"])
def test_card_file_name_cannot_leave_the_cache(sandbox: Path, filename: str, capsys) -> None:
    filename = filename.replace("/ABS", str(sandbox / "victim"))
    with FaultServer({"w.bin": PAYLOAD, "p.prototxt": b"name: 'x'\n"}) as srv:
        (sandbox / "home" / "models.toml").write_text(card("evil", (
            f'files.prototxt={{url="{srv.url("p.prototxt")}", unverified="test"}}\n'
            f'files.weights={{url="{srv.url("w.bin")}", filename="{filename}", unverified="test"}}\n')))
        before = snapshot(sandbox)
        assert zoo.cli.main(["fetch", "evil"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "file name" in err and len(err.strip().splitlines()) == 1
    assert snapshot(sandbox) == before  # nothing written anywhere, not even inside the cache
    assert srv.log == []  # refused before any download


def test_mirror_urls_are_built_from_validated_names_only(sandbox: Path, monkeypatch) -> None:
    from zoo.fetch import mirror_sources

    monkeypatch.setenv("ZOO_MIRROR", "http://mirror.invalid/zoo")
    assert mirror_sources("ok", "w.bin") == ["http://mirror.invalid/zoo/ok/w.bin"]
    for model, name in (("..", "w.bin"), ("ok", "../../w.bin"), ("a/b", "w.bin")):
        with pytest.raises(InvalidName):
            mirror_sources(model, name)


# --- hole 2: --name . and .. ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "a.b", "../victim"])
def test_convert_name_cannot_touch_the_cache(sandbox: Path, name: str, capsys) -> None:
    before = snapshot(sandbox)
    args = ["convert", str(MTCNN / "det1.prototxt"), "-w", str(MTCNN / "det1.caffemodel"), "-o",
            str(sandbox / "work" / "out"), "--name", name]
    assert zoo.cli.main(args) == 1
    err = capsys.readouterr().err
    assert "--name" in err and "not allowed" in err and "Traceback" not in err
    assert snapshot(sandbox) == before  # refused before any output was written
    assert zoo.cli.main(["list"]) == 0


def test_export_name_cannot_touch_the_cache(sandbox: Path, capsys) -> None:
    faces = sandbox / "faces"
    for g in ("female", "male"):
        (faces / g).mkdir(parents=True)
        for f in sorted((SHARED / "datasets" / "lfw_gender" / g).glob("*.jpg"))[:4]:
            shutil.copy(f, faces / g / f.name)
    run = sandbox / "work" / "run"
    assert zoo.cli.main(["train", "--dataset", str(faces), "--out", str(run), "--max-iter", "1", "--batch", "4",
                         "--no-preview", "-q", "--workers", "0", "--model", str(MTCNN / "det3.prototxt"),
                         "--weights", str(MTCNN / "det3.caffemodel"), "--like", "mtcnn_det3"]) == 0
    before = snapshot(sandbox)
    for name in ("..", ".", "a.b"):
        assert zoo.cli.main(["export", str(run), "--name", name]) == 1
    err = capsys.readouterr().err
    assert err.count("not allowed") == 3 and "Traceback" not in err
    assert snapshot(sandbox) == before


# --- hole 3: a card named ../../victim --------------------------------------------------------------


def test_remove_cannot_delete_outside(sandbox: Path, capsys) -> None:
    (sandbox / "home" / "models.toml").write_text(card("../../victim", (
        f'files.prototxt={{url="file:///x.prototxt", sha256="{SHA}"}}\n'
        f'files.weights={{url="file:///x.bin", sha256="{SHA}"}}\n')))
    before = snapshot(sandbox)
    assert zoo.cli.main(["remove", "../../victim"]) == 1
    assert zoo.cli.main(["remove", ".."]) == 1
    assert zoo.cli.main(["list"]) == 1  # the bad card is reported, one line, naming the file
    err = capsys.readouterr().err
    assert "Traceback" not in err and "models.toml" in err
    assert snapshot(sandbox) == before


def test_remove_dot_names_refused_even_without_cards(sandbox: Path, capsys) -> None:
    before = snapshot(sandbox)
    for name in ("..", ".", "kept/..", "/tmp"):
        assert zoo.cli.main(["remove", name]) == 1
        with pytest.raises(InvalidName):
            cache.remove_model(name)
    assert snapshot(sandbox) == before
    assert "Traceback" not in capsys.readouterr().err
