"""Dreams spread over torchrun ranks: tiles of each step shared out, gradients summed, chunks of a clip.

Under `torchrun` (or `zoo dream --nproc N`, which re-launches itself under it) every rank runs the
same loop with the same seed, so the jitter and the tile grid agree everywhere. In tile mode the
step's tiles go round by round, one per rank; an all-gather hands every rank the round's weighted
tile gradients, which each adds in tile order as one process does, so every rank applies the same
step and the image is the one-process image bit for bit (an all-reduce of partial sums would add
overlaps in another order, and those last-bit differences grow over the steps); rank 0 writes. In
chunk mode each rank dreams one contiguous part of a clip on its own. The plumbing (ranks, the
process group, the re-launch) is zoo/torchrun.py's, shared with training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as tdist

from zoo import torchrun

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks(torchrun.Ranks):
    """This process's ranks, and whether each step's tiles are shared over them."""

    share_tiles: bool = False


_STATE = Ranks()
_EXCHANGE_SECONDS = [0.0]  # time spent in the gradient exchange (for scripts/bench_dream.py)
launched, init_group = torchrun.launched, torchrun.init_group


def current() -> Ranks:
    return _STATE


def setup(device: str, share_tiles: bool = True) -> Ranks:
    """Join torchrun's process group (if any) and record how tiles are shared; returns this rank."""
    global _STATE
    if not launched():
        _STATE = Ranks()
        return _STATE
    ranks = torchrun.join(device, timedelta(hours=6))
    _STATE = Ranks(**asdict(ranks), share_tiles=share_tiles)
    return _STATE


def teardown() -> None:
    global _STATE
    torchrun.leave()
    _STATE = Ranks()


def barrier() -> None:
    if _STATE.world > 1:
        tdist.barrier()


def sharing(tiles: Sequence[object]) -> bool:
    """Whether this step's tiles are shared out over the ranks (several tiles, several ranks, tile mode)."""
    s = _STATE
    return s.share_tiles and s.world > 1 and len(tiles) > 1


def tile_rounds(tiles: Sequence[object]) -> list[list[int]]:
    """The tile indices computed together, round by round: one tile per rank per round when sharing
    ([[0, 1], [2, 3], [4]] for 5 tiles on 2 ranks), else one tile a round."""
    n = len(tiles)
    step = _STATE.world if sharing(tiles) else 1
    return [list(range(a, min(n, a + step))) for a in range(0, n, step)]


def mine(group: Sequence[int], tiles: Sequence[object]) -> int | None:
    """The tile of a round this rank computes (None when the round has fewer tiles than ranks)."""
    if not sharing(tiles):
        return group[0]
    r = _STATE.rank
    return group[r] if r < len(group) else None


def gather_parts(group: Sequence[int], part: torch.Tensor | None, shapes: Sequence[tuple[int, int]],
                 like: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's weighted tile gradient of a round, in tile order, on every rank (one all-gather).

    Each rank then adds them into its full-size gradient in tile order, exactly as one process adds
    its tiles, so the sum (and the image) is the one-process one bit for bit, not just within float
    summation order. `shapes` are the (rows, cols) of the round's tiles; the parts travel padded.
    """
    t0 = time.perf_counter()
    th, tw = max(s[0] for s in shapes), max(s[1] for s in shapes)
    buf = torch.zeros((like.shape[0], like.shape[1], th, tw), dtype=like.dtype, device=like.device)
    if part is not None:
        buf[:, :, : part.shape[2], : part.shape[3]] = part
    out = [torch.empty_like(buf) for _ in range(_STATE.world)]
    tdist.all_gather(out, buf)
    _EXCHANGE_SECONDS[0] += time.perf_counter() - t0
    return [out[r][:, :, : shapes[r][0], : shapes[r][1]] for r in range(len(group))]


def sum_value(value: float) -> float:
    """The ranks' objective values summed (reported only; the step does not use it)."""
    t0 = time.perf_counter()
    v = torch.tensor([value], dtype=torch.float64, device=_STATE.device)
    tdist.all_reduce(v, op=tdist.ReduceOp.SUM)
    _EXCHANGE_SECONDS[0] += time.perf_counter() - t0
    return float(v.item())


def exchange_seconds() -> float:
    """Seconds this process spent exchanging tile gradients (waiting for the other ranks included)."""
    return _EXCHANGE_SECONDS[0]


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

    t = torch.tensor([plan.tile, plan.margin, plan.align, plan.whole], dtype=torch.int64, device=_STATE.device)
    tdist.broadcast(t, 0)
    tile, margin, align, whole = (int(v) for v in t.tolist())
    return replace(plan, tile=tile, margin=margin, align=align, whole=whole)


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


def launch(nproc: int, argv: list[str]) -> int:
    """Run `zoo dream ARGS` in N processes on this machine and return torchrun's exit code."""
    return torchrun.launch(nproc, ["dream", *argv])
