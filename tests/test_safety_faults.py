"""Issue 8: faults reported truthfully, and one line instead of a traceback, on the fetch/cache/dataset
side. Downloads run against the fault-injecting server in tests/fault_server.py (real HTTP on
127.0.0.1); disk faults use /dev/full (writes fail with ENOSPC) and /proc/self/mem (reads fail with
EIO), so they hold even when the tests run as root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

import zoo.cli
from zoo import cache
from zoo.errors import NetworkError
from zoo.fetch import ChecksumMismatch, DiskError, FetchError, FetchOptions, fetch_file
from zoo.registry import Checksum, RegistryError, get_card, parse_toml

try:
    from fault_server import FaultServer
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer

from tests.conftest import SHARED

MTCNN = SHARED / "models" / "mtcnn"
PAYLOAD = bytes(range(256)) * 400  # 100 KiB, every offset distinguishable
SHA = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
FAST = FetchOptions(timeout=2, retries=1, backoff=0.0, progress=False)
DEV_FULL = Path("/dev/full")


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# --- 4: the mirror's own error is shown, next to upstream's ---------------------------------------


@pytest.mark.parametrize("fault, said", [("404", "HTTP 404"), ("403", "HTTP 403"), ("500", "HTTP 500"),
                                         ("hang", "timed out"), ("drop:1000", "connection dropped after")])
def test_every_source_and_what_it_said(tmp_path: Path, fault: str, said: str) -> None:
    with FaultServer({"mirror/a.bin": PAYLOAD}, {"mirror/a.bin": fault}) as srv, pytest.raises(FetchError) as e:
        fetch_file([srv.url("mirror/a.bin"), "http://127.0.0.1:9/up/a.bin"], tmp_path / "a.bin", SHA,
                   options=FAST)
    msg = str(e.value)
    assert srv.url("mirror/a.bin") in msg and said in msg  # the mirror's own answer
    assert "127.0.0.1:9/up/a.bin: cannot connect" in msg  # and upstream's
    assert "\n" not in msg and not e.value.offline  # the mirror answered: not an offline machine
    assert files_in(tmp_path) == []  # no .part, no .lock


def test_nothing_reachable_is_offline(tmp_path: Path) -> None:
    with pytest.raises(NetworkError) as e:
        fetch_file(["http://127.0.0.1:9/a.bin"], tmp_path / "a.bin", SHA, options=FAST)
    assert e.value.offline


def test_mirror_errors_reach_the_cli(tmp_path: Path, monkeypatch, capsys) -> None:
    with FaultServer({}, {"zoo/mtcnn_det1/det1.prototxt": "500"}) as srv:
        monkeypatch.setenv("ZOO_MIRROR", srv.url("zoo"))
        monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
        assert zoo.cli.main(["fetch", "mtcnn_det1"]) == 1
    err = capsys.readouterr().err
    assert "zoo/mtcnn_det1/det1.prototxt: HTTP 500" in err and "raw.githubusercontent.com" in err
    assert "Traceback" not in err


def test_wrong_bytes_on_the_mirror_fall_back_to_upstream(tmp_path: Path) -> None:
    with FaultServer({"m/a.bin": PAYLOAD, "u/a.bin": PAYLOAD}, {"m/a.bin": "wrong"}) as srv:
        fetch_file([srv.url("m/a.bin"), srv.url("u/a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD and files_in(tmp_path) == ["a.bin"]


def test_range_ignored_then_restarted(tmp_path: Path) -> None:
    with FaultServer({"a.bin": PAYLOAD}, {"a.bin": ["drop:5000", "no_range"]}) as srv:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert srv.log == [("a.bin", None), ("a.bin", "bytes=5000-")]


# --- 6: stale .part, full disk, trickle, locks ------------------------------------------------------


def test_stale_corrupt_part_is_discarded_not_blamed(tmp_path: Path) -> None:
    stale = b"garbage from another version" * 10
    (tmp_path / "a.bin.part").write_bytes(stale)
    with FaultServer({"a.bin": PAYLOAD}) as srv:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert srv.log == [("a.bin", f"bytes={len(stale)}-"), ("a.bin", None)]  # resumed, failed the check, started over
    assert files_in(tmp_path) == ["a.bin"]


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full")
def test_full_disk_is_reported_as_full_disk(tmp_path: Path) -> None:
    os.symlink(DEV_FULL, tmp_path / "a.bin.part")  # every write to the part file: ENOSPC
    with FaultServer({"a.bin": PAYLOAD}) as srv, pytest.raises(DiskError, match="disk full") as e:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert "dropped" not in str(e.value) and len(srv.log) == 1  # not retried, not blamed on the server


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full")
def test_folder_mirror_full_disk_and_unreadable_file(tmp_path: Path, monkeypatch, capsys) -> None:
    mirror = tmp_path / "mirror" / "mtcnn_det1"
    mirror.mkdir(parents=True)
    os.symlink("/proc/self/mem", mirror / "det1.prototxt")  # a file whose read fails (EIO)
    monkeypatch.setenv("ZOO_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    with pytest.raises(FetchError, match=r"det1.prototxt: cannot read"):
        fetch_file([str(mirror / "det1.prototxt")], tmp_path / "x.prototxt", None, options=FAST)
    (mirror / "det1.prototxt").unlink()
    shutil.copy(MTCNN / "det1.prototxt", mirror / "det1.prototxt")
    d = cache.model_dir("mtcnn_det1")
    d.mkdir(parents=True)
    os.symlink(DEV_FULL, d / "det1.prototxt.part")
    assert zoo.cli.main(["fetch", "mtcnn_det1"]) == 1
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err


def test_trickle_stops_at_the_deadline_and_resumes_later(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_FETCH_DEADLINE", "0.5")
    opts = FetchOptions.from_env(retries=0, progress=False)
    with FaultServer({"a.bin": PAYLOAD}, {"a.bin": ["trickle", "ok"]}) as srv:
        with pytest.raises(FetchError, match="ZOO_FETCH_DEADLINE"):
            fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=opts)
        kept = (tmp_path / "a.bin.part").stat().st_size
        assert 0 < kept < len(PAYLOAD)
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert srv.log[-1] == ("a.bin", f"bytes={kept}-")
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_no_lock_files_are_left(tmp_path: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror" / "mtcnn_det1"
    mirror.mkdir(parents=True)
    for name in ("det1.prototxt", "det1.caffemodel"):
        shutil.copy(MTCNN / name, mirror / name)
    monkeypatch.setenv("ZOO_MIRROR", str(tmp_path / "mirror"))
    assert zoo.cli.main(["fetch", "mtcnn_det1"]) == 0
    left = [p.name for p in cache.models_dir().rglob("*") if p.name.endswith((".lock", ".part", ".tmp"))]
    assert left == []


@pytest.mark.parametrize("var, value", [("ZOO_FETCH_RETRIES", "abc"), ("ZOO_FETCH_RETRIES", "-1"),
                                        ("ZOO_FETCH_TIMEOUT", "-1"), ("ZOO_FETCH_TIMEOUT", "nan"),
                                        ("ZOO_FETCH_DEADLINE", "soon")])
def test_bad_fetch_environment_is_one_line(monkeypatch, capsys, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    assert zoo.cli.main(["fetch", "mtcnn_det1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {var}={value!r}: expected " + ("a whole number >= 0" if "RETRIES" in var else
                                                          "a number >= 0.001")


# --- 5: datasets use the same downloader -------------------------------------------------------------


def test_lfw_resumes_a_dropped_connection(tmp_path: Path) -> None:
    from zoo.train.lfw import prepare

    people = sorted((SHARED / "datasets" / "lfw_identity").iterdir())[:2]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for person in people:
            for i, f in enumerate(sorted(person.glob("*.jpg"))[:2], 1):
                tar.add(f, arcname=f"lfw-deepfunneled/{person.name}/{person.name}_{i:04d}.jpg")
    tgz = buf.getvalue()
    with FaultServer({"lfw/lfw-deepfunneled.tgz": tgz}, {"lfw/lfw-deepfunneled.tgz": "drop_once"}) as srv:
        listing = prepare(label="identity", root=tmp_path, base_url=srv.url("lfw"), md5=hashlib.md5(tgz).hexdigest(),
                          show=False)
    assert listing.classes == sorted(p.name for p in people) and len(listing.items) == 4
    assert srv.log == [("lfw/lfw-deepfunneled.tgz", None), ("lfw/lfw-deepfunneled.tgz", f"bytes={len(tgz) // 2}-")]


def test_dataset_download_reports_http_errors(tmp_path: Path) -> None:
    from zoo.train.download import DownloadError, fetch

    with FaultServer({}, {"x.zip": "503"}) as srv, pytest.raises(DownloadError, match="HTTP 503") as e:
        fetch(srv.url("x.zip"), tmp_path / "x.zip", retries=2, backoff=0)
    assert isinstance(e.value, NetworkError) and srv.requests("x.zip") == 2
    assert files_in(tmp_path) == []


# --- models.toml validation --------------------------------------------------------------------------

CARD = ('[models.x]\ntitle="t"\ntask="classify"\nlicense="l"\norigin="o"\ninput_size=[8,8]\nchannel_order="BGR"\n'
        'mean=[1,2,3]\nnum_classes=2\noutput="prob"\ndefault_blob="prob"\nlabels={names=["a","b"]}\n'
        'files.prototxt={url="http://h/p.prototxt", unverified="t"}\n'
        f'files.weights={{url="http://h/w.caffemodel", sha256="{SHA.hexdigest}"}}\n')


@pytest.mark.parametrize("edit, said", [
    (lambda t: "[models]\nx = 5\n", "must be a table"),
    (lambda t: t.replace("files.weights={", "files.weights=5\nfiles.unused={"), "files.weights: must be a table"),
    (lambda t: t + "dream_blobs = [5]\n", "dream_blobs[0]: must be a table"),
    (lambda t: t + 'dream_blobs = [{name="a", shape=["a"], produces="p"}]\n', "shape must be"),
    (lambda t: t + 'dream_blobs = [{name="a", shape=[], produces="p"}]\n', "shape must be"),
    (lambda t: t.replace(SHA.hexdigest, "xyz"), "sha256 must be 64 hex digits"),
    (lambda t: t.replace("num_classes=2", "num_classes=-2"), "num_classes must not be negative"),
    (lambda t: t + "resize=-1\n", "resize must not be negative"),
    (lambda t: t.replace('names=["a","b"]', "names=[1, 2]"), "names must be strings"),
    (lambda t: t.replace("input_size=[8,8]", "input_size=[true,8]"), "input_size"),
    (lambda t: t.replace("[models.x]", '[models."a.b"]'), "not allowed"),
    (lambda t: t.replace("mean=[1,2,3]\n", ""), "no mean"),
    (lambda t: t.replace('names=["a","b"]', 'builtin="../../../etc/passwd"'), "not a labels file shipped"),
])
def test_bad_models_toml_is_one_line(tmp_path: Path, edit, said: str) -> None:
    p = tmp_path / "models.toml"
    p.write_text(edit(CARD))
    with pytest.raises(RegistryError, match=said.replace("[", r"\[")) as e:
        parse_toml(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_non_utf8_models_toml_via_cli(capsys) -> None:
    toml = cache.zoo_home() / "models.toml"
    toml.parent.mkdir(parents=True, exist_ok=True)
    toml.write_bytes(CARD.encode() + b"notes = '\xff\xfe'\n")
    assert zoo.cli.main(["list"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {toml}: not UTF-8 text (byte {len(CARD) + 9})"


def test_card_round_trips_through_to_table() -> None:
    from zoo.registry import load_registry, parse_card

    reg = load_registry()
    for name in reg.names():
        card = reg.get(name)
        assert parse_card(name, card.to_table(), card.defined_in) == card


# --- cached files that went bad are rebuilt ------------------------------------------------------------


def test_truncated_cached_onnx_is_rebuilt(monkeypatch) -> None:
    import onnxruntime as ort

    mirror = cache.zoo_home().parent / "mirror_onnx" / "mtcnn_det1"
    mirror.mkdir(parents=True)
    for name in ("det1.prototxt", "det1.caffemodel"):
        shutil.copy(MTCNN / name, mirror / name)
    monkeypatch.setenv("ZOO_MIRROR", str(mirror.parent))
    card = get_card("mtcnn_det1")
    paths = cache.ensure_model(card, say=lambda m: None)
    onnx = cache.ensure_onnx(card, paths)
    good = onnx.read_bytes()
    onnx.write_bytes(good[: len(good) // 2])  # truncated, and newer than the Caffe files
    said: list[str] = []
    again = cache.ensure_onnx(card, paths, say=said.append)
    assert again.read_bytes() == good and "damaged" in said[0]
    ort.InferenceSession(str(again), providers=["CPUExecutionProvider"])


def _targz(members: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("members", [
    [(".", b"a file called dot")],
    [("a", b"file"), ("a", None)],
    [("a", b"file"), ("a/b", b"under a file")],
    [("d", None), ("d", b"a file over a folder")],
])
def test_malformed_archives_are_refused(tmp_path: Path, members) -> None:
    from zoo.train.datasets import DatasetError
    from zoo.train.lfw import safe_extract

    (tmp_path / "a.tgz").write_bytes(_targz(members))
    with pytest.raises(DatasetError, match="refusing to extract"):
        safe_extract(tmp_path / "a.tgz", tmp_path / "out")
    assert files_in(tmp_path) == ["a.tgz"]


def test_truncated_gzip_is_one_line(tmp_path: Path) -> None:
    from zoo.train.datasets import DatasetError
    from zoo.train.lfw import safe_extract

    data = _targz([("x/big.bin", os.urandom(200_000))])
    (tmp_path / "a.tgz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        safe_extract(tmp_path / "a.tgz", tmp_path / "out")
    assert files_in(tmp_path) == ["a.tgz"]
    (tmp_path / "b.tgz").write_bytes(gzip.compress(b"not a tar at all" * 100)[:50])
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        safe_extract(tmp_path / "b.tgz", tmp_path / "out")


def test_truncated_archive_member_in_the_cache_is_one_line(tmp_path: Path) -> None:
    from zoo.errors import UserError

    data = _targz([("m/w.bin", os.urandom(200_000))])
    (tmp_path / "a.tgz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable archive"):
        cache._extract_member(tmp_path / "a.tgz", "m/w.bin", tmp_path / "w.bin")
    assert files_in(tmp_path) == ["a.tgz"]


def _image_folder(root: Path) -> Path:
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i, f in enumerate(sorted((SHARED / "datasets" / "lfw_gender" / ("female" if cls == "a" else "male"))
                                     .glob("*.jpg"))[:3]):
            shutil.copy(f, root / cls / f"{i}.jpg")
    return root


def test_packs_go_to_the_cache_and_a_damaged_one_is_rebuilt(tmp_path: Path) -> None:
    from zoo.train.datasets import scan_folder
    from zoo.train.pack import open_or_pack

    folder = _image_folder(tmp_path / "photos")
    before = sorted(str(p) for p in folder.rglob("*"))
    images = scan_folder(folder)
    src, notes = open_or_pack(images, 24, show=False)
    assert sorted(str(p) for p in folder.rglob("*")) == before  # nothing hidden in the user's folder
    assert cache.zoo_home() in src.path.parents and len(src) == 6
    src.path.write_bytes(src.path.read_bytes()[:1000])  # truncated
    again, notes = open_or_pack(images, 24, show=False)
    assert "damaged" in notes[0] and len(again) == 6 and again.labels.tolist() == src.labels.tolist()


# --- small ones -----------------------------------------------------------------------------------------


def test_info_on_a_folder_or_missing_path(tmp_path: Path, capsys) -> None:
    assert zoo.cli.main(["info", str(tmp_path)]) == 1
    assert zoo.cli.main(["info", str(tmp_path / "missing.prototxt")]) == 1
    assert zoo.cli.main(["info", "no/such/file"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {tmp_path}: is a folder; give a prototxt file or a model name (see `zoo list`)",
                   f"error: {tmp_path / 'missing.prototxt'}: no such file, and not a model name (see `zoo list`)",
                   "error: no/such/file: no such file, and not a model name (see `zoo list`)"]


def test_non_utf8_labels_file(tmp_path: Path, capsys) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"cat\n\xff\xfedog\n")
    args = ["convert", str(MTCNN / "det1.prototxt"), "-w", str(MTCNN / "det1.caffemodel"), "-o",
            str(tmp_path / "out"), "--name", "faces", "--labels", str(labels)]
    assert zoo.cli.main(args) == 1
    assert capsys.readouterr().err.strip() == f"error: {labels}: --labels is not UTF-8 text (byte 4)"
    assert files_in(tmp_path) == ["labels.txt"]


def test_checksum_mismatch_names_both_sums(tmp_path: Path) -> None:
    with FaultServer({"a.bin": PAYLOAD}, {"a.bin": "wrong"}) as srv, pytest.raises(ChecksumMismatch) as e:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert SHA.hexdigest in str(e.value) and srv.url("a.bin") in str(e.value)


@pytest.mark.parametrize("home", ["/proc/zoo-home", "/dev/null/zoo"])
def test_zoo_home_that_cannot_be_made_is_one_line(monkeypatch, capsys, home: str) -> None:
    monkeypatch.setenv("ZOO_HOME", home)
    assert zoo.cli.main(["fetch", "mtcnn_det1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {home}") and "cannot create this folder" in err[0]
