"""Channel pictures of a blob (a local Microscope in the graph view): the cached ones under
$ZOO_HOME/atlas at once, the rest made by a `channels` job in the worker (zoo.dream.channels, as
`zoo atlas --channels BLOB` makes them), and the PNGs served from that folder only."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from zoo.errors import UserError
from zoo.studio.models import ChannelsRequest
from zoo.studio.state import StudioDep

router = APIRouter(tags=["channels"])
DEFAULTS = {"size": 128, "steps": 64, "seed": 0}  # zoo atlas --channels' own


def atlas_root() -> Path:
    from zoo.registry import zoo_home

    return zoo_home() / "atlas"


@router.get("/api/brains/{name}/channels/{blob:path}")
def channels_of(name: str, blob: str, size: int = Query(DEFAULTS["size"], ge=16, le=4096),
                steps: int = Query(DEFAULTS["steps"], ge=1, le=100_000),
                seed: int = Query(DEFAULTS["seed"], ge=0, le=2**32 - 1)) -> dict:
    """A blob's channel count and the pictures of its channels already made with these settings (by
    the studio or by `zoo atlas --channels`), with the other settings cached for it."""
    from zoo.dream import channel_files as cf

    card, count = _blob(name, blob)
    out = {"model": card.name, "blob": blob, "channels": count, "size": size, "steps": steps, "seed": seed,
           "layer": f"{blob}:{{channel}}", "pictures": [], "variants": [], "weights": False, "complete": False}
    sha = _weights_sha256(card)
    if sha is None:
        return out
    key = cf.settings_key(size, steps, cf.SETTINGS.param, cf.SETTINGS.transforms, seed)
    where = cf.folder(atlas_root(), card.name, sha, blob, key)
    made = cf.made(where, count)
    out.update(weights=True, complete=len(made) == count,
               pictures=[{"channel": c, "ref": _ref(cf.picture(where, c))} for c in made])
    out["variants"] = [{"size": v.get("size"), "steps": (v.get("legible") or {}).get("steps"), "seed": v.get("seed"),
                        "pictures": len(cf.made(v["folder"], count))}
                       for v in cf.variants(atlas_root(), card.name, sha, blob) if v["folder"] != where]
    return out


@router.post("/api/channels")
def make_channels(req: ChannelsRequest, studio: StudioDep) -> dict:
    """Queue the pictures of a blob's channels (those not cached yet); each comes as a `channel` event."""
    card, count = _blob(req.model, req.blob)
    if _weights_sha256(card) is None:
        raise UserError(f"model {card.name} has no weights here; fetch it first (zoo fetch {card.name})")
    bad = [c for c in req.channels or () if c >= count]
    if bad:
        raise UserError(f"channel {bad[0]}: {req.blob} has {count} channels (0 to {count - 1})")
    spec = {**req.model_dump(), "model": card.name}
    return studio.store.submit("channels", spec, f"channels {card.name} {req.blob}").public()


@router.get("/api/channel-pictures/{ref:path}")
def channel_picture(ref: str) -> FileResponse:
    """One channel picture, read only from inside $ZOO_HOME/atlas (every part of the name a plain file
    name, no link leading out)."""
    from zoo.names import join_inside

    path = join_inside(atlas_root(), ref, "channel picture")
    if path.suffix != ".png" or not path.is_file():
        raise HTTPException(404, f"{ref}: no such channel picture")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})


def _blob(name: str, blob: str):
    """The card and the channel count of a dreamable blob, from the prototxt (no weights, no torch)."""
    from zoo.registry import get_card
    from zoo.studio.routes.brains import graph_or_none

    card = get_card(name)
    g = graph_or_none(card)
    if g is None:
        raise UserError(f"model {name} is not cached; fetch it first (zoo fetch {name})")
    first = next(iter(g.inputs))
    shape = g.shapes({first: (1, 3, *card.input_size)}).get(blob)
    if blob in g.inputs or shape is None or len(shape) != 4 or shape[2] * shape[3] <= 1:
        raise UserError(f"{blob}: not a dreamable blob of {card.name} (see zoo layers {card.name})")
    return card, int(shape[1])


_SHA: dict[tuple, str] = {}


def _weights_sha256(card) -> str | None:
    """The sha256 of the brain's weights (what its channel pictures are filed under), kept while the
    file is unchanged; None when the weights are not here."""
    from zoo import cache
    from zoo.io import file_digest

    try:
        path = cache.file_path(card, "weights")
        st = os.stat(path)
    except (KeyError, OSError, UserError):
        return None
    stamp = (str(path), st.st_mtime_ns, st.st_size)
    if stamp not in _SHA:
        _SHA[stamp] = file_digest(path, "sha256")
    return _SHA[stamp]


def _ref(path: Path) -> str:
    return path.relative_to(atlas_root()).as_posix()
