"""What the gallery shows of each output the studio made: one small reader per kind of file, each
reading the record the file carries (a PNG's recipe, a sound's comment tag, a stroke SVG's metadata,
a journey's run.json beside its animation) without loading torch into the web server.

A file whose record is missing or unreadable is left out (it may be half of a run, or not zoo's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.studio import media
from zoo.studio.paths import ref_of
from zoo.studio.routes.files import ref_or_none


def _recipe_fields(rec: dict) -> dict:
    return {"recipe": rec, "input_ref": ref_or_none(rec.get("input")), "guide_ref": ref_or_none(rec.get("guide")),
            "model": rec.get("model"), "layers": list(rec.get("layers") or [])}


def picture(path: Path) -> dict:
    from zoo.dream.recipe import read_recipe

    rec = read_recipe(path)
    return {**_recipe_fields(json.loads(rec.to_json())), "command": rec.command(path.name)}


def sound(path: Path) -> dict:
    from zoo.dream import audio_io

    data = json.loads(audio_io.read_comment(path) or "null")
    if not isinstance(data, dict) or not isinstance(data.get("recipe"), dict):
        raise UserError(f"{path}: carries no sound record")
    after = media.sound_views(path)[1]
    return {**_recipe_fields(data["recipe"]), "record": data, "picture_ref": ref_of(after) if after.is_file() else None,
            "command": f"zoo dream --recipe {path.name} -o again{path.suffix}"}


def strokes(path: Path) -> dict:
    from zoo.dream import svg

    data = svg.recipe_json(path)
    if not isinstance(data.get("recipe"), dict):
        raise UserError(f"{path}: carries no stroke recipe")
    return {**_recipe_fields(data["recipe"]), "record": data, "command": f"zoo dream --recipe {path.name} -o again.svg"}


def journey(path: Path) -> dict:
    from zoo.dream import video

    data = json.loads(video.read_video_recipe(path) or "null")
    if not isinstance(data, dict) or not isinstance(data.get("recipe"), dict) or "journey" not in data:
        raise UserError(f"{path}: carries no journey record")
    return {**_recipe_fields(data["recipe"]), "record": data,
            "command": f"zoo dream --recipe {path.name} -o again{path.suffix}"}


READERS: dict[str, Callable[[Path], dict]] = {"dream": picture, "sound": sound, "strokes": strokes, "journey": journey}
# each job's output suffix (zoo.studio.media.OUTPUTS) -> (job kind, reader)
BY_SUFFIX = {media.OUTPUTS[kind]: (kind, reader) for kind, reader in READERS.items()}


def items(folder: Path) -> list[dict[str, Any]]:
    """Every output in `folder` with a readable record, the last finished first (a name's time is when
    its job was queued, to the second)."""
    found = []
    for p in folder.iterdir():
        kind, reader = BY_SUFFIX.get(p.suffix.lower(), (None, None))
        if reader is not None and p.is_file() and not p.is_symlink():
            found.append((p.stat().st_mtime_ns, p.name, p, kind, reader))
    out = []
    for _, _, p, kind, reader in sorted(found, key=lambda f: f[:2], reverse=True):
        try:
            item = reader(p)
        except (UserError, OSError, ValueError, RecursionError):
            continue
        out.append({"ref": ref_of(p), "name": p.name, "kind": kind, "bytes": p.stat().st_size, **item})
    return out
