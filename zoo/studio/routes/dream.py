"""Dreams: presets, queueing a dream (what `zoo dream` runs) and the gallery of what the studio made."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter

from zoo.errors import UserError
from zoo.studio import media
from zoo.studio.models import DreamRequest
from zoo.studio.paths import area, safe_name, studio_file
from zoo.studio.state import StudioDep

router = APIRouter()


@router.get("/api/presets", tags=["dream"])
def presets() -> dict:
    """The named parameter sets of `zoo dream --preset`, and the kinds of start."""
    from zoo.dream.presets import PRESETS
    from zoo.dream.starts import KINDS

    return {"presets": {k: {"params": p.params.to_dict(), "model": p.model, "layer": p.layer,
                            "description": p.description} for k, p in PRESETS.items()}, "starts": list(KINDS)}


@router.post("/api/dream", tags=["dream"])
def dream(req: DreamRequest, studio: StudioDep) -> dict:
    """Queue a dream (what `zoo dream` runs): a still (its PNG carries the recipe), a sound (a WAV with its
    record), a stroke dream (an SVG) or a journey through the layers (an animated WebP), by its options."""
    from zoo.dream import starts
    from zoo.dream.presets import get_preset
    from zoo.registry import get_card

    kind, _ = starts.parse_init(req.init)
    if req.preset:
        get_preset(req.preset)
    if req.model:
        get_card(req.model)
    inp = studio.picture(req.input) if req.input else None
    if kind == "image" and inp is None:
        raise UserError("no input image given (or use --init noise|gradient|color)")
    guide = studio.picture(req.guide) if req.guide else None
    _check_size(req.size)
    if len(req.weights) > len(req.layers):
        raise UserError("more weights than layers")
    job = media.job_kind(req, inp)
    out = area("outputs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}{media.OUTPUTS[job]}"
    spec = {**req.model_dump(), "input": str(inp) if inp else None, "guide": str(guide) if guide else None,
            "output": str(out)}
    title = f"{'dream' if job == 'dream' else job} {req.model or 'default'} {' '.join(req.layers)}".strip()
    return studio.store.submit(job, media.job_spec(job, spec), title).public()


def _check_size(size: str | None) -> None:
    from zoo.dream import geometry

    if size:
        try:
            geometry.scaled_size(100, 100, size)
        except ValueError as e:
            raise UserError(f"--size: {e}") from None


@router.get("/api/gallery", tags=["gallery"])
def gallery() -> list[dict]:
    """Everything the studio made (pictures, sounds, stroke SVGs, journeys), newest first, each with
    its kind, its recipe and the command that makes it again."""
    from zoo.studio import gallery as listing

    return listing.items(area("outputs"))


@router.delete("/api/gallery/{name}", tags=["gallery"])
def delete_output(name: str) -> dict:
    path = studio_file(f"outputs/{safe_name(name)}", ("outputs",))
    path.unlink()
    return {"removed": name}
