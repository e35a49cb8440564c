"""`zoo dream` on clips end to end: real PyAV files, efficientnet_lite0's real weights, real processes.

The clip is a pan and zoom over skimage's astronaut with a sine tone (tests/video_helpers.py), so
the true motion is known and temporal consistency is measured against it, not against our flow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from video_helpers import clip_frames, make_clip, read_video, temporal_error
from zoo.dream import video

from zoo.cli import main

MODEL = ["--model", "efficientnet_lite0", "--layer", "block4/output"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video_home")  # one ZOO_HOME: efficientnet_lite0 is built once


@pytest.fixture
def zoo(home, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(home))

    def run(*args: str) -> int:
        return main(["dream", *map(str, args)])

    return run


@pytest.fixture(scope="module")
def clip24(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", n=24)


def _png_frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame-*.png"))]


def test_clip_keeps_count_rate_size_audio_and_the_recipe(zoo, clip24, tmp_path):
    src, fps, audio = read_video(clip24)
    out_path = tmp_path / "flow.mp4"
    assert zoo(clip24, "-o", out_path, *MODEL, "--octaves", "1", "--iterations", "2", "--seed", "1") == 0
    out, out_fps, out_audio = read_video(out_path)
    assert len(out) == len(src) == 24 and out_fps == fps == 24
    assert out[0].shape == src[0].shape == (128, 128, 3)
    assert audio is not None and out_audio == pytest.approx(audio, abs=1e-9)  # the audio packets were copied
    # a dream happened on every frame, at the first (only) octave
    assert min(np.abs(o.astype(float) - s).mean() for o, s in zip(out, src)) > 2.0
    # the recipe of the whole run travels in the container and in the run file
    meta = json.loads(video.read_video_recipe(out_path))
    assert meta["recipe"]["model"] == "efficientnet_lite0" and meta["video"]["blend"] == video.BLEND
    assert meta == json.loads((tmp_path / "flow-frames" / "run.json").read_text())


def test_flow_halves_the_flicker_against_the_true_motion(zoo, clip24, tmp_path):
    src = read_video(clip24)[0]
    flowed, plain = tmp_path / "flow.mp4", tmp_path / "plain.mp4"
    common = [*MODEL, "--seed", "1"]  # every other setting at its default: 4 octaves x 10 steps, blend 0.8, ...
    assert zoo(clip24, "-o", flowed, *common) == 0
    assert zoo(clip24, "-o", plain, *common, "--no-flow") == 0
    out, no_flow = read_video(flowed)[0], read_video(plain)[0]
    assert min(np.abs(o.astype(float) - s).mean() for o, s in zip(out, src)) > 3.0
    e_flow, e_plain, e_src = temporal_error(out), temporal_error(no_flow), temporal_error(src)
    assert e_flow <= 0.45 * e_plain, (e_flow, e_plain, e_src)  # the issue asks 0.5; 0.41 measured


def test_kill_9_mid_clip_then_rerun_equals_the_uninterrupted_run(home, tmp_path):
    clip = make_clip(tmp_path / "c.mp4", n=12, side=96)
    env = {**os.environ, "ZOO_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "zoo.cli", "dream", str(clip), *MODEL, "--octaves", "1", "--iterations", "4",
            "--seed", "3"]
    whole, broken = tmp_path / "whole.mp4", tmp_path / "broken.mp4"
    subprocess.run([*args, "-o", str(whole)], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*args, "-o", str(broken)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    folder = tmp_path / "broken-frames"
    deadline = time.time() + 60
    while len(list(folder.glob("frame-*.png"))) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(folder.glob("frame-*.png")))
    assert 4 <= done < 12 and not broken.exists()
    r = subprocess.run([*args, "-o", str(broken)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{done} were already there" in r.stdout
    a, b = _png_frames(tmp_path / "whole-frames"), _png_frames(folder)
    assert len(a) == len(b) == 12 and all(np.array_equal(x, y) for x, y in zip(a, b))
    va, vb = read_video(whole)[0], read_video(broken)[0]
    assert all(np.array_equal(x, y) for x, y in zip(va, vb))


def test_trimmed_and_subsampled_clip_keeps_its_audio_span(zoo, clip24, tmp_path):
    out = tmp_path / "part.mp4"
    assert zoo(clip24, "-o", out, *MODEL, "--octaves", "1", "--iterations", "1", "--start-frame", "4",
               "--end-frame", "20", "--fps", "12", "--crf", "30") == 0
    frames, fps, audio = read_video(out)
    assert len(frames) == 8 and fps == 12
    assert audio == pytest.approx(16 / 24, abs=0.05)  # 16 source frames' worth of sound


def test_gif_in_folder_out_and_folder_in_webp_out(zoo, tmp_path):
    pics = [Image.fromarray(f) for f in clip_frames(6, 64)]
    gif = tmp_path / "in.gif"
    pics[0].save(gif, save_all=True, append_images=pics[1:], duration=100, loop=0)
    folder = tmp_path / "dreamt"
    assert zoo(gif, "-o", f"{folder}/", *MODEL, "--octaves", "1", "--iterations", "2") == 0
    frames = sorted(folder.glob("frame-*.png"))
    assert len(frames) == 6 and Image.open(frames[0]).size == (64, 64)
    assert "zoo:recipe" in Image.open(frames[0]).text
    webp = tmp_path / "again.webp"
    assert zoo(folder, "-o", webp, *MODEL, "--octaves", "1", "--iterations", "1", "--no-flow", "--fps", "10") == 0
    with Image.open(webp) as im:
        assert im.n_frames == 6 and im.size == (64, 64)
        im.seek(1)
        im.load()
        assert im.info["duration"] == 100  # 10 fps, as --fps gave the folder


def test_bad_clip_input_is_one_line(zoo, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    assert zoo(bad, "-o", tmp_path / "x.mp4", *MODEL) == 1
    err = capsys.readouterr().err
    assert "broken.mp4: cannot decode as a video" in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_recipe_of_a_clip_dreams_it_again_bit_for_bit(zoo, tmp_path, capsys):
    clip = make_clip(tmp_path / "tiny.mp4", n=6, side=64)
    first = tmp_path / "first.mp4"
    assert zoo(clip, "-o", first, *MODEL, "--octaves", "1", "--iterations", "3", "--seed", "7", "--blend", "0.7",
               "--frame-iterations", "2") == 0
    again = tmp_path / "again.mp4"
    assert zoo("--recipe", first, "-o", again) == 0  # the container's record: every option comes from it
    a, b = _png_frames(tmp_path / "first-frames"), _png_frames(tmp_path / "again-frames")
    assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert first.read_bytes() == again.read_bytes()  # the same frames and record make the same file
    assert zoo("--recipe", tmp_path / "first-frames" / "run.json", "-o", f"{tmp_path / 'third'}/") == 0
    c = _png_frames(tmp_path / "third")
    assert len(c) == 6 and all(np.array_equal(x, y) for x, y in zip(a, c))
    # a tampered run file is one line naming the field, and nothing is written
    bad = tmp_path / "bad-frames"
    bad.mkdir()
    run = json.loads((tmp_path / "first-frames" / "run.json").read_text())
    run["video"]["blend"] = 7
    (bad / "run.json").write_text(json.dumps(run))
    capsys.readouterr()
    assert zoo("--recipe", bad, "-o", tmp_path / "never.mp4") == 1
    err = capsys.readouterr().err
    assert "clip recipe field 'video.blend'" in err and "Traceback" not in err
    assert not (tmp_path / "never.mp4").exists() and not (tmp_path / "never-frames").exists()
