"""The one preprocessing: RGB pictures to and from a net's own input space.

Classify, dream and train all use this class, so a model's channel order, mean and scale are
written down once (in its model card) and applied the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.registry import ModelCard


@dataclass(frozen=True)
class Preprocess:
    """Net space = (channels in `channel_order`, 0..255, minus `mean`) * `scale`, as 3xHxW float32.

    `mean` is per channel in the net's channel order. `resize` is the short side an image is scaled
    to before the center crop of `input_size` (0: scale straight to `input_size`). `transpose`:
    the net was trained on images with x and y swapped (MTCNN, fed by MATLAB).
    """

    channel_order: str = "BGR"
    mean: Sequence[float] = (104.0, 117.0, 123.0)
    scale: float = 1.0
    input_size: tuple[int, int] = (224, 224)
    resize: int = 256
    transpose: bool = False

    def __post_init__(self) -> None:
        if self.channel_order not in ("BGR", "RGB"):
            raise ValueError(f"channel_order must be BGR or RGB, not {self.channel_order!r}")
        if len(self.mean) != 3:
            raise ValueError("mean must have one value per channel")

    @property
    def _mean(self) -> np.ndarray:
        return np.asarray(self.mean, dtype=np.float32).reshape(3, 1, 1)

    def to_net(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 RGB (uint8 or float, 0..255) -> 3xHxW float32 in net space. No resizing."""
        x = np.asarray(rgb, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB array, got shape {x.shape}")
        x = x.transpose(2, 0, 1)
        if self.channel_order == "BGR":
            x = x[::-1]
        x = (x - self._mean) * np.float32(self.scale)
        if self.transpose:
            x = x.transpose(0, 2, 1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def from_net(self, x: np.ndarray) -> np.ndarray:
        """3xHxW net space -> HxWx3 float32 RGB 0..255 (not clipped)."""
        x = np.asarray(x, dtype=np.float32)
        if self.transpose:
            x = x.transpose(0, 2, 1)
        x = x / np.float32(self.scale) + self._mean
        if self.channel_order == "BGR":
            x = x[::-1]
        return np.ascontiguousarray(x.transpose(1, 2, 0), dtype=np.float32)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Where pixel values 0 and 255 land in net space, per channel (3x1x1): the dream clip range."""
        lo = (np.float32(0.0) - self._mean) * np.float32(self.scale)
        hi = (np.float32(255.0) - self._mean) * np.float32(self.scale)
        return np.minimum(lo, hi).astype(np.float32), np.maximum(lo, hi).astype(np.float32)

    def fit(self, image: Image.Image) -> Image.Image:
        """Deploy geometry: scale the short side to `resize`, center crop `input_size` (RGB)."""
        image = image.convert("RGB")
        h, w = self.input_size
        if self.resize <= 0:
            return image.resize((w, h), Image.BILINEAR)
        short = max(self.resize, h, w)
        iw, ih = image.size
        f = short / min(iw, ih)
        nw, nh = max(w, round(iw * f)), max(h, round(ih * f))
        image = image.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - w) // 2, (nh - h) // 2
        return image.crop((left, top, left + w, top + h))

    def prepare(self, image: Image.Image) -> np.ndarray:
        """A PIL image -> 3xHxW net-space array at the deploy size (for classify and eval)."""
        return self.to_net(np.asarray(self.fit(image)))

    @classmethod
    def from_card(cls, card: ModelCard, mean_file: Path | None = None) -> Preprocess:
        """The card's preprocessing; a mean image (mean.binaryproto) is reduced to its channel means."""
        if card.mean is not None:
            mean = tuple(card.mean)
        elif mean_file is not None:
            mean = tuple(float(v) for v in read_mean_pixel(mean_file))
        else:
            raise ValueError(f"model {card.name}: no mean pixel and no mean file given")
        return cls(
            channel_order=card.channel_order,
            mean=mean,
            scale=card.scale,
            input_size=card.input_size,
            resize=card.resize,
            transpose=card.transpose,
        )


def read_mean_pixel(path: Path) -> np.ndarray:
    """Per-channel mean of a Caffe mean file (BlobProto, CxHxW in the net's channel order)."""
    try:
        from zoo.convert import read_mean

        mean = np.asarray(read_mean(str(path)), dtype=np.float64)
    except ImportError:  # pragma: no cover - before the converter had read_mean
        from zoo.convert.proto import caffe_pb2

        blob = caffe_pb2.BlobProto.FromString(Path(path).read_bytes())
        dims = list(blob.shape.dim) or [blob.channels, blob.height, blob.width]
        mean = np.asarray(blob.data, dtype=np.float64).reshape(dims[-3:])
    mean = mean.reshape(-1, *mean.shape[-2:])
    return mean.mean(axis=(1, 2))
