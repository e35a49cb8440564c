"""Downloads against a real http.server on 127.0.0.1: resume, drops, checksums, 404, mirrors, locks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo import cache
from zoo.fetch import ChecksumMismatch, FetchError, FetchOptions, fetch_file, file_digest, mirror_sources
from zoo.register import register_card as register_user_model
from zoo.register import register_local_model
from zoo.registry import Checksum, get_card

try:  # tests/ is on sys.path when pytest imports test files from it
    from fault_server import FaultServer as FileServer
    from zoo_helpers import SHARED_MODELS
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer as FileServer
    from tests.zoo_helpers import SHARED_MODELS

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, every offset distinguishable
SHA = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
FAST = FetchOptions(timeout=5, retries=2, backoff=0.0, progress=False)


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock"))


def test_normal_download(tmp_path: Path) -> None:
    with FileServer({"m/a.bin": PAYLOAD}) as srv:
        out = fetch_file([srv.url("m/a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert out.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["a.bin"]
    assert srv.log == [("m/a.bin", None)]


def test_dropped_connection_is_resumed_with_range(tmp_path: Path) -> None:
    with FileServer({"a.bin": PAYLOAD}, {"a.bin": "drop_once"}) as srv:
        out = fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert out.read_bytes() == PAYLOAD
    assert srv.log == [("a.bin", None), ("a.bin", f"bytes={len(PAYLOAD) // 2}-")]


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    with FileServer({"a.bin": PAYLOAD}) as srv:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert srv.log == [("a.bin", "bytes=1000-")]


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path) -> None:
    (tmp_path / "a.bin.part").write_bytes(b"junk" * 10)
    with FileServer({"a.bin": PAYLOAD}, {"a.bin": "no_range"}) as srv:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_connection_that_keeps_dropping_fails_and_keeps_the_part_to_resume(tmp_path: Path) -> None:
    with FileServer({"a.bin": PAYLOAD}, {"a.bin": "drop:1000"}) as srv, pytest.raises(FetchError) as e:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert "dropped" in str(e.value) and "\n" not in str(e.value)
    assert leftovers(tmp_path) == ["a.bin.part"]  # never at its final name; the next run resumes it
    assert len(srv.log) == FAST.retries + 1


def test_wrong_bytes_fail_with_both_sums_and_leave_nothing(tmp_path: Path) -> None:
    with FileServer({"a.bin": PAYLOAD}, {"a.bin": "wrong"}) as srv, pytest.raises(ChecksumMismatch) as e:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    wrong = hashlib.sha256(bytes((b + 1) % 256 for b in PAYLOAD)).hexdigest()
    assert SHA.hexdigest in str(e.value) and wrong in str(e.value)
    assert leftovers(tmp_path) == []


def test_404_fails_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    with FileServer({}) as srv, pytest.raises(FetchError, match="HTTP 404"):
        fetch_file([srv.url("missing.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert leftovers(tmp_path) == []
    assert len(srv.log) == 1  # a 404 is not retried


def test_corrupt_cached_file_is_fetched_again(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(PAYLOAD[:-1] + b"\0")
    with FileServer({"a.bin": PAYLOAD}) as srv:
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
        assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)  # valid: no request
    assert len(srv.log) == 1


def test_checksum_kinds_agree_with_git_and_hashlib(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"hello\n")
    assert file_digest(p, "git_blob") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    assert file_digest(p, "md5") == hashlib.md5(b"hello\n").hexdigest()
    det1 = SHARED_MODELS / "mtcnn" / "det1.caffemodel"
    assert file_digest(det1, "git_blob") == "79e93b488e4b88056ed8d4d7ec03e36bf16a62fc"  # SOURCE.md


def test_first_source_failing_falls_through_to_the_next(tmp_path: Path) -> None:
    with FileServer({"up/a.bin": PAYLOAD}) as srv:
        fetch_file([srv.url("mirror/a.bin"), srv.url("up/a.bin")], tmp_path / "a.bin", SHA, options=FAST)
    assert [p for p, _ in srv.log] == ["mirror/a.bin", "up/a.bin"]


def test_source_sending_more_than_the_declared_size_is_cut_off_and_blamed(tmp_path: Path) -> None:
    """A card's `size` bounds the download: the oversized source is named, before any checksum is taken,
    and the next source serves the real file."""
    big = PAYLOAD + b"\0" * 4096
    with FileServer({"m/a.bin": big, "u/a.bin": PAYLOAD}) as srv:
        out = fetch_file([srv.url("m/a.bin"), srv.url("u/a.bin")], tmp_path / "a.bin", SHA, options=FAST,
                         size=len(PAYLOAD))
        assert out.read_bytes() == PAYLOAD
        assert [p for p, _ in srv.log] == ["m/a.bin", "u/a.bin"]  # blamed at once, not retried
        with pytest.raises(FetchError) as e:  # an unverified file (no checksum) is bounded the same way
            fetch_file([srv.url("m/a.bin")], tmp_path / "b.bin", None, options=FAST, size=len(PAYLOAD))
    msg = str(e.value)
    assert f"more than the {len(PAYLOAD)} bytes the model card declares" in msg and "announces" in msg and "m/a.bin" in msg
    assert not isinstance(e.value, ChecksumMismatch) and "\n" not in msg
    assert leftovers(tmp_path) == ["a.bin"]


def test_folder_mirror_holding_a_bigger_file_is_cut_off_while_copying(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.bin").write_bytes(PAYLOAD * 30)  # 3 MB: several 1 MiB blocks, cut at the one crossing the bound
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(FetchError, match="more than the 1500000 bytes"):
        fetch_file([str(mirror / "a.bin")], dest / "a.bin", SHA, options=FAST, size=1_500_000)
    assert leftovers(dest) == []
    with FileServer({"a.bin": PAYLOAD}) as srv:  # the exact size passes
        fetch_file([str(mirror / "missing.bin"), srv.url("a.bin")], dest / "a.bin", SHA, options=FAST,
                   size=len(PAYLOAD))
    assert (dest / "a.bin").read_bytes() == PAYLOAD


def test_mirror_layout(tmp_path: Path) -> None:
    assert mirror_sources("m", "f.bin", "http://host/zoo/") == ["http://host/zoo/m/f.bin"]
    assert mirror_sources("m", "f.bin", str(tmp_path)) == [str(tmp_path / "m" / "f.bin")]
    assert mirror_sources("m", "f.bin", "") == []


@pytest.fixture
def zoo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    monkeypatch.delenv("ZOO_MIRROR", raising=False)
    return home


def test_directory_mirror_serves_a_real_model(zoo_home: Path, tmp_path: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror" / "mtcnn_det1"
    mirror.mkdir(parents=True)
    for name in ("det1.prototxt", "det1.caffemodel"):
        (mirror / name).write_bytes((SHARED_MODELS / "mtcnn" / name).read_bytes())
    monkeypatch.setenv("ZOO_MIRROR", str(tmp_path / "mirror"))
    card = get_card("mtcnn_det1")
    said: list[str] = []
    paths = cache.ensure_model(card, say=said.append)
    assert file_digest(paths["weights"], "sha1") == card.files["weights"].checksum.hexdigest
    assert said == ["fetching mtcnn_det1 (not cached yet)"]
    assert cache.is_cached(card)
    # a corrupt cache entry is detected and fetched again from the mirror
    paths["weights"].write_bytes(b"broken")
    said.clear()
    cache.ensure_model(card, say=said.append)
    assert "does not match its checksum" in said[0]
    assert file_digest(paths["weights"], "sha1") == card.files["weights"].checksum.hexdigest


def test_url_mirror_is_tried_before_upstream(zoo_home: Path, monkeypatch) -> None:
    files = {f"zoo/mtcnn_det3/{n}": (SHARED_MODELS / "mtcnn" / n).read_bytes()
             for n in ("det3.prototxt", "det3.caffemodel")}
    with FileServer(files) as srv:
        monkeypatch.setenv("ZOO_MIRROR", srv.url("zoo"))
        paths = cache.ensure_model(get_card("mtcnn_det3"), say=lambda m: None)
    assert paths["prototxt"].read_bytes() == files["zoo/mtcnn_det3/det3.prototxt"]
    assert sorted(p for p, _ in srv.log) == sorted(files)


def test_offline_names_the_fetch_command(zoo_home: Path) -> None:
    with pytest.raises(cache.NotCachedError, match="run: zoo fetch mtcnn_det2"):
        cache.ensure_model(get_card("mtcnn_det2"), offline=True)


def test_unverified_file_is_pinned_on_first_download(zoo_home: Path, tmp_path: Path) -> None:
    toml = zoo_home / "models.toml"
    zoo_home.mkdir(parents=True)
    with FileServer({"p.prototxt": b"name: 'x'\n", "w.caffemodel": PAYLOAD}) as srv:
        toml.write_text(
            "[models.tiny]\ntitle='t'\ntask='classify'\nlicense='l'\norigin='o'\ninput_size=[8,8]\n"
            "channel_order='BGR'\nmean=[1,2,3]\nnum_classes=2\noutput='prob'\ndefault_blob='x'\nlabels={names=['a','b']}\n"
            f"files.prototxt={{url='{srv.url('p.prototxt')}', unverified='test'}}\n"
            f"files.weights={{url='{srv.url('w.caffemodel')}', sha256='{SHA.hexdigest}'}}\n"
        )
        from zoo.registry import load_registry

        card = load_registry().get("tiny")
        paths = cache.ensure_model(card, say=lambda m: None)
    assert cache.expected_checksum(card, "prototxt") == Checksum("sha256", hashlib.sha256(b"name: 'x'\n").hexdigest())
    paths["prototxt"].write_bytes(b"tampered")
    assert cache.corrupt_roles(card) == ["prototxt"]


def _fetch_script(url: str, dest: Path) -> list[str]:
    code = (
        "import sys; from pathlib import Path; from zoo.fetch import fetch_file, FetchOptions;"
        "from zoo.registry import Checksum;"
        f"fetch_file([{url!r}], Path({str(dest)!r}), Checksum('sha256', {SHA.hexdigest!r}),"
        " options=FetchOptions(progress=False, retries=0))"
    )
    return [sys.executable, "-c", code]


def test_two_processes_fetching_the_same_file(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "a.bin"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with FileServer({"a.bin": PAYLOAD}, {"a.bin": "trickle"}) as srv:
        procs = [subprocess.Popen(_fetch_script(srv.url("a.bin"), dest), env=env, stderr=subprocess.PIPE)
                 for _ in range(2)]
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0, 0], results
    assert dest.read_bytes() == PAYLOAD
    assert srv.full_requests("a.bin") == 1  # the second process waited on the lock, then found the file
    assert leftovers(dest.parent) == ["a.bin"]


def test_register_local_model_caches_it(zoo_home: Path, tmp_path: Path) -> None:
    src = tmp_path / "made"
    src.mkdir()
    for name in ("det3.prototxt", "det3.caffemodel"):
        (src / name).write_bytes((SHARED_MODELS / "mtcnn" / name).read_bytes())
    card = register_local_model("my_faces", src / "det3.prototxt", src / "det3.caffemodel",
                                      base=get_card("mtcnn_det3"), title="my faces")
    from zoo.registry import load_registry

    again = load_registry().get("my_faces")
    assert again.title == "my faces" and again.transpose and again.files["weights"].url.startswith("file://")
    assert cache.file_path(again, "weights").read_bytes() == (src / "det3.caffemodel").read_bytes()
    assert cache.is_cached(again) and card.files == again.files


def test_files_taken_out_of_a_verified_archive(zoo_home: Path, tmp_path: Path) -> None:
    import io
    import tarfile

    members = {"m/deploy.protxt": (SHARED_MODELS / "mtcnn" / "det1.prototxt").read_bytes(),
               "m/w.caffemodel": (SHARED_MODELS / "mtcnn" / "det1.caffemodel").read_bytes(),
               "m/categoryIndex.csv": b"/a/abbey 0\n/b/bar/indoor 1\n"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    archive = buf.getvalue()
    table = get_card("googlenet_places205").to_table()
    with FileServer({"a.tar.gz": archive}) as srv:
        table["files"]["archive"] = {"url": srv.url("a.tar.gz"), "sha1": hashlib.sha1(archive).hexdigest()}
        for role, member in (("prototxt", "m/deploy.protxt"), ("weights", "m/w.caffemodel"),
                             ("labels", "m/categoryIndex.csv")):
            table["files"][role]["member"] = member
        card = register_user_model("places_like", table)
        paths = cache.ensure_model(card, say=lambda m: None)
    assert paths["weights"].read_bytes() == members["m/w.caffemodel"]
    assert paths["prototxt"].name == "deploy_places205.prototxt"
    assert not cache.file_path(card, "archive").exists()  # only its members are kept
    assert cache.is_cached(card) and cache.corrupt_roles(card) == []
    from zoo.labels import load_labels

    assert load_labels(card.labels, paths) == ["abbey", "bar indoor"]
    paths["weights"].write_bytes(b"bad")
    assert cache.corrupt_roles(card) == ["weights"]  # pinned at extraction


def test_register_converted_then_remove(zoo_home: Path, capsys) -> None:
    import zoo.cli
    from zoo.register import register_converted
    from zoo.registry import load_registry

    toml = register_converted("faces_conv", prototxt=SHARED_MODELS / "mtcnn" / "det2.prototxt",
                              weights=SHARED_MODELS / "mtcnn" / "det2.caffemodel",
                              mean=SHARED_MODELS / "gender_net" / "mean.binaryproto")
    card = load_registry().get("faces_conv")
    assert toml.is_file() and card.input_size == (24, 24) and card.num_classes == 2 and card.mean_from_file
    assert card.default_blob in {b.name for b in card.dream_blobs} and cache.is_cached(card)
    assert zoo.cli.main(["remove", "faces_conv"]) == 0
    assert "faces_conv" not in load_registry() and not cache.model_dir("faces_conv").exists()
    with pytest.raises(Exception, match="built-in model"):
        register_converted("mtcnn_det2", prototxt=SHARED_MODELS / "mtcnn" / "det2.prototxt",
                           weights=SHARED_MODELS / "mtcnn" / "det2.caffemodel")
