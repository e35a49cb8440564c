"""What a dream maximises: objectives over named blobs, composable with + - and *.

An objective is a function of the dict of blobs the truncated net returns, plus the names of the
blobs it needs (so the net runs only as deep as the deepest of them). Every blob term is summed
over positions and averaged over channels: sums split exactly across tiles, and the channel mean
keeps blobs of different widths on one scale when they are mixed with weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from zoo.errors import UserError

Blobs = Mapping[str, Tensor]


class Objective:
    """A scalar function of named blobs, to be maximised."""

    def __init__(self, fn: Callable[[Blobs], Tensor], blobs: Sequence[str], name: str) -> None:
        self.fn = fn
        self.blobs = tuple(dict.fromkeys(blobs))
        self.name = name

    def __call__(self, acts: Blobs) -> Tensor:
        return self.fn(acts)

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            return Objective(lambda a: self(a) + other, self.blobs, f"{self.name} + {other}")
        return Objective(lambda a: self(a) + other(a), self.blobs + other.blobs, f"{self.name} + {other.name}")

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return Objective(lambda a: -self(a), self.blobs, f"-{self.name}")

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __mul__(self, k: float) -> Objective:
        if isinstance(k, Objective):
            raise TypeError("objectives multiply by numbers, not by other objectives")
        return Objective(lambda a: k * self(a), self.blobs, f"{k} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def blob_l2(blob: str) -> Objective:
    """The classic DeepDream objective: half the squared activation (its gradient is the blob)."""
    return Objective(lambda a: 0.5 * a[blob].pow(2).sum() / a[blob].shape[1], [blob], f"l2({blob})")


def channels(blob: str, chans: Sequence[int]) -> Objective:
    """Mean activation of the chosen channels, summed over positions."""
    idx = list(chans)
    return Objective(lambda a: a[blob][:, idx].sum() / len(idx), [blob], f"{blob}:{','.join(map(str, idx))}")


def neuron(blob: str, chan: int, y: int | None = None, x: int | None = None) -> Objective:
    """One unit: channel `chan` at (y, x) of the blob, the centre when not given."""

    def fn(a: Blobs) -> Tensor:
        t = a[blob]
        yy = t.shape[2] // 2 if y is None else y
        xx = t.shape[3] // 2 if x is None else x
        return t[:, chan, yy, xx].sum()

    return Objective(fn, [blob], f"{blob}:{chan}@{y},{x}")


def class_output(blob: str, index: int) -> Objective:
    """Push toward one class: its score in an output blob (logits work better than softmax)."""
    return channels(blob, [index])


def blobs_l2(weights: Mapping[str, float]) -> Objective:
    """Several blobs at once, each with its own weight."""
    terms = [w * blob_l2(b) for b, w in weights.items()]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def guide(blob: str, features: Tensor) -> Objective:
    """Steer each position toward the guide feature it already matches best (dot product).

    `features` is the guide image's blob, (C, H', W') or (1, C, H', W'). The match is chosen
    without gradient, as in the DeepDream notebook, so the gradient at each position is the
    best-matching guide vector.
    """
    g = features.reshape(features.shape[-3], -1)

    def fn(a: Blobs) -> Tensor:
        x = a[blob]
        c = x.shape[1]
        flat = x.reshape(x.shape[0], c, -1)
        gg = g.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            best = torch.einsum("ncp,cm->npm", flat, gg).argmax(dim=2)
        chosen = gg[:, best]  # (C, N, P)
        return (flat * chosen.permute(1, 0, 2)).sum() / c

    return Objective(fn, [blob], f"guide({blob})")


@dataclass(frozen=True)
class Target:
    """One `--layer` value: a blob, optionally channels (by index or class label), or one neuron."""

    blob: str
    channels: tuple[int | str, ...] = ()
    position: tuple[int, int] | None = None

    def __str__(self) -> str:
        text = self.blob
        if self.channels:
            text += ":" + ",".join(map(str, self.channels))
        if self.position is not None:
            text += f"@{self.position[0]},{self.position[1]}"
        return text


_TARGET = re.compile(r"^(?P<blob>[^:@]+)(?::(?P<chans>[^@]+))?(?:@(?P<y>\d+),(?P<x>\d+))?$")


def parse_target(text: str) -> Target:
    """Parse "blob", "blob:ch", "blob:ch1,ch2", "blob:Label" or "blob:ch@y,x" (one neuron).

    Blob names contain '/' but never ':' in the zoo's models; a channel that is not a number is a
    class label, resolved against the model's labels later.
    """
    m = _TARGET.match(text.strip())
    if not m:
        raise UserError(f"layer {text!r}: expected BLOB, BLOB:CHANNEL[,CHANNEL...] or BLOB:CHANNEL@Y,X")
    chans: tuple[int | str, ...] = ()
    if m["chans"]:
        chans = tuple(int(c) if c.strip().isdigit() else c.strip() for c in m["chans"].split(","))
        if any(c == "" for c in chans):
            raise UserError(f"layer {text!r}: empty channel in the list")
    position = None
    if m["y"] is not None:
        if len(chans) != 1:
            raise UserError(f"layer {text!r}: a neuron (@Y,X) needs exactly one channel")
        position = (int(m["y"]), int(m["x"]))
    return Target(m["blob"].strip(), chans, position)


def resolve_target(
    target: Target,
    blob_channels: Mapping[str, int],
    labels: Mapping[str, Sequence[str]] | None = None,
    model: str = "model",
    listed: Sequence[str] | None = None,
) -> Target:
    """Check a target against the model: known blob, channels in range, labels turned into indices.

    `listed` is what an unknown name is answered with (the dreamable blobs); any blob with a
    channel axis is accepted, so class outputs can be targets too.
    """
    if target.blob not in blob_channels:
        known = ", ".join(listed if listed is not None else blob_channels)
        raise UserError(f"{model} has no dreamable blob {target.blob!r}; dreamable blobs: {known}")
    count = blob_channels[target.blob]
    resolved: list[int] = []
    for ch in target.channels:
        if isinstance(ch, str):
            names = list((labels or {}).get(target.blob, ()))
            if ch not in names:
                hint = f"; its labels start {', '.join(names[:8])}" if names else "; it has no class labels"
                raise UserError(f"{model} blob {target.blob!r} has no class {ch!r}{hint}")
            ch = names.index(ch)
        if not 0 <= ch < count:
            raise UserError(
                f"{model} blob {target.blob!r} has {count} channels (0-{count - 1}); channel {ch} is out of range"
            )
        resolved.append(ch)
    return Target(target.blob, tuple(resolved), target.position)


def target_objective(target: Target) -> Objective:
    """The objective one resolved target stands for."""
    if target.position is not None:
        return neuron(target.blob, int(target.channels[0]), *target.position)
    if target.channels:
        return channels(target.blob, [int(c) for c in target.channels])
    return blob_l2(target.blob)


def combine(targets: Sequence[Target], weights: Sequence[float] = ()) -> Objective:
    """Weighted sum of the targets' objectives; missing weights are 1."""
    if not targets:
        raise UserError("no layer to dream on")
    if len(weights) > len(targets):
        raise UserError(f"{len(weights)} weights given for {len(targets)} layers")
    ws = list(weights) + [1.0] * (len(targets) - len(weights))
    total: Objective | None = None
    for t, w in zip(targets, ws):
        term = target_objective(t) if w == 1.0 else w * target_objective(t)
        total = term if total is None else total + term
    assert total is not None
    return total
