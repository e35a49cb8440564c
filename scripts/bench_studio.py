"""Studio responsiveness on this machine: how soon the first preview comes after pressing Dream at
512x512, and how fast the API answers while a 1024x1024 dream runs. Each trial starts a fresh studio
(a real uvicorn on 127.0.0.1 and its worker process) on one $ZOO_HOME, as a user restarting it would.

    python scripts/bench_studio.py [--trials 3] [--octaves 4] [--iterations 10]

Printed per trial and as medians: worker warm-up after start, then after pressing Dream (POST
/api/dream) the start-image preview, the first dreamt step's preview (step 1 of the smallest
octave), and, for a press before the worker is warm ("cold"), the same first dreamt preview.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def studio():
    import httpx
    import uvicorn

    from zoo.studio.app import Settings, create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(port=port)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            yield c, t0
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def warm_after(c, t0: float) -> float:
    while not c.get("/api/health").json()["warm"]:
        time.sleep(0.02)
    return time.perf_counter() - t0


def first_previews(c, spec: dict) -> tuple[float, float, str]:
    """Seconds from POST /api/dream to the start image's preview and to the first dreamt step's."""
    t0 = time.perf_counter()
    job = c.post("/api/dream", json=spec).json()
    start = None
    kind = "message"
    with c.stream("GET", f"/api/jobs/{job['id']}/events", timeout=300) as s:
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "preview":
                now = time.perf_counter() - t0
                start = start or now
                if json.loads(line[6:])["progress"].get("done", 0) >= 1:
                    c.post(f"/api/jobs/{job['id']}/stop")
                    return start, now, job["id"]
            elif not line:
                kind = "message"
    raise SystemExit("no preview came")


def latency(c, spec: dict, calls: int = 30) -> tuple[float, float]:
    job = c.post("/api/dream", json=spec).json()
    while c.get(f"/api/jobs/{job['id']}").json()["previews"] < 2:  # the first 1024x1024 step is done
        time.sleep(0.05)
    times = []
    for i in range(calls):
        path = ("/api/jobs", "/api/brains", f"/api/jobs/{job['id']}", "/api/health", "/api/gallery")[i % 5]
        t = time.perf_counter()
        c.get(path).raise_for_status()
        times.append(time.perf_counter() - t)
        time.sleep(0.02)
    c.post(f"/api/jobs/{job['id']}/stop")
    while c.get(f"/api/jobs/{job['id']}").json()["state"] == "running":
        time.sleep(0.1)
    return statistics.median(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--octaves", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()
    from PIL import Image
    from skimage import data

    home = Path(tempfile.mkdtemp(prefix="zoo-bench-studio-"))
    os.environ["ZOO_HOME"] = str(home)
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="PNG")
    spec = {"model": "efficientnet_lite0", "size": "512", "octaves": args.octaves, "iterations": args.iterations}
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, ZOO_HOME {home}")
    with studio() as (c, t0):  # the first start builds efficientnet_lite0's ONNX into this ZOO_HOME
        print(f"first start (builds the brain's files): warm after {warm_after(c, t0):.2f} s")
    rows = []
    for trial in range(args.trials):
        with studio() as (c, t0):
            ref = c.post("/api/uploads?kind=image&filename=astronaut.png", content=buf.getvalue()).json()["ref"]
            cold_start, cold_step, _ = first_previews(c, {**spec, "input": ref})  # pressed at once
        with studio() as (c, t0):
            ref = c.post("/api/uploads?kind=image&filename=astronaut.png", content=buf.getvalue()).json()["ref"]
            warm = warm_after(c, t0)
            start, step, _ = first_previews(c, {**spec, "input": ref})
            med, worst = latency(c, {"input": ref, "model": "efficientnet_lite0", "size": "1024", "octaves": 2,
                                     "iterations": 20}) if trial == 0 else (float("nan"), float("nan"))
        rows.append((warm, start, step, cold_step, med, worst))
        print(f"trial {trial + 1}: warm {warm:.2f} s; Dream at 512: start image {start:.2f} s, first dreamt step "
              f"{step:.2f} s (pressed before warm: {cold_step:.2f} s)"
              + (f"; API during 1024 dream: median {med * 1000:.1f} ms, max {worst * 1000:.1f} ms" if trial == 0
                 else ""))
    cols = list(zip(*rows))
    print(f"median of {args.trials}: warm-up {statistics.median(cols[0]):.2f} s, start image "
          f"{statistics.median(cols[1]):.2f} s, first dreamt preview {statistics.median(cols[2]):.2f} s "
          f"(target 2 s), pressed before warm {statistics.median(cols[3]):.2f} s")


if __name__ == "__main__":
    main()
