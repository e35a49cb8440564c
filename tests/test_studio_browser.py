"""The studio in a real browser: Debian's headless Chromium (through chromedriver) against a real uvicorn
server on 127.0.0.1. The scenarios of issue 13: upload the coffee photo, pick efficientnet_lite0 and a
layer from its atlas thumbnails, dream and watch the previews, reproduce the result through the CLI,
stop a dream, drop its PNG back onto the page; import det3 through the upload form, dream with it and
fine-tune it for 20 iterations while the plot updates. Each page is saved as a screenshot
($ZOO_STUDIO_SHOTS, else the test's tmp folder)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from studio_helpers import chromium, free_port, serve  # noqa: E402

from tests.conftest import SHARED
from zoo.studio.app import Settings  # noqa: E402

MTCNN = SHARED / "models" / "mtcnn"
FACES = SHARED / "datasets" / "lfw_gender"


@pytest.fixture()
def studio(tmp_path, monkeypatch):
    """A studio with its own ZOO_HOME (set before the worker starts), a faces folder, and a browser."""
    home = tmp_path / "home"
    faces = tmp_path / "faces"
    for g in ("female", "male"):
        (faces / g).mkdir(parents=True)
        for f in sorted((FACES / g).glob("*.jpg"))[:8]:
            shutil.copy(f, faces / g / f.name)
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("ZOO_TEST_KEEP_HOME", "1")
    shots = Path(os.environ.get("ZOO_STUDIO_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    collection = tmp_path / "collection"  # a --folder holding datasets, not one itself
    for ds, classes in (("pets", ("cat", "dog")), ("scenes/indoor", ("kitchen", "office"))):
        for c in classes:
            (collection / ds / c).mkdir(parents=True)
            shutil.copy(next((FACES / "female").glob("*.jpg")), collection / ds / c / "a.jpg")
    (collection / "notes").mkdir()  # no images in its sub-folders: not a dataset
    with serve(Settings(port=free_port(), folders=[faces, collection])) as (url, app):
        browser = chromium(tmp_path)
        try:
            browser.get(url + "/")
            WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute(
                "data-ready") == "1")
            yield browser, home, faces, shots
        finally:
            logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            browser.quit()
            assert not logs, logs  # no script errors, no failed asset loads


def by_id(d, id_: str):
    return d.find_element(By.ID, id_)


def wait(d, cond, timeout: float = 180):
    return WebDriverWait(d, timeout, poll_frequency=0.05).until(cond)


def tab(d, page: str) -> None:
    d.find_element(By.CSS_SELECTOR, f"#tabs button[data-page={page}]").click()


def fill(d, id_: str, value) -> None:
    e = by_id(d, id_)
    e.clear()
    e.send_keys(str(value))


def shot(d, shots: Path, name: str, at: str | None = None) -> None:
    """A screenshot of the page, from its top or scrolled to the element with id `at`."""
    if at:
        d.execute_script("document.getElementById(arguments[0]).scrollIntoView({block: 'start'})", at)
    else:
        d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(str(shots / f"studio-{name}.png"))


def drop_file(d, path: Path) -> None:
    """A real drop event carrying the file (chromedriver cannot drag from the desktop)."""
    d.execute_script("""
        const input = document.createElement('input'); input.type = 'file'; input.id = 'test-drop';
        document.body.append(input);""")
    by_id(d, "test-drop").send_keys(str(path))
    d.execute_script("""
        const f = document.getElementById('test-drop').files[0];
        const dt = new DataTransfer(); dt.items.add(f);
        document.body.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true}));
        document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        document.getElementById('test-drop').remove();""")


def test_dream_in_the_browser(studio, tmp_path):
    d, home, _, shots = studio
    from skimage import data

    coffee = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(coffee)
    # an atlas first, so that the layers show thumbnails
    tab(d, "atlas")
    Select(by_id(d, "atlas-model")).select_by_value("efficientnet_lite0")
    for k, v in (("atlas-size", 96), ("atlas-octaves", 2), ("atlas-iterations", 6)):  # enough to show patterns
        fill(d, k, v)
    by_id(d, "atlas-run").click()
    # 84 steps on 7 blobs: minutes when the machine is shared, so a generous wait (a hang still fails)
    wait(d, lambda d: by_id(d, "atlas-progress-text").text.startswith("done"), timeout=900)
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".atlas-card img"))
    shot(d, shots, "atlas")
    # upload the photo, pick the brain and a layer from its thumbnails
    tab(d, "dream")
    by_id(d, "dream-image-file").send_keys(str(coffee))
    wait(d, lambda d: by_id(d, "dream-input").get_attribute("value").startswith("uploads/"))
    Select(by_id(d, "dream-model")).select_by_value("efficientnet_lite0")
    card = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, '.blob-card[data-blob="block4/output"] img'))
    card.click()
    assert by_id(d, "dream-layers").get_attribute("value") == "block4/output"
    assert "selected" in d.find_element(By.CSS_SELECTOR, '.blob-card[data-blob="block4/output"]').get_attribute("class")
    for k, v in (("dream-size", 256), ("dream-octaves", 2), ("dream-iterations", 3), ("dream-seed", 5)):
        fill(d, k, v)
    by_id(d, "dream-run").click()
    seen = set()

    def finished(d):
        seen.add(by_id(d, "dream-progress-text").text)
        return not by_id(d, "dream-result").get_attribute("hidden") and "done" in by_id(d, "dream-progress-text").text

    wait(d, finished)
    assert int(by_id(d, "dream-preview").get_attribute("data-n")) >= 3
    assert by_id(d, "dream-progress").get_attribute("value") == "100"
    assert any("octave" in s and "step" in s for s in seen), seen
    shot(d, shots, "dream")
    ref = by_id(d, "dream-result").get_attribute("data-ref")
    recipe = json.loads(by_id(d, "dream-recipe").text)
    assert recipe["model"] == "efficientnet_lite0" and recipe["layers"] == ["block4/output"] and recipe["size"] == "256"
    out = home / "studio" / ref
    again = tmp_path / "again.png"
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "dream", "--recipe", str(out), "-o", str(again)],
                       capture_output=True, text=True, env={**os.environ, "ZOO_HOME": str(home)}, timeout=300)
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == out.read_bytes()
    # Stop mid-dream keeps a valid image
    fill(d, "dream-iterations", 40)
    fill(d, "dream-seed", 6)
    by_id(d, "dream-run").click()
    wait(d, lambda d: int(by_id(d, "dream-preview").get_attribute("data-n")) >= 2)
    d.refresh()  # the job survives a reload: the page finds it running and follows it again
    wait(d, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    wait(d, lambda d: int(by_id(d, "dream-preview").get_attribute("data-n") or 0) >= 1)
    assert by_id(d, "dream-stop").is_enabled() and not by_id(d, "dream-run").is_enabled()
    tab(d, "jobs")  # the running job is listed with its own Stop button
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, '#job-list tbody tr[data-state="running"] button'))
    tab(d, "dream")
    by_id(d, "dream-stop").click()
    wait(d, lambda d: by_id(d, "dream-progress-text").text.startswith("stopped"))
    stopped = home / "studio" / by_id(d, "dream-result").get_attribute("data-ref")
    im = Image.open(stopped)
    im.load()
    assert im.size == (256, 171) and json.loads(im.text["zoo:recipe"])["interrupted"] is True
    # drop that PNG back: the form is filled with its recipe
    for k, v in (("dream-seed", 99), ("dream-iterations", 1), ("dream-size", 64)):
        fill(d, k, v)
    by_id(d, "dream-clear-input").click()
    drop_file(d, stopped)
    wait(d, lambda d: by_id(d, "dream-form").get_attribute("data-filled") == "1")
    wait(d, lambda d: by_id(d, "dream-layers").get_attribute("value") == "block4/output")
    assert by_id(d, "dream-seed").get_attribute("value") == "6"
    assert by_id(d, "dream-iterations").get_attribute("value") == "40"
    assert by_id(d, "dream-size").get_attribute("value") == "256"
    assert by_id(d, "dream-input").get_attribute("value") == recipe["input"].split("/studio/")[1]
    tab(d, "gallery")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gallery-item")) == 2)
    shot(d, shots, "gallery")


def test_import_det3_dream_and_fine_tune_in_the_browser(studio):
    d, home, faces, shots = studio
    tab(d, "brains")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".brain-card"))
    fill(d, "import-name", "det3")
    by_id(d, "import-prototxt").send_keys(str(MTCNN / "det3.prototxt"))
    by_id(d, "import-weights").send_keys(str(MTCNN / "det3.caffemodel"))
    fill(d, "import-mean-pixel", "127.5,127.5,127.5")
    Select(by_id(d, "import-channel-order")).select_by_value("RGB")
    fill(d, "import-scale", "0.0078125")
    by_id(d, "import-submit").click()
    wait(d, lambda d: by_id(d, "import-status").get_attribute("data-imported") == "det3")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, '.brain-card[data-name="det3"] .brain-graph'))
    d.find_element(By.CSS_SELECTOR, '.brain-card[data-name="det3"] .brain-graph').click()
    blob = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, '#graph-view .graph-blob[data-blob="conv3"]'))
    assert "conv3" in blob.text and "64×" in blob.text  # the blob's shape at the image size
    d.execute_script("arguments[0].scrollIntoView()", blob)
    d.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", blob)
    wait(d, lambda d: "64 channels" in by_id(d, "graph-channels").text)  # the blob's channels, none made yet
    shot(d, shots, "brains", at="graph-title")
    by_id(d, "graph-dream-blob").click()
    wait(d, lambda d: "conv3" in by_id(d, "dream-layers").get_attribute("value"))
    assert Select(by_id(d, "dream-model")).first_selected_option.get_attribute("value") == "det3"
    # dream with the imported brain
    tab(d, "dream")
    Select(by_id(d, "dream-init")).select_by_value("noise")
    for k, v in (("dream-size", 64), ("dream-octaves", 1), ("dream-iterations", 2)):
        fill(d, k, v)
    by_id(d, "dream-run").click()
    wait(d, lambda d: "done" in by_id(d, "dream-progress-text").text)
    assert json.loads(by_id(d, "dream-recipe").text)["model"] == "det3"
    # a 20-iteration fine-tune on 16 faces; the plot updates while it runs and the new brain appears
    tab(d, "train")
    fill(d, "train-dataset", faces)
    Select(by_id(d, "train-model")).select_by_value("det3")
    for k, v in (("train-iters", 20), ("train-batch", 4), ("train-run", "faces"), ("train-name", "det3_faces"),
                 ("train-augment", "mirror")):
        fill(d, k, v)
    by_id(d, "train-start").click()
    points = set()

    def trained(d):
        points.add(int(by_id(d, "train-plot").get_attribute("data-points")))
        return by_id(d, "train-progress-text").text.startswith("done")

    wait(d, trained, 240)
    assert len({p for p in points if p > 0}) >= 2, points  # drawn more than once while training
    assert "det3_faces" in by_id(d, "train-progress-text").text
    assert d.find_elements(By.CSS_SELECTOR, "#train-previews img")
    shot(d, shots, "train")
    options = [o.get_attribute("value") for o in Select(by_id(d, "dream-model")).options]
    assert "det3_faces" in options
    tab(d, "jobs")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#job-list tbody tr")) >= 2)
    rows = d.find_elements(By.CSS_SELECTOR, "#job-list tbody tr")
    assert {r.get_attribute("data-state") for r in rows} == {"done"}, [r.text for r in rows]
    assert not d.find_elements(By.CSS_SELECTOR, "#job-list tbody button")  # nothing left to stop
    shot(d, shots, "jobs")


def test_class_search_guide_use_as_input_and_downloads_in_the_browser(studio, tmp_path):
    d, home, _, shots = studio
    from skimage import data
    from zoo.dream.recipe import read_recipe

    chelsea = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(chelsea)
    coffee = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(coffee)
    by_id(d, "dream-image-file").send_keys(str(coffee))
    wait(d, lambda d: by_id(d, "dream-input").get_attribute("value").startswith("uploads/"))
    Select(by_id(d, "dream-model")).select_by_value("efficientnet_lite0")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".blob-card"))
    # a class searched by its label: typing shows the matching labels, picking one and Enter adds the objective
    by_id(d, "dream-class").send_keys("goldfish")
    label = wait(d, lambda d: d.execute_script(  # read at once: each keystroke's answer rebuilds the list
        "const o = [...document.querySelectorAll('#dream-class-list option')].map((e) => e.value);"
        "return o.length && o.every((v) => v.toLowerCase().includes('goldfish')) ? o[0] : null"))
    d.execute_script("const e = document.getElementById('dream-class'); e.value = arguments[0];"
                     "e.dispatchEvent(new Event('input', {bubbles: true}))", label)  # what picking it does
    by_id(d, "dream-class").send_keys("\n")
    layers = by_id(d, "dream-layers").get_attribute("value")
    assert layers.endswith(":" + label), layers
    for k, v in (("dream-size", 64), ("dream-octaves", 1), ("dream-iterations", 2), ("dream-seed", 3)):
        fill(d, k, v)
    by_id(d, "dream-run").click()
    wait(d, lambda d: "done" in by_id(d, "dream-progress-text").text)
    recipe = json.loads(by_id(d, "dream-recipe").text)
    assert recipe["layers"] == ["prob:1"]  # the recipe stores the class by index: goldfish is ImageNet's class 1
    first = by_id(d, "dream-result").get_attribute("data-ref")
    # use as input: the result is the next dream's start; a guide image steers it
    by_id(d, "dream-use-input").click()
    assert by_id(d, "dream-input").get_attribute("value") == first
    by_id(d, "dream-guide-file").send_keys(str(chelsea))
    wait(d, lambda d: by_id(d, "dream-guide").get_attribute("value").startswith("uploads/"))
    fill(d, "dream-layers", "block4/output")
    by_id(d, "dream-run").click()
    wait(d, lambda d: "done" in by_id(d, "dream-progress-text").text and
         by_id(d, "dream-result").get_attribute("data-ref") != first)
    recipe = json.loads(by_id(d, "dream-recipe").text)
    assert recipe["input"].endswith(first.split("/")[-1]) and recipe["input_sha256"]
    assert recipe["guide"].endswith("chelsea.png") and recipe["guide_sha256"]
    assert recipe["layers"] == ["block4/output"]
    shot(d, shots, "dream-guide")
    second = home / "studio" / by_id(d, "dream-result").get_attribute("data-ref")
    pixels = np.asarray(Image.open(second).convert("RGB")).astype(int)
    # the download links, fetched by the page itself: a JPEG and a TIFF of the same picture, recipe inside
    for link, magic, kind in (("dl-jpeg", b"\xff\xd8\xff", "JPEG"), ("dl-tiff", b"II*\x00", "TIFF")):
        href = by_id(d, link).get_attribute("href")
        got = d.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(async (r) => {
              const b = new Uint8Array(await r.arrayBuffer()); let s = "";
              for (const x of b) s += String.fromCharCode(x);
              done([r.status, r.headers.get("content-disposition"), btoa(s)]);
            });""", href)
        status, disposition, body = got[0], got[1], base64.b64decode(got[2])
        assert status == 200 and body.startswith(magic), (link, status, body[:8])
        assert disposition.startswith("attachment") and disposition.endswith(
            {"JPEG": '.jpg"', "TIFF": '.tif"'}[kind])
        im = Image.open(io.BytesIO(body))
        assert im.format == kind and im.size == (pixels.shape[1], pixels.shape[0])
        diff = np.abs(np.asarray(im.convert("RGB")).astype(int) - pixels).mean()
        assert diff <= (8 if kind == "JPEG" else 0), (kind, diff)
        saved = tmp_path / f"download.{disposition.rsplit('.', 1)[1][:-1]}"
        saved.write_bytes(body)
        assert read_recipe(saved) == read_recipe(second)  # the download carries the PNG's recipe


def in_view(d, id_: str) -> bool:
    """The element is shown and lies wholly inside the window (nothing scrolled out)."""
    return d.execute_script("""
        const r = document.getElementById(arguments[0]).getBoundingClientRect();
        return r.height > 0 && r.top >= -1 && r.bottom <= window.innerHeight + 1 && r.left >= -1
            && r.right <= window.innerWidth + 1;""", id_)


def test_the_form_keeps_the_preview_in_view_checks_names_and_lists_datasets(studio, tmp_path):
    """At 1280x800 the Dream button sits below the form: pressed there, the preview and the progress
    stay in view (a side panel that follows the scroll). Model names are refused by the server's own
    rule before anything is sent, in its words; the training page lists the datasets in each --folder."""
    d, home, faces, shots = studio
    d.set_window_size(1280, 800)
    wait(d, lambda d: d.execute_script("return window.innerWidth") <= 1280)
    assert by_id(d, "dream-octaves").get_attribute("value") == "4"  # DreamParams' default, from the schema
    assert by_id(d, "dream-octaves").get_attribute("max") == "32"
    Select(by_id(d, "dream-init")).select_by_value("noise")
    Select(by_id(d, "dream-model")).select_by_value("efficientnet_lite0")
    for k, v in (("dream-size", 96), ("dream-octaves", 1), ("dream-iterations", 60)):
        fill(d, k, v)
    d.execute_script("document.getElementById('dream-run').scrollIntoView({block: 'center'})")
    assert d.execute_script("return window.scrollY") > 0  # the button is below the first screen
    assert in_view(d, "dream-run"), d.execute_script(
        "return [window.innerHeight, JSON.stringify(document.getElementById('dream-run').getBoundingClientRect())]")
    by_id(d, "dream-run").click()
    wait(d, lambda d: int(by_id(d, "dream-preview").get_attribute("data-n")) >= 2)
    assert in_view(d, "dream-run") and in_view(d, "dream-progress") and in_view(d, "dream-progress-text")
    assert in_view(d, "dream-preview")
    d.save_screenshot(str(shots / "studio-dream-1280x800.png"))
    by_id(d, "dream-stop").click()
    wait(d, lambda d: by_id(d, "dream-progress-text").text.startswith(("stopped", "done")))
    # a name the registry refuses is refused by the form, in the server's words, and nothing is sent
    says = "--name: use a letter or digit, then up to 63 letters, digits, '_' or '-', not \"my.net\""
    tab(d, "brains")
    fill(d, "import-name", "my.net")
    by_id(d, "import-submit").click()
    wait(d, lambda d: by_id(d, "import-status").text == says)
    assert by_id(d, "import-name").get_attribute("validationMessage") == says
    assert not (home / "studio" / "uploads").exists() or not any((home / "studio" / "uploads").iterdir())
    fill(d, "import-name", "my_net")
    assert by_id(d, "import-name").get_attribute("validationMessage") != says
    # the datasets inside each --folder, with their classes
    tab(d, "train")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#train-datasets li")) == 3)
    paths = [li.get_attribute("data-path") for li in d.find_elements(By.CSS_SELECTOR, "#train-datasets li")]
    collection = faces.parent / "collection"
    assert paths == [str(faces), str(collection / "pets"), str(collection / "scenes" / "indoor")]
    assert "2 classes: kitchen, office" in d.find_elements(By.CSS_SELECTOR, "#train-datasets li")[2].text
    d.find_elements(By.CSS_SELECTOR, "#train-datasets li")[1].click()
    assert by_id(d, "train-dataset").get_attribute("value") == str(collection / "pets")
    fill(d, "train-name", "a.b")
    by_id(d, "train-start").click()
    wait(d, lambda d: by_id(d, "train-error").text == says.replace("my.net", "a.b"))
    d.save_screenshot(str(shots / "studio-train-datasets.png"))


def test_graph_blob_shows_its_channel_pictures_and_a_channel_fills_the_dream_form(studio):
    """Brains page: the graph's labels fit their boxes as the browser draws them; clicking a blob shows
    the channel pictures already made (three, made through the API at a tiny size) and a button that
    makes the rest, which appear as they come; clicking a channel puts `--layer BLOB:CHANNEL` and its
    brain into the Dream form."""
    import httpx

    d, home, _, shots = studio
    url = d.current_url.split("/#")[0].rstrip("/")
    with httpx.Client(base_url=url, timeout=60) as c:
        if c.get("/api/brains/efficientnet_lite0/graph").status_code == 400:  # built by "fetch" on first use
            job = c.post("/api/brains/efficientnet_lite0/fetch").json()
            wait(d, lambda d: c.get(f"/api/jobs/{job['id']}").json()["state"] == "done", 300)
        job = c.post("/api/channels", json={"model": "efficientnet_lite0", "blob": "block0/output", "size": 32,
                                            "iterations": 2, "channels": [0, 1, 2]}).json()
        wait(d, lambda d: c.get(f"/api/jobs/{job['id']}").json()["state"] == "done", 300)
    tab(d, "brains")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, '.brain-card[data-name="efficientnet_lite0"] .brain-graph'))
    d.find_element(By.CSS_SELECTOR, '.brain-card[data-name="efficientnet_lite0"] .brain-graph').click()
    blob = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, '#graph-view .graph-blob[data-blob="block0/output"]'))
    over = d.execute_script("""
        const out = [];
        for (const g of document.querySelectorAll('#graph-view g.layer')) {
          const w = +g.querySelector('rect').getAttribute('width');
          for (const t of g.querySelectorAll('text')) if (t.getComputedTextLength() > w - 2 * 6) out.push(t.textContent);
        }
        return [out, document.querySelectorAll('#graph-view g.layer').length];""")
    assert over[0] == [] and over[1] > 100, over
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", blob)
    d.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", blob)
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#graph-channel-grid figure")) == 16)
    loaded = "return [...document.querySelectorAll('#graph-channel-grid img')].filter((i) => i.naturalWidth === 32).length"
    wait(d, lambda d: d.execute_script(loaded) == 3)  # the three made, shown at once
    assert "make 13 channel pictures" in by_id(d, "graph-make-channels").text
    by_id(d, "graph-make-channels").click()
    wait(d, lambda d: d.execute_script(loaded) == 16, 300)
    wait(d, lambda d: by_id(d, "graph-channels-text").text.startswith("done"))
    shot(d, shots, "channels", at="graph-title")
    d.find_element(By.CSS_SELECTOR, '#graph-channel-grid figure[data-channel="5"]').click()
    wait(d, lambda d: by_id(d, "page-dream").is_displayed())
    wait(d, lambda d: by_id(d, "dream-layers").get_attribute("value") == "block0/output:5")
    assert Select(by_id(d, "dream-model")).first_selected_option.get_attribute("value") == "efficientnet_lite0"
