"""`zoo classify / fetch / list / remove` end to end, with no network: built-in brain, mirrors, fallbacks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data
from sklearn.datasets import load_sample_image

import zoo.cli
from zoo.preprocess import Preprocess
from zoo.register import register_card as register_user_model
from zoo.registry import card_table_from_card, get_card

try:  # tests/ is on sys.path when pytest imports test files from it
    from zoo_helpers import SHARED, SHARED_MODELS, FaultServer, shared_or_skip
except ImportError:  # pragma: no cover
    from tests.zoo_helpers import SHARED, SHARED_MODELS, FaultServer, shared_or_skip

LFW = SHARED / "datasets" / "lfw_identity"


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ZOO_HOME with the built-in brain and its ONNX already built, whichever test of the module runs
    first or alone (under -n 2 any test may run alone on a worker)."""
    home = tmp_path_factory.mktemp("zoohome")
    mp = pytest.MonkeyPatch()
    mp.setenv("ZOO_HOME", str(home))
    try:
        from zoo import cache

        card = get_card("efficientnet_lite0")
        cache.ensure_onnx(card, cache.ensure_model(card, offline=True))
    finally:
        mp.undo()
    return home


@pytest.fixture
def home(module_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One ZOO_HOME for the module (the built-in brain is built once), no mirror, no retries."""
    monkeypatch.setenv("ZOO_HOME", str(module_home))
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    monkeypatch.delenv("ZOO_MIRROR", raising=False)
    yield module_home


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    out = {"chelsea": d / "chelsea.png", "coffee": d / "coffee.jpg", "broken": d / "broken.jpg"}
    Image.fromarray(data.chelsea()).save(out["chelsea"])
    Image.fromarray(data.coffee()).save(out["coffee"], quality=95)
    out["broken"].write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return out


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = zoo.cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_builtin_brain_names_cat_and_espresso(home: Path, photos: dict[str, Path], capsys) -> None:
    onnx = home / "models" / "efficientnet_lite0" / "model.onnx"
    built = onnx.stat().st_mtime_ns
    code, out, err = run(capsys, "classify", "--model", "efficientnet_lite0", photos["chelsea"], photos["coffee"],
                         "--json", "--top", "3")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert 281 <= results[0]["top"][0]["index"] <= 285
    assert results[1]["top"][0]["index"] == 967 and results[1]["top"][0]["label"] == "espresso"
    assert len(results[0]["top"]) == 3
    assert onnx.stat().st_mtime_ns == built  # classify reuses the ONNX built once, it does not convert again


def test_undecodable_image_is_reported_and_the_rest_classified(home, photos, capsys) -> None:
    code, out, err = run(capsys, "classify", "-m", "efficientnet_lite0", photos["broken"], photos["coffee"])
    assert code == 1
    assert f"{photos['broken']}: cannot decode image" in err
    assert "1 of 2 images could not be decoded" in err
    assert str(photos["coffee"]) in out and "espresso" in out and str(photos["broken"]) not in out


def test_default_brain_offline_falls_back_to_the_builtin(home, photos, capsys) -> None:
    code, out, err = run(capsys, "classify", "--offline", photos["coffee"], "-k", "1")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "efficientnet_lite0" in notes[0] and "bvlc_googlenet" in notes[0]
    assert "espresso" in out


def test_default_brain_that_cannot_be_fetched_falls_back(home, photos, capsys, monkeypatch) -> None:
    user_home = home.parent / "fallback_home"
    monkeypatch.setenv("ZOO_HOME", str(user_home))
    shutil.copytree(home / "models" / "efficientnet_lite0", user_home / "models" / "efficientnet_lite0")
    with FaultServer({}) as srv:  # every URL of the default brain answers 404
        table = card_table_from_card(get_card("bvlc_googlenet"))
        for spec in table["files"].values():
            spec["url"] = srv.url(spec["filename"])
        register_user_model("bvlc_googlenet", table)
        code, out, err = run(capsys, "classify", photos["chelsea"], "-k", "1")
    assert code == 0, err
    assert "HTTP 404" in err and "using efficientnet_lite0" in err
    assert "cat" in out
    assert not (user_home / "models" / "bvlc_googlenet" / "bvlc_googlenet.caffemodel").exists()


def test_offline_named_model_says_how_to_fetch(home, photos, capsys) -> None:
    code, _, err = run(capsys, "classify", "--offline", "-m", "mtcnn_det3", photos["coffee"])
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: model mtcnn_det3 is not cached (offline); run: zoo fetch mtcnn_det3"


def test_unknown_model_suggests_names(home, photos, capsys) -> None:
    code, _, err = run(capsys, "classify", "-m", "mtcnn_det", photos["coffee"])
    assert code == 1 and "did you mean mtcnn_det" in err and "mtcnn_det1" in err


def test_fetch_404_exits_1_and_leaves_nothing(home, capsys, monkeypatch) -> None:
    with FaultServer({}) as srv:
        monkeypatch.setenv("ZOO_MIRROR", srv.url("zoo"))
        table = card_table_from_card(get_card("mtcnn_det2"))
        for spec in table["files"].values():
            spec["url"] = srv.url(spec["filename"])
        monkeypatch.setenv("ZOO_HOME", str(home.parent / "home404"))
        register_user_model("mtcnn_det2", table)
        code, _, err = run(capsys, "fetch", "mtcnn_det2")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: ") and "HTTP 404" in err
    d = home.parent / "home404" / "models" / "mtcnn_det2"
    assert [p.name for p in d.iterdir() if not p.name.endswith(".lock")] == []


# --- MTCNN O-Net: faces vs non-faces, ORT through the CLI against OpenCV dnn -------------------


def _faces(d: Path) -> list[Path]:
    files = sorted(shared_or_skip(LFW).glob("*/*.jpg"))[::40]
    out = []
    for f in files:
        p = d / f"face_{f.stem}.png"
        Image.open(f).convert("RGB").crop((70, 70, 180, 180)).save(p)  # the face of a deep-funneled LFW image
        out.append(p)
    return out


def _non_faces(d: Path) -> list[Path]:
    out = []
    pictures = [data.coffee(), data.rocket(), load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    for i, a in enumerate(pictures):
        im = Image.fromarray(a)
        w, h = im.size
        s = min(w, h) // 3
        for j, (x, y) in enumerate([(0, 0), (w - s, h - s), (w // 4, h // 3)]):
            p = d / f"nonface_{i}_{j}.png"
            im.crop((x, y, x + s, y + s)).save(p)
            out.append(p)
    return out


def mirror_mtcnn(tmp_path: Path, monkeypatch, net: str) -> None:
    """A directory mirror holding one real MTCNN net, set as $ZOO_MIRROR."""
    mirror = tmp_path / "mirror" / f"mtcnn_{net}"
    mirror.mkdir(parents=True)
    for name in (f"{net}.prototxt", f"{net}.caffemodel"):
        shutil.copy(shared_or_skip(SHARED_MODELS / "mtcnn" / name), mirror / name)
    monkeypatch.setenv("ZOO_MIRROR", str(tmp_path / "mirror"))


def test_mtcnn_det3_face_probability_matches_opencv(home, capsys, monkeypatch, tmp_path: Path) -> None:
    mirror_mtcnn(tmp_path, monkeypatch, "det3")
    faces, others = _faces(tmp_path), _non_faces(tmp_path)
    code, out, err = run(capsys, "classify", "-m", "mtcnn_det3", "--json", "-k", "2", *faces, *others)
    assert code == 0, err
    assert "fetching mtcnn_det3" in err
    face_prob = np.array([next(p["prob"] for p in r["top"] if p["label"] == "face")
                          for r in json.loads(out)["results"]])
    pp = Preprocess.from_card(get_card("mtcnn_det3"))
    net = cv2.dnn.readNetFromCaffe(str(SHARED_MODELS / "mtcnn" / "det3.prototxt"),
                                   str(SHARED_MODELS / "mtcnn" / "det3.caffemodel"))
    net.setInput(np.stack([pp.prepare(Image.open(p)) for p in faces + others]))
    ref = net.forward("prob1")[:, 1]
    np.testing.assert_allclose(face_prob, ref, atol=1e-4)
    n = len(faces)
    assert face_prob[:n].min() > face_prob[n:].max()
    assert np.median(face_prob[:n]) > 0.9 and np.median(face_prob[n:]) < 0.1


def test_list_fetch_remove(home, capsys, monkeypatch, tmp_path: Path) -> None:
    mirror_mtcnn(tmp_path, monkeypatch, "det1")
    code, out, err = run(capsys, "fetch", "mtcnn_det1")
    assert code == 0, err
    assert (home / "models" / "mtcnn_det1" / "model.onnx").is_file()
    code, out, _ = run(capsys, "list")
    row = next(line for line in out.splitlines() if line.split()[:1] == ["mtcnn_det1"])
    assert row.split()[-1] == "yes" and "12x12" in row
    code, out, _ = run(capsys, "remove", "mtcnn_det1")
    assert code == 0 and not (home / "models" / "mtcnn_det1").exists()
    code, _, err = run(capsys, "remove", "mtcnn_det1")
    assert code == 1 and "not cached" in err
