"""Channel pictures in the studio, against a real uvicorn server on 127.0.0.1 with its real worker: the
`channels` job makes a few channels of a small efficientnet_lite0 blob at a tiny size, each arriving
as an event while the rest are made, then resumes without redoing them; pictures that
`zoo atlas --channels` made in another process show at once; the PNG route reads only inside
$ZOO_HOME/atlas, whatever name it is given."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import SHARED, shared_or_skip

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from studio_helpers import free_port, serve  # noqa: E402
from studio_helpers import wait_job as wait  # noqa: E402

from zoo.studio.app import Settings  # noqa: E402

MODEL, BLOB = "efficientnet_lite0", "block0/output"  # 16 channels at 112x112: the smallest blob to dream
LIST = f"/api/brains/{MODEL}/channels/{BLOB}"
# one worker runs the module: its studio (one server, one home) is a module fixture, and a test split onto
# another worker would get a fresh home without the pictures the others made
pytestmark = pytest.mark.xdist_group("studio_channels")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    home = tmp_path_factory.mktemp("channels") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        mp.setenv("ZOO_TEST_KEEP_HOME", "1")
        with serve(Settings(port=free_port())) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
            if client.get(f"/api/brains/{MODEL}/graph").status_code == 400:  # a built-in brain is built by fetch
                assert wait(client, client.post(f"/api/brains/{MODEL}/fetch").json()["id"])["state"] == "done"
            yield client, home


def events(client, job_id: str) -> list[dict]:
    out = []
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=300) as s:
        kind = "message"
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "message":
                out.append(json.loads(line[6:]))
            elif line.startswith("data: ") and kind == "end":
                break
            elif not line:
                kind = "message"
    return out


def make(client, channels: list[int], size: int = 32, steps: int = 3) -> tuple[dict, list[dict]]:
    job = client.post("/api/channels", json={"model": MODEL, "blob": BLOB, "size": size, "iterations": steps,
                                             "batch": 3, "channels": channels})
    assert job.status_code == 200, job.text
    seen = events(client, job.json()["id"])
    return wait(client, job.json()["id"]), seen


def test_a_job_makes_a_few_channels_each_as_an_event_and_resumes(studio):
    client, home = studio
    before = client.get(LIST, params={"size": 32, "steps": 3}).json()
    assert before["channels"] == 16 and before["weights"] and before["pictures"] == [] and not before["complete"]
    job, seen = make(client, [0, 1, 2])
    assert job["state"] == "done", job["error"]
    made = [e for e in seen if e["type"] == "channel"]
    assert [e["channel"] for e in made] == [0, 1, 2]
    # the step's own progress (the history keeps the latest of a run of progress events, so which
    # step survives depends on when the stream is read; the batch's last step, before its pictures, always does)
    assert any(e["type"] == "progress" and e.get("steps") == 3 and e.get("step", 0) > 0 for e in seen), seen
    for e in made:
        r = client.get(f"/api/channel-pictures/{e['ref']}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == (home / "atlas" / e["ref"]).read_bytes()
        im = Image.open(io.BytesIO(r.content))
        assert im.size == (32, 32) and im.mode == "RGB"
    listed = client.get(LIST, params={"size": 32, "steps": 3}).json()
    assert [p["channel"] for p in listed["pictures"]] == [0, 1, 2] and listed["layer"] == BLOB + ":{channel}"
    default = client.get(LIST).json()  # 128 px, 64 steps: none yet, but the tiny ones are offered
    assert default["pictures"] == [] and {"size": 32, "steps": 3, "seed": 0, "pictures": 3} in default["variants"]
    stamps = {e["ref"]: os.stat(home / "atlas" / e["ref"]).st_mtime_ns for e in made}
    job, seen = make(client, [0, 1, 2, 3, 4])  # resumes: only 3 and 4 are made
    assert job["state"] == "done" and job["result"]["pictures"] == 5
    assert [e["channel"] for e in seen if e["type"] == "channel"] == [3, 4]
    assert stamps == {ref: os.stat(home / "atlas" / ref).st_mtime_ns for ref in stamps}


def test_stop_keeps_the_finished_pictures(studio):
    client, home = studio
    job = client.post("/api/channels", json={"model": MODEL, "blob": BLOB, "size": 32, "iterations": 30, "batch": 2,
                                             "seed": 7}).json()
    first = None
    with client.stream("GET", f"/api/jobs/{job['id']}/events", timeout=300) as s:
        for line in s.iter_lines():
            if line.startswith("data: ") and '"channel"' in line:
                first = json.loads(line[6:])
                break
    assert first is not None and first["channel"] == 0
    client.post(f"/api/jobs/{job['id']}/stop")
    j = wait(client, job["id"])
    assert j["state"] == "stopped" and 2 <= j["result"]["pictures"] < 16, j
    listed = client.get(LIST, params={"size": 32, "steps": 30, "seed": 7}).json()
    assert len(listed["pictures"]) == j["result"]["pictures"] and not listed["complete"]


def test_pictures_the_cli_made_show_at_once(studio):
    client, home = studio
    env = {**os.environ, "ZOO_HOME": str(home), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "atlas", "--model", MODEL, "--channels", BLOB, "--size", "16",
                        "--iterations", "1", "-o", str(home.parent / "cli-atlas")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    listed = client.get(LIST, params={"size": 16, "steps": 1}).json()
    assert listed["complete"] and [q["channel"] for q in listed["pictures"]] == list(range(16))
    cli_copy = home.parent / "cli-atlas" / "channels-block0-output" / "ch0007.png"
    assert client.get(f"/api/channel-pictures/{listed['pictures'][7]['ref']}").content == cli_copy.read_bytes()


def test_the_picture_route_reads_only_inside_the_atlas_folder(studio, tmp_path):
    client, home = studio
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(secret)
    (home / "atlas").mkdir(parents=True, exist_ok=True)
    link = home / "atlas" / "evil.png"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    (home / "studio").mkdir(parents=True, exist_ok=True)
    hostile = ["%2e%2e/studio/jobs.json", "x/%2e%2e/%2e%2e/secret.png", "%2Fetc%2Fpasswd", "evil.png",
               "a%5C..%5C..%5Csecret.png", "nul%00.png", ".hidden.png", "a/" * 20 + "deep.png"]
    for ref in hostile:
        r = client.get(f"/api/channel-pictures/{ref}")
        assert r.status_code in (400, 404), (ref, r.status_code)
        assert r.headers["content-type"].startswith("application/json") and secret.read_bytes() not in r.content
        assert "\n" not in r.json()["error"]
    if not any((home / "atlas").rglob("atlas.json")):  # run alone: make the smallest atlas to look inside
        assert make(client, [0], size=16, steps=1)[0]["state"] == "done"
    info = next((home / "atlas").rglob("atlas.json")).relative_to(home / "atlas").as_posix()
    assert client.get(f"/api/channel-pictures/{info}").status_code == 404  # inside, but not a picture


def test_bad_blobs_and_channels_are_one_line_refusals(studio):
    client, _ = studio
    for body, says in (({"blob": "nope"}, "nope: not a dreamable blob of efficientnet_lite0"),
                       ({"blob": "prob"}, "prob: not a dreamable blob"),
                       ({"blob": BLOB, "channels": [16]}, "channel 16: block0/output has 16 channels (0 to 15)")):
        r = client.post("/api/channels", json={"model": MODEL, **body})
        assert r.status_code == 400 and r.json()["error"].startswith(says), r.text
    assert client.post("/api/channels", json={"model": MODEL, "blob": BLOB, "size": 8}).status_code == 422
    assert client.get(f"/api/brains/{MODEL}/channels/data").status_code == 400


def test_a_brain_with_its_prototxt_alone_draws_its_graph_and_says_to_fetch_for_pictures(studio):
    """GoogLeNet's card with only its deploy.prototxt in the cache (no weights): the graph is drawn,
    its blobs list their channels, and making pictures is refused in one line."""
    from zoo import cache
    from zoo.registry import get_card

    client, _ = studio
    proto = cache.file_path(get_card("bvlc_googlenet"), "prototxt")
    proto.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_or_skip(SHARED / "models" / "bvlc_googlenet" / "deploy.prototxt"), proto)
    g = client.get("/api/brains/bvlc_googlenet/graph").json()
    assert len(g["layout"]["nodes"]) == len(g["layers"]) > 100 and any(e["skip"] for e in g["layout"]["edges"])
    listed = client.get("/api/brains/bvlc_googlenet/channels/inception_4c/output").json()
    assert listed["channels"] == 512 and not listed["weights"] and listed["pictures"] == []
    r = client.post("/api/channels", json={"model": "bvlc_googlenet", "blob": "inception_4c/output"})
    assert r.status_code == 400 and r.json()["error"] == ("model bvlc_googlenet has no weights here; fetch it first "
                                                          "(zoo fetch bvlc_googlenet)")
