"""Sounds and vectors in the studio: which Dream form fields belong to them, and a sound's spectrogram (a
picture the worker makes, kept beside the upload). Uploads go through /api/uploads (kind sound or svg);
dreams through /api/dream, which picks the job (zoo.studio.media.job_kind)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from zoo.errors import UserError
from zoo.studio import media
from zoo.studio.models import SpectrogramRequest
from zoo.studio.paths import area, ref_of
from zoo.studio.state import StudioDep

router = APIRouter(tags=["media"])


@router.get("/api/media")
def media_fields() -> dict:
    """The Dream form's fields for sounds, stroke dreams and journeys (their limits are in the
    DreamRequest schema), and the file names the uploads of each kind take."""
    from zoo.dream import options

    return {"sound": [o.name for o in options.SOUND], "strokes": ["strokes", "underlay"],
            "journey": ["layer_path", "frames", "zoom", "fps", "hold"], "sound_suffixes": list(media.audio_suffixes()),
            "svg_suffixes": list(media.SVG_SUFFIXES)}


def spectrogram_path(source: Path, spec: dict) -> Path:
    """Where the view of a sound's spectrogram at these settings is kept (in the studio's outputs: a sound
    may be in a --folder, which is read only), named by the file and the settings."""
    import hashlib

    from zoo.dream.options import SOUND

    v = SOUND.values(spec)  # (no audio_run here: it brings torch into the web server)
    st = source.stat()
    key = f"{source}:{st.st_mtime_ns}:{st.st_size}:{v['n_fft']}:{v['hop']}:{v['freq_scale']}:{v['stereo']}"
    folder = area("outputs") / "spectrograms"
    folder.mkdir(exist_ok=True)
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.png"


@router.post("/api/spectrogram")
def spectrogram(req: SpectrogramRequest, studio: StudioDep) -> dict:
    """The spectrogram picture of an uploaded sound (what a sound dream starts from, the first channel or
    the mid): `ref` at once when made before, else a `job` whose result holds it."""
    if not req.input:
        raise UserError("no sound given")
    source = studio.picture(req.input)
    if not media.is_sound(source):
        raise UserError(f"{req.input}: not a sound")
    spec = req.model_dump()
    target = spectrogram_path(source, spec)
    if target.is_file():
        return {"ref": ref_of(target), "job": None}
    job = studio.store.submit("spectrogram", {**spec, "input": str(source), "output": str(target)},
                              f"spectrogram {source.name}")
    return {"ref": None, "job": job.public()}
