"""Progress as events: library functions that take time report through zoo.events, never print."""

from __future__ import annotations

import hashlib
from pathlib import Path

from zoo.train.progress import bar, log

from zoo import events
from zoo.events import Event
from zoo.fetch import fetch_file
from zoo.registry import Checksum


def test_a_download_reports_its_bytes_and_ends(tmp_path: Path, capsys):
    src = tmp_path / "mirror" / "w.bin"
    src.parent.mkdir()
    data = bytes(range(256)) * 12_000  # 3 MB: several blocks
    src.write_bytes(data)
    seen: list[Event] = []
    with events.listening(seen.append):
        fetch_file([str(src)], tmp_path / "cache" / "w.bin", Checksum("sha256", hashlib.sha256(data).hexdigest()),
                   label="m/w.bin")
    downloads = [e for e in seen if e.task == "download"]
    assert len(downloads) >= 3 and {e.key for e in downloads} == {"m/w.bin"} and downloads[-1].final
    done = [e.done for e in downloads]
    assert done == sorted(done) and done[-1] == len(data) and downloads[-1].total == len(data)
    assert all(e.unit == "B" for e in downloads)
    assert capsys.readouterr() == ("", "")  # the library printed nothing
    seen.clear()
    with events.listening(seen.append):  # already there and verified: nothing to report
        fetch_file([str(src)], tmp_path / "cache" / "w.bin", Checksum("sha256", hashlib.sha256(data).hexdigest()))
    assert seen == []


def test_work_bars_and_notes_are_events_and_nothing_without_a_listener(capsys):
    seen: list[Event] = []
    with events.listening(seen.append):
        with bar(3, "packing x", task="pack", unit="image") as advance:
            advance()
            advance(2, info="all")
        log("a line")
        with bar(3, "quiet", enabled=False) as advance:
            advance()
    assert [(e.task, e.done, e.total, e.info, e.final) for e in seen[:4]] == [
        ("pack", 0, 3, "", False), ("pack", 1, 3, "", False), ("pack", 3, 3, "all", False), ("pack", 3, 3, "all", True)]
    assert seen[4] == Event("note", text="a line") and len(seen) == 5
    with bar(2, "nobody listens") as advance:
        advance()
    log("unheard")
    assert capsys.readouterr() == ("", "")


def test_listening_blocks_nest_and_restore():
    outer: list[Event] = []
    inner: list[Event] = []
    with events.listening(outer.append):
        events.note("1")
        with events.listening(inner.append):
            events.note("2")
        events.note("3")
    events.note("4")
    assert [e.text for e in outer] == ["1", "3"] and [e.text for e in inner] == ["2"]
