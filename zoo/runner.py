"""Classify images through ONNX Runtime with a model's own preprocessing and labels.

Images are decoded one by one (a file that does not decode is reported by path and skipped), then
run in batches. The result keeps the order the paths were given in.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from zoo.errors import UserError
from zoo.labels import label_for
from zoo.preprocess import Preprocess
from zoo.providers import make_session


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    prob: float


@dataclass
class Result:
    path: str
    top: list[Prediction] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "top": [p.__dict__ for p in self.top]}


def load_image(path: str | Path) -> Image.Image:
    """Decode an image fully now, so a broken file fails here and not mid-batch (after its header
    proved the decode fits in free memory)."""
    from zoo.io import regular_file
    from zoo.memory import NotEnoughMemory, check_image

    regular_file(path)  # a FIFO would block PIL's open for ever
    try:
        check_image(path)
    except NotEnoughMemory:
        raise
    except UserError:
        pass  # no readable header: PIL's own error below says why, as classify reports it
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")


def top_k(probs: np.ndarray, k: int, labels: Sequence[str]) -> list[Prediction]:
    """The k highest scores, best first (ties: lower index first)."""
    k = max(1, min(k, probs.shape[0]))
    order = np.lexsort((np.arange(probs.shape[0]), -probs))[:k]
    return [Prediction(int(i), label_for(list(labels), int(i)), float(probs[i])) for i in order]


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Classifier:
    """An ORT session plus the preprocessing and labels that belong to it."""

    def __init__(
        self,
        onnx_path: str | Path,
        preprocess: Preprocess,
        labels: Sequence[str],
        output: str | None = None,
        providers: tuple[str, ...] | None = None,
    ) -> None:
        self.session = make_session(onnx_path, providers)
        self.preprocess = preprocess
        self.labels = list(labels)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        names = [o.name for o in self.session.get_outputs()]
        self.output = output if output in names else names[-1]

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x H x W net-space array -> N x classes scores."""
        n = batch.shape[0]
        step = self.fixed_batch or n
        outs = []
        for i in range(0, n, step):
            part = batch[i : i + step]
            pad = step - part.shape[0]
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            out = self.session.run([self.output], {self.input_name: part})[0]
            outs.append(out.reshape(out.shape[0], -1)[: step - pad])
        return np.concatenate(outs)

    def classify(
        self,
        paths: Sequence[str | Path],
        k: int = 5,
        batch_size: int = 16,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[Result]:
        """Top-k per image, in the order given; `on_progress(n)` after each n images are done.

        Images are decoded a batch at a time, so memory stays flat however many are given.
        """
        results = [Result(str(p)) for p in paths]
        for chunk in _chunks(list(range(len(paths))), max(1, batch_size)):
            ready: list[tuple[int, np.ndarray]] = []
            for i in chunk:
                try:
                    ready.append((i, self.preprocess.prepare(load_image(paths[i]))))
                except UserError as e:  # the header check: too large for free memory, or no image
                    results[i].error = str(e).removeprefix(f"{paths[i]}: ")
                except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombWarning,
                        Image.DecompressionBombError) as e:
                    results[i].error = f"cannot decode image ({type(e).__name__}: {e})".replace("\n", " ")
            if ready:
                scores = self.scores(np.stack([x for _, x in ready]))
                for (i, _), row in zip(ready, scores):
                    results[i].top = top_k(row, k, self.labels)
            if on_progress:
                on_progress(len(chunk))
        return results
