"""The net to train: a zoo model (or a prototxt) as a CaffeModule whose classifier is replaced to fit
the classes, with Caffe's per-parameter rates, optional freezing, GoogLeNet's auxiliary heads and
training-time dropout.

The Graph stays the source of truth: the new classifier is the same layer (same name, same place,
same bottoms and tops) with num_output and blobs changed, so export writes a normal Caffe model.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from zoo.convert.graph import Graph, Layer, needed_layers

from zoo import convert
from zoo.errors import UserError
from zoo.preprocess import Preprocess

from .fillers import fill_layer, scratch_weights

AUX_NAME = re.compile(r"^loss\d+/classifier$")  # GoogLeNet's auxiliary heads (train_val prototxts)


class ModelError(UserError):
    """A model that cannot be fine-tuned as asked (no classifier, unknown blob, missing weights)."""


@dataclass
class Source:
    """A graph with weights, its card (None for a prototxt path) and its preprocessing."""

    graph: Graph
    preprocess: Preprocess
    output: str
    card: object | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainNet:
    module: torch.nn.Module
    output: str  # the graph output the export keeps (e.g. "prob")
    classifier: str  # the replaced layer
    logits: str  # its top: the loss reads it
    aux: list[str]  # auxiliary logits blobs
    preprocess: Preprocess
    card: object | None = None
    frozen: set[str] = field(default_factory=set)  # layers whose weights training keeps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.module(x, outputs=[self.logits, *self.aux])
        return _flat(out[self.logits]), [_flat(out[a]) for a in self.aux]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


# --- loading -------------------------------------------------------------------------------------


def _card_files(card, need_weights: bool) -> dict[str, Path]:
    from zoo import cache

    if need_weights or cache.is_cached(card):
        return cache.ensure_model(card)
    roles = [r for r in ("prototxt", "mean") if r in card.files]
    return cache.ensure_files(card, roles)  # scratch training needs the prototxt (and mean) only


def load_source(model: str, *, init: str, seed: int, weights: str = "", like: str = "") -> Source:
    """A registry name or a prototxt path, with pretrained weights or Caffe's fillers."""
    from zoo.registry import get_card

    pretrained = init == "pretrained"
    if model.endswith(".prototxt") or Path(model).is_file():
        if not Path(model).is_file():
            raise ModelError(f"{model}: no such prototxt")
        if pretrained and not weights:
            raise ModelError(f"{model}: --init pretrained needs --weights FILE.caffemodel (or use --init scratch)")
        card = get_card(like) if like else None
        graph = convert.load_net(model, weights if pretrained else None)
        if card is not None:
            pre = Preprocess.from_card(card)
        else:
            pre = Preprocess(input_size=tuple(next(iter(graph.inputs.values()))[2:4]))
        output = card.output if card is not None else _main_output(graph)
    else:
        card = get_card(model)
        files = _card_files(card, pretrained)
        graph = convert.load_net(str(files["prototxt"]), str(files["weights"]) if pretrained else None)
        pre = Preprocess.from_card(card, files.get("mean"))
        output = card.output
    if not pretrained:
        graph = scratch_weights(graph, seed)
    return Source(graph, pre, output, card)


def _main_output(g: Graph) -> str:
    """The Softmax output computed last (GoogLeNet's prob after its auxiliary loss1/loss2 heads)."""
    order = {layer.name: i for i, layer in enumerate(g.layers)}
    producers = g.producers
    soft = [o for o in g.outputs if producers[o].op.probabilities] or list(g.outputs)
    return max(soft, key=lambda o: order[producers[o].name])


# --- graph surgery -------------------------------------------------------------------------------


def find_classifier(g: Graph, output: str) -> Layer:
    """The classifier layer (InnerProduct, or a 1x1-style Convolution) that feeds `output` through
    layers that keep the class axis (Softmax, Dropout, ReLU, Flatten...: the handlers say which)."""
    producers = g.producers
    blob = output
    while blob in producers:
        layer = producers[blob]
        if layer.op.is_classifier:
            return layer
        if not layer.op.passes_through or len(layer.bottoms) != 1:
            break
        blob = layer.bottoms[0]
    raise ModelError(f"model {g.name}: no InnerProduct/Convolution classifier feeds output {output!r}")


def card_classifier(g: Graph, card) -> Layer | None:
    """The classifier layer the card names (its `classifier` field), None when it names none."""
    name = getattr(card, "classifier", "") if card is not None else ""
    if not name:
        return None
    try:
        layer = g.layer(name)
    except KeyError:
        raise ModelError(f"model {card.name}: its card names classifier {name!r}, which {g.name} lacks") from None
    if not layer.op.is_classifier:
        raise ModelError(f"model {card.name}: classifier {name!r} is a {layer.type}, not a classifier layer")
    return layer


def replace_head(g: Graph, name: str, num_classes: int, rng: np.random.Generator) -> None:
    """Give layer `name` num_output = num_classes and fresh blobs from its fillers, in place."""
    i = next(k for k, layer in enumerate(g.layers) if layer.name == name)
    old = g.layers[i]
    proto = old.op.with_outputs(old.proto, num_classes)
    new = Layer(old.name, old.type, list(old.bottoms), list(old.tops), proto, [])
    shapes = g.shapes()
    want = new.op.weight_shapes(new.attrs, [shapes[b] for b in new.bottoms])
    new.blobs = fill_layer(new, [tuple(w) for w in want], rng)
    g.layers[i] = new


def aux_heads(g: Graph, main: str) -> list[Layer]:
    """GoogLeNet-style auxiliary classifiers left in the graph (loss1/classifier, loss2/classifier)."""
    return [layer for layer in g.layers if layer.name != main and AUX_NAME.match(layer.name)]


def check_blob(g: Graph, blob: str, option: str) -> None:
    if blob not in g.blob_names:
        close = difflib.get_close_matches(blob, g.blob_names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `zoo info` for the blob names"
        raise ModelError(f"{option} {blob!r}: no such blob in {g.name}; {hint}")


def frozen_layers(g: Graph, blob: str) -> set[str]:
    """Every layer the blob depends on (freezing them freezes everything below it)."""
    check_blob(g, blob, "--freeze-to")
    return {g.layers[i].name for i in needed_layers(g, [blob])}


def build(source: Source, num_classes: int, *, seed: int, freeze_to: str = "") -> TrainNet:
    """The trainable net: head replaced to fit `num_classes`, frozen layers; dropout drops in train()."""
    from zoo.convert.torch_module import CaffeModule, module_key

    if num_classes < 2:
        raise ModelError(f"{num_classes} class(es): a classifier needs at least 2")
    g = source.graph.copy()
    rng = np.random.default_rng([seed, 17])
    head = card_classifier(g, source.card) or find_classifier(g, source.output)
    replace_head(g, head.name, num_classes, rng)
    aux = aux_heads(g, head.name)
    for layer in aux:
        replace_head(g, layer.name, num_classes, rng)
    module = CaffeModule(g)
    frozen = frozen_layers(g, freeze_to) if freeze_to else set()
    for name in frozen:
        for p in module.layers[module_key(name)].parameters():
            p.requires_grad_(False)
    module.train()
    return TrainNet(
        module=module,
        output=source.output,
        classifier=head.name,
        logits=g.layer(head.name).tops[0],
        aux=[layer.tops[0] for layer in aux],
        preprocess=source.preprocess,
        card=source.card,
        frozen=frozen,
    )


def trained_blobs(g: Graph, frozen: set[str]) -> list[str]:
    """Public blobs whose values training changes (a trained layer lies below them), shallow to deep."""
    changed: set[str] = set()
    for layer in g.layers:
        if (layer.blob_names and layer.name not in frozen) or any(b in changed for b in layer.bottoms):
            changed.update(layer.tops)
    return [b for b in g.blob_names if b in changed]


# --- optimisation --------------------------------------------------------------------------------


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The module's Caffe lr_mult/decay_mult groups; the schedule sets each group's rate every step."""
    groups = module.param_groups(base_lr=0.0, weight_decay=weight_decay)
    if not groups:
        raise ModelError("nothing to train: every parameter is frozen (check --freeze-to)")
    return groups


class CaffeSGD(torch.optim.Optimizer):
    """Caffe's SGD: v = momentum * v + lr * (grad + decay * w); w -= v (lr inside the history, so a
    changing rate acts like Caffe's, not like torch.optim.SGD's)."""

    def __init__(self, groups: list[dict], momentum: float = 0.9):
        super().__init__(groups, {"lr": 0.0, "momentum": momentum, "weight_decay": 0.0, "lr_mult": 1.0})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D401 - torch's signature
        for group in self.param_groups:
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.add(p, alpha=wd) if wd else p.grad.clone()
                state = self.state[p]
                buf = state.get("history")
                if buf is None:
                    buf = state["history"] = torch.zeros_like(p)
                buf.mul_(mom).add_(d, alpha=lr)
                p.sub_(buf)
        return None


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * group["lr_mult"]
