"""Sources that outlive their hosts, and the downloader's own faults, against real HTTP servers on
127.0.0.1: a card's `mirrors` are tried after its `url` with the same checksum and each is named in the
error; a `.part` survives retries running out so the next run resumes it; a short write is a full disk,
not a checksum mismatch; a malformed $ZOO_MIRROR is one line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo import cache
from zoo.fetch import FetchError, FetchOptions, fetch_file
from zoo.registry import Checksum, parse_card

try:
    from fault_server import FaultServer
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer

PAYLOAD = bytes(range(256)) * 400
SHA = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
FAST = FetchOptions(timeout=5, retries=1, backoff=0.0, progress=False)


def card_table(url: str, mirrors: list[str] | None) -> dict:
    weights = {"url": url, "sha256": SHA.hexdigest, "filename": "w.caffemodel"}
    if mirrors is not None:
        weights["mirrors"] = mirrors
    return {"title": "t", "task": "classification", "license": "l", "origin": "o", "input_size": [8, 8],
            "channel_order": "BGR", "num_classes": 2, "output": "prob", "default_blob": "prob", "mean": [0.0, 0.0, 0.0],
            "labels": {"names": ["a", "b"]},
            "files": {"prototxt": {"url": url, "sha256": SHA.hexdigest, "filename": "d.prototxt"},
                      "weights": weights}}


def test_card_mirrors_are_tried_in_order_after_upstream(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    monkeypatch.delenv("ZOO_MIRROR", raising=False)
    with FaultServer({"up/w": PAYLOAD, "m2/w": PAYLOAD}, {"up/w": "503"}) as srv:
        card = parse_card("m", card_table(srv.url("up/w"), [srv.url("m1/w"), srv.url("m2/w")]), "<test>")
        spec = card.files["weights"]
        assert cache.sources(card, spec) == [srv.url("up/w"), srv.url("m1/w"), srv.url("m2/w")]
        cache.ensure_files(card, ["weights"], FAST)
        assert [p for p, _ in srv.log] == ["up/w", "up/w", "m1/w", "m2/w"]
    assert cache.file_path(card, "weights").read_bytes() == PAYLOAD
    assert parse_card("m", card.to_table(), "<test>") == card  # mirrors round-trip through models.toml


def test_every_source_is_named_when_all_fail(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    monkeypatch.delenv("ZOO_MIRROR", raising=False)
    with FaultServer({"m1/w": PAYLOAD}, {"up/w": "503", "m1/w": "wrong"}) as srv:
        card = parse_card("m", card_table(srv.url("up/w"), [srv.url("m1/w"), srv.url("m2/w")]), "<test>")
        with pytest.raises(FetchError) as e:
            cache.ensure_files(card, ["weights"], FAST)
    msg = str(e.value)
    assert "\n" not in msg and all(srv.url(p) in msg for p in ("up/w", "m1/w", "m2/w")), msg
    assert "HTTP 503" in msg and "checksum mismatch" in msg and "HTTP 404" in msg


def test_an_old_card_with_one_url_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    monkeypatch.delenv("ZOO_MIRROR", raising=False)
    with FaultServer({"up/w": PAYLOAD}) as srv:
        card = parse_card("m", card_table(srv.url("up/w"), None), "<test>")
        assert cache.sources(card, card.files["weights"]) == [srv.url("up/w")]
        cache.ensure_files(card, ["weights"], FAST)
    assert "mirrors" not in card.to_table()["files"]["weights"]


def test_mirrors_must_be_a_list_of_urls(tmp_path):
    from zoo.registry import RegistryError

    with pytest.raises(RegistryError, match="mirrors"):
        parse_card("m", card_table("https://x/w", "https://y/w"), "<test>")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="mirrors"):
        parse_card("m", card_table("https://x/w", ["/etc/passwd"]), "<test>")


def test_builtin_classic_cards_name_well_known_mirrors():
    from zoo.registry import get_card

    for name in ("bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet"):
        w = get_card(name).files["weights"]
        assert any("web.archive.org" in m for m in w.mirrors), (name, w.mirrors)


def test_part_is_kept_when_retries_run_out_and_the_next_run_resumes(tmp_path):
    with FaultServer({"a.bin": PAYLOAD}, {"a.bin": ["drop:1000", "drop:1000", "ok"]}) as srv:
        with pytest.raises(FetchError, match="dropped"):
            fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
        assert (tmp_path / "a.bin.part").stat().st_size == 2000  # the second try resumed the first
        fetch_file([srv.url("a.bin")], tmp_path / "a.bin", SHA, options=FAST)
        assert srv.log[-1] == ("a.bin", "bytes=2000-")
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


SHORT = """
import resource, signal, sys
from pathlib import Path
from zoo.fetch import fetch_file, FetchOptions
from zoo.registry import Checksum
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))  # the disk fills at 50,000 bytes
try:
    fetch_file([sys.argv[1]], Path(sys.argv[2]), Checksum("sha256", sys.argv[3]),
               options=FetchOptions(retries=0, progress=False))
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.mark.parametrize("scheme", ["folder", "file://"])
def test_a_short_write_is_a_full_disk(tmp_path, scheme):
    src = tmp_path / "mirror" / "a.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    source = str(src) if scheme == "folder" else f"file://{src}"
    (tmp_path / "out").mkdir()
    p = subprocess.run([sys.executable, "-c", SHORT, source, str(tmp_path / "out" / "a.bin"), SHA.hexdigest],
                       capture_output=True, text=True, timeout=60)
    assert "disk full" in p.stdout and "checksum" not in p.stdout, p.stdout + p.stderr
    assert not (tmp_path / "out" / "a.bin").exists()


def test_a_malformed_zoo_mirror_is_one_line(tmp_path):
    env = {**os.environ, "ZOO_HOME": str(tmp_path), "ZOO_MIRROR": "http://[::1"}
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "fetch", "bvlc_googlenet"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "ZOO_MIRROR" in last, p.stderr
    assert not Path(tmp_path, "models").exists() or not any(Path(tmp_path, "models").rglob("*.caffemodel"))
