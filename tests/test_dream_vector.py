"""SVG in (against CairoSVG, and hostile files refused in one line), stroke dreams out as SVG (the
objective measured by OpenCV dnn on CairoSVG's drawing of them), and the journey's cross-fade and
its resumable frames."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from zoo.dream import journey, paint, svg

from tests import dream_helpers
from tests.conftest import MODELS, shared_or_skip
from zoo.cli import main

MODEL = dream_helpers.MODEL
built_home, home = dream_helpers.built_home, dream_helpers.home
ICON = Path("/usr/share/icons/Adwaita/scalable/places/user-home-symbolic.svg")  # Debian's adwaita-icon-theme


def _one_line(capsys, code: int, args: list[str], *needles: str) -> str:
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


# --- the journey's weights --------------------------------------------------------------------------

def test_layer_weights_walk_the_path_at_an_even_pace():
    assert journey.layer_weights(0, 9, 3) == [1.0, 0.0, 0.0]
    assert journey.layer_weights(8, 9, 3) == [0.0, 0.0, 1.0]
    assert journey.layer_weights(4, 9, 3) == [0.0, 1.0, 0.0]
    assert journey.layer_weights(2, 9, 3) == pytest.approx([0.5, 0.5, 0.0])
    assert journey.layer_weights(7, 9, 3) == pytest.approx([0.0, 0.25, 0.75])
    for k in range(9):
        assert sum(journey.layer_weights(k, 9, 4)) == pytest.approx(1.0)
    assert journey.layer_weights(3, 5, 1) == [1.0]


def test_a_hold_rests_on_each_blob_and_fades_between():
    """3 blobs, hold 0.3 over 21 frames (u = k/20): each blob rests for 0.1 of the walk, each fade
    takes 0.35 (worked by hand)."""
    w = [journey.layer_weights(k, 21, 3, 0.3) for k in range(21)]
    for k, expected in [(0, [1, 0, 0]), (2, [1, 0, 0]), (3, [6 / 7, 1 / 7, 0]), (9, [0, 1, 0]), (11, [0, 1, 0]),
                        (12, [0, 6 / 7, 1 / 7]), (18, [0, 0, 1]), (20, [0, 0, 1])]:
        assert w[k] == pytest.approx(expected, abs=1e-9), k
    assert all(sum(x) == pytest.approx(1.0) for x in w)
    assert journey.layer_weights(7, 9, 3, 0.0) == journey.layer_weights(7, 9, 3)  # no hold: the even walk


def test_a_record_from_before_hold_walks_without_rests(tmp_path):
    folder = tmp_path / "j-frames"
    folder.mkdir()
    from zoo.dream import run

    rec = run.new_recipe(model=MODEL, layers=("stem", "block2/output"), init="noise", frames=9)
    part = {"path": ["stem", "block2/output"], "fps": 12}
    (folder / "run.json").write_text(json.dumps({"recipe": json.loads(rec.to_json()), "journey": part}))
    job = journey.read_job(folder / "run.json")
    assert job.hold == 0.0 and job.frame_recipe(2).weights == (0.75, 0.25)
    assert json.loads(job.to_json())["journey"]["hold"] == 0.0


def test_deeper_frames_get_more_steps_and_the_mean_is_asked():
    steps = [journey.frame_iterations(k, 48, 3, 10) for k in range(48)]
    assert steps == sorted(steps) and (steps[0], steps[-1]) == (2, 18)  # 10·2/9 and 10·16/9, rounded
    assert abs(sum(steps) / 48 - 10) < 0.1
    assert journey.frame_iterations(0, 48, 3, 1) == 1  # never none
    assert journey.frame_iterations(7, 9, 1, 10) == 10  # one blob: no walk, no ramp


# --- SVG in ---------------------------------------------------------------------------------------

def test_icon_rasterises_as_cairosvg_draws_it():
    """A Debian icon theme's SVG drawn by zoo (resvg) and by CairoSVG at 160 px: within 2 of 255 on average."""
    cairosvg = pytest.importorskip("cairosvg")
    icon = shared_or_skip(ICON)
    ours = svg.rasterise(icon, (160, 160))
    png = cairosvg.svg2png(url=str(icon), output_width=160, output_height=160, background_color="white")
    theirs = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    assert ours.shape == (160, 160, 3)
    assert (255 - ours).mean() > 5  # the drawing is there
    assert np.abs(ours - theirs).mean() < 2.0


def test_declared_size_keeps_the_aspect(tmp_path):
    p = tmp_path / "a.svg"
    p.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="2in" viewBox="0 0 40 10"/>')
    assert svg.svg_size(p) == (48, 192)
    assert svg.rasterise(p, (12, 48)).shape == (12, 48, 3)


HOSTILE = {
    "external.svg": '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                    'width="10" height="10"><image xlink:href="secret.png" width="10" height="10"/></svg>',
    "file.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="file:///etc/passwd" '
                'width="10" height="10"/></svg>',
    "css.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect style="fill: '
               'url(http://example.com/x)" width="5" height="5"/></svg>',
    "entity.svg": '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg" '
                  'width="10" height="10">&a;</svg>',
    "broken.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="10"',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_svg_is_one_line_and_writes_nothing(home, tmp_path, capsys, name):
    p = tmp_path / name
    p.write_text(HOSTILE[name])
    out = tmp_path / "out.png"
    _one_line(capsys, 1, ["dream", str(p), "-o", str(out), "--size", "64", "-m", MODEL], str(p))
    assert not out.exists()


def test_svg_declaring_a_huge_size_is_refused_before_rendering(home, tmp_path, capsys):
    p = tmp_path / "huge.svg"
    p.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="900000" height="900000"/>')
    _one_line(capsys, 1, ["dream", str(p), "-o", str(tmp_path / "o.png"), "-m", MODEL], "memory")
    assert not (tmp_path / "o.png").exists()


def test_svg_dreams_at_the_asked_size(home, tmp_path):
    icon = shared_or_skip(ICON)
    out = tmp_path / "icon.png"
    assert main(["dream", str(icon), "-o", str(out), "-m", MODEL, "--size", "96", "--octaves", "1",
                 "--iterations", "1"]) == 0
    with Image.open(out) as im:
        assert im.size == (96, 96)


# --- strokes out ----------------------------------------------------------------------------------

def _cv_activation(rgb: np.ndarray, blob: str) -> float:
    cv2 = pytest.importorskip("cv2")
    caffe = shared_or_skip(MODELS / "efficientnet_lite0")
    net = cv2.dnn.readNetFromCaffe(str(caffe / "deploy.prototxt"), str(caffe / "efficientnet_lite0.caffemodel"))
    net.setInput(cv2.dnn.blobFromImage(np.ascontiguousarray(rgb[..., ::-1]).astype(np.float32), 1.0, None,
                                       (127.0, 127.0, 127.0), swapRB=False, crop=False))
    return float((net.forward(blob).astype(np.float64) ** 2).mean())


def test_stroke_dream_raises_the_blob_as_another_renderer_draws_it(home, tmp_path):
    """A small stroke dream, drawn by CairoSVG, excites its blob (OpenCV dnn) more than the strokes
    it started from; the SVG parses and carries a recipe that paints it again, byte for byte."""
    cairosvg = pytest.importorskip("cairosvg")
    out = tmp_path / "s.svg"
    args = ["dream", "--init", "noise", "--size", "64", "-m", MODEL, "-l", "block2/output", "--strokes", "30",
            "--iterations", "12"]
    assert main([*args, "-o", str(out)]) == 0
    text = out.read_text()
    assert len(ET.fromstring(text).findall(f".//{{{svg.NS}}}path")) == 30
    rec, opts = paint.read_job(out)
    assert (rec.model, rec.layers, opts.count, rec.params.iterations) == (MODEL, ("block2/output",), 30, 12)

    def drawn(t: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(cairosvg.svg2png(bytestring=t.encode()))).convert("RGB"))

    s = paint.first_strokes(np.full((64, 64, 3), 116.0, np.float32), opts, rec.seed, False)
    before = svg.strokes_svg((64, 64), svg.stroke_paths(s.points.numpy(), s.width.numpy(), s.rgba.numpy()),
                             svg._hex(np.full(3, 116 / 255)), "{}")
    assert _cv_activation(drawn(text), "block2/output") > 1.2 * _cv_activation(drawn(before), "block2/output")
    again = tmp_path / "again.svg"
    assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_zoo_info_says_what_made_an_output(home, tmp_path, capsys):
    """`zoo info` on an output names its kind, brain and blobs and the command that makes it again
    (which, run, makes the same file); a picture zoo did not write is one line."""
    out = tmp_path / "s.svg"
    assert main(["dream", "--init", "noise", "--size", "48", "-m", MODEL, "-l", "block2/output", "--strokes", "8",
                 "--iterations", "2", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"s.svg: a stroke dream by {MODEL} at block2/output", "again: zoo dream --recipe s.svg -o again.svg"]
    assert main(["dream", "--recipe", str(out), "-o", str(tmp_path / "again.svg")]) == 0  # as the line says
    assert (tmp_path / "again.svg").read_bytes() == out.read_bytes()
    capsys.readouterr()
    assert main(["info", "--json", str(out)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["kind"] == "strokes" and got["record"]["strokes"]["count"] == 8
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    _one_line(capsys, 1, ["info", str(tmp_path / "photo.png")], "photo.png: carries no zoo recipe")
    still = tmp_path / "still.png"  # a still: the command that made it, and --recipe
    assert main(["dream", "--init", "noise", "--size", "32", "-m", MODEL, "-l", "block2/output", "--iterations", "1",
                 "--octaves", "1", "-o", str(still)]) == 0
    capsys.readouterr()
    assert main(["info", str(still)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"still.png: a dream by {MODEL} at block2/output" and len(lines) == 3, lines
    assert lines[1].startswith("made by: zoo dream -o still.png --model efficientnet_lite0 --layer block2/output")
    assert lines[2] == "again: zoo dream --recipe still.png -o again.png"


def test_strokes_need_an_svg_output(tmp_path, capsys):
    _one_line(capsys, 1, ["dream", "--init", "noise", "--strokes", "5", "-o", str(tmp_path / "x.png")], "SVG")


# --- the journey ----------------------------------------------------------------------------------

def test_journey_writes_its_frames_and_resumes_to_the_same_film(home, tmp_path):
    av = pytest.importorskip("av")
    out = tmp_path / "j.mp4"
    args = ["dream", "--init", "noise", "--size", "64", "-m", MODEL, "--layer-path", "stem,block2/output",
            "--frames", "3", "--zoom", "1.1", "--fps", "6", "--octaves", "1", "--iterations", "2", "-o", str(out)]
    assert main(args) == 0
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (sum(1 for _ in c.decode(s)), float(s.average_rate)) == (3, 6.0)
    folder = tmp_path / "j-frames"
    frames = [p.read_bytes() for p in sorted(folder.glob("frame-*.png"))]
    assert len(frames) == 3
    (folder / "frame-00003.png").unlink()
    out.unlink()
    assert main(args) == 0
    assert [p.read_bytes() for p in sorted(folder.glob("frame-*.png"))] == frames
    with Image.open(folder / "frame-00001.png") as im:
        assert '"layers": ["stem"]' in im.text["zoo:recipe"]


@pytest.mark.parametrize("extra,needle", [(["--frames", "1"], "--frames 2"),
                                          (["--frames", "3", "--layer-path", "nope"], "nope")])
def test_journey_bad_usage_is_one_line(home, tmp_path, capsys, extra, needle):
    args = ["dream", "--init", "noise", "--size", "64", "-m", MODEL, "-o", str(tmp_path / "j.mp4"), *extra]
    if "--layer-path" not in extra:
        args += ["--layer-path", "stem,block2/output"]
    _one_line(capsys, 1, args, needle)
    assert not (tmp_path / "j.mp4").exists()


@pytest.mark.parametrize("hold, middle", [(0.9, [["stem"], ["block2/output"]]),
                                         (0.0, [["stem", "block2/output"], ["stem", "block2/output"]])])
def test_hold_is_the_journeys_rests_and_its_record_keeps_it(home, tmp_path, hold, middle):
    """4 frames (u = 0, 1/3, 2/3, 1) along 2 blobs. --hold 0.9 rests on each blob for 0.45 of the walk,
    so the middle frames dream one blob each; --hold 0 always fades, so both dream both (by hand).
    The video's record keeps the hold, for --recipe."""
    out = tmp_path / "j.webp"
    assert main(["dream", "--init", "noise", "--size", "64", "-m", MODEL, "--layer-path", "stem,block2/output",
                 "--frames", "4", "--octaves", "1", "--iterations", "1", "--hold", str(hold), "-o", str(out)]) == 0
    seen = []
    for k in (2, 3):
        with Image.open(tmp_path / "j-frames" / f"frame-{k:05d}.png") as im:
            seen.append(json.loads(im.text["zoo:recipe"])["layers"])
    assert seen == middle
    assert journey.read_job(tmp_path / "j-frames" / "run.json").hold == hold


def test_hold_without_a_journey_is_one_line(home, tmp_path, capsys):
    _one_line(capsys, 1, ["dream", "--init", "noise", "--size", "64", "-m", MODEL, "--hold", "0.5", "-o",
                          str(tmp_path / "x.png")], "--hold", "--layer-path")
    assert not (tmp_path / "x.png").exists()


def _decoded(av, path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def test_journey_recipe_in_the_video_dreams_the_same_frames(home, tmp_path, capsys):
    """`--recipe j.mp4 -o again.mp4` reads the record in the video's metadata (the path, the blobs'
    scales, the rate) and makes frames that decode identical; a clip-less record is one line."""
    av = pytest.importorskip("av")
    out, again = tmp_path / "j.mp4", tmp_path / "again.mp4"
    assert main(["dream", "--init", "noise", "--size", "64", "-m", MODEL, "--layer-path", "stem,block2/output",
                 "--frames", "3", "--zoom", "1.1", "--fps", "5", "--octaves", "1", "--iterations", "2",
                 "-o", str(out)]) == 0
    job = journey.read_job(out)
    assert job.path == ("stem", "block2/output") and job.fps == 5.0 and len(job.recipe.balance) == 2
    capsys.readouterr()
    assert main(["info", str(out)]) == 0  # what made it, from the record in the video's metadata
    assert capsys.readouterr().out.splitlines() == [f"j.mp4: a journey by {MODEL} at stem → block2/output",
                                                    "again: zoo dream --recipe j.mp4 -o again.mp4"]
    assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
    first, second = _decoded(av, out), _decoded(av, again)
    assert len(first) == 3 and all(np.array_equal(a, b) for a, b in zip(first, second))
    assert [p.read_bytes() for p in sorted((tmp_path / "j-frames").glob("*.png"))] == \
        [p.read_bytes() for p in sorted((tmp_path / "again-frames").glob("*.png"))]
    # a frame carries the film's record too (its start was the frame before, which its own recipe cannot
    # say): `--recipe` on a frame makes the whole film again, and `zoo info` names the film
    frame = tmp_path / "j-frames" / "frame-00002.png"
    capsys.readouterr()
    assert main(["info", str(frame)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"frame-00002.png: a journey by {MODEL} at stem → block2/output"
    assert main(["dream", "--recipe", str(frame), "-o", str(tmp_path / "third.mp4")]) == 0
    third = _decoded(av, tmp_path / "third.mp4")
    assert len(third) == 3 and all(np.array_equal(a, b) for a, b in zip(first, third))


@pytest.mark.parametrize("part,needle", [({"path": [], "fps": 12}, "journey.path"),
                                         ({"path": ["stem"], "fps": -1}, "journey.fps"),
                                         ({"path": ["stem"], "fps": 12, "crf": "x"}, "journey.crf"),
                                         ({"path": ["stem"], "fps": 12, "hold": 1}, "journey.hold"),
                                         ({"path": ["stem"], "fps": 12, "cmd": "rm"}, "'journey'")])
def test_tampered_journey_record_is_one_line(tmp_path, capsys, part, needle):
    folder = tmp_path / "j-frames"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"recipe": {}, "journey": part}))
    _one_line(capsys, 1, ["dream", "--recipe", str(folder / "run.json"), "-o", str(tmp_path / "a.mp4")], needle)
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "a-frames").exists()


def test_journey_hands_over_from_the_shallow_blob_to_the_deep(home, tmp_path):
    """A tiny journey block2 -> block14 from a photo, decoded by PyAV and judged by OpenCV dnn (the
    Caffe files, not zoo's net): each blob's gain is its mean square activation over the photo's;
    the deep blob's gain relative to the shallow one's is highest at the end of the walk."""
    av = pytest.importorskip("av")
    from skimage import data

    photo = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).resize((96, 96), Image.LANCZOS).save(photo)
    out = tmp_path / "j.mp4"
    assert main(["dream", str(photo), "-o", str(out), "-m", MODEL, "--layer-path", "block2/output,block14/output",
                 "--frames", "5", "--zoom", "1.05", "--octaves", "1", "--iterations", "6", "--step", "2"]) == 0
    frames = _decoded(av, out)
    start = np.asarray(Image.open(photo).convert("RGB"))
    ratio = [(_cv_activation(f, "block14/output") / _cv_activation(start, "block14/output"))
             / (_cv_activation(f, "block2/output") / _cv_activation(start, "block2/output")) for f in frames]
    # measured 0.91 0.75 0.64 1.11 1.27 (the last two frames mostly and wholly deep): the deep blob is
    # favoured most at the end, and the last two frames favour it 1.55x as much as the first three
    assert len(frames) == 5 and ratio[-1] == max(ratio), ratio
    assert np.mean(ratio[-2:]) > 1.3 * np.mean(ratio[:3]), ratio
