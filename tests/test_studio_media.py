"""Sounds and vectors in the studio (issues 23 and 24), against a real uvicorn server on 127.0.0.1 and its
worker process: real sound uploads (espeak-ng speech, else a chirp written here) read by their headers
only, their spectrograms held to scipy's, a sound dream reproduced bit for bit by `zoo dream --recipe`,
SVG uploads checked as the CLI checks them and never served so they could run script in the studio's
origin, a stroke dream downloaded as an SVG that reproduces, and a journey with its frames as events."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("av")
import httpx  # noqa: E402
import sound_helpers  # noqa: E402
from studio_helpers import free_port, serve  # noqa: E402
from test_studio_api import wait  # noqa: E402 - a job's end, polled (any httpx client)

from zoo.studio.app import Settings  # noqa: E402

ICON = Path("/usr/share/icons/Adwaita/scalable/places/user-home-symbolic.svg")
SMALL_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="48" height="32" viewBox="0 0 48 32">'
             '<rect width="48" height="32" fill="#fc0"/><circle cx="24" cy="16" r="10" fill="#06c"/></svg>')
SCRIPTED_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" onload="fetch(\'/api/jobs\')">'
                '<script>document.title = "ran"</script><rect width="16" height="16"/></svg>')
FAST = {"model": "efficientnet_lite0", "layers": ["block2/output"], "octaves": 1, "iterations": 1, "seed": 3}


def cli(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def cli_error(args: list[str], cwd: Path, home: Path) -> str:
    p = cli(args, cwd, home)
    assert p.returncode == 1, p.stderr
    return p.stderr.strip().splitlines()[-1].removeprefix("error: ")


def a_sound(path: Path) -> Path:
    """Speech from espeak-ng when it is installed, else a two-tone chirp written with the wave module."""
    if shutil.which("espeak-ng"):
        return sound_helpers.espeak(path, "zoo dreams")
    rate = 22050
    t = np.arange(int(0.8 * rate)) / rate
    x = 0.4 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.2 * np.sin(2 * np.pi * 1800 * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """(client, home, work folder): a real server with its own ZOO_HOME, set before its worker starts."""
    root = tmp_path_factory.mktemp("media")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        mp.setenv("ZOO_TEST_KEEP_HOME", "1")
        with serve(Settings(port=free_port())) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
            yield client, home, root


def upload(client, kind: str, name: str, body: bytes) -> httpx.Response:
    return client.post(f"/api/uploads?kind={kind}&filename={name}", content=body)


def dream(client, body: dict) -> dict:
    r = client.post("/api/dream", json=body)
    assert r.status_code == 200, r.text
    j = wait(client, r.json()["id"])
    assert j["state"] == "done", j["error"]
    return j


def gallery_item(client, home: Path, ref: str) -> dict:
    listed = client.get("/api/gallery").json()
    made = [os.stat(home / "studio" / g["ref"]).st_mtime_ns for g in listed]
    assert made == sorted(made, reverse=True)  # the last finished first
    return next(g for g in listed if g["ref"] == ref)


def studio_files(home: Path) -> set[str]:
    root = home / "studio"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "jobs" not in p.parts
            and not p.name.startswith((".jobs.json.", "jobs.json"))}


def assert_cannot_run_script(r: httpx.Response) -> None:
    """What keeps a served SVG from acting in the studio's origin: a download, sandboxed, no script."""
    assert r.headers["content-disposition"].startswith("attachment")
    csp = r.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


# --- sounds ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice(studio) -> tuple[Path, dict]:
    client, _, root = studio
    path = a_sound(root / "voice.wav")
    r = upload(client, "sound", "voice.wav", path.read_bytes())
    assert r.status_code == 200, r.text
    return path, r.json()


def test_a_sound_upload_is_read_by_its_header_and_its_spectrogram_is_scipys(studio, voice):
    client, home, _ = studio
    path, info = voice
    x, rate = sound_helpers.read(path)  # PyAV's frames alone, not zoo's reader
    assert (info["rate"], info["channels"]) == (rate, x.shape[0]) and abs(info["samples"] - x.shape[1]) <= 1
    r = client.post("/api/spectrogram", json={"input": info["ref"]})
    assert r.status_code == 200 and r.json()["ref"] is None
    j = wait(client, r.json()["job"]["id"])
    assert j["state"] == "done", j["error"]
    got = np.asarray(Image.open(home / "studio" / j["result"]["ref"]), dtype=np.float32)
    want = sound_helpers.picture(x[0], 1024, 512)  # scipy's STFT and the file's own dB mapping
    assert got.shape == (513, 1 + x.shape[1] // 512) and want.shape[0] == 513
    cols = min(got.shape[1], want.shape[1])
    assert np.abs(got[:, 1:cols - 1] - want[:, 1:cols - 1]).mean() < 2.0  # the end frames pad differently
    again = client.post("/api/spectrogram", json={"input": info["ref"]}).json()
    assert again == {"ref": j["result"]["ref"], "job": None}  # made once


def test_bad_sounds_give_one_line_and_keep_nothing(studio, tmp_path):
    client, home, _ = studio
    before = studio_files(home)
    (tmp_path / "notes.wav").write_bytes(b"this is text, not a sound" * 20)
    expected = cli_error(["dream", "notes.wav", "-o", "out.wav"], tmp_path, home)
    r = upload(client, "sound", "notes.wav", (tmp_path / "notes.wav").read_bytes())
    assert r.status_code == 400 and r.json()["error"] == expected.replace(f"{tmp_path}/", "")
    days = sound_helpers.days_long(a_sound(tmp_path / "voice.wav"), tmp_path / "days.flac")
    r = upload(client, "sound", "days.flac", days)  # refused by its declared length, before any decoding
    assert r.status_code == 400 and r.json()["error"].startswith("days.flac: declares") and "hours" in r.json()["error"]
    r = upload(client, "sound", "voice.txt", b"RIFF")
    assert r.status_code == 400 and r.json()["error"].startswith("voice.txt: a sound upload must be named .wav")
    assert studio_files(home) == before


def test_a_sound_dream_in_the_studio_is_reproduced_by_the_cli_bit_for_bit(studio, voice, tmp_path):
    client, home, _ = studio
    path, info = voice
    body = {"input": info["ref"], **FAST, "size": "512", "n_fft": 512, "hop": 256, "phase": "original"}
    j = dream(client, body)
    assert j["kind"] == "sound" and j["progress"]["percent"] == 100.0
    res = j["result"]
    out = home / "studio" / res["ref"]
    assert out.suffix == ".wav" and res["recipe"]["sound"]["n_fft"] == 512
    x, rate = sound_helpers.read(path)
    y, rate_out = sound_helpers.read(out)
    assert rate_out == rate and y.shape == x.shape  # rate, channels and length kept
    r = client.get(f"/api/files/{res['ref']}")
    assert r.headers["content-type"] == "audio/wav" and "content-disposition" not in r.headers  # <audio> plays it
    for key in ("spectrogram_in", "spectrogram_out"):
        pic = Image.open(io.BytesIO(client.get(f"/api/files/{res[key]}").content))
        assert pic.size == (1 + x.shape[1] // 256, 257)
    again = tmp_path / "again.wav"
    p = cli(["dream", "--recipe", str(out), "-o", str(again)], tmp_path, home)
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == out.read_bytes()
    item = gallery_item(client, home, res["ref"])  # the gallery lists the sound with the record its file carries
    assert item["kind"] == "sound" and item["command"] == f"zoo dream --recipe {out.name} -o again.wav"
    assert item["input_ref"] == info["ref"] and item["record"]["sound"]["n_fft"] == 512
    assert item["picture_ref"] == res["spectrogram_out"]  # the dreamt spectrogram the page showed


# --- vectors --------------------------------------------------------------------------------------


def test_svg_uploads_are_checked_as_the_cli_checks_them_and_served_as_downloads(studio, tmp_path):
    client, home, _ = studio
    drawing = ICON.read_bytes() if ICON.is_file() else SMALL_SVG.encode()
    r = upload(client, "svg", "drawing.svg", drawing)
    assert r.status_code == 200, r.text
    assert_cannot_run_script(client.get(f"/api/files/{r.json()['ref']}"))
    j = dream(client, {"input": r.json()["ref"], **FAST, "size": "96"})
    out = home / "studio" / j["result"]["ref"]
    assert Image.open(out).size == ((96, 96) if ICON.is_file() else (96, 64))
    assert j["result"]["recipe"]["input"].endswith("drawing.svg")

    before = studio_files(home)
    evil = SMALL_SVG.replace("<rect", '<image href="file:///etc/passwd"/><rect')
    (tmp_path / "evil.svg").write_text(evil)
    expected = cli_error(["dream", "evil.svg", "-o", "out.png", "--size", "64"], tmp_path, home)
    r = upload(client, "svg", "evil.svg", evil.encode())
    assert r.status_code == 400 and r.json()["error"] == expected.replace(f"{tmp_path}/", "")
    entity = '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "y">]>' + SMALL_SVG
    assert upload(client, "svg", "entity.svg", entity.encode()).status_code == 400
    assert studio_files(home) == before
    r = upload(client, "svg", "scripted.svg", SCRIPTED_SVG.encode())  # self-contained, so it is kept...
    assert r.status_code == 200
    served = client.get(f"/api/files/{r.json()['ref']}")  # ...but never served as a page
    assert served.content == SCRIPTED_SVG.encode() and served.headers["content-type"] == "image/svg+xml"
    assert_cannot_run_script(served)


def test_a_stroke_dream_downloads_as_an_svg_that_reproduces(studio, tmp_path):
    client, home, _ = studio
    j = dream(client, {"init": "noise", "size": "64", "strokes": 24, **FAST, "iterations": 3})
    assert j["kind"] == "strokes" and j["result"]["strokes"] == 24
    r = client.get(f"/api/files/{j['result']['ref']}")
    assert_cannot_run_script(r)
    root = ET.fromstring(r.content)  # a standard XML parser reads it
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) == 24
    out = home / "studio" / j["result"]["ref"]
    again = tmp_path / "again.svg"
    p = cli(["dream", "--recipe", str(out), "-o", str(again)], tmp_path, home)
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == out.read_bytes()
    item = gallery_item(client, home, j["result"]["ref"])
    assert item["kind"] == "strokes" and item["record"]["strokes"]["count"] == 24 and item["layers"] == ["block2/output"]


def test_a_journey_is_a_job_with_its_frames_as_events_and_previews(studio):
    client, home, _ = studio
    body = {"init": "noise", "size": "64", **FAST, "frames": 3, "zoom": 1.05, "fps": 6, "hold": 0.5,
            "layer_path": "block2/output,block4/output"}
    r = client.post("/api/dream", json={**body, "frames": 1})
    assert r.status_code == 400 and r.json()["error"].startswith("--layer-path needs --frames 2 or more")
    r = client.post("/api/dream", json={**body, "frames": 1, "layer_path": None})
    assert r.status_code == 400 and r.json()["error"].startswith("--hold: rests a journey on its blobs")
    j = dream(client, body)
    assert j["kind"] == "journey" and j["result"]["path"] == ["block2/output", "block4/output"]
    full = client.get(f"/api/jobs/{j['id']}").json()
    frames = [e for e in full["events"] if e["type"] == "frame"]
    assert [e["frame"] for e in frames] == [1, 2, 3] and frames[0]["blobs"] == ["block2/output"]
    assert frames[-1]["blobs"] == ["block4/output"] and full["previews"] >= 3  # each finished frame
    assert client.get(f"/api/jobs/{j['id']}/preview").headers["content-type"] == "image/jpeg"
    r = client.get(f"/api/files/{j['result']['ref']}")
    assert r.headers["content-type"] == "image/webp"
    anim = Image.open(io.BytesIO(r.content))
    assert anim.size == (64, 64) and anim.n_frames == 3
    assert j["result"]["recipe"]["journey"]["fps"] == 6 and j["result"]["recipe"]["journey"]["hold"] == 0.5
    assert j["result"]["command"].endswith("--layer-path block2/output,block4/output --fps 6 --hold 0.5")
    item = gallery_item(client, home, j["result"]["ref"])  # its record is the run.json beside the animation
    assert item["kind"] == "journey" and item["record"]["journey"]["hold"] == 0.5
    assert item["command"] == f"zoo dream --recipe {Path(j['result']['ref']).name} -o again.webp"


def test_a_stopped_journey_resumes_from_its_finished_frames(studio):
    """Stop a 6-frame journey once two frames are written, resume it: the new job skips the frames on
    disk (their bytes unchanged) and the animation has all six; a finished journey does not resume."""
    client, home, _ = studio
    body = {"init": "noise", "size": "64", **FAST, "iterations": 2, "frames": 6, "zoom": 1.05, "fps": 6,
            "layer_path": "block2/output,block4/output", "seed": 11}
    job = client.post("/api/dream", json=body).json()
    with client.stream("GET", f"/api/jobs/{job['id']}/events", timeout=300) as s:
        for line in s.iter_lines():
            if line.startswith("data: ") and '"frame": 3' in line and '"type": "frame"' in line:
                break  # frames 1 and 2 are on disk
    client.post(f"/api/jobs/{job['id']}/stop")
    stopped = wait(client, job["id"])
    assert stopped["state"] == "stopped" and 2 <= stopped["result"]["written"] < 6, stopped
    film = Path(stopped["result"]["video"])
    folder = film.with_name(f"{film.stem}-frames")  # (the CLI's frames folder beside the film)
    kept = {p.name: p.read_bytes() for p in folder.glob("frame-*.png")}
    assert len(kept) == stopped["result"]["written"]
    again = client.post(f"/api/jobs/{job['id']}/resume")
    assert again.status_code == 200 and again.json()["title"].endswith("(resumed)"), again.text
    done = wait(client, again.json()["id"])
    assert done["state"] == "done" and done["result"]["written"] == 6 - len(kept), done
    assert {n: (folder / n).read_bytes() for n in kept} == kept
    anim = Image.open(io.BytesIO(client.get(f"/api/files/{done['result']['ref']}").content))
    assert anim.n_frames == 6
    r = client.post(f"/api/jobs/{done['id']}/resume")
    assert r.status_code == 400 and r.json()["error"].startswith(f"job {done['id']}: only a stopped or failed journey")
