"""torchrun plumbing for dream and train alike: this process's ranks, the process group's set-up and
teardown, and the re-launch of a `zoo` command under torchrun for `--nproc N`.

Ranks come from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), nanoGPT style: a process
that torchrun did not start is rank 0 of 1 and joins no group. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as tdist

__all__ = ["Ranks", "command", "init_group", "join", "launch", "launched", "leave"]


@dataclass(frozen=True)
class Ranks:
    """This process's place: rank, world size, local rank, and its device ("cpu" or "cuda:N"),
    where collectives' tensors live (NCCL needs them on the GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def master(self) -> bool:
        """Rank 0: the one that logs, writes and checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


def launched() -> bool:
    """Whether this process was started by torchrun with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_group(device: str, timeout: timedelta | None = None) -> None:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA), once.

    `torch.distributed.nn.functional` binds `group.WORLD` into its functions' defaults when it is
    first imported, and torch imports it lazily (torch.optim's first param group loads dynamo, which
    loads it). Imported after the group exists, it keeps the group alive past
    `destroy_process_group`, so gloo's threads are still running at interpreter exit and a rank can
    die with "terminate called without an active exception" (SIGABRT) after its work is done.
    Importing it first binds None instead.
    """
    if tdist.is_initialized():
        return
    import torch.distributed.nn.functional  # noqa: F401  (see above: before the group exists)

    kw = {"timeout": timeout} if timeout is not None else {}
    tdist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", **kw)


def join(device: str, timeout: timedelta | None = None) -> Ranks:
    """This process's Ranks for `device` ("cpu" or "cuda"), joining torchrun's group when launched by it;
    on CUDA each rank takes the GPU of its local rank."""
    if not launched():
        return Ranks(device="cuda:0" if device == "cuda" else "cpu")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    init_group(device, timeout)
    return Ranks(rank, world, local, f"cuda:{local}" if device == "cuda" else "cpu")


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if tdist.is_initialized():
        tdist.destroy_process_group()


def command(nproc: int, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m zoo.cli ARGV`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "zoo.cli", *argv]


def launch(nproc: int, argv: list[str]) -> int:
    """Run `zoo ARGV` in N processes on this machine (the cores shared out) and return torchrun's code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(command(nproc, argv), env=env)
