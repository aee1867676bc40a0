"""Training on several processes at once: ``torchrun``, DistributedDataParallel, one slice per rank.

``torchrun --nproc_per_node=N`` starts ``N`` copies of a program and tells each one, in
environment variables, who it is (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``) and where to meet
the others (``MASTER_ADDR``, ``MASTER_PORT``). [`distributed_from_env`][gptnotes.distributed.distributed_from_env] reads them and
joins the process group (the ``gloo`` backend on CPUs, ``nccl`` when CUDA is present) for the
duration of a ``with`` block; run without ``torchrun`` it does nothing and describes a single
process, so the same program runs both ways.

Once the group exists, [`gptnotes.train`][gptnotes.training.train] trains data-parallel: every process holds the
whole model, computes the loss of its own slice of every batch ([`batch_rows`][gptnotes.distributed.batch_rows]), and
`torch.nn.parallel.DistributedDataParallel` averages the gradients of all processes
before each optimizer step, so the models stay identical. The global batch of step ``s`` is
drawn from ``(seed, s)`` and rank ``r`` takes rows ``r * B / N`` to ``(r + 1) * B / N``: the
average of the slices' mean losses is the mean loss of the whole batch, so ``N`` processes
compute the same step as one process given the whole batch, up to float rounding.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gptnotes._checks import check_nonnegative_int, check_positive_int

__all__ = ["DistributedContext", "distributed_from_env", "batch_rows", "rank_and_world_size", "data_parallel"]

BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is among the processes that train together.

    Attributes:
        rank: This process's number, ``0 .. world_size - 1``; rank 0 writes checkpoints and
            prints progress.
        world_size: How many processes train together (1 without ``torchrun``).
        local_rank: This process's number on its own machine (picks its GPU).
        backend: ``"gloo"``, ``"nccl"``, or ``None`` for a single process without a group.
        device: Where this process keeps the model: ``cuda:<local_rank>`` with NCCL, else CPU.

    Examples:
        >>> import torch
        >>> from gptnotes import DistributedContext
        >>> ctx = DistributedContext(rank=0, world_size=1, local_rank=0, backend=None, device=torch.device("cpu"))
        >>> ctx.is_main, ctx.distributed
        (True, False)
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str | None
    device: torch.device

    def __post_init__(self) -> None:
        world_size = check_positive_int(self.world_size, "world_size")
        rank = check_nonnegative_int(self.rank, "rank")
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, world_size - 1] = [0, {world_size - 1}], got {rank}")
        check_nonnegative_int(self.local_rank, "local_rank")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} or None, got {self.backend!r}")
        if not isinstance(self.device, torch.device):
            raise TypeError(f"device must be a torch.device, got {type(self.device).__name__}")

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when there is a process group with more than one process."""
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"{name} must be set in the environment (torchrun sets it), but it is missing")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r} from the environment") from None


@contextlib.contextmanager
def distributed_from_env(backend: str | None = None) -> Iterator[DistributedContext]:
    """Join the process group that ``torchrun`` describes in the environment, for a ``with`` block.

    Without ``WORLD_SIZE`` in the environment (a plain ``python`` or ``gptnotes`` run) nothing
    is initialised and the context of a single process is yielded. Under ``torchrun`` (or any
    launcher that sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``) it calls
    `torch.distributed.init_process_group` with ``init_method="env://"`` on entry and
    `torch.distributed.destroy_process_group` on exit. A process group that already
    exists is used as it is, and left alone on exit.

    Args:
        backend: ``"gloo"`` (CPUs) or ``"nccl"`` (CUDA GPUs, one per process); ``None``
            picks ``"nccl"`` when CUDA is available and ``"gloo"`` otherwise.

    Yields:
        A [`DistributedContext`][gptnotes.distributed.DistributedContext]; with NCCL the current CUDA device is set to
        ``cuda:<local_rank>``.

    Raises:
        ValueError: If ``backend`` is unknown, or an environment variable is not an integer
            or out of range.
        RuntimeError: If ``torch.distributed`` is not available in this build of PyTorch.

    Examples:
        >>> from gptnotes import distributed_from_env
        >>> with distributed_from_env() as ctx:     # not under torchrun: one process
        ...     ctx.rank, ctx.world_size, ctx.backend, ctx.is_main
        (0, 1, None, True)
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if dist.is_available() and dist.is_initialized():
        yield _context(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), dist.get_backend())
        return
    if "WORLD_SIZE" not in os.environ:
        yield _context(0, 1, 0, None)
        return
    world_size = check_positive_int(_env_int("WORLD_SIZE"), "WORLD_SIZE")
    rank = check_nonnegative_int(_env_int("RANK"), "RANK")
    local_rank = check_nonnegative_int(_env_int("LOCAL_RANK", 0), "LOCAL_RANK")
    if rank >= world_size:
        raise ValueError(f"RANK={rank} must be smaller than WORLD_SIZE={world_size}")
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of PyTorch")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    try:
        yield _context(rank, world_size, local_rank, backend)
    finally:
        dist.destroy_process_group()


def _context(rank: int, world_size: int, local_rank: int, backend: str | None) -> DistributedContext:
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return DistributedContext(rank, world_size, local_rank, backend, device)


def rank_and_world_size() -> tuple[int, int]:
    """Return ``(rank, world_size)`` of the current process group, ``(0, 1)`` without one.

    Examples:
        >>> from gptnotes import rank_and_world_size
        >>> rank_and_world_size()
        (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def batch_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """The rows of a global batch of ``batch_size`` sequences that process ``rank`` computes.

    Each of the ``world_size`` processes takes an equal, contiguous slice, so that the mean of
    the slices' mean losses equals the mean loss of the whole batch.

    Args:
        batch_size: B, the global batch (the same on every process).
        rank: This process, ``0 <= rank < world_size``.
        world_size: N, the number of processes; must divide ``batch_size``.

    Shape:
        - A global batch ``(B, T)`` indexed with the result gives ``(B / N, T)``.

    Returns:
        ``slice(rank * B // N, (rank + 1) * B // N)``.

    Raises:
        TypeError: If an argument is not an integer.
        ValueError: If ``batch_size`` is not divisible by ``world_size`` or ``rank`` is out
            of range.

    Examples:
        >>> import torch
        >>> from gptnotes import batch_rows
        >>> x = torch.arange(8).view(4, 2)                  # a global batch (B=4, T=2)
        >>> [x[batch_rows(4, r, 2)].tolist() for r in range(2)]
        [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    world_size = check_positive_int(world_size, "world_size")
    rank = check_nonnegative_int(rank, "rank")
    if rank >= world_size:
        raise ValueError(f"rank must be smaller than world_size={world_size}, got {rank}")
    if batch_size % world_size:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the number of processes ({world_size}): "
            "each process computes an equal slice of every batch"
        )
    per_rank = batch_size // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` in `torch.nn.parallel.DistributedDataParallel` for the process group.

    The wrapper copies rank 0's weights to every process when it is made, and during
    ``backward()`` averages each gradient over the processes, so that every process takes the
    same optimizer step. [`gptnotes.train`][gptnotes.training.train] calls it when the group has more than one
    process. On a GPU the wrapper works on this process's device (``device_ids=[device.index]``).

    Args:
        model: The model to train, on ``device``.
        device: This process's device (``DistributedContext.device``).

    Returns:
        The wrapper; ``wrapper.module`` is ``model``.

    Raises:
        RuntimeError: If no process group exists (from PyTorch).

    Examples:
        >>> from gptnotes.distributed import data_parallel, rank_and_world_size
        >>> rank_and_world_size()                 # no torchrun here: train() does not wrap
        (0, 1)
    """
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
