"""A `.pt` file that `torch.load(..., weights_only=True)` reads: the graph as prototxt text plus a
state dict of plain tensors. No pickled classes, so loading it never runs foreign code."""

from __future__ import annotations

from pathlib import Path

import torch
from zoo.convert.build import build_graph
from zoo.convert.emit_caffe import deploy_net
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph
from zoo.convert.prototxt import parse_prototxt, to_text
from zoo.convert.torch_module import CaffeModule, module_key

from zoo.io import atomic_path

FORMAT = "zoo-caffe-pt/1"


def save_pt(module_or_graph: CaffeModule | Graph, path: str | Path) -> Path:
    module = module_or_graph if isinstance(module_or_graph, CaffeModule) else CaffeModule(module_or_graph)
    path = Path(path)
    payload = {
        "format": FORMAT,
        "prototxt": to_text(deploy_net(module.graph)),
        "outputs": list(module.graph.outputs),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_pt(path: str | Path) -> CaffeModule:
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign or broken files
        raise ConvertError(f"{path}: not a zoo .pt file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        fmt = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ConvertError(f"{path}: not a zoo .pt file (format {fmt!r})")
    graph = build_graph(parse_prototxt(payload["prototxt"], str(path)), str(path))
    graph.outputs = list(payload.get("outputs", graph.outputs))
    state = payload["state_dict"]
    for layer in graph.layers:
        key = module_key(layer.name)
        try:
            layer.blobs = [state[f"layers.{key}.{n}"].numpy() for n in layer.blob_names]
        except KeyError as e:
            raise ConvertError(f"{path}: no tensor {e.args[0]!r} for layer {layer.name!r}") from None
    return CaffeModule(graph)
