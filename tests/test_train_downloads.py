"""The arthistory and lfw downloaders against a local http.server serving a small catalog and archive
built here from ../shared/datasets."""

import csv
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from zoo.train import download
from zoo.train.arthistory import image_path, parse_centuries
from zoo.train.arthistory import prepare as prepare_arthistory
from zoo.train.datasets import DatasetError
from zoo.train.download import DownloadError, fetch
from zoo.train.lfw import parse_names, safe_extract
from zoo.train.lfw import prepare as prepare_lfw

try:  # tests/ is on sys.path when pytest imports test files from it
    from fault_server import FaultServer
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer

from tests.conftest import DATASETS as SHARED

HEADER = "AUTHOR;BORN-DIED;TITLE;DATE;TECHNIQUE;LOCATION;URL;FORM;TYPE;SCHOOL;TIMEFRAME"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(root folder, base URL, server) of a local web server; tests write what it serves under root."""
    root = tmp_path_factory.mktemp("www")
    with FaultServer(root=root) as srv:
        yield root, srv.base, srv


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)


def build_wga(www: Path) -> dict[str, int]:
    """A catalog.csv in data_txt.zip with real WGA rows, and paintings (AIC images) under /art/."""
    text = (SHARED / "wga_meta" / "wga_paintings_subset.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    paintings = sorted((SHARED / "aic_paintings_by_period").rglob("*.jpg"))
    picked = {"Italian": [], "Dutch": [], "Spanish": []}
    for r in rows:
        if r["SCHOOL"] in picked and len(picked[r["SCHOOL"]]) < 4 and r["TIMEFRAME"] != "1851-1900":
            picked[r["SCHOOL"]].append(r)
    late = next(r for r in rows if r["TIMEFRAME"] == "1851-1900" and r["SCHOOL"] == "Italian")
    lines = [HEADER]
    k = 0
    for school, rs in picked.items():
        for r in rs + ([late] if school == "Italian" else []):
            rel = r["jpg_link"].split("/art/", 1)[1]
            page = "https://www.wga.hu/html/" + rel[: -len(".jpg")] + ".html"
            lines.append(
                ";".join(
                    [
                        r["AUTHOR"].replace(";", ","),
                        "",
                        "t",
                        "",
                        "",
                        "",
                        page,
                        "painting",
                        r["TYPE"],
                        school,
                        r["TIMEFRAME"],
                    ]
                )
            )
            if not (school == "Spanish" and r is rs[-1]):  # one image missing on the server
                dest = www / "art" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(paintings[k], dest)
            k += 1
    lines.append(
        "SOMEONE;;a statue;;marble;;https://www.wga.hu/html/s/some/statue.html;sculpture;religious;Italian;1501-1550"
    )
    zdir = www / "database" / "download"
    zdir.mkdir(parents=True)
    with zipfile.ZipFile(zdir / "data_txt.zip", "w") as z:
        z.writestr("catalog.csv", ("\r\n".join(lines) + "\r\n").encode("latin-1", errors="replace"))
    return {s: len(rs) for s, rs in picked.items()}


def test_arthistory_downloads_filters_and_labels(site, tmp_path):
    www, base, _ = site
    counts = build_wga(www)
    images = prepare_arthistory(
        label="school", root=tmp_path / "wga", base_url=base, centuries="1-18", per_class=3, show=False
    )
    assert images.classes == ["Dutch", "Italian", "Spanish"]
    per_class = [sum(1 for _, c in images.items if c == i) for i in range(3)]
    # capped at 3 per class; the Spanish one that 404s is skipped and counted
    assert per_class[0] == 3 and per_class[1] == 3 and per_class[2] in (2, 3)
    assert counts["Spanish"] == 4
    assert all((images.root / rel).is_file() for rel, _ in images.items)
    assert not any(rel.endswith(".part") for rel, _ in images.items)
    # the 1851-1900 painting and the sculpture are never fetched
    assert not any("statue" in rel for rel, _ in images.items)
    by_tf = prepare_arthistory(
        label="timeframe", root=tmp_path / "wga", base_url=base, centuries="15-19", per_class=50, show=False
    )
    assert "1851-1900" in by_tf.classes and all("-" in c for c in by_tf.classes)


def test_arthistory_unreachable_catalog_is_one_line(tmp_path):
    with pytest.raises(DownloadError, match=r"data_txt.zip: cannot connect") as e:
        prepare_arthistory(label="school", root=tmp_path, base_url="http://127.0.0.1:9", show=False)
    assert "\n" not in str(e.value)


def test_arthistory_helpers():
    assert parse_centuries("-19") == (1, 1900) and parse_centuries("15-16") == (1401, 1600)
    assert image_path("https://www.wga.hu/html/a/aachen/adonis.html") == "a/aachen/adonis.jpg"
    with pytest.raises(DatasetError):
        parse_centuries("late")


def make_lfw_tgz(path: Path, people: dict[str, list[Path]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for person, files in people.items():
            for i, f in enumerate(files, 1):
                tar.add(f, arcname=f"lfw-deepfunneled/{person}/{person}_{i:04d}.jpg")


@pytest.fixture(scope="module")
def lfw_site(site):
    www, base, _ = site
    people = {
        p.name: sorted(p.glob("*.jpg"))[:3] for p in sorted((SHARED / "lfw_identity").iterdir())[:4] if p.is_dir()
    }
    for g in ("female", "male"):
        for f in sorted((SHARED / "lfw_gender" / g).glob("*.jpg"))[:3]:
            people[f.stem[: -len("_0001")]] = [f]
    (www / "lfw").mkdir()
    make_lfw_tgz(www / "lfw" / "lfw-deepfunneled.tgz", people)
    (www / "gender").mkdir()
    for name in ("female_names.txt", "male_names.txt"):
        shutil.copy(SHARED / "lfw_meta" / name, www / "gender" / name)
    md5 = hashlib.md5((www / "lfw" / "lfw-deepfunneled.tgz").read_bytes()).hexdigest()
    return base, md5, people


def test_lfw_wrong_checksum_is_refused(lfw_site, tmp_path):
    base, _, _ = lfw_site
    with pytest.raises(DownloadError, match="checksum mismatch: expected md5 68331da3eb755a505a502b5aacb3c201"):
        prepare_lfw(label="identity", root=tmp_path, base_url=base + "/lfw", show=False)
    assert not list(tmp_path.rglob("*.tgz*"))


def test_lfw_identity_and_gender(lfw_site, tmp_path):
    base, md5, people = lfw_site
    ident = prepare_lfw(label="identity", root=tmp_path, base_url=base + "/lfw", md5=md5, show=False)
    assert ident.classes == sorted(people)
    assert len(ident.items) == sum(len(v) for v in people.values())
    gender = prepare_lfw(
        label="gender", root=tmp_path, base_url=base + "/lfw", md5=md5, gender_url=base + "/gender", show=False
    )
    assert gender.classes == ["female", "male"]
    by_class = {c: sorted(r.split("/")[0] for r, i in gender.items if gender.classes[i] == c) for c in gender.classes}
    female = sorted(f.stem[:-5] for f in sorted((SHARED / "lfw_gender" / "female").glob("*.jpg"))[:3])
    assert set(female) <= set(by_class["female"]) and not set(female) & set(by_class["male"])
    assert "George_W_Bush" not in by_class["female"]


def test_safe_extract_refuses_paths_outside(tmp_path):
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"gotcha"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError, match="unsafe member '../outside.txt'"):
        safe_extract(evil, tmp_path / "x" / "out")
    assert not (tmp_path / "x" / "outside.txt").exists() and not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "x" / "out").exists()


def test_parse_names_tolerates_list_quirks():
    names = parse_names("Ann_Lee_0001.jpg\r\nAnn_Lee_0002\nBo_Li_0003.jpg-\n\n")
    assert names == {"Ann_Lee": {"0001", "0002"}, "Bo_Li": {"0003"}}


def test_fetch_resumes_a_partial_file_and_verifies(site, tmp_path):
    www, base, _ = site
    payload = bytes(range(256)) * 400
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(payload[:30000])  # a download killed half-way
    fetch(f"{base}/blob.bin", dest, md5=hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload and not (tmp_path / "blob.bin.part").exists()
    assert "bytes=30000-" in site[2].ranges()
    mtime = dest.stat().st_mtime_ns
    fetch(f"{base}/blob.bin", dest, md5=hashlib.md5(payload).hexdigest())  # verified copy kept
    assert dest.stat().st_mtime_ns == mtime
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{base}/nothing.bin", tmp_path / "n.bin")


def test_train_cli_with_unreachable_catalog_exits_1(tmp_path, monkeypatch, capsys):
    import zoo.cli

    monkeypatch.setenv("ZOO_WGA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    mtcnn = SHARED.parent / "models" / "mtcnn"
    args = ["train", "--dataset", "arthistory", "--label", "school", "--out", str(tmp_path / "run"), "-q",
            "--model", str(mtcnn / "det3.prototxt"), "--weights", str(mtcnn / "det3.caffemodel")]  # fmt: skip
    assert zoo.cli.main(args) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: http://127.0.0.1:9/database/download/data_txt.zip")
