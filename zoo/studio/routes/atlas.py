"""Atlases: one per brain, rendered as a job into atlases/MODEL with the studio's index atlas.json."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException

from zoo.errors import UserError
from zoo.studio.models import AtlasRequest
from zoo.studio.paths import area, safe_name, studio_dir
from zoo.studio.state import StudioDep

router = APIRouter(tags=["atlas"])


@router.post("/api/atlas")
def atlas(req: AtlasRequest, studio: StudioDep) -> dict:
    """Queue `zoo atlas` for a brain into atlases/MODEL (progress per blob)."""
    from zoo.dream import starts
    from zoo.registry import get_card

    card = get_card(req.model)
    kind, _ = starts.parse_init(req.start)
    if kind == "image":
        raise UserError("--start: the studio renders atlases from noise, gradient or color")
    spec = {**req.model_dump(), "output": str(area("atlases") / safe_name(card.name))}
    return studio.store.submit("atlas", spec, f"atlas {card.name}").public()


@router.get("/api/atlases")
def atlases() -> list[dict]:
    """The stored atlases (one per brain)."""
    out = []
    for d in sorted(area("atlases").iterdir()):
        index = atlas_index(d.name)
        if index:
            out.append({"model": index["model"], "sheet": f"atlases/{d.name}/atlas.png",
                        "page": f"atlases/{d.name}/index.html", "entries": len(index["entries"]),
                        "command": index["command"]})
    return out


@router.get("/api/atlases/{model}")
def atlas_of(model: str) -> dict:
    index = atlas_index(safe_name(model))
    if index is None:
        raise HTTPException(404, f"no atlas of {model} yet")
    d = f"atlases/{safe_name(model)}"
    return {**index, "sheet": f"{d}/atlas.png", "entries": [{**e, "ref": f"{d}/{e['file']}"} for e in index["entries"]]}


def atlas_index(model: str) -> dict | None:
    p = studio_dir() / "atlases" / safe_name(model) / "atlas.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
