"""torchrun plumbing: detect the process group from the environment (nanoGPT style), all-reduce
gradients, and re-launch `zoo train` under torchrun for `--nproc N`.

Rank 0 alone logs, evaluates and checkpoints; every rank computes its slice of the same global batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from zoo.dream.distributed import init_group


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def master(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from zoo.errors import UserError

        raise UserError(f"--device {pref}: no CUDA device on this machine")
    return torch.device("cuda", local_rank)


def setup(pref: str = "auto") -> Dist:
    """The process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return Dist(device=pick_device(pref))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(pref, local)
    init_group(device.type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Dist(rank, world, local, device)


def teardown(d: Dist) -> None:
    if d.world > 1 and tdist.is_initialized():
        tdist.destroy_process_group()


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


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m zoo.cli train ARGS`."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "zoo.cli",
        "train",
        *argv,
    ]


def launch(nproc: int, argv: list[str]) -> int:
    """Run `zoo train ARGS` in N processes and return torchrun's exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, argv), env=env)
