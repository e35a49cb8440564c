"""Where the studio may read and write: its folder under $ZOO_HOME, the model cache, and the folders
the user named with `zoo studio --folder`. Every path that comes from a request goes through here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import UserError
from zoo.registry import zoo_home

AREAS = ("uploads", "outputs", "atlases", "runs", "imports", "tmp")


def studio_dir() -> Path:
    return zoo_home() / "studio"


def area(name: str) -> Path:
    assert name in AREAS, name
    d = studio_dir() / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def safe_name(text: str, default: str = "file") -> str:
    """A file name without folders or odd characters (uploaded names are never trusted)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text.replace("\\", "/")).name).strip(".-")
    return name[:80] or default


def inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def studio_file(ref: str, areas: tuple[str, ...] = AREAS) -> Path:
    """A studio file named `area/relative/path` (as the API hands them out), checked to stay inside."""
    head, _, rest = ref.strip("/").partition("/")
    if head not in areas or not rest:
        raise UserError(f"{ref}: not a studio file (expected one of {', '.join(a + '/...' for a in areas)})")
    root = studio_dir() / head
    path = root / rest
    if not inside(path, root):
        raise UserError(f"{ref}: outside the studio folder")
    if not path.is_file():
        raise UserError(f"{ref}: no such file")
    return path.resolve()


def ref_of(path: Path) -> str:
    """The API name of a file inside the studio folder."""
    return path.resolve().relative_to(studio_dir().resolve()).as_posix()


@dataclass
class Folders:
    """The folders the user named on the command line (datasets, pictures); read-only for the studio."""

    roots: list[Path] = field(default_factory=list)

    def check(self, text: str) -> Path:
        path = Path(text).expanduser()
        if not path.is_absolute():
            raise UserError(f"{text}: give an absolute folder path")
        for root in [*self.roots, zoo_home()]:
            if inside(path, root):
                return path.resolve()
        named = ", ".join(str(r) for r in self.roots) or "none"
        raise UserError(f"{text}: outside $ZOO_HOME and the folders named with --folder ({named})")
