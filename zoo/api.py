"""The Python API: one name -> a working brain (torch module, ORT session or classifier).

`resolve` is what every command uses to turn a model name into verified files: it fetches what is
missing, and when no name was given and the default brain cannot be had, it falls back to the
built-in efficientnet_lite0 with a one-line notice, so a fresh machine with no network still works.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zoo import cache
from zoo.errors import NetworkError, UserError
from zoo.events import note
from zoo.fetch import FetchOptions
from zoo.labels import load_labels
from zoo.preprocess import Preprocess
from zoo.registry import ModelCard, get_card, load_registry

DEFAULT_MODEL = "bvlc_googlenet"
FALLBACK_MODEL = "efficientnet_lite0"

def resolve(
    name: str | None = None,
    *,
    offline: bool = False,
    say: Callable[[str], None] | None = None,
) -> tuple[ModelCard, dict[str, Path]]:
    """Card and verified file paths for NAME (None: the default brain, with the built-in fallback)."""
    say = say or note
    if name is not None:
        card = get_card(name)
        return card, cache.ensure_model(card, offline=offline, say=say)
    registry = load_registry()
    card = registry.get(DEFAULT_MODEL)
    try:
        # One quick retry only: on a machine without network the fallback should come at once.
        return card, cache.ensure_model(card, offline=offline, say=say,
                                        options=FetchOptions.from_env(retries=1, backoff=0.5))
    except (NetworkError, cache.NotCachedError) as e:  # typed: a full disk or a bad card is not "offline"
        fallback = registry.get(FALLBACK_MODEL)
        say(f"note: {DEFAULT_MODEL} is not available ({e}); using {FALLBACK_MODEL} (built in, no download)")
        return fallback, cache.ensure_model(fallback, offline=offline, say=say)


def preprocess_for(card: ModelCard, paths: dict[str, Path] | None = None) -> Preprocess:
    """The card's preprocessing; a mean file, when the card uses one, must be among `paths`."""
    mean_file = (paths or {}).get("mean") if card.mean_from_file else None
    if card.mean_from_file and mean_file is None:
        raise UserError(f"model {card.name}: its mean file is not cached; run: zoo fetch {card.name}")
    return Preprocess.from_card(card, mean_file)


def labels_for(card: ModelCard, paths: dict[str, Path]) -> list[str]:
    return load_labels(card.labels, paths)


def load(name: str | None = None, *, offline: bool = False):
    """(CaffeModule, Preprocess) for a model: the PyTorch module returns named blobs."""
    from zoo import convert
    from zoo.convert.torch_module import CaffeModule

    card, paths = resolve(name, offline=offline)
    graph = convert.load_net(str(paths["prototxt"]), str(paths["weights"]))
    module = CaffeModule(graph).eval()
    return module, preprocess_for(card, paths)


def onnx_file(name: str | None = None, *, offline: bool = False) -> tuple[ModelCard, dict[str, Path], Path]:
    card, paths = resolve(name, offline=offline)
    return card, paths, cache.ensure_onnx(card, paths)


def session(name: str | None = None, *, offline: bool = False):
    """An ONNX Runtime session for a model, on the best providers this machine has."""
    from zoo.providers import make_session

    _, _, path = onnx_file(name, offline=offline)
    return make_session(path)


def classifier(name: str | None = None, *, offline: bool = False):
    """A Classifier (ORT session + preprocessing + labels) for a model."""
    from zoo.runner import Classifier

    card, paths, path = onnx_file(name, offline=offline)
    return Classifier(path, preprocess_for(card, paths), labels_for(card, paths), output=card.output)
