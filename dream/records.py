"""What a zoo output says about itself: the record each kind of file carries (a still's recipe in its
PNG chunk or EXIF, a sound's comment tag, a stroke SVG's metadata, a video's comment, an animation's
run.json beside it), read by one small reader per kind, none of which loads torch.

`zoo info OUTPUT` and the studio's gallery both read outputs here. The readers only read: checking a
record field by field is the job of whatever reproduces it (`zoo dream --recipe`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.dream import audio_io, svg, video
from zoo.dream.recipe import read_recipe

from zoo import formats
from zoo.errors import UserError
from zoo.io import regular_file


@dataclass(frozen=True)
class Record:
    kind: str  # dream, sound, strokes, journey or clip
    recipe: dict  # the picture recipe (model, layers, parameters...)
    data: dict  # everything the file carries (for a still: its recipe again)
    name: str  # the file's name, as the commands name it
    suffix: str  # what `--recipe` writes it again as
    made_by: str | None = None  # a still's own command (on its input); the other kinds have only --recipe

    @property
    def again(self) -> str:
        return f"zoo dream --recipe {self.name} -o again{self.suffix}"

    @property
    def command(self) -> str:
        """What makes it again: for a still, the command that made it; else `--recipe`."""
        return self.made_by or self.again

    @property
    def summary(self) -> str:
        """One line: what the file is and what made it."""
        r = self.recipe
        what = {"dream": "a dream", "sound": "a sound dream", "strokes": "a stroke dream", "journey": "a journey",
                "clip": "a dreamt clip"}[self.kind]
        walk = names(self.data.get("journey", {}).get("path")) if isinstance(self.data.get("journey"), dict) else []
        layers = " → ".join(walk) if walk else ", ".join(names(r.get("layers")))
        model = r.get("model") if isinstance(r.get("model"), str) and r.get("model") else "the default brain"
        return f"{what} by {model} at {layers or 'its default blob'}"


def names(value: object) -> list[str]:
    """A list of names as a record gives it (anything else, from a hostile file, reads as none)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _json(text: str | None, path: Path) -> dict:
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("recipe"), dict):
        raise UserError(f"{path}: carries no zoo recipe")
    return data


def still(path: Path) -> Record:
    rec = read_recipe(path)
    data = json.loads(rec.to_json())
    return Record("dream", data, data, path.name, path.suffix.lower(), rec.command(path.name))


def sound(path: Path) -> Record:
    data = _json(audio_io.read_comment(path), path)
    return Record("sound", data["recipe"], data, path.name, path.suffix.lower())


def strokes(path: Path) -> Record:
    data = svg.recipe_json(path)
    if not isinstance(data.get("recipe"), dict):
        raise UserError(f"{path}: carries no zoo recipe")
    return Record("strokes", data["recipe"], data, path.name, path.suffix.lower())


def film(path: Path, suffix: str | None = None) -> Record:
    """A video, an animation whose frames folder keeps its run.json, or one of a film's frames (made
    again as a video): a journey or a dreamt clip."""
    data = _json(video.read_video_recipe(path), path)
    return Record("journey" if "journey" in data else "clip", data["recipe"], data, path.name,
                  suffix or path.suffix.lower())


def _picture_or_film(path: Path) -> Record:
    if path.suffix.lower() == ".png" and video.is_clip_recipe(path):  # a film's frame: the film's record
        return film(path, ".mp4")
    try:
        return still(path)
    except UserError:
        if path.suffix.lower() not in video.ANIMATION_SUFFIXES:
            raise
        return film(path)


READERS: tuple[tuple[Callable[[Path], bool], Callable[[Path], Record]], ...] = (
    (svg.is_svg, strokes),
    (audio_io.is_audio_path, sound),
    (lambda p: p.suffix.lower() in video.VIDEO_SUFFIXES, film),
    (lambda p: p.suffix.lower() in formats.IMAGES, _picture_or_film),
)


def is_output(path: Path) -> bool:
    """Whether `path` is of a kind zoo writes (a picture, sound, SVG or video): what `zoo info` reads
    as an output rather than as a net."""
    return any(applies(path) for applies, _ in READERS)


def read(path: str | Path) -> Record:
    """The record `path` carries; one line if it is no zoo output."""
    path = regular_file(path)
    for applies, reader in READERS:
        if applies(path):
            return reader(path)
    raise UserError(f"{path}: not a picture, sound, SVG or video zoo writes")
