"""The studio under a real uvicorn on 127.0.0.1: `zoo studio` itself starts and refuses bad options, and
the API keeps answering while a 1024x1024 dream runs in the worker. Latencies are printed (run with
-s to see them) and written to latency.json; the bounds asserted are generous sanity ones.
scripts/bench_studio.py measures the same on a quiet machine, and the first preview at 512x512."""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from studio_helpers import free_port, serve  # noqa: E402

from zoo.studio.app import Settings  # noqa: E402


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_TEST_KEEP_HOME", "1")
    return tmp_path / "home"


def wait_warm(client: httpx.Client, timeout: float = 300) -> None:
    """Until the worker has imported torch and loaded its brain (what a studio does right after it starts)."""
    deadline = time.time() + timeout
    while not client.get("/api/health").json()["warm"]:
        assert time.time() < deadline, "the worker never warmed up"
        time.sleep(0.1)


def test_api_answers_while_a_1024_dream_runs(home, tmp_path):
    """API latency while the worker dreams at 1024x1024 (first step of one octave), recorded in
    latency.json and printed; the only bounds asserted are generous ones that a blocked server breaks."""
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="PNG")
    with serve(Settings(port=free_port())) as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        ref = c.post("/api/uploads?kind=image&filename=astronaut.png", content=buf.getvalue()).json()["ref"]
        wait_warm(c)
        big = c.post("/api/dream", json={"input": ref, "model": "efficientnet_lite0", "size": "1024", "octaves": 1,
                                         "iterations": 20}).json()
        deadline = time.time() + 120
        while c.get(f"/api/jobs/{big['id']}").json()["previews"] < 1:  # the start image: the dream is under way
            assert time.time() < deadline
            time.sleep(0.02)
        times = []
        for i in range(25):
            path = ("/api/jobs", "/api/brains", f"/api/jobs/{big['id']}", "/api/health", "/api/gallery")[i % 5]
            t = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200
            time.sleep(0.02)
        job = c.get(f"/api/jobs/{big['id']}").json()
        c.post(f"/api/jobs/{big['id']}/stop")
        while c.get(f"/api/jobs/{big['id']}").json()["state"] == "running":
            time.sleep(0.1)
        stopped = c.get(f"/api/jobs/{big['id']}").json()
    figures = {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1),
               "calls": len(times), "dream": "1024x1024 efficientnet_lite0", "steps_done_while_sampling":
               job["progress"].get("done", 0)}
    (tmp_path / "latency.json").write_text(json.dumps(figures))
    print(f"\nstudio API latency while a 1024x1024 dream runs: median {figures['median_ms']} ms, "
          f"max {figures['max_ms']} ms over {len(times)} calls")
    assert job["state"] == "running" and stopped["state"] == "stopped", (job["state"], stopped.get("error"))
    # a server blocked by the dream would answer only between steps (seconds apart at 1024x1024): most calls
    # would wait, so the median shows it; the worst call may meet a starved CPU on a loaded machine
    assert statistics.median(times) < 0.5 and max(times) < 10.0


def test_zoo_studio_command_refuses_a_missing_folder(tmp_path):
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "studio", "--folder", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.strip() == f"error: --folder {tmp_path / 'nope'}: not a folder"


def test_zoo_studio_command_serves_and_prints_a_token_for_other_hosts(tmp_path):
    port = free_port()
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "studio", "--host", "0.0.0.0", "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert line.startswith(f"zoo studio on http://0.0.0.0:{port}/?token=") and "printed only this once" in line
        token = line.split("token=")[1].split()[0]
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.time() < deadline
                time.sleep(0.2)
        assert r.status_code == 401
        r = httpx.get(f"http://127.0.0.1:{port}/api/health", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["ok"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


GALLERY_WITHOUT_TORCH = """
import sys
from pathlib import Path
from PIL import Image
import zoo.studio.app  # the web server
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, png_info
from zoo.studio import gallery
from zoo.studio.paths import area

rec = Recipe(model="efficientnet_lite0", weights_sha256="ab" * 32, layers=("block2/output",),
             params=DreamParams(tile=256), seed=7, weights=(1.0,))
out = area("outputs")
Image.new("RGB", (8, 8)).save(out / "20260101-000000-aaaaaa.png", pnginfo=png_info(rec))
(out / "20260101-000001-bbbbbb.wav").write_bytes(b"RIFF not a sound")  # no record: left out
Image.new("RGB", (8, 8)).save(out / "20260101-000002-cccccc.webp")  # a journey: its record beside it
(out / "20260101-000002-cccccc-frames").mkdir()
(out / "20260101-000002-cccccc-frames" / "run.json").write_text(
    '{"recipe": %s, "journey": {"path": ["block2/output"], "fps": 12}}' % rec.to_json())
items = gallery.items(out)
import json
print(json.dumps({"kinds": [i["kind"] for i in items], "command": items[0]["command"], "torch": "torch" in sys.modules}))
"""


def test_the_gallery_reads_records_without_loading_torch_into_the_web_server(home):
    """The web server answers while the worker dreams because it never imports torch (seconds to load,
    hundreds of MB): listing the gallery reads each file's record with light readers."""
    r = subprocess.run([sys.executable, "-c", GALLERY_WITHOUT_TORCH], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "ZOO_HOME": str(home)})
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["kinds"] == ["journey", "dream"] and not got["torch"], got
    assert got["command"] == "zoo dream --recipe 20260101-000002-cccccc.webp -o again.webp", got
