"""Weights for PyTorch users as `.safetensors`, written and read without torch and without pickle.

The file holds every Caffe blob as a tensor named like the state dict of `CaffeModule`
(`layers.<layer>.<blob>`), and the graph in its metadata as JSON: `zoo_graph` lists the layers
(name, type, bottoms, tops, tensor names) for any reader, and carries the deploy prototxt text so
`load_safetensors` rebuilds the exact Graph. safetensors is a flat header plus raw little-endian
buffers, so loading a foreign file runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from zoo.convert.api import require_weights
from zoo.convert.build import build_graph
from zoo.convert.emit_caffe import deploy_net
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph
from zoo.convert.prototxt import parse_prototxt, to_text

from zoo.io import atomic_path

FORMAT = "zoo-caffe-safetensors/1"


def tensor_key(layer_name: str, blob_name: str) -> str:
    """The key CaffeModule's state dict uses (torch forbids '.' in module names; Caffe allows it)."""
    return f"layers.{layer_name.replace('.', chr(0x2024))}.{blob_name}"


def graph_json(graph: Graph) -> str:
    return json.dumps({
        "format": FORMAT,
        "name": graph.name,
        "inputs": {k: list(v) for k, v in graph.inputs.items()},
        "outputs": list(graph.outputs),
        "layers": [{"name": lyr.name, "type": lyr.type, "bottoms": list(lyr.bottoms), "tops": list(lyr.tops),
                    "tensors": [tensor_key(lyr.name, b) for b in lyr.blob_names]} for lyr in graph.layers],
        "prototxt": to_text(deploy_net(graph)),
    }, separators=(",", ":"))


def save_safetensors(graph: Graph, path: str | Path) -> Path:
    """Write atomically; the arrays are passed to safetensors as they are (float32, C order)."""
    from safetensors.numpy import save_file

    require_weights(graph)
    path = Path(path)
    tensors = {}
    for layer in graph.layers:
        for name, blob in zip(layer.blob_names, layer.blobs):
            tensors[tensor_key(layer.name, name)] = np.ascontiguousarray(blob, dtype=np.float32)
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "zoo_graph": graph_json(graph)})
        except Exception as e:  # safetensors' Rust writer raises its own type for I/O errors
            if type(e).__name__ != "SafetensorError" or "I/O error" not in str(e):
                raise
            raise OSError(None, str(e).rpartition("I/O error: ")[2].split(" (os error")[0]) from None
    return path


def load_safetensors(path: str | Path) -> Graph:
    """The Graph with its weights as numpy arrays (no torch, no pickle)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ConvertError(f"{path}: not a zoo .safetensors file (format {meta.get('format')!r})")
            info = json.loads(meta["zoo_graph"])
            graph = build_graph(parse_prototxt(info["prototxt"], str(path)), str(path))
            graph.outputs = list(info.get("outputs", graph.outputs))
            keys = set(f.keys())
            for layer in graph.layers:
                names = [tensor_key(layer.name, b) for b in layer.blob_names]
                missing = [k for k in names if k not in keys]
                if missing:
                    raise ConvertError(f"{path}: no tensor {missing[0]!r} for layer {layer.name!r}")
                layer.blobs = [f.get_tensor(k) for k in names]
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise ConvertError(f"{path}: not a zoo .safetensors file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    return graph


def load_module(path: str | Path):
    """The net as a torch `CaffeModule` (imports torch; the file itself is read without it)."""
    from zoo.convert.torch_module import CaffeModule

    return CaffeModule(load_safetensors(path))
