"""Dreams spread over torchrun ranks: tiles of each step shared out, gradients summed, chunks of a clip.

Under `torchrun` (or `zoo dream --nproc N`, which re-launches itself under it) every rank runs the
same loop with the same seed, so the jitter and the tile grid agree everywhere. In tile mode each
rank computes the gradients of its share of the step's tiles into a full-size buffer, one
all-reduce sums them and every rank applies the same step; rank 0 writes. In chunk mode each rank
dreams one contiguous part of a clip on its own. gloo on CPU, NCCL on GPU. This module keeps its own
small setup (train/dist.py is a layer above dream and cannot be imported from here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as tdist

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place: rank, world size, and whether tiles are shared over the world."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    share_tiles: bool = False
    device: str = "cpu"  # where collectives' tensors live (NCCL needs them on the GPU)

    @property
    def master(self) -> bool:
        return self.rank == 0


_STATE = Ranks()
_REDUCE_SECONDS = [0.0]  # time spent in all-reduces (for scripts/bench_dream.py)


def current() -> Ranks:
    return _STATE


def launched() -> bool:
    """Whether this process was started by torchrun with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def setup(device: str, share_tiles: bool = True) -> Ranks:
    """Join torchrun's process group (if any) and record how tiles are shared; returns this rank."""
    global _STATE
    if not launched():
        _STATE = Ranks()
        return _STATE
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device == "cuda" else "gloo", timeout=timedelta(hours=6))
    _STATE = Ranks(rank, world, local, share_tiles, f"cuda:{local}" if device == "cuda" else "cpu")
    return _STATE


def teardown() -> None:
    global _STATE
    if tdist.is_initialized():
        tdist.destroy_process_group()
    _STATE = Ranks()


def barrier() -> None:
    if _STATE.world > 1:
        tdist.barrier()


def my_tiles(tiles: Sequence[T]) -> list[tuple[int, T]]:
    """The (index, tile) pairs this rank computes: every world-th tile (all of them when not sharing)."""
    s = _STATE
    if not s.share_tiles or s.world <= 1 or len(tiles) <= 1:
        return list(enumerate(tiles))
    return [(i, t) for i, t in enumerate(tiles) if i % s.world == s.rank]


def sharing(tiles: Sequence[object]) -> bool:
    s = _STATE
    return s.share_tiles and s.world > 1 and len(tiles) > 1


def reduce_gradient(grad: torch.Tensor, value: float) -> tuple[torch.Tensor, float]:
    """Sum the ranks' partial gradients (in place) and objective values; every rank gets the same sum."""
    import time

    t0 = time.perf_counter()
    tdist.all_reduce(grad, op=tdist.ReduceOp.SUM)
    v = torch.tensor([value], dtype=torch.float64, device=grad.device)
    tdist.all_reduce(v, op=tdist.ReduceOp.SUM)
    _REDUCE_SECONDS[0] += time.perf_counter() - t0
    return grad, float(v.item())


def reduce_seconds() -> float:
    return _REDUCE_SECONDS[0]


def broadcast_int(value: int) -> int:
    """Rank 0's value on every rank."""
    if _STATE.world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=_STATE.device)
    tdist.broadcast(t, 0)
    return int(t.item())


def broadcast_array(a):
    """Rank 0's float32 numpy array (same shape everywhere) on every rank."""
    if _STATE.world <= 1:
        return a
    t = torch.from_numpy(a.astype("float32")).to(_STATE.device)
    tdist.broadcast(t, 0)
    return t.cpu().numpy()


def same_plan(plan: T) -> T:
    """Rank 0's tile plan on every rank when tiles are shared (free memory, and so the tile, may differ)."""
    if not _STATE.share_tiles or _STATE.world <= 1:
        return plan
    from dataclasses import replace

    t = torch.tensor([plan.tile, plan.margin, plan.align], dtype=torch.int64, device=_STATE.device)
    tdist.broadcast(t, 0)
    tile, margin, align = (int(v) for v in t.tolist())
    return replace(plan, tile=tile, margin=margin, align=align)


def chunk_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Split n frames into `parts` contiguous [start, stop) ranges whose sizes differ by at most one."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    base, extra = divmod(n, parts)
    out, a = [], 0
    for r in range(parts):
        b = a + base + (1 if r < extra else 0)
        out.append((a, b))
        a = b
    return out


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m zoo.cli dream ARGS`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "zoo.cli", "dream", *argv]


def launch(nproc: int, argv: list[str]) -> int:
    """Run `zoo dream ARGS` in N processes on this machine and return torchrun's exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, argv), env=env)
