"""Batches for training and evaluation, decided by the seed and the iteration alone.

Which images a global batch holds, and the augmentation seed of each, are pure functions of
(seed, iteration): a resumed run, a run on N processes and a run with any number of DataLoader
workers all see the same samples with the same crops and colours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

Sample = tuple[int, int]  # (index into the source, augmentation seed)


def to_bgr_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 RGB uint8 -> 3xHxW float32 BGR 0-255."""
    return torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))).float()


@dataclass
class Plan:
    """The order of training samples: a seeded permutation per epoch, a seed per drawn sample."""

    train_idx: np.ndarray
    batch: int
    seed: int

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.train_idx))

    def global_batch(self, it: int) -> list[Sample]:
        n = len(self.train_idx)
        out, cache = [], {}
        for pos in range(it * self.batch, (it + 1) * self.batch):
            epoch = pos // n
            if epoch not in cache:
                cache[epoch] = self._perm(epoch)
            out.append((int(self.train_idx[cache[epoch][pos % n]]), (self.seed << 32) + pos))
        return out

    def micro_batches(self, it: int, rank: int, world: int, micro: int) -> list[list[Sample]]:
        """This rank's share of iteration `it`, cut into micro-batches (gradient accumulation)."""
        per_rank = self.batch // world
        mine = self.global_batch(it)[rank * per_rank : (rank + 1) * per_rank]
        return [mine[i : i + micro] for i in range(0, len(mine), micro)]


class BatchSampler:
    """Micro-batches from iteration `start` to `stop` for one rank, in the order the loop uses them."""

    def __init__(self, plan: Plan, start: int, stop: int, rank: int, world: int, micro: int):
        self.plan, self.start, self.stop = plan, start, stop
        self.rank, self.world, self.micro = rank, world, micro

    def __iter__(self) -> Iterator[list[Sample]]:
        for it in range(self.start, self.stop):
            yield from self.plan.micro_batches(it, self.rank, self.world, self.micro)

    def __len__(self) -> int:
        per_rank = self.plan.batch // self.world
        return (self.stop - self.start) * -(-per_rank // self.micro)


class AugmentedImages(torch.utils.data.Dataset):
    """(BGR 0-255 tensor, label) for a (source index, seed) key, augmented with that seed."""

    def __init__(self, source, transform: Callable, label_map: dict[int, int]):
        self.source, self.transform, self.label_map = source, transform, label_map

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: Sample) -> tuple[torch.Tensor, int]:
        index, seed = key
        gen = torch.Generator().manual_seed(seed)
        img = self.transform(to_bgr_tensor(self.source[index]), gen)
        return img.contiguous(), self.label_map[int(self.source.labels[index])]


def loader(dataset: AugmentedImages, batches, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )


def eval_batches(indices: np.ndarray, size: int) -> list[list[Sample]]:
    return [[(int(i), 0) for i in indices[k : k + size]] for k in range(0, len(indices), size)]


@dataclass
class NetInput:
    """BGR 0-255 batches into the net's own space with the model's Preprocess numbers: channel
    order, minus mean, times scale, x/y swapped for nets trained transposed (batched, on device)."""

    channel_order: str = "BGR"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # in the net's channel order
    scale: float = 1.0
    transpose: bool = False

    @classmethod
    def from_preprocess(cls, p) -> NetInput:
        return cls(p.channel_order, tuple(float(m) for m in p.mean), float(p.scale), bool(p.transpose))

    def __call__(self, bgr: torch.Tensor) -> torch.Tensor:
        x = bgr.flip(1) if self.channel_order.upper() == "RGB" else bgr
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) * self.scale
        return x.transpose(-1, -2) if self.transpose else x
