"""What dream needs from a model, gathered in one place: the torch net, its preprocessing and its blobs.

Dream never looks at Caffe: a Brain holds a module that returns named blobs, the preprocessing
that maps pictures into the net's space, which blobs are worth dreaming on (with channel counts),
class labels, and a checksum of the weights for the recipe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from zoo.dream.objectives import Target, resolve_target

from zoo.errors import UserError

Net = Callable[..., dict[str, Tensor]]


@dataclass
class Brain:
    """A net ready to dream with."""

    name: str
    net: Net | None  # the whole net; None when a graph is given (truncated nets are built from it)
    preprocess: Any  # zoo.preprocess.Preprocess: to_net, from_net, bounds
    channels: dict[str, int]  # every blob with a channel axis -> its channel count
    dreamable: dict[str, tuple[int, ...]]  # blobs worth dreaming on -> shape (C, H, W) at input_size
    default_blob: str
    weights_sha256: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    graph: Any = None  # convert.graph.Graph when known: truncation, stride and memory estimates
    input_size: tuple[int, int] | None = None  # the deploy size (H, W): fixed-size heads run on tiles of it
    trained_blobs: tuple[str, ...] | None = None  # for a fine-tune: blobs its training changed (card field)
    colour_cov: tuple[tuple[float, ...], ...] = ()  # its training pictures' RGB covariance (card field); (): ImageNet's
    _nets: dict[tuple[tuple[str, ...], str], Net] = field(default_factory=dict, repr=False)
    _fixed: dict[str, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.input_size is None and self.graph is not None:
            shape = next(iter(self.graph.inputs.values()), ())
            if len(shape) == 4:
                self.input_size = (int(shape[2]), int(shape[3]))

    def is_fixed(self, blob: str) -> bool:
        """Whether the part of the net below `blob` takes only its deploy size (an InnerProduct after
        non-global pooling: GoogLeNet's loss heads, CaffeNet's fc6, MTCNN's fc layers)."""
        if self.graph is None:
            return False
        if blob not in self._fixed:
            self._fixed[blob] = not self.graph.truncated([blob]).spatially_dynamic()
        return self._fixed[blob]

    def logits(self, blob: str) -> str:
        """The blob under a Softmax (its logits) when `blob` is a Softmax's output, else `blob`:
        dreaming a probability saturates, its logit keeps pulling."""
        if self.graph is None:
            return blob
        layer = self.graph.producers.get(blob)
        if layer is not None and layer.op.probabilities and len(layer.bottoms) == 1:  # a Softmax: its handler says
            under = layer.bottoms[0]
            return under.split("@")[0] if under.split("@")[0] in self.channels else blob
        return blob

    def resolve(self, target: Target) -> Target:
        """Check a `--layer` target against this model (known blob, channel in range, labels)."""
        return resolve_target(target, self.channels, self.labels, self.name, listed=list(self.dreamable))

    def net_for(self, blobs: Sequence[str], device: torch.device | str = "cpu", compile: bool = False) -> Net:
        """A net that computes only what these blobs need (and checks sizes against that part only).

        With `compile`, the truncated channels_last nets go through torch.compile (zoo.dream.compiled:
        opt-in, cached on disk); without it nothing about compiling is imported."""
        key = (tuple(blobs), str(device)) + (("compile",) if compile else ())
        if key not in self._nets:
            if self.graph is None:
                assert self.net is not None, "a Brain needs a net or a graph"
                net = self.net
                if isinstance(net, torch.nn.Module):
                    net.to(device)
            else:
                fixed = [b for b in blobs if self.is_fixed(b)]
                free = [b for b in blobs if b not in fixed]
                net = self._module(free, device, compile) if free else None
                if fixed:
                    assert self.input_size is not None
                    net = WindowedNet(net, self._module(fixed, device, compile), fixed, self.input_size)
            self._nets[key] = net
        return self._nets[key]

    def _module(self, blobs: Sequence[str], device: torch.device | str, compile: bool = False) -> Net:
        from zoo.convert.torch_module import CaffeModule

        net = ChannelsLast(freeze(CaffeModule(self.graph.truncated(list(blobs))))).to(device)
        if compile:
            from zoo.dream.compiled import CompiledNet

            return CompiledNet(net, self.weights_sha256[:16], str(device))
        return net

    def shapes_at(self, h: int, w: int, blobs: Sequence[str] | None = None) -> dict[str, tuple[int, ...]]:
        """Shapes (C, H, W) of these blobs (default: the dreamable ones) for an h x w picture;
        `dreamable` holds them at the deploy size. Blobs that take only the deploy size keep it (they
        run on windows of it)."""
        blobs = list(self.dreamable if blobs is None else blobs)
        if self.graph is None:
            return {b: self.dreamable[b] for b in blobs if b in self.dreamable}
        net = (w, h) if getattr(self.preprocess, "transpose", False) else (h, w)
        free = [b for b in blobs if b in self.channels and not self.is_fixed(b)]
        try:
            shapes = self.graph.truncated(free).shapes({next(iter(self.graph.inputs)): (1, 3, *net)}) if free else {}
        except UserError:
            raise UserError(f"{self.name}: a {w}x{h} image is too small for its blobs") from None
        deploy = {b: self.dreamable[b] for b in blobs if b in self.dreamable}
        return {b: tuple(int(d) for d in shapes[b][1:]) if b in shapes else deploy[b] for b in blobs
                if b in shapes or b in deploy}

    def truncated_graph(self, blobs: Sequence[str]) -> Any:
        return None if self.graph is None else self.graph.truncated(list(blobs))


def window_starts(length: int, window: int) -> list[int]:
    """Starts of the fewest windows of `window` pixels that cover [0, length), spread evenly."""
    if length < window:
        raise ValueError(f"{length} pixels are fewer than one window of {window}")
    n = -(-length // window)
    if n == 1:
        return [0]
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


class WindowedNet:
    """A net whose fixed-size heads run on windows of the deploy size covering the input.

    The windows go through the head as one batch; a class term summed over the batch is the sum of
    each window's logit, so a class can be dreamt into an image of any size. Blobs that take any
    size come from one pass of `whole` over the input.
    """

    def __init__(self, whole: Net | None, head: Net, fixed: Sequence[str], window: tuple[int, int]) -> None:
        self.whole, self.head, self.fixed, self.window = whole, head, tuple(fixed), window

    def __call__(self, x: Tensor, outputs: Sequence[str]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        free = [b for b in outputs if b not in self.fixed]
        if free:
            assert self.whole is not None
            out.update(self.whole(x, outputs=free))
        wanted = [b for b in outputs if b in self.fixed]
        if wanted:
            (wh, ww), (h, w) = self.window, x.shape[-2:]
            crops = [x[:, :, r:r + wh, c:c + ww] for r in window_starts(h, wh) for c in window_starts(w, ww)]
            out.update(self.head(torch.cat(crops), outputs=wanted))
        return out


def weights_digest(graph: Any) -> str:
    """sha256 over the graph's weights (layer names, shapes and bytes, in order): a recipe's brain id."""
    h = hashlib.sha256()
    for layer in graph.layers:
        for i, blob in enumerate(layer.blobs):
            h.update(f"{layer.name}/{i}{tuple(blob.shape)}".encode())
            h.update(np.ascontiguousarray(blob, np.float32).tobytes())
    return h.hexdigest()


class ChannelsLast(torch.nn.Module):
    """The net run in channels_last (NHWC) memory: oneDNN's convolutions and pooling are faster
    in it (a GoogLeNet forward+backward 1.2-1.5x on the CPU) and the values are the same up to
    float rounding. Callers keep NCHW tensors; outputs (and the input's gradient) come back
    NHWC-strided, which every elementwise op and index accepts."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)

    @property
    def graph(self):
        return self.net.graph

    def forward(self, x, outputs=None):
        if isinstance(x, Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x, outputs=outputs)


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no parameter gradients: a dream differentiates the input only."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def blob_table(graph: Any, input_size: tuple[int, int]) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Channel counts of every public blob, and the 4-D ones with space left (dreamable by default)."""
    first = next(iter(graph.inputs))
    shapes = graph.shapes({first: (1, graph.inputs[first][1] if graph.inputs[first] else 3, *input_size)})
    channels: dict[str, int] = {}
    spatial: dict[str, tuple[int, ...]] = {}
    for name in graph.blob_names:
        s = shapes.get(name)
        if name in graph.inputs or s is None or len(s) < 2:
            continue
        channels[name] = int(s[1])
        if len(s) == 4 and s[2] * s[3] > 1:
            spatial[name] = tuple(int(d) for d in s[1:])
    return channels, spatial


def from_graph(
    name: str,
    graph: Any,
    preprocess: Any,
    *,
    input_size: tuple[int, int] = (224, 224),
    dreamable: Sequence[str] | None = None,
    default_blob: str | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> Brain:
    """A Brain from a converter Graph (with weights) and its preprocessing."""
    channels, spatial = blob_table(graph, input_size)
    if dreamable:
        listed = {b: spatial.get(b, (channels.get(b, 0),)) for b in dreamable if b in channels}
    else:
        listed = spatial
    from zoo.convert.report import default_dream_blob  # the one rule for a default blob

    default = default_blob or (default_dream_blob(list(listed)) if listed else "")
    labels = {k: list(v) for k, v in (labels or {}).items()}
    return Brain(
        name=name,
        net=None,
        preprocess=preprocess,
        channels=channels,
        dreamable=listed,
        default_blob=default,
        weights_sha256=weights_digest(graph),
        labels=labels,
        descriptions=dict(descriptions or {}),
        graph=graph,
        input_size=tuple(input_size),  # type: ignore[arg-type]
    )


def load_brain(name: str | None) -> Brain:
    """A Brain for a model of the zoo (built-in or added by `zoo convert --name`); None: the default."""
    from zoo.dream.recipe import file_sha256

    from zoo import api, convert

    card, paths = api.resolve(name, say=_say)
    graph = convert.load_net(str(paths["prototxt"]), str(paths["weights"]))
    channels, spatial = blob_table(graph, tuple(card.input_size))  # type: ignore[arg-type]
    listed = {b.name: tuple(b.shape) for b in card.dream_blobs if b.name in channels} or spatial
    try:
        names = list(api.labels_for(card, paths))
    except (UserError, OSError):
        names = []
    labels = {b: names for b, c in channels.items() if names and c == len(names)}
    return Brain(
        name=card.name,
        net=None,
        preprocess=api.preprocess_for(card, paths),
        channels=channels,
        dreamable=listed,
        default_blob=card.default_blob if card.default_blob in channels else next(iter(listed), ""),
        weights_sha256=file_sha256(paths["weights"]),
        labels=labels,
        descriptions={b.name: b.produces for b in card.dream_blobs},
        graph=graph,
        input_size=tuple(card.input_size),  # type: ignore[arg-type]
        trained_blobs=_trained(card),
        colour_cov=tuple(getattr(card, "colour_cov", ()) or ()),
    )


def _say(message: str) -> None:
    """Messages of model resolution as zoo.events notes; the fallback note is said once per cache, short,
    and after it the default brain's fetch attempt is not announced again (each run tried it anew and
    said "fetching" before dreaming with the built-in, which read as a download that never came)."""
    from zoo import api, cache, events
    from zoo.io import write_text_atomic

    marker = cache.zoo_home() / ".fallback-noted"
    if message == f"fetching {api.DEFAULT_MODEL} (not cached yet)" and marker.exists():
        return
    if message.startswith(f"note: {api.DEFAULT_MODEL} is not available"):
        if marker.exists():
            return
        message = (f"note: {api.DEFAULT_MODEL} cannot be fetched, so the built-in {api.FALLBACK_MODEL} dreams "
                   f"instead (`zoo fetch {api.DEFAULT_MODEL}` when online; said once)")
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(marker, "1\n")
        except OSError:
            pass
    events.note(message)


def _trained(card: Any) -> tuple[str, ...] | None:
    """The card's `trained_blobs` (a fine-tune's changed blobs), when the registry has that field."""
    value = getattr(card, "trained_blobs", None)
    return tuple(value) if isinstance(value, (list, tuple)) else None
