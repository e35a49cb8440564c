"""What the gallery shows of each output the studio made: the record the file carries, read by
dream/records.py (no torch in the web server), with the studio's refs of its input and guide.

A file whose record is missing or unreadable is left out (it may be half of a run, or not zoo's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.dream import records
from zoo.errors import UserError
from zoo.studio import media
from zoo.studio.paths import ref_of
from zoo.studio.routes.files import ref_or_none

SUFFIXES = set(media.OUTPUTS.values())  # what the studio's jobs write (zoo.studio.media.OUTPUTS)


def item(path: Path) -> dict[str, Any]:
    """One output as the gallery lists it; UserError if it carries no readable record."""
    found = records.read(path)
    rec = found.recipe
    out = {"ref": ref_of(path), "name": path.name, "kind": found.kind, "bytes": path.stat().st_size,
           "recipe": rec, "record": found.data, "command": found.command, "summary": found.summary,
           "input_ref": ref_or_none(rec.get("input") if isinstance(rec.get("input"), str) else None),
           "guide_ref": ref_or_none(rec.get("guide") if isinstance(rec.get("guide"), str) else None),
           "model": rec.get("model"), "layers": records.names(rec.get("layers"))}
    if found.kind == "sound":
        after = media.sound_views(path)[1]  # the dreamt spectrogram the page showed
        out["picture_ref"] = ref_of(after) if after.is_file() else None
    return out


def items(folder: Path) -> list[dict[str, Any]]:
    """Every output in `folder` with a readable record, the last finished first (a name's time is when
    its job was queued, to the second)."""
    found = sorted(((p.stat().st_mtime_ns, p.name, p) for p in folder.iterdir()
                    if p.suffix.lower() in SUFFIXES and p.is_file() and not p.is_symlink()), reverse=True)
    out = []
    for _, _, p in found:
        try:
            out.append(item(p))
        except (UserError, OSError, ValueError, RecursionError):
            continue
    return out
