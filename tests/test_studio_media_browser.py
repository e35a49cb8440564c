"""Sounds and vectors in a real browser (Debian's headless Chromium against a real uvicorn server): a sound
uploaded shows its spectrogram and plays in an <audio>, its dream plays beside it; a stroke dream's SVG is
drawn by the page and offered as a download; an SVG that carries script, opened in a frame of the studio,
never runs (it is served as a sandboxed download)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402
from test_studio_browser import by_id, fill, shot, studio, tab, wait  # noqa: E402, F401 - studio is the fixture
from test_studio_media import a_sound  # noqa: E402

SCRIPTED = ('<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">'
            '<script>parent.document.title = "ran"</script><rect width="16" height="16"/></svg>')


def sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def js(d, expr: str):
    return d.execute_script(f"return {expr}")


def test_a_sound_and_a_stroke_dream_in_the_browser(studio, tmp_path):  # noqa: F811
    d, home, _, shots = studio
    wait(d, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-media") == "1")
    # an SVG that carries script, opened in a frame of the studio: served as a sandboxed download, it never runs
    ref = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        upload("svg", new File([arguments[0]], "scripted.svg")).then((u) => done(u.ref), (e) => done(e.message));""",
                                 SCRIPTED)
    assert ref.startswith("uploads/"), ref
    d.execute_script("const f = document.createElement('iframe'); f.src = fileUrl(arguments[0]);"
                     "document.body.append(f);", ref)
    time.sleep(2)
    assert d.title == "zoo studio"  # its script never ran in the studio's origin
    d.execute_script("document.querySelector('iframe').remove()")
    d.get_log("browser")  # (a blocked script may be logged: that is the point)

    by_id(d, "media-file").send_keys(str(a_sound(tmp_path / "voice.wav")))
    wait(d, lambda d: by_id(d, "dream-input").get_attribute("value").endswith("voice.wav"))
    assert by_id(d, "media-sound").is_displayed() and not by_id(d, "media-make").is_displayed()
    wait(d, lambda d: js(d, "(i => !i.hidden && i.complete && i.naturalHeight)(document.getElementById('media-spec-in'))")
         == 513)  # the spectrogram the worker made: n_fft 1024 gives 513 rows
    wait(d, lambda d: js(d, "document.getElementById('media-audio-in').duration || 0") > 0)  # the <audio> reads it
    for k, v in (("dream-layers", "block2/output"), ("dream-octaves", 1), ("dream-iterations", 1)):
        fill(d, k, v)
    by_id(d, "dream-run").click()
    wait(d, lambda d: by_id(d, "media-result").is_displayed())
    wait(d, lambda d: js(d, "document.getElementById('media-audio-b').duration || 0") > 0)
    a, b = js(d, "document.getElementById('media-audio-a').duration"), js(d, "document.getElementById('media-audio-b')"
                                                                             ".duration")
    assert abs(a - b) < 0.01, (a, b)  # the dream is as long as its input
    wait(d, lambda d: js(d, "document.getElementById('media-spec-b').naturalWidth") > 0)
    assert by_id(d, "dl-media").get_attribute("download").endswith(".wav")
    shot(d, shots, "sound", at="media-result")
    # a sound's guide is a sound: the guide picker uploads it as one and the recipe names it
    first = by_id(d, "media-result").get_attribute("data-ref")
    guide = a_sound(tmp_path / "guide.wav")
    by_id(d, "dream-guide-file").send_keys(str(guide))
    wait(d, lambda d: by_id(d, "dream-guide").get_attribute("value").endswith("guide.wav"))
    by_id(d, "dream-run").click()
    wait(d, lambda d: by_id(d, "media-result").is_displayed()
         and by_id(d, "media-result").get_attribute("data-ref") not in ("", first))
    recipe = json.loads(by_id(d, "media-recipe").text)
    made = recipe["recipe"]  # a sound's record: its picture recipe, and the sound settings beside it
    assert made["guide"].endswith("guide.wav") and made["guide_sha256"] == sha256(guide), made
    by_id(d, "dream-clear-guide").click()  # the stroke dream below has none
    assert by_id(d, "dream-guide").get_attribute("value") == ""

    by_id(d, "dream-clear-input").click()
    Select(by_id(d, "dream-init")).select_by_value("noise")
    Select(by_id(d, "media-kind")).select_by_value("strokes")
    for k, v in (("media-strokes", 20), ("dream-iterations", 2), ("dream-size", 64)):
        fill(d, k, v)
    by_id(d, "dream-run").click()
    wait(d, lambda d: by_id(d, "media-result").is_displayed()
         and (by_id(d, "dl-media").get_attribute("download") or "").endswith(".svg"))
    wait(d, lambda d: js(d, "document.getElementById('dream-preview').naturalWidth") == 64)  # drawn by the <img>
    href = by_id(d, "dl-media").get_attribute("href")
    got = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async (r) => done([r.headers.get("content-disposition"), await r.text()]));""", href)
    assert got[0].startswith("attachment") and len(ET.fromstring(got[1]).findall(
        ".//{http://www.w3.org/2000/svg}path")) == 20
    shot(d, shots, "strokes", at="media-result")

    # the gallery shows them all: the sounds play in an <audio>, the stroke SVG is drawn by an <img>
    tab(d, "gallery")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gallery-item")) == 3)
    kinds = [e.get_attribute("data-kind") for e in d.find_elements(By.CSS_SELECTOR, ".gallery-item")]
    assert kinds == ["strokes", "sound", "sound"], kinds  # newest first
    wait(d, lambda d: js(d, "document.querySelector('.gallery-item[data-kind=strokes] img').naturalWidth") == 64)
    assert js(d, "document.querySelectorAll('.gallery-item[data-kind=sound] audio').length") == 2
    wait(d, lambda d: js(d, "[...document.querySelectorAll('.gallery-item[data-kind=sound] img')]"
                           ".filter((i) => i.naturalWidth > 0).length") == 2)  # each with its spectrogram
    code = js(d, "document.querySelector('.gallery-item[data-kind=sound] code').textContent")
    assert code.startswith("zoo dream --recipe ") and code.endswith(" -o again.wav"), code
    shot(d, shots, "gallery-media")

    # a stopped journey gets a resume button on the Jobs page; the resumed job finishes the film
    job = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch("/api/dream", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(
          {init: "noise", size: "64", model: "efficientnet_lite0", octaves: 1, iterations: 2, frames: 6, zoom: 1.05,
           layer_path: "block2/output,block4/output"})}).then((r) => r.json()).then(done);""")
    first = wait(d, lambda d: js(d, f"fetch('/api/jobs/{job['id']}').then((r) => r.json())"
                               ).get("progress", {}).get("frame", 0) >= 3 or None)
    assert first
    js(d, f"fetch('/api/jobs/{job['id']}/stop', {{method: 'POST'}}).then((r) => r.status)")
    wait(d, lambda d: js(d, f"fetch('/api/jobs/{job['id']}').then((r) => r.json())")["state"] == "stopped")
    tab(d, "jobs")
    resume = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#job-list tr[data-kind=journey][data-state=stopped] "
                                                               "button"))
    assert resume[0].text == "resume"
    resume[0].click()
    wait(d, lambda d: js(d, "fetch('/api/jobs').then((r) => r.json())")[0]["state"] == "done", timeout=120)
    resumed = js(d, "fetch('/api/jobs').then((r) => r.json())")[0]
    assert resumed["title"].endswith("(resumed)") and 0 < resumed["result"]["written"] < 6, resumed

    # dropping an output onto the page loads its recipe and its own options: the stroke SVG, then a sound
    def drop(kind: str) -> None:
        tab(d, "gallery")
        item = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, f".gallery-item[data-kind={kind}]"))[0]
        d.execute_async_script("""
            const [ref, done] = [arguments[0], arguments[arguments.length - 1]];
            fetch("/api/files/" + ref).then((r) => r.blob()).then((b) => window.zooDropRecipe(
              new File([b], ref.split("/").pop()))).then(done);""", item.get_attribute("data-ref"))

    d.execute_script("document.getElementById('media-strokes').value = 3")  # the drop must restore 20
    drop("strokes")
    assert by_id(d, "media-kind").get_attribute("value") == "strokes"
    assert by_id(d, "media-strokes").get_attribute("value") == "20"
    drop("sound")
    wait(d, lambda d: by_id(d, "media-sound").is_displayed())
    assert by_id(d, "dream-iterations").get_attribute("value") == "1"  # the recipe's, not the sound default
    assert by_id(d, "media-n-fft").get_attribute("value") == "1024" and by_id(d, "dream-layers").get_attribute(
        "value") == "block2/output"
