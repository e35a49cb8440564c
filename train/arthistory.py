"""`arthistory`: Web Gallery of Art paintings, downloaded on the user's machine from the gallery's
own catalog (its terms forbid redistribution, so nothing is bundled).

The catalog (data_txt.zip -> catalog.csv, `;`-separated: AUTHOR;BORN-DIED;TITLE;DATE;TECHNIQUE;
LOCATION;URL;FORM;TYPE;SCHOOL;TIMEFRAME) gives each work's page URL (`/html/<path>.html`); the image
is the same path under `/art/` with `.jpg`. Labels come from one column; works are kept when their
TIMEFRAME bin lies inside the requested centuries (default: up to 1900, i.e. up to impressionism).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zoo.errors import UserError
from zoo.names import InvalidName, join_inside, relative_parts

from .datasets import DatasetError, ImageList, data_dir
from .download import DownloadError, fetch
from .progress import bar, log

SITE = "https://www.wga.hu"
CATALOG_PATH = "/database/download/data_txt.zip"
LABELS = {"school": "SCHOOL", "timeframe": "TIMEFRAME", "type": "TYPE", "author": "AUTHOR"}


def site_url(base: str | None = None) -> str:
    """The gallery's root: the argument, else $ZOO_WGA_URL, else wga.hu."""
    return (base or os.environ.get("ZOO_WGA_URL") or SITE).rstrip("/")


def parse_centuries(spec: str) -> tuple[int, int]:
    """Spec "15-19" -> (1401, 1900); "19" -> (1801, 1900); "-19" -> (1, 1900)."""
    lo, sep, hi = spec.partition("-")
    try:
        c0 = int(lo) if lo else 1
        c1 = int(hi) if sep and hi else (c0 if not sep else 21)
    except ValueError:
        raise DatasetError(f"--centuries {spec!r}: expected FROM-TO, e.g. 15-19") from None
    if not 1 <= c0 <= c1:
        raise DatasetError(f"--centuries {spec!r}: FROM must be between 1 and TO")
    return (c0 - 1) * 100 + 1, c1 * 100


def in_years(timeframe: str, years: tuple[int, int]) -> bool:
    """True when a "1501-1550" bin lies inside the year range."""
    try:
        start, end = (int(x) for x in timeframe.strip().split("-"))
    except ValueError:
        return False
    return years[0] <= start and end <= years[1]


def read_catalog(zip_path: Path) -> list[dict[str, str]]:
    """The catalog's rows as dicts keyed by its upper-case header."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            name = next((n for n in z.namelist() if n.lower().endswith(".csv")), None)
            if name is None:
                raise DatasetError(f"{zip_path}: no .csv catalog inside")
            raw = z.read(name)
    except zipfile.BadZipFile:
        raise DatasetError(f"{zip_path}: not a zip file (delete it to download again)") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    if not rows or "URL" not in (rows[0].keys() if rows else ()):
        raise DatasetError(f"{zip_path}: catalog has no URL column")
    return [{(k or "").strip().upper(): (v or "").strip() for k, v in r.items()} for r in rows]


def image_path(page_url: str) -> str | None:
    """`.../html/a/aachen/adonis.html` -> `a/aachen/adonis.jpg`; None when the URL is no page, or
    names a path that is not plain names (`..`, `/abs`, `%2e`, `\\`, NUL, overlong: the catalog is
    not checksummed, and every one of the gallery's 32,000 real paths is plain)."""
    _, sep, rest = page_url.partition("/html/")
    if not sep or not rest.endswith(".html"):
        return None
    rel = rest[: -len(".html")] + ".jpg"
    try:
        relative_parts(rel, "catalog path")
    except InvalidName:
        return None
    return rel


def unsafe_rows(rows: list[dict[str, str]]) -> int:
    """How many rows name a gallery page whose path image_path refuses (reported, then skipped)."""
    return sum(1 for r in rows if "/html/" in r.get("URL", "") and r.get("URL", "").endswith(".html")
               and image_path(r["URL"]) is None)


def select(rows: list[dict[str, str]], label: str, years: tuple[int, int], per_class: int) -> dict[str, list[str]]:
    """class -> image paths: paintings inside the years, at most `per_class` each (a stable hash
    order, so the subset spreads over artists and does not move when the catalog grows)."""
    column = LABELS[label]
    chosen: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.get("FORM", "").lower() != "painting" or not in_years(r.get("TIMEFRAME", ""), years):
            continue
        rel, cls = image_path(r.get("URL", "")), r.get(column, "")
        if rel and cls:
            chosen[cls].append(rel)
    key = lambda p: hashlib.sha1(p.encode()).hexdigest()  # noqa: E731
    return {c: sorted(set(v), key=key)[:per_class] for c, v in sorted(chosen.items())}


def prepare(
    *,
    label: str = "",
    root: Path | None = None,
    base_url: str | None = None,
    centuries: str = "1-19",
    per_class: int = 500,
    connections: int = 4,
    show: bool = True,
    **_: object,
) -> ImageList:
    """Download the catalog and the selected images (resuming, skipping failures) and list them."""
    label = label or "school"
    if label not in LABELS:
        raise DatasetError(f"arthistory --label {label!r}: choose from {', '.join(LABELS)}")
    root = Path(root) if root else data_dir() / "arthistory"
    site = site_url(base_url)
    rows = read_catalog(fetch(site + CATALOG_PATH, root / "data_txt.zip"))  # kept once downloaded
    wanted = select(rows, label, parse_centuries(centuries), per_class)
    if not wanted:
        raise DatasetError(f"arthistory: no paintings labelled by {label} in centuries {centuries}")
    art = root / "art"
    jobs = [rel for rels in wanted.values() for rel in rels]
    failed: list[str] = []

    def get(rel: str) -> None:
        try:
            dest = join_inside(art, rel, "catalog path")  # a symlink planted under art/ leads nowhere
            if not dest.exists():
                fetch(f"{site}/art/{rel}", dest, retries=3)
        except (DownloadError, UserError):
            failed.append(rel)

    pool = ThreadPoolExecutor(connections)
    with bar(len(jobs), "arthistory images", enabled=show, task="download", unit="image") as advance, pool:
        for _ in pool.map(get, jobs):
            advance()
    lost = set(failed)
    classes = list(wanted)
    items = [(rel, i) for i, c in enumerate(classes) for rel in wanted[c] if rel not in lost]
    notes = [f"arthistory: {len(items)} paintings, {len(classes)} classes by {label}, centuries {centuries}"]
    unsafe = unsafe_rows(rows)
    if unsafe:
        notes.append(f"arthistory: {unsafe} catalog rows name unsafe paths (.., absolute, encoded); skipped")
    if failed:
        notes.append(f"arthistory: {len(failed)} images could not be downloaded (rerun to retry)")
    if not items:
        raise DatasetError(f"arthistory: none of the {len(jobs)} images could be downloaded from {site}")
    for n in notes:
        log(n, enabled=show)
    return ImageList(art, classes, items, notes)
