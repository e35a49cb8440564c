"""zoo.io: the one atomic writer (both forms), the one folder swap, the one digest."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from zoo.io import atomic_folder, atomic_path, atomic_write, file_digest, replace_folder, write_text_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_both_writers_replace_the_target_with_the_umask_mode(tmp_path: Path, umask_027) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new bytes")
        assert target.read_bytes() == b"old"  # untouched until the body returns
    assert target.read_bytes() == b"new bytes" and _mode(target) == 0o640
    png = tmp_path / "b.png"
    with atomic_path(png) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".b.png.")
        tmp.write_bytes(b"png bytes")
    assert png.read_bytes() == b"png bytes" and _mode(png) == 0o640
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # what open(path, "w") gives, as the reference
    assert _mode(plain) == _mode(png)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.png", "plain"]


@pytest.mark.parametrize("form", ["write", "path"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_leaves_the_target_and_no_temporary_file(tmp_path: Path, form: str, error: type) -> None:
    target = tmp_path / "t.txt"
    target.write_text("kept")
    with pytest.raises(error):
        if form == "write":
            with atomic_write(target) as f:
                f.write(b"half")
                raise error("stop")
        else:
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise error("stop")
    assert target.read_text() == "kept" and os.listdir(tmp_path) == ["t.txt"]


def test_a_writer_that_removes_its_file_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x.h5") as tmp:
        tmp.unlink()
    assert os.listdir(tmp_path) == []


def test_text_helper_writes_utf8(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "t.txt", "grüße\n")
    assert (tmp_path / "t.txt").read_bytes() == "grüße\n".encode()


def test_atomic_folder_swaps_a_whole_folder(tmp_path: Path, umask_027) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with atomic_folder(dest) as tmp:
        assert tmp.parent == tmp_path and tmp != dest
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
        assert (dest / "old.txt").read_text() == "old"  # the old one stays until the new one is in place
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["sub", "sub/new.txt"]
    assert _mode(dest) == 0o750
    assert os.listdir(tmp_path) == ["model"]  # no temporary or old folder left


def test_atomic_folder_error_keeps_the_old_folder(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(OSError), atomic_folder(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise OSError(28, "No space left on device")
    assert [p.name for p in dest.iterdir()] == ["old.txt"] and os.listdir(tmp_path) == ["model"]
    with atomic_folder(tmp_path / "fresh") as tmp:  # no old folder: just renamed in
        (tmp / "a").write_text("a")
    assert (tmp_path / "fresh" / "a").read_text() == "a"


def test_replace_folder_puts_the_old_one_back_when_the_new_cannot_go_in(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "keep").write_text("k")
    with pytest.raises(FileNotFoundError):
        replace_folder(tmp_path / "missing", dest)
    assert (dest / "keep").read_text() == "k" and sorted(os.listdir(tmp_path)) == ["d"]
    file_in_the_way = tmp_path / "f"
    file_in_the_way.write_text("a file")
    new = tmp_path / "new"
    new.mkdir()
    replace_folder(new, file_in_the_way)
    assert file_in_the_way.is_dir() and sorted(os.listdir(tmp_path)) == ["d", "f"]


def test_file_digest_matches_hashlib_and_git(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    for kind in ("sha256", "sha1", "md5"):
        assert file_digest(path, kind, chunk=4096) == hashlib.new(kind, data).hexdigest()
    git = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True)
    if git.returncode == 0:
        assert file_digest(path, "git_blob") == git.stdout.strip()
