"""The studio's other media, on the web server's side (no torch, nothing decoded here): what a sound or
SVG upload must pass (headers only: the worker decodes and renders), how studio files are served so
that none can run script in the studio's origin, and which job a Dream request is (a still, a sound, a
stroke dream or a journey). The jobs themselves are zoo/studio/media_jobs.py's."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import FileResponse

from zoo.dream import svg
from zoo.errors import UserError

# Shown in the page as they are (an <img>, <audio> or <video> never runs script); anything else (an SVG,
# which may carry <script> and on* handlers, text, a prototxt) is a download under a sandboxing policy.
INLINE = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
          ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff",
          ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
          ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac",
          ".mp4": "video/mp4", ".webm": "video/webm"}
FILE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
SVG_SUFFIXES = svg.SUFFIXES  # what dream/svg.py reads


def audio_suffixes() -> tuple[str, ...]:
    from zoo.dream.audio_io import AUDIO_SUFFIXES

    return tuple(AUDIO_SUFFIXES)


def check_suffix(kind: str, name: str) -> None:
    """A sound or SVG upload must be named as one: the dream picks its reader by the suffix."""
    wanted = {"sound": audio_suffixes, "svg": lambda: SVG_SUFFIXES}.get(kind)
    if wanted is not None and Path(name).suffix.lower() not in wanted():
        raise UserError(f"{name}: a {kind} upload must be named {', '.join(wanted())}")


def _sound(path: Path) -> dict:
    """The sound's declared rate, channels and length, its memory checked (audio_io.probe reads the
    container's header only); the samples are decoded by the worker."""
    from zoo.dream import audio_io

    track = audio_io.probe(path)
    return {"rate": track.rate, "channels": track.channels, "samples": track.samples,
            "seconds": round(track.seconds, 3)}


def _svg(path: Path) -> dict:
    """dream/svg.py's checks (size, nothing outside the file, no entities, parses, a sane declared size);
    it is rendered by the worker."""
    from zoo.dream import svg

    h, w = svg.declared_size(svg.read_text(path), str(path))
    return {"width": max(1, round(w)), "height": max(1, round(h))}


VALIDATORS: dict[str, Callable[[Path], dict]] = {"sound": _sound, "svg": _svg}


def safe_file(path: Path) -> FileResponse:
    """A studio file for the browser: pictures, sounds and videos inline under their own type; the rest
    (an SVG above all) as an attachment. Every one carries a policy that sandboxes it and forbids
    script, so even a file opened on its own cannot act in the studio's origin."""
    suffix = path.suffix.lower()
    headers = {"Content-Security-Policy": FILE_CSP, "X-Content-Type-Options": "nosniff"}
    if suffix in INLINE:
        return FileResponse(path, media_type=INLINE[suffix], headers=headers)
    kind = "image/svg+xml" if suffix in SVG_SUFFIXES else mimetypes.guess_type(path.name)[0] or ""
    safe = kind if kind in ("image/svg+xml", "text/plain", "application/json") else "application/octet-stream"
    return FileResponse(path, media_type=safe, filename=path.name, headers=headers,
                        content_disposition_type="attachment")


# --- which job a Dream request is -----------------------------------------------------------------

OUTPUTS = {"dream": ".png", "sound": ".wav", "strokes": ".svg", "journey": ".webp"}


def sound_views(target: Path) -> tuple[Path, Path]:
    """Where a sound dream's spectrograms before and after are kept for the page (and the gallery)."""
    views = target.parent / "spectrograms"
    return views / f"{target.stem}-in.png", views / f"{target.stem}-out.png"


def is_sound(path: Path | None) -> bool:
    return path is not None and path.suffix.lower() in audio_suffixes()


def job_kind(req, inp: Path | None) -> str:
    """dream, sound, strokes or journey: what `zoo dream` would run for these options."""
    if is_sound(inp):
        if req.strokes is not None or req.layer_path:
            raise UserError("a sound dreams as a sound: --strokes and --layer-path are for pictures")
        return "sound"
    if req.layer_path:
        if req.strokes is not None or req.underlay:
            raise UserError("--layer-path makes a zoom film; --strokes and --underlay make an SVG: choose one")
        if (req.frames or 1) < 2:
            raise UserError("--layer-path needs --frames 2 or more (it moves from blob to blob over the frames)")
        return "journey"
    if req.hold is not None:
        raise UserError("--hold: rests a journey on its blobs; give the journey with --layer-path")
    if (req.frames or 1) > 1:
        raise UserError("--frames: the studio's zoom films are journeys; give a layer path too")
    if req.strokes is not None or req.underlay:
        return "strokes"
    return "dream"


def job_spec(kind: str, spec: dict) -> dict:
    """The spec a job gets: a sound is dreamt at its own size (its picture is its spectrogram)."""
    return {**spec, "size": None} if kind == "sound" else spec
