"""`lfw`: Labeled Faces in the Wild (deep-funneled), fetched from the LFW site, checked against the
md5 the site publishes, extracted safely, and labelled by identity or by gender.

Gender uses the widely circulated LFW lists female_names.txt / male_names.txt (one image file name
per line); a person gets a gender only when exactly one list names them and it covers all of their
images, so the few people listed in both are left out.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath

from zoo.io import atomic_folder, replace_folder, write_text_atomic
from zoo.names import InvalidName, relative_parts

from .datasets import DatasetError, ImageList, data_dir, scan_folder
from .download import fetch
from .progress import log

# From the LFW home page (vis-www.cs.umass.edu/lfw, "Download the database"):
# "All images aligned with deep funneling (111MB, md5sum 68331da3eb755a505a502b5aacb3c201)".
SITE = "http://vis-www.cs.umass.edu/lfw"
ARCHIVE = "lfw-deepfunneled.tgz"
ARCHIVE_MD5 = "68331da3eb755a505a502b5aacb3c201"
# The gender lists, pinned to one commit of a public repository that distributes them.
GENDER_SITE = (
    "https://raw.githubusercontent.com/Lukeli0425/Gender-Classification/f9073b8115471f48e8b2c7646869bccfc2a0cc7e"
)
GENDER_SHA256 = {
    "female_names.txt": "c57d2c7c535f9639660088cbc791655ef8748c26ca55fc866efd3796877ef39d",
    "male_names.txt": "6ed9cd7a08a50aba4e9ea0d5edba25ae13871896ee2f3dc205b39fcd2a6bc728",
}
LABELS = ("identity", "gender")
Names = dict[str, set[str]]
_IMAGE = re.compile(r"^(?P<person>.+)_(?P<n>\d{4})(\.jpg)?")


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract regular files and folders of a tar archive into `dest`, refusing any member that
    would land outside it (absolute paths, `..`, links, devices) or clash with another (a `.` file,
    a file and a folder of the same name). Atomic: extracted to a sibling temporary folder, then
    renamed; a truncated or damaged archive is a one-line error and leaves nothing."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_folder(dest) as tmp, tarfile.open(archive, "r:*") as tar:
            seen: set[str] = set()
            for m in tar:
                _extract_one(tar, m, tmp, archive, seen)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise DatasetError(f"{archive}: not a readable tar archive ({e or type(e).__name__})") from None
    except OSError as e:  # a full disk, a name the file system cannot take
        raise DatasetError(f"{archive}: cannot extract ({e.strerror or e})") from None
    return dest


def _extract_one(tar: tarfile.TarFile, m: tarfile.TarInfo, root: Path, archive: Path, seen: set[str]) -> None:
    p = PurePosixPath(m.name)
    if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
        raise DatasetError(f"{archive}: unsafe member {m.name!r} (refusing to extract)")
    if m.isfile():
        try:
            relative_parts(p.as_posix(), "member")
        except InvalidName:
            raise DatasetError(f"{archive}: unsafe member name {m.name[:200]!r} (refusing to extract)") from None
        if p.as_posix() in seen:
            raise DatasetError(f"{archive}: member {m.name!r} is in the archive twice (refusing to extract)")
        seen.add(p.as_posix())
    target = root.joinpath(*p.parts)
    if m.isdir():
        if target.exists() and not target.is_dir():
            raise DatasetError(f"{archive}: member {m.name!r} is a folder and a file (refusing to extract)")
        target.mkdir(parents=True, exist_ok=True)
        return
    if not p.parts or target.is_dir() or any(q.is_file() for q in target.parents if root in q.parents):
        raise DatasetError(f"{archive}: member {m.name!r} clashes with another member (refusing to extract)")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(m)
    with src, open(target, "wb") as out:  # type: ignore[union-attr]
        shutil.copyfileobj(src, out)


def parse_names(text: str) -> Names:
    """person -> image numbers named in a gender list (tolerates missing or mangled `.jpg`)."""
    out: Names = defaultdict(set)
    for line in text.splitlines():
        m = _IMAGE.match(line.strip())
        if m:
            out[m["person"]].add(m["n"])
    return out


def gender_of(people: Names, female: Names, male: Names) -> dict[str, str]:
    """person -> "female"/"male" where exactly one list names them and covers all their images."""
    out = {}
    for person, images in people.items():
        f, m = female.get(person, set()), male.get(person, set())
        if f and not m and images <= f:
            out[person] = "female"
        elif m and not f and images <= m:
            out[person] = "male"
    return out


def prepare(
    *,
    label: str = "",
    root: Path | None = None,
    base_url: str | None = None,
    md5: str = ARCHIVE_MD5,
    gender_url: str | None = None,
    show: bool = True,
    **_: object,
) -> ImageList:
    """Fetch, check and extract LFW once, then list its images by identity or gender."""
    label = label or "identity"
    if label not in LABELS:
        raise DatasetError(f"lfw --label {label!r}: choose from {', '.join(LABELS)}")
    root = Path(root) if root else data_dir() / "lfw"
    site = (base_url or os.environ.get("ZOO_LFW_URL") or SITE).rstrip("/")
    images = root / "lfw-deepfunneled"
    if not (images / ".complete").exists():
        archive = fetch(f"{site}/{ARCHIVE}", root / ARCHIVE, md5=md5)
        log(f"lfw: extracting {archive}", enabled=show)
        extracted = safe_extract(archive, root / "extract")
        inner = extracted / "lfw-deepfunneled"
        src = inner if inner.is_dir() else extracted
        replace_folder(src, images)
        shutil.rmtree(extracted, ignore_errors=True)
        write_text_atomic(images / ".complete", "ok\n")
    listing = scan_folder(images)
    if label == "identity":
        return listing
    gsite = (gender_url or os.environ.get("ZOO_LFW_GENDER_URL") or GENDER_SITE).rstrip("/")
    lists = {
        name: parse_names(fetch(f"{gsite}/{name}", root / name, sha256=digest).read_text(errors="replace"))
        for name, digest in GENDER_SHA256.items()
    }
    people: dict[str, set[str]] = defaultdict(set)
    for rel, c in listing.items:
        m = _IMAGE.match(PurePosixPath(rel).name)
        if m:
            people[listing.classes[c]].add(m["n"])
    genders = gender_of(people, lists["female_names.txt"], lists["male_names.txt"])
    classes = ["female", "male"]
    person = listing.classes
    items = [(rel, classes.index(genders[person[c]])) for rel, c in listing.items if person[c] in genders]
    notes = [f"lfw: {len(genders)} of {len(people)} people have one gender in the lists"]
    if not items:
        raise DatasetError(f"lfw: no image of {images} is named in the gender lists")
    return ImageList(images, classes, items, notes)
