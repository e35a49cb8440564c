"""Brains: the zoo's models with their cards, blobs, labels and graph; fetch, remove and import."""

from __future__ import annotations

import contextlib
import shutil

from fastapi import APIRouter, Query

from zoo.errors import UserError
from zoo.studio.graph_layout import layout
from zoo.studio.models import ImportRequest
from zoo.studio.paths import area, safe_name, studio_dir, studio_file
from zoo.studio.routes.atlas import atlas_index
from zoo.studio.routes.files import read_labels
from zoo.studio.state import StudioDep

router = APIRouter(tags=["brains"])


@router.get("/api/brains")
def brains() -> list[dict]:
    """Every model of the zoo with its card: license, origin, preprocessing, size, cached or not."""
    from zoo.registry import load_registry

    reg = load_registry()
    return [card_json(reg.get(n)) for n in reg.names()]


@router.get("/api/brains/{name}")
def brain(name: str) -> dict:
    """One model: its card, dreamable blobs (with shape, channels and atlas thumbnail) and class outputs."""
    from zoo.registry import get_card

    card = get_card(name)
    out = card_json(card)
    thumbs = {e["blob"]: f"atlases/{card.name}/{e['file']}" for e in (atlas_index(card.name) or {}).get("entries", [])}
    out["blobs"] = [{"name": b.name, "shape": list(b.shape), "channels": b.shape[0] if b.shape else 0,
                     "produces": b.produces, "atlas": thumbs.get(b.name)} for b in card.dream_blobs]
    if not out["blobs"]:
        g = graph_or_none(card)
        if g is not None:
            shapes = g.shapes()
            out["blobs"] = [{"name": b, "shape": list(shapes[b][1:]), "channels": shapes[b][1], "produces": "",
                             "atlas": thumbs.get(b)} for b in g.blob_names
                            if b not in g.inputs and len(shapes[b]) == 4 and shapes[b][2] * shapes[b][3] > 1]
    return out


@router.get("/api/brains/{name}/labels")
def labels(name: str, q: str = Query("", max_length=100), limit: int = Query(50, ge=1, le=5000)) -> dict:
    """Class labels of a model (for objectives such as prob:LABEL), filtered by a search text."""
    from zoo import api, cache
    from zoo.registry import get_card

    card = get_card(name)
    if not cache.is_cached(card) and not card.builtin:
        return {"model": card.name, "output": card.output, "labels": [], "total": 0}
    try:
        names = api.labels_for(card, {r: cache.file_path(card, r) for r in card.files})
    except (UserError, OSError):
        names = []
    hits = [(i, n) for i, n in enumerate(names) if q.lower() in n.lower()]
    return {"model": card.name, "output": card.output, "total": len(names),
            "labels": [{"index": i, "label": n} for i, n in hits[:limit]]}


@router.get("/api/brains/{name}/graph")
def graph(name: str, width: int = Query(0, ge=0, le=20000), height: int = Query(0, ge=0, le=20000)) -> dict:
    """The network as layers (boxes) and blobs (edges) with their shapes at the given image size."""
    from zoo.registry import get_card

    card = get_card(name)
    g = graph_or_none(card)
    if g is None:
        raise UserError(f"model {name} is not cached; fetch it first (zoo fetch {name})")
    return graph_json(g, card, (height or card.input_size[0], width or card.input_size[1]))


@router.post("/api/brains/{name}/fetch")
def fetch(name: str, studio: StudioDep) -> dict:
    """`zoo fetch NAME` as a job (checksummed download, then the ONNX)."""
    from zoo.registry import get_card

    card = get_card(name)
    return studio.store.submit("fetch", {"model": card.name}, f"fetch {card.name}").public()


@router.delete("/api/brains/{name}")
def remove(name: str) -> dict:
    """`zoo remove NAME`: delete the cached files (and a user-registered model's entry)."""
    from zoo.register import remove_model

    unregistered = remove_model(name)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(area("atlases") / safe_name(name))
    return {"removed": name, "unregistered": unregistered}


@router.post("/api/brains/import")
def import_brain(req: ImportRequest) -> dict:
    """`zoo convert --name`: read the uploaded prototxt and caffemodel with the converter and register
    them as a zoo model (preprocessing from the fields given, else Caffe's ImageNet convention)."""
    from zoo import convert
    from zoo.register import check_new_name, register_converted
    from zoo.registry import get_card

    check_new_name(req.name)
    proto = studio_file(req.prototxt, ("uploads",))
    weights = studio_file(req.weights, ("uploads",))
    mean = studio_file(req.mean, ("uploads",)) if req.mean else None
    labels = read_labels(studio_file(req.labels, ("uploads",))) if req.labels else None
    graph = convert.load_net(proto, weights, mean=mean)
    preprocess = req.model_dump(include={"scale", "channel_order", "input_size", "resize", "transpose"})
    preprocess["mean"] = req.mean_pixel
    register_converted(req.name, prototxt=proto, weights=weights, mean=mean, graph=graph, preprocess=preprocess,
                       labels=labels)
    return card_json(get_card(req.name))


# --- helpers (server side, no torch) --------------------------------------------------------------


def card_json(card) -> dict:
    from zoo import cache
    from zoo.registry import user_toml

    cached = cache.is_cached(card)
    h, w = card.input_size
    return {
        "name": card.name, "title": card.title, "task": card.task, "license": card.license, "origin": card.origin,
        "input": [h, w], "channel_order": card.channel_order, "scale": card.scale,
        "mean": list(card.mean) if card.mean is not None else "mean file", "num_classes": card.num_classes,
        "default_blob": card.default_blob, "builtin": bool(card.builtin), "cached": cached,
        "user": card.defined_in == str(user_toml()),
        "bytes": cache.cached_size(card) if cached else None,
        "download_bytes": sum(int(getattr(f, "size", 0) or 0) for f in card.files.values()) or None,
        "notes": card.notes, "atlas": (studio_dir() / "atlases" / safe_name(card.name) / "atlas.json").is_file(),
    }


def graph_or_none(card):
    from zoo import cache, convert

    proto = cache.file_path(card, "prototxt")
    if not proto.is_file():
        return None
    return convert.load_net(proto)


def graph_json(g, card, size: tuple[int, int]) -> dict:
    first = next(iter(g.inputs))
    try:
        shapes = g.shapes({first: (1, 3, *size)})
    except UserError as e:
        raise UserError(f"{card.name}: {size[1]}x{size[0]} does not fit ({e})") from None
    writer: dict[str, str] = {}
    layers, edges = [], []
    for name in g.inputs:
        layers.append({"name": name, "type": "Input", "bottoms": [], "tops": [name]})
        writer[name] = name
    for layer in g.layers:
        layers.append({"name": layer.name, "type": layer.type, "bottoms": list(layer.bottoms),
                       "tops": list(layer.tops)})
        for b in layer.bottoms:
            if b in writer:
                edges.append({"from": writer[b], "to": layer.name, "blob": b,
                              "shape": list(shapes.get(b, ())), "dreamable": len(shapes.get(b, ())) == 4})
        for t in layer.tops:
            writer[t] = layer.name
    shapes_json = {b: list(v) for b, v in shapes.items()}
    dreamable = {b for b, s in shapes_json.items() if len(s) == 4 and s[2] * s[3] > 1 and b not in g.inputs}
    return {"model": card.name, "size": [size[1], size[0]], "layers": layers, "edges": edges,
            "outputs": list(g.outputs), "shapes": shapes_json, "layout": layout(layers, edges, shapes_json, dreamable)}
