"""The artist's path end to end: class objectives measured by OpenCV dnn, labels, neurons at the README's
position, formats that carry their recipe, batches, portable and interrupted recipes, presets offline."""

from __future__ import annotations

import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from skimage import data
from zoo.dream.recipe import read_recipe

from tests import dream_helpers
from tests.conftest import MODELS, shared_or_skip
from zoo.cli import main

MODEL = dream_helpers.MODEL
built_home, home = dream_helpers.built_home, dream_helpers.home  # the shared fixtures

EFF = MODELS / "efficientnet_lite0"


def test_labels_read_the_shipped_list_without_building_the_brain(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "fresh"))
    assert main(["labels", MODEL, "--grep", "zzzz-none"]) == 1
    assert main(["labels", MODEL, "--grep", "goldfish"]) == 0 and "goldfish" in capsys.readouterr().out
    assert not list((tmp_path / "fresh").rglob("*.caffemodel"))


@pytest.fixture
def coffee(tmp_path) -> Path:
    path = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    return path


def _opencv_eff_prob(path: Path, index: int) -> float:
    """efficientnet_lite0's probability of a class by OpenCV dnn on the image resized to 224 (BGR, -127)."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(shared_or_skip(EFF / "deploy.prototxt")),
                                   str(EFF / "efficientnet_lite0.caffemodel"))
    bgr = cv2.resize(cv2.imread(str(path)).astype(np.float32), (224, 224), interpolation=cv2.INTER_AREA)
    net.setInput((bgr - 127.0).transpose(2, 0, 1)[None])
    return float(net.forward("prob")[0, index])


def test_goldfish_is_dreamt_into_the_coffee_photo(home, coffee, tmp_path):
    """Judged by OpenCV on the median of three seeds: one trajectory of a 40-step class dream is
    chaotic (seed 0 gave 0.68 or 0.08 by the order of conv1's float sums, seed 1 0.42 or 0.98)."""
    before, after = _opencv_eff_prob(coffee, 1), []
    for seed in (0, 1, 2):
        out = tmp_path / f"gold{seed}.png"
        assert main(["dream", str(coffee), "-o", str(out), "-m", MODEL, "-l", "prob:goldfish", "--size", "224",
                     "--seed", str(seed), "--look", "classic"]) == 0  # the legible look: tests/test_dream_legible
        after.append(_opencv_eff_prob(out, 1))
        assert read_recipe(out).layers == ("prob:1",)
    assert sorted(after)[1] >= 0.2 and sorted(after)[1] >= 20 * before, (before, after)


def _det3_mirror(tmp_path: Path, monkeypatch) -> Path:
    """A folder mirror ($ZOO_MIRROR) holding the shared mtcnn_det3 files; returns its det3 folder."""
    mirror = tmp_path / "mirror" / "mtcnn_det3"
    mirror.mkdir(parents=True)
    for name in ("det3.prototxt", "det3.caffemodel"):
        shutil.copy(shared_or_skip(MODELS / "mtcnn" / name), mirror / name)
    monkeypatch.setenv("ZOO_MIRROR", str(tmp_path / "mirror"))
    return mirror


def test_mtcnn_det3_face_score_rises_on_a_non_face_crop(tmp_path, monkeypatch):
    import cv2

    mirror = _det3_mirror(tmp_path, monkeypatch)
    crop = tmp_path / "crop.png"
    Image.fromarray(data.coffee()[100:300, 300:500]).save(crop)
    net = cv2.dnn.readNetFromCaffe(str(mirror / "det3.prototxt"), str(mirror / "det3.caffemodel"))

    def face(path: Path) -> float:  # det3 reads RGB, transposed, (x - 127.5) / 128
        rgb = cv2.resize(np.asarray(Image.open(path).convert("RGB"), np.float32), (48, 48),
                         interpolation=cv2.INTER_AREA)
        net.setInput(((rgb - 127.5) * 0.0078125).transpose(2, 1, 0)[None])
        return float(net.forward("prob1")[0, 1])

    out = tmp_path / "face.png"
    assert main(["dream", str(crop), "-o", str(out), "-m", "mtcnn_det3", "-l", "prob1:face", "--octaves", "5",
                 "--iterations", "8", "--look", "classic"]) == 0
    assert face(crop) < 0.1 and face(out) > 0.5, (face(crop), face(out))


@pytest.mark.parametrize("size", [None, "300"])
def test_readme_neuron_runs_at_the_photo_size_and_at_300(home, coffee, tmp_path, size):
    out = tmp_path / "neuron.png"
    args = ["dream", str(coffee), "-o", str(out), "-m", MODEL, "-l", "block10/output:3@7,7", "--octaves", "2",
            "--iterations", "1"]
    assert main(args + (["--size", size] if size else [])) == 0
    assert Image.open(out).size == ((600, 400) if size is None else (300, 200))


def test_neuron_pulls_on_its_own_place_across_tiles(home, coffee, tmp_path):
    """One neuron at the final size: on a tiled run, the change is largest around its place."""
    out = tmp_path / "n.png"
    assert main(["dream", str(coffee), "-o", str(out), "-m", MODEL, "-l", "block10/output:5@9,14", "--size", "300",
                 "--tile", "128", "--octaves", "1", "--iterations", "2", "--jitter", "0"]) == 0
    diff = np.abs(np.asarray(Image.open(out), np.float32) - np.asarray(Image.open(coffee).resize((300, 200)),
                                                                        np.float32)).sum(2)
    y, x = np.unravel_index(np.argmax(_box(diff, 17)), diff.shape)
    assert abs(y - 9.5 * 16) < 24 and abs(x - 14.5 * 16) < 24, (y, x)  # block10/output has stride 16


def _box(a: np.ndarray, k: int) -> np.ndarray:
    c = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), 0), 1)
    out = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return np.pad(out, ((k // 2, k - 1 - k // 2), (k // 2, k - 1 - k // 2)))


def test_labels_command_and_layers_show_the_class_syntax(home, capsys):
    assert main(["labels", MODEL, "--grep", "goldfish"]) == 0
    assert capsys.readouterr().out.split() == ["1", "goldfish,", "Carassius", "auratus"]
    assert main(["layers", MODEL]) == 0
    assert "prob:LABEL" in capsys.readouterr().out
    assert main(["layers", MODEL, "--size", "600x400"]) == 0
    assert "112×25×37" in capsys.readouterr().out  # block10/output on the 600x400 photo (TF SAME padding)
    assert main(["dream", "--init", "noise", "--size", "64", "-o", "x.png", "-m", MODEL, "-l", "prob:crane"]) == 1
    err = capsys.readouterr().err
    assert "ambiguous" in err and "134: crane" in err and "517: crane" in err


def test_every_format_carries_its_recipe_and_reproduces(home, coffee, tmp_path):
    for ext in ("png", "jpg", "webp", "tif"):
        out = tmp_path / f"d.{ext}"
        assert main(["dream", str(coffee), "-o", str(out), "-m", MODEL, "--size", "64", "--octaves", "1",
                     "--iterations", "1", "--quality", "80"]) == 0
        rec = read_recipe(out)
        assert rec.model == MODEL and rec.size == "64"
        again = tmp_path / f"again.{ext}"
        assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
        if ext in ("png", "tif"):
            assert again.read_bytes() == out.read_bytes()
    import tifffile

    assert tifffile.imread(tmp_path / "d.tif").dtype == np.uint16


def test_a_folder_of_photos_dreams_into_a_folder_under_one_bar(home, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, img in (("a.png", data.astronaut()), ("b.jpg", data.chelsea())):
        Image.fromarray(img).resize((64, 48)).save(photos / name)
    dreams = tmp_path / "dreams"
    assert main(["dream", str(photos), "-o", str(dreams), "-m", MODEL, "--octaves", "1", "--iterations", "2",
                 "--format", "jpg"]) == 0
    assert sorted(p.name for p in dreams.iterdir()) == ["a-dream.jpg", "b-dream.jpg"]
    err = capsys.readouterr().err
    assert "dreaming 1/2" in err and "dreaming 2/2" in err and "1 octave ×" in err


def test_recipes_are_portable_and_guides_can_be_overridden(home, coffee, tmp_path, monkeypatch):
    guide = tmp_path / "guide.png"
    Image.fromarray(data.chelsea()).resize((64, 64)).save(guide)
    out = tmp_path / "g.png"
    assert main(["dream", str(coffee), "-o", str(out), "-m", MODEL, "--size", "64", "--guide", str(guide),
                 "--octaves", "1", "--iterations", "1"]) == 0
    assert Path(read_recipe(out).input).is_absolute()
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in (coffee, guide, out):
        shutil.move(p, moved / p.name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["dream", "--recipe", "../moved/g.png", "-o", "again.png"]) == 0
    assert (elsewhere / "again.png").read_bytes() == (moved / "g.png").read_bytes()
    other = tmp_path / "other.png"
    Image.fromarray(data.astronaut()).resize((64, 64)).save(other)
    assert main(["dream", "--recipe", "../moved/g.png", "--guide", str(other), "-o", "over.png"]) == 0
    assert read_recipe(elsewhere / "over.png").guide == str(other.resolve())


def test_an_interrupted_dream_is_reproduced_to_the_same_step(home, coffee, tmp_path):
    from zoo.dream import run
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe

    stop = threading.Event()
    seen = []

    def progress(u) -> None:
        seen.append(u.done)
        if u.done == 3:
            stop.set()

    rec = Recipe(model=MODEL, weights_sha256="", layers=("block7/output",), params=DreamParams(octaves=2, iterations=4),
                 input=str(coffee), size="64")
    first = run.run_recipe(rec, tmp_path / "cut.png", on_progress=progress, stop=stop)
    assert first.interrupted and first.recipe.steps_done == 3
    assert main(["dream", "--recipe", str(tmp_path / "cut.png"), "-o", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "cut.png").read_bytes()


def test_preset_falls_back_offline_and_says_what_it_changes(home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    out = tmp_path / "p.png"
    assert main(["dream", "--init", "noise", "--size", "48", "-o", str(out), "--preset", "classic", "--iterations",
                 "1", "--octaves", "1"]) == 0
    err = capsys.readouterr().err
    assert "preset classic" in err and read_recipe(out).model == MODEL
    # the notebook's settings (4 octaves of 1.4, 10 steps of 1.5, jitter 32) are the defaults; its layer
    # is GoogLeNet's, so on the fallback brain nothing changes, and the line says so
    assert (f"preset classic: the DeepDream notebook's defaults; on {MODEL} it equals the defaults (made for "
            "bvlc_googlenet: inception_4c/output)") in err


def test_progress_keeps_counts_and_eta_at_80_columns():
    from rich.progress import Progress

    from zoo.cli_output import progress_columns

    for where in ("oct 3/4 step 7/10", "img 2/12 frame 3/12 oct 3/4 step 10/10 tile 12/16"):
        bar = Progress(*progress_columns(), console=Console(width=80, file=io.StringIO()), expand=True,
                       auto_refresh=False)
        bar.add_task(where, total=4800, completed=1200)
        con = Console(width=80, record=True, file=io.StringIO())
        con.print(bar.get_renderable())
        (line,) = [ln for ln in con.export_text().splitlines() if ln.strip()]
        assert line.startswith(where) and "1200/4800" in line and line.count(":") >= 4, line  # elapsed and ETA
        assert "━" in line and len(line) <= 80, line


def test_recipe_json_is_ascii_for_exif(home, coffee, tmp_path):
    out = tmp_path / "é.jpg"
    assert main(["dream", str(coffee), "-o", str(out), "-m", MODEL, "--size", "48", "--octaves", "1",
                 "--iterations", "1"]) == 0
    with Image.open(out) as im:
        assert json.loads(im.getexif()[0x010E])["model"] == MODEL


def _readme_commands() -> list[list[str]]:
    """Every `zoo dream|atlas|layers|labels` line in the bash blocks of README.md and docs/*.md, once each."""
    import re
    import shlex

    root = Path(__file__).resolve().parents[1]
    text = "\n".join(p.read_text(encoding="utf-8") for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines are one command
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                placeholder = any(w in ("NAME", "MODEL", "RUN", "mybrain") for w in words)  # the train templates
                # clips and --nproc launches need a video or torchrun: tests/test_video.py and test_dream_dist.py
                placeholder = placeholder or "--nproc" in words or any(w.endswith(".mp4") for w in words)
                # sounds need a recording: tests/test_sound.py dreams them
                placeholder = placeholder or any(w.endswith((".wav", ".flac", ".ogg", ".mp3", ".m4a")) for w in words)
                if len(words) > 1 and words[0] == "zoo" and words[1] in ("dream", "atlas", "layers", "labels") \
                        and not placeholder and words[1:] not in cmds:
                    cmds.append(words[1:])
    return cmds


def _scaled(args: list[str]) -> list[str]:
    """The same command, small and short: --size 64, one octave of one step, at most two frames."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--size", "--iterations", "--octaves", "--frames", "--blobs", "-b"):
            skip = True
            continue
        out.append(a)
    if args[0] in ("dream", "atlas"):
        out += ["--octaves", "1", "--iterations", "1"]
        neuron = any("@" in a for a in args)  # its position must lie inside the blob: keep enough pixels
        out += ["--size", "32", "--blobs", "block1/dw/conv"] if args[0] == "atlas" else ["--size",
                                                                                          "200" if neuron else "64"]
        if "--frames" in args:
            out += ["--frames", "2"]
    return out


def test_every_readme_dream_command_runs_scaled_down(home, tmp_path, monkeypatch):
    _det3_mirror(tmp_path, monkeypatch)
    monkeypatch.setenv("ZOO_FETCH_RETRIES", "0")
    work = tmp_path / "work"
    (work / "photos").mkdir(parents=True)
    Image.fromarray(data.coffee()).save(work / "coffee.png")
    Image.fromarray(data.coffee()[100:300, 300:500]).save(work / "crop.png")
    Image.fromarray(data.astronaut()).resize((96, 96)).save(work / "a.png")
    Image.fromarray(data.chelsea()).resize((96, 64)).save(work / "b.jpg")
    shutil.copy(work / "a.png", work / "photos" / "a.png")
    shutil.copy(work / "a.png", work / "print.png")  # the README's print-size example
    monkeypatch.chdir(work)
    cmds = _readme_commands()
    assert len([c for c in cmds if c[0] == "dream"]) >= 8, cmds
    for args in cmds:
        target = work / args[args.index("-o") + 1] if "-o" in args else None
        if target is not None and target.is_file():
            target.unlink()
        elif target is not None and target.is_dir():
            shutil.rmtree(target)
        assert main(_scaled(args)) == 0, args
        if target is not None:  # wrote an image (or a folder of them)
            assert target.is_file() or any(p.suffix in (".png", ".jpg") for p in target.iterdir()), args
