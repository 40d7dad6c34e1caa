"""Data parallelism under ``torchrun``: joining and leaving the process group, and the collectives the Trainer
needs. One process per rank; gloo on the CPU, nccl on the GPU. Without ``torchrun`` (``WORLD_SIZE`` unset or 1)
every function here is a no-op on one process.

    join() -> (rank, world)                 at the Trainer's construction
    agree(flags) -> flags                   every rank takes the same decision: the OR over ranks
    gather(t, dim) -> t                     every rank's tensor, concatenated along ``dim``
    leave() -> bool                         after a command succeeded on every rank (the interface calls it)

Process exit is not here: the interface (``seqlab.cli``) ends a finished worker.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def join() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave_at_exit)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _leave_at_exit() -> None:
    """At exit, the fallback: leave gloo's group rather than leave it to the interpreter's teardown."""
    if dist.is_initialized():
        dist.destroy_process_group()


def agree(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag set if it is set on any rank (one all-reduce); the flags themselves on one process."""
    if not dist.is_initialized():
        return flags
    values = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values]


def gather(tensor: torch.Tensor, dim: int, world: int) -> torch.Tensor:
    """Every rank's ``tensor`` (of the same shape), concatenated along ``dim`` in rank order."""
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)


def leave() -> bool:
    """After a command succeeded on every rank: wait for the others (rank 0 still evaluates and writes after
    training), then leave the group; whether this process was in one. A rank that exits alone while another
    still runs can abort in gloo's teardown ("terminate called without an active exception": one run in three
    or four of 2 CPU processes), failing a run that had finished. Not on an error path: a rank that failed does
    not wait for the others."""
    if not dist.is_initialized():
        return False
    dist.barrier()
    dist.destroy_process_group()
    return True
