"""The studio's JSON API against the real app (FastAPI's TestClient over httpx, the real worker process):
every endpoint, bad uploads answered with the CLI's own one-line message and nothing written, the
safety rules, and dreams whose recipes reproduce bit-identically through `zoo dream --recipe`."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from studio_helpers import wait_job as wait  # noqa: E402

from tests.conftest import SHARED
from zoo.studio.app import Settings, create_app  # noqa: E402

MTCNN = SHARED / "models" / "mtcnn"
FACES = SHARED / "datasets" / "lfw_gender"
BASE = "http://127.0.0.1:7860"


def cli(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_HOME": str(home)}
    env.pop("ZOO_MIRROR", None)
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def cli_error(args: list[str], cwd: Path, home: Path) -> str:
    p = cli(args, cwd, home)
    assert p.returncode == 1, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One ZOO_HOME for the module's studio (its worker process reads it at start)."""
    root = tmp_path_factory.mktemp("studio")
    home = root / "home"
    mirror = root / "mirror" / "mtcnn_det3"
    mirror.mkdir(parents=True)
    for f in ("det3.prototxt", "det3.caffemodel"):
        shutil.copy(MTCNN / f, mirror / f)
    faces = root / "faces"
    for g in ("female", "male"):
        (faces / g).mkdir(parents=True)
        for f in sorted((FACES / g).glob("*.jpg"))[:8]:
            shutil.copy(f, faces / g / f.name)
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: the function-scoped monkeypatch cannot serve
        for k, v in dict(ZOO_HOME=str(home), ZOO_TEST_KEEP_HOME="1", ZOO_MIRROR=str(root / "mirror"),
                         ZOO_FETCH_RETRIES="0").items():
            mp.setenv(k, v)
        yield home


@pytest.fixture(scope="module")
def client(home):
    faces = home.parent / "faces"
    app = create_app(Settings(folders=[faces], limits={"image": 2 << 20, "prototxt": 1 << 20, "weights": 8 << 20,
                                                       "mean": 1 << 20, "labels": 1 << 16, "png": 2 << 20}))
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def coffee(home, client) -> dict:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.coffee()).save(buf, format="PNG")
    r = client.post("/api/uploads?kind=image&filename=coffee.png", content=buf.getvalue())
    assert r.status_code == 200, r.text
    return r.json()


def events(client, job_id: str) -> tuple[list[dict], list[dict]]:
    """All SSE events of a job until it ends: (messages, previews)."""
    messages, previews, kind = [], [], "message"
    with client.stream("GET", f"/api/jobs/{job_id}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                (previews if kind == "preview" else messages).append(data)
                if kind == "end":
                    break
            elif not line:
                kind = "message"
    return messages, previews


def studio_files(home: Path) -> set[str]:
    root = home / "studio"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "thumbs" not in p.parts
            and not p.name.startswith((".jobs.json.", "jobs.json")) and "jobs" not in p.parts}  # the queue's saves


# --- the app itself ---------------------------------------------------------------------------------


def test_health_docs_and_openapi_list_every_endpoint(client):
    assert client.get("/api/health").json()["ok"] is True
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for p in ("/api/uploads", "/api/dream", "/api/atlas", "/api/brains", "/api/brains/import", "/api/train",
              "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/stop", "/api/gallery", "/api/recipe"):
        assert p in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "").split("<body>")[0].replace("http://www.w3.org", "")
    for asset in ("app.js", "style.css", "docs.js", "favicon.svg"):
        body = client.get(f"/static/{asset}").text
        assert "https://" not in body and "//cdn" not in body  # every asset ships in the package


def test_unknown_paths_and_bad_bodies_are_json_errors(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"] == "GET /api/nothing: not found"
    r = client.post("/api/dream", json={"octaves": 0})
    assert r.status_code == 422 and r.json()["error"] == "--octaves: must be between 1 and 32, not 0"  # as the CLI
    r = client.post("/api/uploads?kind=image&filename=" + "x" * 300)
    assert r.status_code == 422 and r.json()["error"].startswith("query.filename:")  # no option: pydantic words it
    r = client.get("/api/brains/no_such_brain")
    assert r.status_code == 400 and "unknown model 'no_such_brain'" in r.json()["error"]


# --- uploads ----------------------------------------------------------------------------------------


def test_good_image_upload_is_kept_by_its_digest(client, coffee, home):
    assert coffee["width"] == 600 and coffee["height"] == 400
    path = home / "studio" / coffee["ref"]
    assert path.is_file() and coffee["ref"].startswith("uploads/")
    assert np.array_equal(np.asarray(Image.open(path)), __import__("skimage.data").data.coffee())


def test_corrupt_image_gives_the_cli_message_and_writes_nothing(client, home, tmp_path):
    name, body = "broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 50
    (tmp_path / name).write_bytes(body)
    expected = cli_error(["dream", name, "-o", "out.png", "--model", "efficientnet_lite0"], tmp_path, home)
    before = studio_files(home)
    r = client.post(f"/api/uploads?kind=image&filename={name}", content=body)
    assert r.status_code == 400
    assert r.json()["error"] == expected.replace(f"{tmp_path}/", "")  # the CLI names its absolute path
    r = client.post("/api/uploads?kind=image&filename=notes.jpg", content=b"this is text, not a picture")
    assert r.status_code == 400 and r.json()["error"] == "notes.jpg: cannot decode as an image (UnidentifiedImageError)"
    assert studio_files(home) == before


def test_malformed_prototxt_gives_the_cli_message_and_writes_nothing(client, home, tmp_path):
    text = b'name: "x"\nlayer { name: "a" type: "Convolution" bottom: "data" top: "a" convolution_param { num_output: }'
    (tmp_path / "deploy.prototxt").write_bytes(text)
    expected = cli_error(["info", "deploy.prototxt"], tmp_path, home)
    before = studio_files(home)
    r = client.post("/api/uploads?kind=prototxt&filename=deploy.prototxt", content=text)
    assert r.status_code == 400 and r.json()["error"] == expected
    assert studio_files(home) == before


def test_oversized_uploads_are_refused_unread(client, home):
    before = studio_files(home)
    big = b"\0" * ((2 << 20) + 1)
    r = client.post("/api/uploads?kind=image&filename=huge.png", content=big)
    assert r.status_code == 413 and "huge.png: too large" in r.json()["error"]

    def chunks():  # no Content-Length: the server counts while reading
        for _ in range(3):
            yield b"\0" * (1 << 20)

    r = client.post("/api/uploads?kind=image&filename=stream.png", content=chunks())
    assert r.status_code == 413 and "stream.png: too large" in r.json()["error"]
    r = client.post("/api/uploads?kind=weights&filename=w.caffemodel", content=b"\0" * ((8 << 20) + 1))
    assert r.status_code == 413
    assert studio_files(home) == before
    assert not list((home / "studio" / "tmp").glob("*-*"))


def test_upload_names_cannot_leave_the_studio(client, home):
    r = client.post("/api/uploads?kind=labels&filename=../../../../etc/passwd", content=b"cat\ndog\n")
    assert r.status_code == 200
    ref = r.json()["ref"]
    assert ref.startswith("uploads/") and ref.endswith("/passwd") and ".." not in ref
    assert (home / "studio" / ref).is_file()
    for bad in ("uploads/../../models.toml", "outputs/../jobs.json", "../home/x", "models/efficientnet_lite0/x"):
        r = client.get(f"/api/files/{bad}")
        assert r.status_code in (400, 404), bad


# --- brains -----------------------------------------------------------------------------------------


def test_brain_list_card_and_labels(client):
    names = {b["name"]: b for b in client.get("/api/brains").json()}
    assert {"efficientnet_lite0", "bvlc_googlenet", "mtcnn_det3"} <= set(names)
    card = client.get("/api/brains/efficientnet_lite0").json()
    assert card["license"] and card["origin"] and card["input"] == [224, 224]
    blobs = {b["name"]: b for b in card["blobs"]}
    assert blobs["block10/output"]["channels"] == 112 and blobs["block10/output"]["shape"] == [112, 14, 14]
    labels = client.get("/api/brains/efficientnet_lite0/labels?q=espresso").json()
    assert labels["total"] == 1000 and any(lab["label"].lower().startswith("espresso") for lab in labels["labels"])


def test_graph_has_layers_blobs_and_shapes_at_the_image_size(client):
    # efficientnet_lite0 at 256x160: the stem is a 3x3 stride-2 convolution with pad 1 -> ceil(n / 2)
    r = client.get("/api/brains/efficientnet_lite0/graph")
    if r.status_code == 400:  # not built yet in this ZOO_HOME: "fetch" builds a built-in brain
        assert "fetch it first" in r.json()["error"]
        assert wait(client, client.post("/api/brains/efficientnet_lite0/fetch").json()["id"])["state"] == "done"
    g = client.get("/api/brains/efficientnet_lite0/graph?width=256&height=160").json()
    assert g["size"] == [256, 160]
    edges = {e["blob"]: e for e in g["edges"]}
    assert edges["data"]["shape"] == [1, 3, 160, 256]
    stem = next(e for e in g["edges"] if e["from"].startswith("stem"))
    assert stem["shape"][2:] == [80, 128]
    layer_names = {lay["name"] for lay in g["layers"]}
    assert all(e["from"] in layer_names and e["to"] in layer_names for e in g["edges"])


def test_fetch_from_a_mirror_then_remove(client, home):
    job = client.post("/api/brains/mtcnn_det3/fetch").json()
    messages, _ = events(client, job["id"])
    j = wait(client, job["id"])
    assert j["state"] == "done", j["error"]
    assert any(m.get("type") == "progress" for m in messages)
    card = next(b for b in client.get("/api/brains").json() if b["name"] == "mtcnn_det3")
    assert card["cached"] and card["bytes"] > 1_000_000
    r = client.delete("/api/brains/mtcnn_det3")
    assert r.status_code == 200
    assert not next(b for b in client.get("/api/brains").json() if b["name"] == "mtcnn_det3")["cached"]
    r = client.delete("/api/brains/mtcnn_det3")
    assert r.status_code == 400 and r.json()["error"] == "model mtcnn_det3 is not cached; nothing to remove"


def upload_file(client, kind: str, path: Path) -> str:
    r = client.post(f"/api/uploads?kind={kind}&filename={path.name}", content=path.read_bytes())
    assert r.status_code == 200, r.text
    return r.json()["ref"]


def test_import_with_mismatched_weights_gives_the_cli_message(client, home, tmp_path):
    for f in ("det3.prototxt", "det1.caffemodel"):
        shutil.copy(MTCNN / f, tmp_path / f)
    expected = cli_error(["convert", "det3.prototxt", "-w", "det1.caffemodel", "--name", "wrong", "-o",
                          str(tmp_path / "out")], tmp_path, home)
    proto = upload_file(client, "prototxt", tmp_path / "det3.prototxt")
    weights = upload_file(client, "weights", tmp_path / "det1.caffemodel")
    r = client.post("/api/brains/import", json={"name": "wrong", "prototxt": proto, "weights": weights})
    assert r.status_code == 400
    got = r.json()["error"]
    assert got.replace(str(home / "studio" / proto), "det3.prototxt").replace(
        str(home / "studio" / weights), "det1.caffemodel") == expected
    assert "wrong" not in {b["name"] for b in client.get("/api/brains").json()}
    assert not (home / "models.toml").exists() or "wrong" not in (home / "models.toml").read_text()


def test_import_det3_dream_with_it_and_train_it(client, home):
    proto = upload_file(client, "prototxt", MTCNN / "det3.prototxt")
    weights = upload_file(client, "weights", MTCNN / "det3.caffemodel")
    r = client.post("/api/brains/import", json={"name": "my_det3", "prototxt": proto, "weights": weights,
                                                "mean_pixel": [127.5, 127.5, 127.5], "scale": 0.0078125,
                                                "channel_order": "RGB", "resize": 0, "transpose": True})
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["name"] == "my_det3" and card["input"] == [48, 48] and card["user"]
    from zoo.registry import get_card

    assert (get_card("my_det3").resize, get_card("my_det3").transpose) == (0, True)
    job = client.post("/api/dream", json={"init": "noise", "size": "64", "model": "my_det3", "octaves": 1,
                                          "iterations": 2, "seed": 3}).json()
    j = wait(client, job["id"])
    assert j["state"] == "done", j["error"]
    assert j["result"]["recipe"]["model"] == "my_det3"
    # a 4-iteration fine-tune of it on 16 real faces, exported as a new brain
    bad = client.post("/api/train", json={"run": "x", "dataset": "/etc", "model": "my_det3"})
    assert bad.status_code == 400 and "outside $ZOO_HOME and the folders named with --folder" in bad.json()["error"]
    faces = str(home.parent / "faces")
    job = client.post("/api/train", json={"run": "faces1", "dataset": faces, "model": "my_det3", "max_iter": 4,
                                          "batch": 4, "micro_batch": 4, "log_every": 1, "eval_every": 2,
                                          "ckpt_every": 2, "workers": 0, "augment": "none", "preview": False,
                                          "name": "det3_faces"}).json()
    messages, _ = events(client, job["id"])
    j = wait(client, job["id"])
    assert j["state"] == "done", j["error"]
    metrics = [m for m in messages if m.get("type") == "metrics"]
    assert metrics and metrics[-1]["rows"][-1]["iter"] == 4
    assert j["result"]["exported"] == "det3_faces"
    assert "det3_faces" in {b["name"] for b in client.get("/api/brains").json()}
    runs = {r["run"]: r for r in client.get("/api/runs").json()}
    assert runs["faces1"]["checkpoint"] and len(runs["faces1"]["rows"]) >= 4
    # Stop: the library's stop flag ends the run between iterations with a checkpoint where it was
    job = client.post("/api/train", json={"run": "faces2", "dataset": faces, "model": "my_det3", "max_iter": 5000,
                                          "batch": 4, "micro_batch": 4, "log_every": 1, "eval_every": 1000,
                                          "ckpt_every": 1000, "workers": 0, "augment": "none", "preview": False,
                                          "name": "never_exported"}).json()
    deadline = time.time() + 120
    while not any(e.get("type") == "metrics" for e in client.get(f"/api/jobs/{job['id']}").json()["events"]):
        assert time.time() < deadline
        time.sleep(0.05)
    client.post(f"/api/jobs/{job['id']}/stop")
    j = wait(client, job["id"])
    assert j["state"] == "stopped" and 0 < j["result"]["iters"] < 5000, j
    from zoo.train import checkpoint

    assert checkpoint.load(home / "studio" / "runs" / "faces2")["iter"] == j["result"]["iters"]
    assert "never_exported" not in {b["name"] for b in client.get("/api/brains").json()}
    # resume refused without a checkpoint, export refused without a run
    r = client.post("/api/train", json={"run": "nothing", "resume": True})
    assert r.status_code == 400 and "has no checkpoint" in r.json()["error"]
    r = client.post("/api/runs/nothing/export", json={"name": "x"})
    assert r.status_code == 400 and "has no checkpoint" in r.json()["error"]


# --- dreams -----------------------------------------------------------------------------------------


def test_dream_streams_previews_and_reproduces_through_the_cli(client, coffee, home, tmp_path):
    spec = {"input": coffee["ref"], "model": "efficientnet_lite0", "layers": ["block4/output"], "size": "128",
            "octaves": 2, "iterations": 3, "seed": 7}
    job = client.post("/api/dream", json=spec).json()
    assert job["state"] == "queued"
    messages, previews = events(client, job["id"])
    j = wait(client, job["id"])
    assert j["state"] == "done", j["error"]
    # the stream sends the latest preview when the client polls (a slow client skips some): `n` counts them all
    assert len(previews) >= 2 and previews[-1]["n"] >= 3
    assert all(p["url"].startswith("data:image/jpeg;base64,") for p in previews)
    assert messages[-1]["state"] == "done" and j["progress"]["percent"] == 100.0
    out = home / "studio" / j["result"]["ref"]
    assert client.get(f"/api/jobs/{job['id']}/preview").headers["content-type"] == "image/jpeg"
    again = tmp_path / "again.png"
    p = cli(["dream", "--recipe", str(out), "-o", str(again)], tmp_path, home)
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == out.read_bytes()
    # the gallery lists it with its recipe, and downloads decode in every format
    item = next(g for g in client.get("/api/gallery").json() if g["ref"] == j["result"]["ref"])
    assert item["recipe"]["layers"] == ["block4/output"] and item["input_ref"] == coffee["ref"]
    pixels = np.asarray(Image.open(out))
    for fmt, size in (("jpeg", 2), ("tiff", 0)):  # JPEG q95 with 4:2:0 chroma on a detailed dream: mean < 8
        r = client.get(f"/api/files/{item['ref']}?format={fmt}")
        got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
        assert got.shape == pixels.shape and np.abs(got - pixels).mean() <= 4 * size
    thumb = Image.open(io.BytesIO(client.get(f"/api/files/{item['ref']}?thumb=64").content))
    assert max(thumb.size) == 64
    # the PNG's recipe, read back as a drop onto the page does
    r = client.post("/api/recipe", content=out.read_bytes())
    assert r.status_code == 200 and r.json()["recipe"]["seed"] == 7 and r.json()["recipe"]["input_ref"] == coffee["ref"]


def test_recipe_of_a_png_without_one_is_the_cli_message(client, tmp_path, home):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    (tmp_path / "plain.png").write_bytes(buf.getvalue())
    expected = cli_error(["dream", "--recipe", "plain.png"], tmp_path, home)
    r = client.post("/api/recipe", content=buf.getvalue())
    assert r.status_code == 400 and r.json()["error"] == expected.replace("plain.png", "dropped file")


def test_stop_keeps_a_valid_image_and_a_queued_job_can_be_cancelled(client, coffee, home):
    spec = {"input": coffee["ref"], "model": "efficientnet_lite0", "size": "160", "octaves": 3, "iterations": 50,
            "seed": 1}
    job = client.post("/api/dream", json=spec).json()
    queued = client.post("/api/dream", json=spec).json()
    deadline = time.time() + 120
    while client.get(f"/api/jobs/{job['id']}").json()["previews"] < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert client.post(f"/api/jobs/{queued['id']}/stop").json()["state"] == "cancelled"
    assert client.post(f"/api/jobs/{job['id']}/stop").status_code == 200
    j = wait(client, job["id"])
    assert j["state"] == "stopped" and j["result"]["interrupted"] is True
    im = Image.open(home / "studio" / j["result"]["ref"])
    im.load()
    assert im.size == (160, 107) and json.loads(im.text["zoo:recipe"])["interrupted"] is True
    assert wait(client, queued["id"])["state"] == "cancelled"
    assert any(x["id"] == job["id"] for x in client.get("/api/jobs").json())
    name = j["result"]["ref"].split("/")[-1]
    assert client.delete(f"/api/gallery/{name}").json() == {"removed": name}
    assert not (home / "studio" / j["result"]["ref"]).exists()
    assert client.delete(f"/api/gallery/{name}").status_code == 400


def test_dream_requests_are_checked_before_they_queue(client, coffee):
    cases = [
        ({"init": "image"}, 400, "no input image given (or use --init noise|gradient|color)"),
        ({"init": "plasma"}, 400, "--init 'plasma': unknown start; choose one of image, noise, gradient, color"),
        ({"init": "noise", "preset": "wild"}, 422, '--preset: must be one of classic, quick, deep, not "wild"'),
        ({"init": "noise", "octave_scale": 1.0}, 422, "--octave-scale: must be above 1 and at most 4, not 1"),
        ({"input": "uploads/../../models.toml"}, 400, "uploads/../../models.toml: outside the studio folder"),
        ({"input": "/etc/passwd"}, 400, None),
    ]
    for body, status, message in cases:
        r = client.post("/api/dream", json=body)
        assert r.status_code == status, body
        if message:
            assert r.json()["error"] == message


def test_atlas_renders_and_gives_the_layers_their_thumbnails(client):
    job = client.post("/api/atlas", json={"model": "efficientnet_lite0", "size": 64, "octaves": 1,
                                          "iterations": 1, "blobs": ["stem", "block2/output"]}).json()
    messages, _ = events(client, job["id"])
    j = wait(client, job["id"])
    assert j["state"] == "done", j["error"]
    assert [m["blob"] for m in messages if m.get("type") == "blob"] == ["stem", "block2/output"]
    listed = client.get("/api/atlases").json()
    assert any(a["model"] == "efficientnet_lite0" and a["entries"] == 2 for a in listed)
    full = client.get("/api/atlases/efficientnet_lite0").json()
    sheet = Image.open(io.BytesIO(client.get(f"/api/files/{full['sheet']}").content))
    assert sheet.size[0] > 64
    blobs = {b["name"]: b for b in client.get("/api/brains/efficientnet_lite0").json()["blobs"]}
    assert blobs["stem"]["atlas"] and blobs["block10/output"]["atlas"] is None
    assert client.get("/api/atlases/nothing").status_code == 404


def test_presets_and_datasets(client, home):
    p = client.get("/api/presets").json()
    assert p["presets"]["classic"]["params"]["octaves"] == 4 and "noise" in p["starts"]
    d = client.get("/api/datasets").json()
    assert d["folders"][0]["classes"] == ["female", "male"]
    # a picture in a folder named with --folder can be dreamt on directly
    face = next((home.parent / "faces" / "female").glob("*.jpg"))
    job = client.post("/api/dream", json={"input": str(face), "init": "image", "size": "64", "octaves": 1,
                                          "iterations": 1, "model": "efficientnet_lite0"})
    assert job.status_code == 200, job.text
    assert job.json()["spec"]["input"] == str(face.resolve())
    client.post(f"/api/jobs/{job.json()['id']}/stop")
    assert wait(client, job.json()["id"])["state"] in ("stopped", "done", "cancelled")  # nothing left running
    r = client.post("/api/dream", json={"input": str(face.parent / "missing.jpg")})
    assert r.status_code == 400 and r.json()["error"].endswith("missing.jpg: no such file")


# --- safety -----------------------------------------------------------------------------------------


def test_cross_origin_and_foreign_hosts_are_refused(client, home):
    before = studio_files(home)
    r = client.get("/api/brains", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"].startswith("cross-origin request refused")
    r = client.post("/api/uploads?kind=labels&filename=a.txt", content=b"a\n", headers={"Origin": "null"})
    assert r.status_code == 403
    r = client.post("/api/dream", json={"init": "noise"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = client.get("/api/brains", headers={"Host": "attacker.example:7860"})  # DNS rebinding
    assert r.status_code == 403
    assert client.get("/api/brains", headers={"Origin": BASE}).status_code == 200
    assert studio_files(home) == before


def test_a_token_is_required_on_every_request_when_set(home):
    app = create_app(Settings(host="0.0.0.0", token="s3cret-token", start_worker=False))
    with TestClient(app, base_url="http://192.0.2.1:7860") as c:
        for path in ("/", "/api/brains", "/static/app.js", "/openapi.json", "/docs"):
            r = c.get(path)
            assert r.status_code == 401 and "token" in r.json()["error"], path
        assert c.get("/api/brains", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/brains", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        r = c.get("/?token=s3cret-token", follow_redirects=False)
        assert r.status_code == 303 and "zoo_studio_token=s3cret-token" in r.headers["set-cookie"]
        assert "httponly" in r.headers["set-cookie"].lower()
        c.cookies.set("zoo_studio_token", "s3cret-token")
        assert c.get("/api/health").status_code == 200
