"""What a dream maximises: objectives over named blobs, composable with + - and *.

An objective is a function of the dict of blobs the truncated net returns, plus the names of the
blobs it needs (so the net runs only as deep as the deepest of them). Every blob term is summed
over positions and averaged over channels: sums split exactly across tiles, and the channel mean
keeps blobs of different widths on one scale when they are mixed with weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

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

    @staticmethod
    def sum(terms: Sequence[Objective], weights: Sequence[float] = ()) -> Objective:
        """Several objectives weighted and added (see `total`)."""
        return total(terms, weights)


def blob_l2(blob: str) -> Objective:
    """The classic DeepDream objective: half the squared activation (its gradient is the blob)."""
    return Objective(lambda a: 0.5 * a[blob].pow(2).sum() / a[blob].shape[1], [blob], f"l2({blob})")


def channels(blob: str, chans: Sequence[int]) -> Objective:
    """Mean activation of the chosen channels, summed over positions."""
    idx = list(chans)
    return Objective(lambda a: a[blob][:, idx].sum() / len(idx), [blob], f"{blob}:{','.join(map(str, idx))}")


@dataclass(frozen=True)
class Region:
    """Where the crop a net sees lies in the octave image: its first row and column, the jitter
    roll, the octave's size (all in net-space pixels), and the core rows/cols the tile owns."""

    start: tuple[int, int]
    crop: tuple[int, int]
    shift: tuple[int, int]
    size: tuple[int, int]
    core: tuple[tuple[int, int], tuple[int, int]] | None = None


    @classmethod
    def of(cls, tile, shift: tuple[int, int], size: tuple[int, int]) -> Region:
        """The region of one geometry.Tile; it owns the pixels where its blend weight is over half."""

        def owned(start: int, weight) -> tuple[int, int]:
            idx = [i for i, v in enumerate(weight) if v > 0.5]
            return (start + idx[0], start + idx[-1] + 1) if idx else (start, start)

        return cls((tile.rows.start, tile.cols.start), (tile.rows.length, tile.cols.length), shift, size,
                   (owned(tile.rows.start, tile.row_weight), owned(tile.cols.start, tile.col_weight)))


REGION: ContextVar[Region | None] = ContextVar("zoo_dream_region", default=None)


def neuron(blob: str, chan: int, y: int | None = None, x: int | None = None,
           at: tuple[tuple[int, int], tuple[int, int]] | None = None) -> Objective:
    """One unit: channel `chan` at (y, x) of the blob, the centre when not given.

    With `at` = ((H, W) of the final image, (h, w) of the blob there), (y, x) are blob coordinates
    at the final size: the unit is placed at the same spot of each octave and counted only by the
    tile that owns it (zero elsewhere), so tiles and octaves all pull on one place.
    """

    def fn(a: Blobs) -> Tensor:
        t = a[blob]
        if at is None or y is None or x is None:
            yy = t.shape[2] // 2 if y is None else y
            xx = t.shape[3] // 2 if x is None else x
            if not (0 <= yy < t.shape[2] and 0 <= xx < t.shape[3]):
                return t.sum() * 0.0
            return t[:, chan, yy, xx].sum()
        spot = locate(at, (y, x), REGION.get(), tuple(t.shape[2:]))
        if spot is None:
            return t.sum() * 0.0
        return t[:, chan, spot[0], spot[1]].sum()

    return Objective(fn, [blob], f"{blob}:{chan}@{y},{x}")


def locate(at, pos: tuple[int, int], region: Region | None, crop_blob: tuple[int, int]) -> tuple[int, int] | None:
    """The blob index, in the crop a net sees, of a unit given at the final size; None when this crop's
    tile does not own it. Pure arithmetic on the pixel centre of the unit."""
    (big_h, big_w), (blob_h, blob_w) = at
    out = []
    for axis in (0, 1):
        centre = (pos[axis] + 0.5) * (big_h, big_w)[axis] / (blob_h, blob_w)[axis]  # final-image pixels
        if region is None:
            out.append(min(crop_blob[axis] - 1, int(centre / (big_h, big_w)[axis] * crop_blob[axis])))
            continue
        size = region.size[axis]
        pixel = min(size - 1, int(centre * size / (big_h, big_w)[axis]))  # this octave's pixel
        rolled = (pixel + region.shift[axis]) % size  # tiles are laid on the rolled image
        if region.core is not None and not region.core[axis][0] <= rolled < region.core[axis][1]:
            return None
        crop_len = region.crop[axis]
        i = rolled - region.start[axis]
        if not 0 <= i < crop_len:
            return None
        out.append(min(crop_blob[axis] - 1, int((i + 0.5) * crop_blob[axis] / crop_len)))
    return out[0], out[1]


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


def guide_layout(blob: str, features: Tensor) -> Objective:
    """Steer each position toward the guide's features at the same place of the picture (the guide's
    blob stretched over the whole image), so the guide's layout (where its colours and shapes are)
    shows, not only its vocabulary. Tiles and the jitter roll are placed through REGION."""
    g = features.reshape(1, *features.shape[-3:])

    def fn(a: Blobs) -> Tensor:
        x = a[blob]
        h, w = x.shape[2:]
        region = REGION.get()
        fy, fx = (h / region.crop[0], w / region.crop[1]) if region is not None else (1.0, 1.0)
        full = (round(region.size[0] * fy), round(region.size[1] * fx)) if region is not None else (h, w)
        start = (round(region.start[0] * fy), round(region.start[1] * fx)) if region is not None else (0, 0)
        shift = (round(region.shift[0] * fy), round(region.shift[1] * fx)) if region is not None else (0, 0)
        gg = torch.nn.functional.interpolate(g.to(device=x.device, dtype=x.dtype), size=full, mode="bilinear",
                                             align_corners=False)
        gg = torch.roll(gg, shift, dims=(2, 3))[:, :, start[0]:start[0] + h, start[1]:start[1] + w]
        if tuple(gg.shape[2:]) != (h, w):  # a crop reaching past the stretched map (rounding): pad its edge
            gg = torch.nn.functional.pad(gg, (0, w - gg.shape[3], 0, h - gg.shape[2]), mode="replicate")
        return (x * gg).sum() / x.shape[1]

    return Objective(fn, [blob], f"guide_layout({blob})")


@dataclass(frozen=True)
class Target:
    """One `--layer` value: a blob, optionally channels (by index or class label), or one neuron."""

    blob: str
    channels: tuple[int | str, ...] = ()
    position: tuple[int, int] | None = None
    # for a neuron: ((H, W) of the final image, (h, w) of the blob there), set once the size is known
    at: tuple[tuple[int, int], tuple[int, int]] | None = field(default=None, compare=False)

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

    Blob names contain '/' but never ':' in the zoo's models. Channels that are all numbers are
    indices; anything else is kept whole as class text ("goldfish, Carassius auratus" is one
    ImageNet label), resolved against the model's labels later.
    """
    m = _TARGET.match(text.strip())
    if not m:
        raise UserError(f"layer {text!r}: expected BLOB, BLOB:CHANNEL[,CHANNEL...], BLOB:LABEL or BLOB:CHANNEL@Y,X")
    chans: tuple[int | str, ...] = ()
    if m["chans"]:
        pieces = [c.strip() for c in m["chans"].split(",")]
        if any(p == "" for p in pieces):
            raise UserError(f"layer {text!r}: empty channel in the list")
        if all(p.isdigit() for p in pieces):
            chans = tuple(int(p) for p in pieces)
        elif m["chans"].strip():
            chans = (m["chans"].strip(),)
        if not chans or any(c == "" for c in chans):
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
    channel axis is accepted, so class outputs can be targets too. Class text matches a whole
    label, any of its comma-separated names (any case), or several such names separated by commas.
    """
    from zoo.labels import match_label

    if target.blob not in blob_channels:
        known = ", ".join(listed if listed is not None else blob_channels)
        raise UserError(f"{model} has no dreamable blob {target.blob!r}; dreamable blobs: {known}")
    count = blob_channels[target.blob]
    resolved: list[int] = []
    for ch in target.channels:
        if isinstance(ch, str):
            names = list((labels or {}).get(target.blob, ()))
            if not names:
                raise UserError(f"{model} blob {target.blob!r} has no class labels; give a channel number")
            try:
                resolved.append(match_label(names, ch, model))
                continue
            except UserError as whole:
                if "," not in ch:
                    raise
                try:  # "goldfish,tench": several classes
                    resolved.extend(match_label(names, piece, model) for piece in ch.split(","))
                    continue
                except UserError:
                    raise whole from None
        if not 0 <= ch < count:
            raise UserError(
                f"{model} blob {target.blob!r} has {count} channels (0-{count - 1}); channel {ch} is out of range"
            )
        resolved.append(ch)
    return Target(target.blob, tuple(resolved), target.position)


def target_objective(target: Target) -> Objective:
    """The objective one resolved target stands for."""
    if target.position is not None:
        return neuron(target.blob, int(target.channels[0]), *target.position, at=target.at)
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


def channel_per_row(blob: str, chans: Sequence[int]) -> Objective:
    """Row i of a batch pulls channel chans[i] (mean over positions): one forward pass renders as
    many channels as the batch has rows, since rows never mix in an eval-mode net."""
    idx = list(chans)

    def fn(a: Blobs) -> Tensor:
        t = a[blob]
        rows = torch.arange(len(idx), device=t.device)
        picked = t[rows, torch.tensor(idx, device=t.device)]
        return picked.reshape(len(idx), -1).mean(dim=1).sum()

    return Objective(fn, [blob], f"{blob}:per-row({len(idx)})")


def total(terms: Sequence[Objective], weights: Sequence[float] = ()) -> Objective:
    """Objective.sum: the weighted sum of several objectives (missing weights are 1; negative weights
    push a term down)."""
    if not terms:
        raise ValueError("no objectives to add")
    ws = list(weights) + [1.0] * (len(terms) - len(weights))
    out: Objective | None = None
    for term, w in zip(terms, ws):
        term = term if w == 1.0 else w * term
        out = term if out is None else out + term
    assert out is not None
    return out

