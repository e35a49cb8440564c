"""Training over torchrun ranks: every rank computes its slice of the same global batch and the
gradients are summed (zoo/torchrun.py holds the plumbing shared with dream: ranks, the process
group, the re-launch of `zoo train` for `--nproc N`).

Rank 0 alone logs, evaluates and checkpoints.
"""

from __future__ import annotations

import torch
import torch.distributed as tdist

from zoo import torchrun
from zoo.errors import UserError
from zoo.torchrun import Ranks as Dist

__all__ = ["Dist", "all_reduce_grads", "launch", "setup", "teardown"]


def setup(pref: str = "auto") -> Dist:
    """This process's ranks for `--device` (auto: CUDA when there is a GPU), joining torchrun's group."""
    if pref != "cpu" and not torch.cuda.is_available():
        if pref != "auto":
            raise UserError(f"--device {pref}: no CUDA device on this machine")
        pref = "cpu"
    return torchrun.join("cpu" if pref == "cpu" else "cuda")


def teardown(d: Dist) -> None:
    if d.world > 1:
        torchrun.leave()


def all_reduce_grads(params: list[torch.nn.Parameter], d: Dist) -> None:
    """Sum gradients over ranks in one flat buffer (each rank's loss is already divided by the global
    batch, so the sum is the global mean)."""
    if d.world <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
    k = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[k : k + n].view_as(g))
        k += n


def launch(nproc: int, argv: list[str]) -> int:
    """Run `zoo train ARGS` in N processes and return torchrun's exit code."""
    return torchrun.launch(nproc, ["train", *argv])
