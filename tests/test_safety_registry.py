"""Issue 21 high 3: everything zoo writes into models.toml reads back as the same TOML, whatever
Unicode a prototxt's `name`, a labels file or a title holds; and a models.toml that is already
broken is one line naming the entry, which `zoo remove` can drop.

The reference reader is tomllib (the standard library's TOML 1.0 parser), not zoo's own code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

import zoo.cli
from zoo.registry import dump_models

SHARED = Path(__file__).resolve().parents[2] / "shared"
MTCNN = SHARED / "models" / "mtcnn"

# any Unicode scalar value: control characters, DEL, quotes, backslashes, newlines (TOML forbids only
# the surrogates, which no str that came from UTF-8 holds)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def table(title: str, label: str, blob: str, notes: str) -> dict:
    return {"title": title, "task": "classify", "license": "l", "origin": notes, "notes": notes,
            "input_size": [8, 8], "channel_order": "BGR", "mean": [1.0, 2.0, 3.0], "num_classes": 2,
            "output": "prob", "default_blob": blob, "labels": {"names": [label, "b"]},
            "files": {"prototxt": {"url": "file:///p", "sha256": "1" * 64},
                      "weights": {"url": "file:///x" + notes, "sha256": "0" * 64}},
            "dream_blobs": [{"name": blob, "shape": [1, 2, 3], "produces": label}]}


@settings(max_examples=300, deadline=None)
@given(title=text, label=text, blob=text, notes=text)
def test_dump_models_round_trips_through_tomllib(title: str, label: str, blob: str, notes: str) -> None:
    want = table(title, label, blob, notes)
    assert tomllib.loads(dump_models({"m": want})) == {"models": {"m": want}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=text, label=text)
def test_register_card_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, title: str, label: str) -> None:
    from zoo.register import register_card
    from zoo.registry import load_registry

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    shutil.rmtree(tmp_path / "home", ignore_errors=True)
    register_card("m", table(title, label, "prob", "n"))
    register_card("m2", table("second", "x", "prob", "n"))  # rewrites the file holding the first
    card = load_registry().get("m")
    assert card.title == title and card.labels.names == (label, "b")


@pytest.mark.skipif(not (MTCNN / "det1.caffemodel").is_file(), reason="needs ../shared/models/mtcnn")
def test_control_characters_from_a_prototxt_and_labels_keep_models_toml_valid(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    proto = tmp_path / "det1.prototxt"
    proto.write_bytes((MTCNN / "det1.prototxt").read_bytes().replace(b'name: "PNet"', b'name: "P\x1b[31mNet\x7f\\"q"'))
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"face\x1b[0m\x00\nno \\ face \x07\n")
    args = ["convert", str(proto), "-w", str(MTCNN / "det1.caffemodel"), "-o", str(tmp_path / "out"), "--name", "evil",
            "--labels", str(labels)]
    assert zoo.cli.main(args) == 0
    capsys.readouterr()
    assert zoo.cli.main(["list"]) == 0
    data = tomllib.loads((tmp_path / "home" / "models.toml").read_text(encoding="utf-8"))
    assert "\x1b" in data["models"]["evil"]["title"]
    assert "Traceback" not in capsys.readouterr().err


BROKEN = """[models.good]
title = "g"

[models.evil]
title = "bad \x1b here"
task = "classify"

[models.evil.labels]
names = ["a"]

[models.after]
title = "a"
"""


def test_a_broken_models_toml_names_the_entry_and_zoo_remove_drops_it(tmp_path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    (home / "models.toml").write_text(BROKEN, encoding="utf-8")
    assert zoo.cli.main(["list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models.toml" in err and "zoo remove evil" in err
    assert zoo.cli.main(["remove", "evil"]) == 0
    capsys.readouterr()
    left = tomllib.loads((home / "models.toml").read_text(encoding="utf-8"))
    assert set(left["models"]) == {"good", "after"}


def test_a_broken_models_toml_outside_an_entry_says_how_to_repair(tmp_path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    (home / "models.toml").write_text("x = \x01\n", encoding="utf-8")
    assert zoo.cli.main(["list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "move it aside" in err


STUDIO_IMPORT = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from zoo.studio.app import Settings, create_app
proto, weights, labels = (Path(p).read_bytes() for p in sys.argv[1:4])
with TestClient(create_app(Settings(start_worker=False, warm=False)), base_url="http://127.0.0.1:7860") as c:
    refs = {}
    for kind, name, body in (("prototxt", "d.prototxt", proto), ("weights", "d.caffemodel", weights),
                             ("labels", "l.txt", labels)):
        r = c.post(f"/api/uploads?kind={kind}&filename={name}", content=body)
        assert r.status_code == 200, r.text
        refs[kind] = r.json()["ref"]
    r = c.post("/api/brains/import", json={"name": "evil", **refs})
    print(r.status_code)
    r = c.post("/api/brains/import", content=json.dumps({"name": "worse", **refs, "scale": float("nan")}),
               headers={"content-type": "application/json"})
    print(r.status_code, r.json().get("error", ""))
    print(c.get("/api/brains").status_code)
"""


@pytest.mark.skipif(not (MTCNN / "det1.caffemodel").is_file(), reason="needs ../shared/models/mtcnn")
def test_the_studio_import_writes_the_same_valid_toml(tmp_path) -> None:
    import os
    import subprocess
    import sys

    pytest.importorskip("fastapi")
    proto = tmp_path / "det1.prototxt"
    proto.write_bytes((MTCNN / "det1.prototxt").read_bytes().replace(b'name: "PNet"', b'name: "P\x1b[31mNet\x01"'))
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"face\x1b[0m\x7f\nno \\ \"face\" \x07\n")
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-c", STUDIO_IMPORT, str(proto), str(MTCNN / "det1.caffemodel"), str(labels)],
                       env={**os.environ, "ZOO_HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    first, second, third = r.stdout.strip().splitlines()[-3:]
    assert first == "200" and third == "200", r.stdout
    assert second.startswith("400") and "scale must be a finite positive number" in second
    data = tomllib.loads((home / "models.toml").read_text(encoding="utf-8"))
    assert set(data["models"]) == {"evil"}
    assert data["models"]["evil"]["title"].startswith("P\x1b[31mNet\x01")
    assert data["models"]["evil"]["labels"]["names"] == ["face\x1b[0m\x7f", 'no \\ "face" \x07']
