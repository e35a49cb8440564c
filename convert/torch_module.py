"""The graph as a torch.nn.Module: any input size, any blob by its Caffe name.

Parameters live in one small module per layer (`layers["conv1/7x7_s2"].weight`), so training can
apply Caffe's per-parameter lr_mult/decay_mult and export puts them back in the same places.
A forward runs only the layers the requested blobs need: DeepDream on `inception_4c/output`
never computes the classifier.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from zoo.convert.api import require_weights
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph, Layer, needed_layers
from zoo.convert.layers import input_grad


def module_key(layer_name: str) -> str:
    """torch forbids '.' and '' in module names and names a ModuleDict already has (keys, training);
    Caffe allows them all."""
    key = layer_name.replace(".", "\u2024")
    return key if key and not hasattr(nn.ModuleDict, key) and key != "training" else f"{key}\u2024layer"


class CaffeLayer(nn.Module):
    """One Caffe layer: its blobs as parameters (or buffers) and its handler's forward."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.layer_name, self.type = layer.name, layer.type
        self.op, self.attrs = layer.op, layer.attrs
        self.blob_names = layer.blob_names
        for name, blob in zip(self.blob_names, layer.blobs):
            t = torch.from_numpy(np.array(blob, dtype=np.float32, copy=True))
            if name in self.op.buffers:
                self.register_buffer(name, t)
            else:
                self.register_parameter(name, nn.Parameter(t))
        for name in self.op.params:
            if not hasattr(self, name):
                setattr(self, name, None)

    def forward(self, *xs: torch.Tensor) -> list[torch.Tensor]:
        return self.op.torch(self.attrs, self, list(xs))

    def extra_repr(self) -> str:
        return f"{self.type}"


class CaffeModule(nn.Module):
    def __init__(self, graph: Graph):
        super().__init__()
        require_weights(graph)
        self.graph = graph
        self.layers = nn.ModuleDict({module_key(lyr.name): CaffeLayer(lyr) for lyr in graph.layers})
        self._plans: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
        self._checked: set[tuple] = set()
        self.eval()

    # -- running ---------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return list(self.graph.inputs)

    def plan(self, outputs: tuple[str, ...]) -> list[tuple[int, list[str]]]:
        """Layers to run for these outputs, each with the blobs that die after it (to free memory)."""
        if outputs not in self._plans:
            need = sorted(needed_layers(self.graph, list(outputs)))
            last_use: dict[str, int] = {}
            for i in need:
                for b in self.graph.layers[i].bottoms:
                    last_use[b] = i
            steps = []
            for i in need:
                dying = [b for b, j in last_use.items() if j == i and b not in outputs]
                steps.append((i, dying))
            self._plans[outputs] = steps
        return self._plans[outputs]

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor],
                outputs: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        env = dict(x) if isinstance(x, dict) else {self.input_names[0]: x}
        outs = tuple(outputs) if outputs is not None else tuple(self.graph.outputs)
        self._check_size(env, outs)
        return self.run(env, outs)

    def run(self, env: dict[str, torch.Tensor], outs: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The layers `outs` need, on inputs already checked (`forward` checks them): pure tensor work,
        what `torch.compile` traces (zoo.dream.compiled)."""
        env = dict(env)
        modules = list(self.layers.values())
        if torch.compiler.is_compiling():  # inductor plans the backward's memory itself
            return self._run(env, outs, modules)
        with input_grad.frozen(not any(p.requires_grad for p in self.parameters())):
            return self._run(env, outs, modules)

    def _run(self, env: dict[str, torch.Tensor], outs: tuple[str, ...], modules: list) -> dict[str, torch.Tensor]:
        for i, dying in self.plan(outs):
            layer = self.graph.layers[i]
            ys = modules[i](*[env[b] for b in layer.bottoms])
            env.update(zip(layer.tops, ys))
            for b in dying:
                env.pop(b, None)
        return {o: env[o] for o in outs}

    def _check_size(self, env: dict[str, torch.Tensor], outs: tuple[str, ...]) -> None:
        """Shape-check the layers this call runs, and refuse sizes that cannot fit in memory."""
        first = env.get(self.input_names[0])
        if first is None:
            raise ConvertError(f"missing input {self.input_names[0]!r}")
        key = (tuple(first.shape), outs)
        if key in self._checked:
            return
        part = self.graph.truncated(list(outs))
        part.shapes({self.input_names[0]: key[0]})  # a size that does not fit fails by layer name
        if first.numel() > 1 << 22:
            part.check_memory({self.input_names[0]: key[0]})
        self._checked.add(key)

    # -- training and export -------------------------------------------------------------------
    def param_groups(self, base_lr: float, weight_decay: float) -> list[dict]:
        """One optimizer group per trainable parameter, with Caffe's lr_mult and decay_mult.

        The prototxt's `param {}` entries where given; else bvlc_googlenet's convention, weights 1/1
        and biases twice the rate with no decay. Parameters with lr_mult 0 or frozen are left out.
        """
        groups = []
        for mod in self.layers.values():
            specs = list(self.graph.layer(mod.layer_name).proto.param)
            for i, name in enumerate(mod.blob_names):
                p = getattr(mod, name)
                if not isinstance(p, nn.Parameter) or not p.requires_grad:
                    continue
                if i < len(specs):
                    lr_mult, decay_mult = float(specs[i].lr_mult), float(specs[i].decay_mult)
                else:
                    lr_mult, decay_mult = (2.0, 0.0) if name == "bias" else (1.0, 1.0)
                if lr_mult == 0:
                    continue
                groups.append({"params": [p], "lr_mult": lr_mult, "decay_mult": decay_mult,
                               "lr": base_lr * lr_mult, "weight_decay": weight_decay * decay_mult,
                               "name": f"{mod.layer_name}.{name}"})
        return groups

    def to_graph(self) -> Graph:
        """A copy of the graph carrying this module's current weights."""
        g = self.graph.copy()
        for layer in g.layers:
            mod = self.layers[module_key(layer.name)]
            layer.blobs = [getattr(mod, n).detach().to("cpu", torch.float32).numpy().copy()
                           for n in layer.blob_names]
        return g
