"""Issue 21: what a file says (a catalog row, an archive member, a recipe's input, an HDF5 link) can
only name paths inside the folder it is meant for.

Each place where file content becomes a path is driven with hypothesis-generated hostile relative
paths (`..`, absolute paths, percent-encoded dots, backslashes, NUL, very long names) and checked
from the outside: a snapshot of the sandbox before and after may differ only inside the folder the
command may write.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoo.train import download
from zoo.train.arthistory import image_path
from zoo.train.arthistory import prepare as prepare_arthistory
from zoo.train.datasets import DatasetError
from zoo.train.lfw import safe_extract

from zoo import names
from zoo.errors import UserError

try:
    from fault_server import FaultServer
except ImportError:  # pragma: no cover
    from tests.fault_server import FaultServer

SHARED = Path(__file__).resolve().parents[2] / "shared"
HEADER = "AUTHOR;BORN-DIED;TITLE;DATE;TECHNIQUE;LOCATION;URL;FORM;TYPE;SCHOOL;TIMEFRAME"
JPEG = next(iter(sorted((SHARED / "datasets" / "aic_paintings_by_period").rglob("*.jpg"))), None)

# pieces hostile paths are made of: each is a way out, or a name no file system takes
HOSTILE_PARTS = ["..", ".", "", "%2e%2e", "%2E%2E%2F", "..\\..", "\\", "C:", "/", "//", "\0", "x" * 300, "~",
                 ".hidden", "a\nb", "%00"]
segment = st.one_of(st.sampled_from(HOSTILE_PARTS), st.text(min_size=1, max_size=12))
hostile_rel = st.lists(segment, min_size=1, max_size=6).map("/".join)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root -> its bytes (None for folders)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def outside(before: dict, after: dict, allowed: str) -> dict:
    """What changed in the sandbox outside the `allowed` folder."""
    keys = set(before) | set(after)
    return {k: after.get(k) for k in keys if before.get(k) != after.get(k) and not k.startswith(allowed)}


# --- the one safe join -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rel=hostile_rel)
def test_join_inside_never_leaves_the_root(tmp_path: Path, rel: str) -> None:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    try:
        path = names.join_inside(root, rel, "catalog path")
    except UserError as e:
        assert "\n" not in str(e).replace(repr(rel), "")  # one line (the name itself is repr'd)
        return
    assert root.resolve() in path.parents
    assert ".." not in Path(rel).parts and not Path(rel).is_absolute()


@pytest.mark.parametrize("rel", ["../x.jpg", "a/../../x.jpg", "/etc/x.jpg", "%2e%2e/x.jpg", "a\\..\\x.jpg", "a\0b.jpg",
                                 "x" * 300 + ".jpg", "a//b.jpg", "./a.jpg", "a/.hidden.jpg"])
def test_join_inside_refuses_by_name(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UserError, match="catalog path"):
        names.join_inside(tmp_path, rel, "catalog path")


def test_join_inside_refuses_a_symlink_out(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "victim").mkdir()
    os.symlink(tmp_path / "victim", tmp_path / "root" / "a")
    with pytest.raises(UserError, match="leads outside"):
        names.join_inside(tmp_path / "root", "a/x.jpg", "catalog path")
    assert names.join_inside(tmp_path / "root", "b/c/x.jpg", "p") == (tmp_path / "root" / "b" / "c" / "x.jpg").resolve()


# --- high 1: the arthistory catalog --------------------------------------------------------------------


def wga_site(www: Path, urls: list[str]) -> None:
    """A catalog with one Italian painting row per URL, and one real painting served at every
    /art/ path the rows could name (the server resolves nothing outside www)."""
    lines = [HEADER] + [f"A;;t;;;;{u};painting;religious;Italian;1501-1550" for u in urls]
    zdir = www / "database" / "download"
    zdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zdir / "data_txt.zip", "w") as z:
        z.writestr("catalog.csv", ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    (www / "art" / "a" / "good").mkdir(parents=True, exist_ok=True)
    (www / "art" / "a" / "good" / "ok.jpg").write_bytes(JPEG.read_bytes())


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/{home ($ZOO_HOME), victim, www (what the gallery serves)}."""
    for d in ("home", "victim", "www"):
        (tmp_path / d).mkdir()
    (tmp_path / "victim" / "precious.txt").write_text("do not touch")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    return tmp_path


HOSTILE_URLS = [
    "https://x/html/../../../../../victim/x.html",
    "https://x/html/a/../../../../victim/y.html",
    "https://x/html//ABS/victim/z.html",
    "https://x/html/%2e%2e/%2e%2e/%2e%2e/victim/p.html",
    "https://x/html/..\\..\\victim\\b.html",
    "https://x/html/a/n\0ul.html",
    "https://x/html/a/" + "l" * 300 + ".html",
]


@pytest.mark.skipif(JPEG is None, reason="needs ../shared/datasets/aic_paintings_by_period")
def test_arthistory_hostile_rows_are_skipped_and_counted(sandbox: Path) -> None:
    urls = [u.replace("/ABS", str(sandbox)) for u in HOSTILE_URLS] + ["https://www.wga.hu/html/a/good/ok.html"]
    wga_site(sandbox / "www", urls)
    with FaultServer(root=sandbox / "www") as srv:
        before = snapshot(sandbox)
        images = prepare_arthistory(label="school", base_url=srv.base, per_class=50, show=False)
        after = snapshot(sandbox)
    assert [rel for rel, _ in images.items] == ["a/good/ok.jpg"]
    assert any(f"{len(HOSTILE_URLS)} catalog rows" in n and "unsafe" in n for n in images.notes), images.notes
    assert outside(before, after, "home/datasets/arthistory") == {}
    assert (sandbox / "victim").iterdir().__next__().name == "precious.txt" and len(list((sandbox / "victim").iterdir())) == 1


@pytest.mark.skipif(JPEG is None, reason="needs ../shared/datasets/aic_paintings_by_period")
def test_zoo_data_pack_arthistory_writes_only_inside(sandbox: Path, monkeypatch, capsys) -> None:
    import zoo.cli

    urls = [u.replace("/ABS", str(sandbox)) for u in HOSTILE_URLS] + ["https://www.wga.hu/html/a/good/ok.html"]
    wga_site(sandbox / "www", urls)
    with FaultServer(root=sandbox / "www") as srv:
        monkeypatch.setenv("ZOO_WGA_URL", srv.base)
        before = snapshot(sandbox)
        code = zoo.cli.main(["data", "pack", "arthistory", "--size", "16"])
        after = snapshot(sandbox)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert outside(before, after, "home/datasets") == {}
    assert code in (0, 1)


@settings(max_examples=200, deadline=None)
@given(rel=hostile_rel)
def test_arthistory_image_path_stays_inside(rel: str) -> None:
    got = image_path(f"https://www.wga.hu/html/{rel}.html")
    if got is not None:
        root = Path("/nonexistent-root/art")
        assert root in names.join_inside(root, got, "catalog path").parents


# --- archives: tar members ---------------------------------------------------------------------------


def tar_with(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_duplicate_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.tgz"
    archive.write_bytes(tar_with([("p/x.jpg", b"first"), ("p/x.jpg", b"second")]))
    with pytest.raises(DatasetError, match="x.jpg.*twice"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tar_long_member_name_is_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "a.tgz"
    archive.write_bytes(tar_with([("p/" + "n" * 300 + ".jpg", b"x")]))
    with pytest.raises(DatasetError, match="a.tgz"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(hostile_rel.filter(lambda s: "\0" not in s), min_size=1, max_size=4))
def test_tar_members_land_inside_or_are_refused(tmp_path: Path, names: list[str]) -> None:
    work = tmp_path / "w"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    archive = work / "a.tgz"
    archive.write_bytes(tar_with([(n, b"data") for n in names]))
    before = snapshot(tmp_path)
    try:
        safe_extract(archive, work / "out")
    except DatasetError as e:
        assert "a.tgz" in str(e)
        assert outside(before, snapshot(tmp_path), "w/a.tgz") == {}
        return
    assert outside(before, snapshot(tmp_path), "w/out") == {}


# --- high 2: HDF5 weights that point elsewhere -------------------------------------------------------

MTCNN = SHARED / "models" / "mtcnn"
SECRET = b"TOP-SECRET-BYTES" * 8  # 128 bytes: 32 float32 values, conv3's bias (32,)


def h5_weights(path: Path, trap: str, secret: Path) -> None:
    """det1's weights as a Caffe HDF5 snapshot, with /data/conv3/1 (32 floats) replaced by `trap`:
    external storage, a virtual dataset, a soft or an external link, each leading to `secret`."""
    import h5py
    import numpy as np
    from zoo.convert.weights import read_caffemodel

    weights, _ = read_caffemodel(MTCNN / "det1.caffemodel")
    other = secret.with_suffix(".h5")
    with h5py.File(other, "w") as o:
        o["secret"] = np.frombuffer(secret.read_bytes(), np.float32)
    with h5py.File(path, "w") as f:
        for layer, blobs in weights.items():
            for i, b in enumerate(blobs):
                if (layer, i) != ("conv3", 1):
                    f[f"data/{layer}/{i}"] = b
        g = f["data/conv3"]
        if trap == "external storage":
            g.create_dataset("1", shape=(32,), dtype="<f4", external=[(str(secret), 0, len(SECRET))])
        elif trap == "virtual dataset":
            layout = h5py.VirtualLayout(shape=(32,), dtype="<f4")
            layout[:] = h5py.VirtualSource(str(other), "secret", shape=(32,))
            g.create_virtual_dataset("1", layout)
        elif trap == "soft link":
            f["elsewhere"] = np.frombuffer(SECRET, np.float32)
            g["1"] = h5py.SoftLink("/elsewhere")
        elif trap == "external link":
            g["1"] = h5py.ExternalLink(str(other), "/secret")
        elif trap == "external link group":
            del f["data/conv3"]
            with h5py.File(other, "a") as o:
                o["conv3/0"], o["conv3/1"] = weights["conv3"][0], np.frombuffer(SECRET, np.float32)
            f["data/conv3"] = h5py.ExternalLink(str(other), "/conv3")


@pytest.mark.skipif(not (MTCNN / "det1.caffemodel").is_file(), reason="needs ../shared/models/mtcnn")
@pytest.mark.parametrize("trap", ["external storage", "virtual dataset", "soft link", "external link",
                                  "external link group"])
def test_hdf5_weights_pointing_elsewhere_are_refused(tmp_path: Path, trap: str, capsys) -> None:
    import zoo.cli

    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    weights = tmp_path / "ext.caffemodel.h5"
    h5_weights(weights, trap, secret)
    out = tmp_path / "out"
    code = zoo.cli.main(["convert", str(MTCNN / "det1.prototxt"), "-w", str(weights), "-o", str(out),
                         "-f", "onnx", "-f", "safetensors"])
    err = capsys.readouterr().err
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and p not in (secret, secret.with_suffix(".h5"), weights)
              and SECRET[:16] in p.read_bytes()]
    assert leaked == []
    assert code == 1 and "Traceback" not in err
    assert trap.replace(" group", "") in err and "ext.caffemodel.h5" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not (MTCNN / "det1.caffemodel").is_file(), reason="needs ../shared/models/mtcnn")
def test_plain_hdf5_weights_still_convert(tmp_path: Path) -> None:
    import h5py
    import numpy as np
    from zoo.convert.weights import read_caffemodel, read_weights

    weights, _ = read_caffemodel(MTCNN / "det1.caffemodel")
    path = tmp_path / "ok.caffemodel.h5"
    with h5py.File(path, "w") as f:
        for layer, blobs in weights.items():
            for i, b in enumerate(blobs):
                f[f"data/{layer}/{i}"] = b
    got = read_weights(path)
    assert all(np.array_equal(got[k][i], b) for k, v in weights.items() for i, b in enumerate(v))


def test_a_planted_pack_with_an_external_link_is_packed_again(tmp_path: Path) -> None:
    import h5py
    import numpy as np
    from zoo.convert.hdf5 import UnsafeHDF5
    from zoo.train.sources import PackedSource

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as o:
        o["labels"] = np.arange(4)
    pack = tmp_path / "p.h5"
    with h5py.File(pack, "w") as f:
        f.attrs["classes"], f.attrs["size"] = '["a"]', 8
        f["labels"] = h5py.ExternalLink(str(secret), "/labels")
    with pytest.raises(UnsafeHDF5, match="p.h5: /labels is an external link"):
        PackedSource(pack)


# --- recipes and run files: an input or guide outside the picture's folder ----------------------------


@pytest.fixture(scope="module")
def recipe_tree(tmp_path_factory) -> tuple[Path, Path, str]:
    """(root, the picture carrying the recipe, sha256 of a victim file outside its folder):
    root/{pics/{dream.png, photo.png, sub/inner.png, out -> ../victim}, victim/secret.png}."""
    from zoo.io import file_digest

    root = tmp_path_factory.mktemp("recipes")
    (root / "pics" / "sub").mkdir(parents=True)
    (root / "victim").mkdir()
    for p in ("pics/dream.png", "pics/photo.png", "pics/sub/inner.png"):
        (root / p).write_bytes(b"picture " + p.encode())
    (root / "victim" / "secret.png").write_bytes(b"secret")
    os.symlink(root / "victim", root / "pics" / "out")
    return root, root / "pics" / "dream.png", file_digest(root / "victim" / "secret.png")


stored_path = st.one_of(
    hostile_rel,
    st.sampled_from(["../victim/secret.png", "out/secret.png", "sub/../../victim/secret.png", "/VICTIM/secret.png",
                     "photo.png", "sub/inner.png", "/PICS/photo.png", "secret.png", "..", "/", "/VICTIM/../pics/photo.png"]))


@settings(max_examples=200, deadline=None)
@given(stored=stored_path, knows=st.booleans())
def test_a_recipe_reads_only_inside_its_folder_or_what_it_knows(recipe_tree, stored: str, knows: bool) -> None:
    from zoo.dream.recipe import file_sha256, locate

    root, image, secret_sha = recipe_tree
    stored = stored.replace("/VICTIM", str(root / "victim")).replace("/PICS", str(root / "pics"))
    sha = secret_sha if knows else None
    try:
        found = locate(stored, image, "input", sha)
    except UserError:
        return
    inside = (root / "pics").resolve() in found.resolve().parents
    assert inside or (knows and file_sha256(found) == secret_sha), (stored, found)


def test_a_recipe_naming_a_file_outside_is_refused_by_name(recipe_tree) -> None:
    from zoo.dream.recipe import locate

    root, image, secret_sha = recipe_tree
    for stored in (str(root / "victim" / "secret.png"), "../victim/secret.png", "out/secret.png"):
        with pytest.raises(UserError, match="lies outside the picture's folder"):
            locate(stored, image, "input")
    assert locate(str(root / "victim" / "secret.png"), image, "input", secret_sha) == root / "victim" / "secret.png"
    assert locate("/gone/photo.png", image, "input") == root / "pics" / "photo.png"  # a folder moved as a whole


# --- cards: a file name in models.toml ---------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filename=hostile_rel, model=st.one_of(st.sampled_from(["m", "..", "a/b", ""]), st.text(max_size=8)))
def test_a_card_file_name_stays_in_its_model_folder(tmp_path: Path, filename: str, model: str) -> None:
    from zoo.names import model_file

    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    try:
        path = model_file(models, model, "weights", filename)
    except UserError:
        return
    assert path.parent == (models / model).resolve() and path.name == filename
