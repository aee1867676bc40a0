"""Training a language model: the loop, the loss estimate, and checkpoints.

* [`estimate_loss`][gptnotes.training.estimate_loss] averages the loss over a few random batches of each split, in
  ``eval()`` mode and without gradients, and puts every module back in the mode it was in.
* [`train`][gptnotes.training.train] runs AdamW on random batches of the training data and returns a
  [`TrainState`][gptnotes.training.TrainState] (the optimizer, the number of steps done, and a [`TrainHistory`][gptnotes.training.TrainHistory]
  of losses for a loss curve).
* [`save_checkpoint`][gptnotes.training.save_checkpoint] / [`load_checkpoint`][gptnotes.training.load_checkpoint] write and read the model, its sizes, the
  optimizer, the step, the history and the tokenizer's vocabulary, safely: the file is written
  to a temporary name and renamed, and read with ``torch.load(..., weights_only=True)``, which
  refuses arbitrary pickled objects.

Randomness is a function of ``(seed, step)``: the batch of step ``s`` and the dropout masks of
step ``s`` come from generators seeded with both, never from the global random state. So on
the CPU the same seed gives bit-identical losses, and training ``2N`` steps gives exactly the
same model as training ``N``, saving, loading and training ``N`` more.

Speed: [`train`][gptnotes.training.train] steps with PyTorch's fused AdamW (one kernel for all parameters, the
same update as the default implementation up to float rounding) and, with glibc, keeps the
memory it frees for the next step; [`compiled`][gptnotes.training.compiled] runs every
transformer block through one ``torch.compile``-d function, and falls back to plain eager
execution where no compiler is available. Under ``torchrun`` (see [`gptnotes.distributed`][gptnotes.distributed])
[`train`][gptnotes.training.train] trains data-parallel with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import glob
import hashlib
import importlib
import inspect
import math
import os
import pickle
import platform
import stat
import tempfile
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from gptnotes._checks import (
    check_allocation,
    check_bool,
    check_int_tensor,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
    check_token_ids,
)
from gptnotes.bigram import BigramLanguageModel
from gptnotes.data import CharTokenizer, get_batch
from gptnotes.distributed import batch_rows, rank_and_world_size
from gptnotes.gpt import GPTConfig, GPTLanguageModel, _call_forward

try:
    import fcntl
except ImportError:  # Windows: checkpoints are written without a lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "estimate_loss",
    "train",
    "TrainHistory",
    "TrainState",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_lock",
    "check_checkpoint_target",
    "CheckpointInUseError",
    "eval_mode",
    "make_optimizer",
    "compiled",
    "CompileStatus",
]

CHECKPOINT_FORMAT = "gptnotes-checkpoint"
CHECKPOINT_VERSION = 1
_EVAL_STREAM = 0x5EED_E7A1  # keeps evaluation batches apart from training batches
_DROPOUT_STREAM = 0xD80F_0000  # dropout of ranks other than 0 under DDP (rank 0 keeps (seed, step))


def _step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed from (seed, step, stream), different for every combination in practice."""
    x = (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) % (1 << 64)
    x ^= x >> 31
    return x % (1 << 63)


def _device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (batches are moved there), CPU if it has none."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in ``eval()`` mode inside a ``with`` block, and restore every module's mode after.

    Each submodule gets back its own previous ``training`` flag, even if the block raises, and
    even if the modules were in mixed modes (``model.train()`` would set them all alike).

    Examples:
        >>> from torch import nn
        >>> from gptnotes import eval_mode
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
        >>> with eval_mode(net):
        ...     net.training, net[1].training
        (False, False)
        >>> net.training, net[1].training
        (True, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was_training in modes:
            m.training = was_training


def _check_language_model(model: object) -> None:
    """Raise unless ``model`` is a module that can be called as ``model(x, y)``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        inspect.signature(model.forward).bind(None, None)
    except TypeError:
        raise TypeError(
            f"model must be called as model(x, y) -> (logits, loss), as the language models of gptnotes are; "
            f"{type(model).__name__}.forward{inspect.signature(model.forward)} does not take (x, y)"
        ) from None
    except ValueError:  # no signature to read (a C extension): the first call will tell
        pass


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: Mapping[str, torch.Tensor],
    block_size: int,
    batch_size: int,
    eval_iters: int,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Average the loss of ``model`` over ``eval_iters`` random batches of each split.

    One batch's loss is noisy; the mean of several is a steadier number to compare the
    training and validation loss with. The model runs in ``eval()`` mode (no dropout) and
    without gradients; afterwards every module is back in its previous mode, even if an error
    is raised. Takes the data explicitly, so it can be called on any model and any text.

    Args:
        model: Any module called as ``model(x, y) -> (logits, loss)``.
        splits: Named 1-D token tensors, e.g. ``{"train": train_data, "val": val_data}``.
        block_size: T of the batches (at most the model's ``block_size``).
        batch_size: B of the batches.
        eval_iters: How many batches per split.
        generator: Optional `torch.Generator` for the batches; pass a seeded one for
            reproducible estimates.

    Shape:
        - Each split: ``(N,)`` token ids; each batch drawn from it: ``(B, T)`` with
          ``B = batch_size``, ``T = block_size``.

    Returns:
        ``{name: mean loss}`` (Python floats, nats per token), in the order of ``splits``.

    Raises:
        TypeError: If ``model`` is not a module called as ``model(x, y)``, ``splits`` is not a
            mapping of integer tensors, or a size not an integer.
        ValueError: If ``splits`` is empty, a size is not positive, or a split is shorter
            than ``block_size + 1``.

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel, estimate_loss
        >>> _ = torch.manual_seed(0)
        >>> model = BigramLanguageModel(vocab_size=5)
        >>> data = torch.randint(5, (100,), generator=torch.Generator().manual_seed(0))
        >>> losses = estimate_loss(model, {"train": data[:80], "val": data[80:]}, block_size=4,
        ...                        batch_size=8, eval_iters=10, generator=torch.Generator().manual_seed(0))
        >>> sorted(losses), model.training            # back in training mode
        (['train', 'val'], True)
    """
    _check_language_model(model)
    if not isinstance(splits, Mapping):
        raise TypeError(f"splits must be a mapping of names to token tensors, got {type(splits).__name__}")
    if not splits:
        raise ValueError("splits must name at least one data split, e.g. {'val': val_data}")
    for name, data in splits.items():
        check_int_tensor(data, f"splits[{name!r}]", ndim=1)
    block_size = check_positive_int(block_size, "block_size")
    for name, data in splits.items():
        if len(data) < block_size + 1:
            raise ValueError(
                f"splits[{name!r}] has {len(data)} tokens, too few for block_size={block_size} "
                f"(a batch needs block_size + 1 = {block_size + 1})"
            )
    batch_size = check_positive_int(batch_size, "batch_size")
    eval_iters = check_positive_int(eval_iters, "eval_iters")
    out = {}
    device = _device_of(model)
    with eval_mode(model):
        for name, data in splits.items():
            losses = torch.zeros(eval_iters)
            for i in range(eval_iters):
                x, y = get_batch(data, block_size, batch_size, generator=generator)
                _, loss = model(x.to(device), y.to(device))
                losses[i] = loss.item()
            out[name] = losses.mean().item()
    return out


@dataclass
class TrainHistory:
    """The losses recorded by [`train`][gptnotes.training.train], ready for a loss curve.

    Attributes:
        steps: Step numbers (1-based: after ``s`` optimizer steps) of ``losses``.
        losses: Training loss of the batch of each step (noisy).
        eval_steps: Steps at which [`estimate_loss`][gptnotes.training.estimate_loss] was run (0 = before training).
        eval_losses: One ``{split: loss}`` dict per entry of ``eval_steps``.

    Examples:
        >>> from gptnotes import TrainHistory
        >>> h = TrainHistory(steps=[1, 2], losses=[4.2, 4.1])
        >>> TrainHistory.from_dict(h.to_dict()) == h
        True
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_losses: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain lists and dicts, storable in a ``weights_only`` checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainHistory:
        """Inverse of [`to_dict`][gptnotes.training.TrainHistory.to_dict]."""
        return cls(
            steps=[int(s) for s in d["steps"]],
            losses=[float(v) for v in d["losses"]],
            eval_steps=[int(s) for s in d["eval_steps"]],
            eval_losses=[{str(k): float(v) for k, v in e.items()} for e in d["eval_losses"]],
        )


@dataclass
class TrainState:
    """Everything [`train`][gptnotes.training.train] needs to continue where it stopped.

    [`train`][gptnotes.training.train] returns one; pass it back as ``state=`` to go on, or save it with
    [`save_checkpoint`][gptnotes.training.save_checkpoint] and get it back from [`load_checkpoint`][gptnotes.training.load_checkpoint].

    Attributes:
        optimizer: The AdamW optimizer (its moment estimates are part of the state).
        step: Number of optimizer steps done so far.
        seed: The seed of the run; step ``s`` draws its batch and dropout from ``(seed, s)``.
        history: The recorded losses.

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel, train
        >>> _ = torch.manual_seed(0)
        >>> model = BigramLanguageModel(vocab_size=4)
        >>> data = torch.tensor([0, 1, 2, 3] * 10)
        >>> state = train(model, data, steps=5, batch_size=2, block_size=4, progress=False)
        >>> state = train(model, data, steps=5, batch_size=2, block_size=4, progress=False, state=state)
        >>> state.step, state.history.steps[-3:]
        (10, [8, 9, 10])
    """

    optimizer: torch.optim.Optimizer
    step: int = 0
    seed: int = 0
    history: TrainHistory = field(default_factory=TrainHistory)

    def __post_init__(self) -> None:
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(self.optimizer).__name__}")
        self.step = check_nonnegative_int(self.step, "step")
        self.seed = _check_seed(self.seed)
        if not isinstance(self.history, TrainHistory):
            raise TypeError(f"history must be a TrainHistory, got {type(self.history).__name__}")


def _check_seed(seed: object, name: str = "seed") -> int:
    """A seed of a run: an integer in ``[0, 2**63)`` (what ``torch.manual_seed`` keeps of it)."""
    seed = check_nonnegative_int(seed, name)
    if seed >= 2**63:
        raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1, got {seed}")
    return seed


def _check_optimizer_of(optimizer: object, model: nn.Module) -> None:
    """Raise unless ``optimizer`` updates exactly the parameters of ``model``."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"state.optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    theirs = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if theirs != {id(p) for p in model.parameters()}:
        raise ValueError(
            "state.optimizer does not update the parameters of model: build it from this model "
            "(make_optimizer(model)), or pass state=None for a new run"
        )


def make_optimizer(model: nn.Module, lr: float = 1e-3) -> torch.optim.AdamW:
    """Return the optimizer [`train`][gptnotes.training.train] uses: AdamW, PyTorch's defaults besides ``lr``, fused.

    ``fused=True`` updates every parameter with one kernel (first and second moments, bias
    correction, weight decay and the step in a single pass over the numbers) instead of about
    ten separate tensor operations per parameter, each a trip through Python and PyTorch's
    dispatcher. The update is the AdamW update either way, equal up to float rounding (the
    tests check it). Where the fused kernel is not available (an old PyTorch, an unusual
    device) the default implementation is used.

    Args:
        model: The module whose parameters to optimise.
        lr: Learning rate.

    Returns:
        A `torch.optim.AdamW`.

    Raises:
        TypeError: If ``model`` is not a module or ``lr`` not a number.
        ValueError: If ``lr`` is not positive and finite.

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel, make_optimizer
        >>> _ = torch.manual_seed(0)
        >>> opt = make_optimizer(BigramLanguageModel(vocab_size=5), lr=1e-2)
        >>> opt.defaults["lr"], opt.defaults["fused"]
        (0.01, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    lr = check_positive_finite(lr, "lr")
    params = list(model.parameters())
    try:
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for these parameters
        return torch.optim.AdamW(params, lr=lr)


@contextlib.contextmanager
def _keep_freed_memory() -> Iterator[bool]:
    """Keep the memory freed during training in the process, instead of returning it to the OS.

    glibc's ``malloc`` gives each allocation above 32 MB (the lecture model's activations are
    up to 100 MB) its own ``mmap`` and returns it with ``munmap`` when it is freed, so every
    training step asks the kernel for fresh pages and the kernel zeroes each 4 KB page on
    first touch: about a twentieth of the lecture model's step went to page faults. Inside
    this block every allocation comes from the heap and freed memory stays there for the next
    step. On exit the settings go back and the kept memory is released (``malloc_trim``).
    Elsewhere than glibc (macOS, musl) it does nothing. Yields whether it acted.
    """
    libc = None
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None)
        if libc is not None and not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
            libc = None
    if libc is None:
        yield False
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    libc.mallopt(M_MMAP_MAX, 0)  # no mmap: all allocations from the heap
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # never shrink the heap
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, 65536)  # glibc's defaults
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


def _model_vocab_size(model: nn.Module) -> int | None:
    if isinstance(model, GPTLanguageModel):
        return model.config.vocab_size
    if isinstance(model, BigramLanguageModel):
        return model.vocab_size
    return None


def _model_block_size(model: nn.Module) -> int | None:
    if isinstance(model, GPTLanguageModel):
        return model.config.block_size
    return None


def train(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor | None = None,
    *,
    steps: int,
    batch_size: int,
    block_size: int,
    lr: float = 1e-3,
    eval_interval: int | None = None,
    eval_iters: int = 20,
    seed: int = 0,
    progress: bool = True,
    state: TrainState | None = None,
    on_step: Callable[[TrainState], object] | None = None,
) -> TrainState:
    """Train ``model`` with AdamW on random batches of ``train_data``.

    Each step draws a batch with [`gptnotes.get_batch`][gptnotes.data.get_batch], computes ``model(x, y)``, and
    takes one AdamW step (PyTorch's defaults besides ``lr``, as in the lecture). Every
    ``eval_interval`` steps (and before the first and after the last step) the mean loss on
    ``train_data`` and ``val_data`` is estimated with [`estimate_loss`][gptnotes.training.estimate_loss].

    Deterministic on the CPU: the batch and the dropout masks of step ``s`` depend only on
    ``(seed, s)``, and the global random state is neither used nor changed. To continue a run,
    pass the returned [`TrainState`][gptnotes.training.TrainState] (or the one a checkpoint restored) as ``state``; the
    result is bit-identical to one uninterrupted run. A new run's optimizer comes from
    [`make_optimizer`][gptnotes.training.make_optimizer] (fused AdamW). With glibc (Linux) the memory freed during the
    steps is kept for the next step instead of being handed back to the operating system
    and faulted in again, page by page (released when training ends).

    Data-parallel on several processes: when a `torch.distributed` process group with
    ``N > 1`` processes exists ([`gptnotes.distributed_from_env`][gptnotes.distributed.distributed_from_env] under ``torchrun``), the model is
    wrapped in `torch.nn.parallel.DistributedDataParallel`; every process draws the same
    global batch of ``batch_size`` sequences from ``(seed, step)`` and computes the rows
    [`gptnotes.batch_rows`][gptnotes.distributed.batch_rows] gives it, and the averaged gradients make the step equal (up to
    float rounding) to one process computing the whole batch. ``batch_size`` is the global
    batch and must be divisible by ``N``; the recorded loss is the whole batch's; only rank 0
    shows a progress bar.

    Args:
        model: A language model called as ``model(x, y) -> (logits, loss)``; trained in place.
        train_data: 1-D integer tensor of token ids.
        val_data: Optional 1-D integer tensor for validation estimates.
        steps: Number of optimizer steps to take now (on top of ``state.step``).
        batch_size: B, the sequences per step (over all processes together under DDP).
        block_size: T of the batches (at most the model's ``block_size``).
        lr: AdamW learning rate for a new run (a resumed run keeps its optimizer's).
        eval_interval: Estimate the losses every this many steps; ``None`` only before the
            first and after the last step.
        eval_iters: Batches per split for each estimate.
        seed: Seed of a new run (a resumed run keeps ``state.seed``).
        progress: Show a tqdm progress bar with the latest loss.
        state: A [`TrainState`][gptnotes.training.TrainState] to continue from; ``None`` starts a new run.
        on_step: Called as ``on_step(state)`` after every step (and its loss estimate), when
            the state is complete and can be saved; ``gptnotes train`` saves every
            ``--save-every`` steps and stops on Ctrl-C there. An exception it raises ends
            the run with the state of that step.

    Shape:
        - train_data, val_data: ``(N,)`` token ids.
        - Each step's batch: ``(B, T)`` inputs and targets, ``T = block_size`` (``(B / N, T)``
          on each of ``N`` processes).

    Returns:
        The updated [`TrainState`][gptnotes.training.TrainState] (step, optimizer and history of the whole run).

    Raises:
        TypeError: If an argument has the wrong type, or ``model`` cannot be called as
            ``model(x, y)``.
        ValueError: If a number is not positive, ``seed`` is not in ``[0, 2**63)``,
            ``block_size`` exceeds the model's, the data is shorter than ``block_size + 1``
            or holds a token id outside the model's vocabulary, ``batch_size`` is not divisible by
            the number of processes, or ``state.optimizer`` does not update ``model``'s
            parameters.
        FloatingPointError: If the training loss becomes NaN or infinite (lower ``lr``).

    Examples:
        >>> import torch
        >>> from gptnotes import GPTLanguageModel, train
        >>> _ = torch.manual_seed(0)
        >>> data = torch.arange(200) % 7                     # a text that repeats 0 1 2 ... 6
        >>> model = GPTLanguageModel(vocab_size=7, block_size=8, n_embd=16, n_head=2, n_layer=1)
        >>> state = train(model, data, steps=60, batch_size=8, block_size=8, lr=1e-2, progress=False)
        >>> state.step, len(state.history.losses)
        (60, 60)
        >>> state.history.losses[-1] < state.history.losses[0] / 4
        True
    """
    _check_language_model(model)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    block_size = check_positive_int(block_size, "block_size")
    eval_iters = check_positive_int(eval_iters, "eval_iters")
    if eval_interval is not None:
        eval_interval = check_positive_int(eval_interval, "eval_interval")
    check_bool(progress, "progress")
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step must be a function of the TrainState or None, got {type(on_step).__name__}")
    model_block = _model_block_size(model)
    if model_block is not None and block_size > model_block:
        raise ValueError(f"block_size={block_size} must not exceed the model's block_size={model_block}")
    splits = {"train": train_data}
    if val_data is not None:
        splits["val"] = val_data
    for name, data in splits.items():
        check_int_tensor(data, f"{name}_data", ndim=1)
        if len(data) < block_size + 1:
            raise ValueError(
                f"{name}_data has {len(data)} tokens, too few for block_size={block_size} "
                f"(a batch needs block_size + 1 = {block_size + 1})"
            )
        vocab_size = _model_vocab_size(model)
        if vocab_size is not None:  # now, not when a random batch happens to draw it hours later
            check_token_ids(data, vocab_size, f"{name}_data")
    rank, world_size = rank_and_world_size()
    batch_rows(batch_size, rank, world_size)  # checks that the processes can share the batch
    if state is None:
        lr = check_positive_finite(lr, "lr")
        seed = _check_seed(seed)
        state = TrainState(optimizer=make_optimizer(model, lr), seed=seed)
    elif not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState or None, got {type(state).__name__}")
    else:
        _check_optimizer_of(state.optimizer, model)

    def evaluate(at_step: int) -> None:
        g = torch.Generator().manual_seed(_step_seed(state.seed, at_step, _EVAL_STREAM))
        state.history.eval_steps.append(at_step)
        state.history.eval_losses.append(estimate_loss(model, splits, block_size, batch_size, eval_iters, g))

    device = _device_of(model)
    net = _data_parallel(model, device) if world_size > 1 else model  # copies rank 0's weights to all
    if state.step == 0 and not state.history.eval_steps:
        evaluate(0)
    first, last = state.step + 1, state.step + steps
    shown = progress and rank == 0
    # tqdm.auto (a widget in Jupyter) only when a bar is shown: importing it in a Jupyter kernel
    # without ipywidgets warns "IProgress not found" on stderr, into every notebook of the site.
    bar_type = importlib.import_module("tqdm.auto").tqdm if shown else tqdm
    bar = bar_type(range(first, last + 1), desc="train", disable=not shown, leave=False)
    try:
        with _keep_freed_memory():  # no fresh pages from the kernel for every step
            for step in bar:
                loss = _train_step(net, state.optimizer, train_data, block_size, batch_size, state.seed, step, device)
                state.step = step
                state.history.steps.append(step)
                state.history.losses.append(loss)
                if not math.isfinite(state.history.losses[-1]):
                    raise FloatingPointError(f"the loss became {state.history.losses[-1]} at step {step}; lower lr")
                bar.set_postfix(loss=f"{state.history.losses[-1]:.4f}", refresh=False)
                if (eval_interval is not None and step % eval_interval == 0) or step == last:
                    evaluate(step)
                if on_step is not None:
                    on_step(state)
    finally:
        bar.close()
    return state


def _draws_random_numbers(net: nn.Module) -> bool:
    """False only for the package's language models without active dropout (they draw nothing)."""
    model = getattr(net, "module", net)  # the model inside DistributedDataParallel
    if not isinstance(model, (GPTLanguageModel, BigramLanguageModel)):
        return True  # unknown code: seed it, to be safe
    return any(isinstance(m, nn.Dropout) and m.p > 0 and m.training for m in model.modules())


def _train_step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    seed: int,
    step: int,
    device: torch.device,
) -> float:
    """One step of [`train`][gptnotes.training.train] (also what ``benchmarks/train_throughput.py`` times): returns the loss."""
    rank, world_size = rank_and_world_size()
    seed_s = _step_seed(seed, step)
    x, y = get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed_s))  # (B, T)
    rows = batch_rows(batch_size, rank, world_size)
    x, y = x[rows], y[rows]  # (B / N, T): this process's slice of the global batch
    # Dropout draws from (seed, step) and the caller's random state stays untouched; a model
    # known to draw nothing skips that (saving and restoring the state costs ~0.1 ms a step).
    draws = _draws_random_numbers(net)
    with torch.random.fork_rng(devices=[]) if draws else contextlib.nullcontext():
        if draws:
            torch.manual_seed(seed_s if rank == 0 else _step_seed(seed, step, _DROPOUT_STREAM + rank))
        _, loss = net(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP this also averages the gradients of all processes
    optimizer.step()
    loss = loss.detach()
    if world_size > 1:  # record the loss of the whole batch: the mean of the slices' means
        dist.all_reduce(loss)
        loss /= world_size
    return loss.item()


@dataclass
class CompileStatus:
    """What [`compiled`][gptnotes.training.compiled] did: whether the model runs compiled, and if not, why.

    Attributes:
        active: ``True`` while the model runs through the compiled function; ``False`` if
            [`compiled`][gptnotes.training.compiled] fell back to eager execution.
        reason: Why it fell back (empty while ``active``).

    Examples:
        >>> from gptnotes import CompileStatus
        >>> CompileStatus(active=False, reason="no C++ compiler").active
        False
    """

    active: bool = False
    reason: str = ""


def _compile_problem(device: torch.device) -> str:
    """Why ``torch.compile`` cannot work here ("" if nothing is known to stop it)."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return "torch.compile does not support this Python version"
        if device.type == "cpu":  # Inductor writes C++ for the CPU and needs a compiler for it
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        elif device.type == "cuda":
            from torch.utils._triton import has_triton

            if not has_triton():
                return "torch.compile needs Triton for CUDA, and it is not installed"
    except Exception as err:  # InvalidCxxCompiler, or a torch without these internals
        first_line = (str(err).strip().splitlines() or [""])[0]
        return f"no working C++ compiler for torch.compile ({type(err).__name__}: {first_line})"
    return ""


class _CompiledForward:
    """Runs the model's tensor operations through one ``torch.compile``-d function; eager where it cannot.

    Dynamo captures the whole of ``_forward`` (embeddings, every block, the final layer norm,
    the output layer and the loss) as one graph, with the model's weights as its inputs.
    Calls without gradients (evaluation, generation) stay eager: compiling them would only
    add warm-up. If the first compiled call fails, the failure is reported once and the model
    runs eagerly from then on. It serves only the model it was made for: a copy of that model
    (``copy.deepcopy``, ``to_fused``) carries it along but runs eagerly.
    """

    def __init__(self, status: CompileStatus, model: GPTLanguageModel) -> None:
        self.status = status
        self.model = weakref.ref(model)
        with warnings.catch_warnings():  # importing Inductor trips deprecations inside torch itself
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
            self.fn = torch.compile(_call_forward, dynamic=False)
        self.proven = False

    def __call__(
        self, model: GPTLanguageModel, idx: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.status.active or not torch.is_grad_enabled() or model is not self.model():
            return _call_forward(model, idx, targets)  # (B, T, V), loss
        if self.proven:
            return self.fn(model, idx, targets)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
                out = self.fn(model, idx, targets)  # the first call compiles
        except Exception as err:  # e.g. the compiler fails on this machine
            first_line = (str(err).strip().splitlines() or [""])[0]
            self.status.active = False
            self.status.reason = f"torch.compile failed ({type(err).__name__}: {first_line[:200]})"
            warnings.warn(f"{self.status.reason}; the model runs without it", RuntimeWarning, stacklevel=4)
            return _call_forward(model, idx, targets)  # a genuine error in the model raises again here
        self.proven = True
        return out


@contextlib.contextmanager
def compiled(model: GPTLanguageModel) -> Iterator[CompileStatus]:
    """Run ``model``'s forward pass through ``torch.compile`` inside a ``with`` block.

    Once its inputs are checked, the model's forward pass (embeddings, every transformer
    block, the final layer norm, the output layer and the loss) goes through one function
    compiled by ``torch.compile``: Dynamo captures its operations as one graph, and Inductor
    fuses the small element-wise ones into generated C++ loops and calls the matrix
    multiplications directly; the forward and the backward pass then run without a trip
    through Python per operation. The first training step compiles (tens of seconds on a
    small CPU, more with more layers); the steps after it are faster where per-operation
    overhead dominates (small models) and about as fast where matrix products do.
    Evaluation and generation (no gradients) stay eager. The model itself is not changed:
    after the block it runs eagerly again, and its ``state_dict`` never changes.

    Where ``torch.compile`` cannot work (no C++ compiler for Inductor on a CPU, no Triton for
    CUDA, an unsupported Python) or its first compilation fails, a `RuntimeWarning`
    says why and the model runs eagerly: the same results, only slower.

    Args:
        model: A [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel], either attention path.

    Yields:
        A [`CompileStatus`][gptnotes.training.CompileStatus]: ``active`` tells whether the model runs compiled.

    Raises:
        TypeError: If ``model`` is not a [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel].

    Examples:
        >>> import torch
        >>> from gptnotes import GPTLanguageModel, compiled
        >>> _ = torch.manual_seed(0)
        >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)
        >>> with compiled(model) as status, torch.no_grad():
        ...     logits, _ = model(torch.tensor([[0, 1, 2]]))   # no gradients: eager, nothing to compile
        >>> status.active, tuple(logits.shape)                 # active: a C++ compiler was found
        (True, (1, 3, 5))
    """
    if not isinstance(model, GPTLanguageModel):
        raise TypeError(f"model must be a GPTLanguageModel, got {type(model).__name__}")
    problem = _compile_problem(_device_of(model))
    status = CompileStatus(active=not problem, reason=problem)
    if problem:
        warnings.warn(f"{problem}; the model runs without torch.compile", RuntimeWarning, stacklevel=3)
    previous = model._run_forward
    with contextlib.ExitStack() as stack:
        if status.active:
            stack.enter_context(_recompute_cheap_masks())
            model._run_forward = _CompiledForward(status, model)
        try:
            yield status
        finally:
            model._run_forward = previous


def _recompute_cheap_masks() -> contextlib.AbstractContextManager:
    """Let the compiled backward recompute ReLU's mask instead of saving it in the forward pass.

    Measured on a CPU with PyTorch 2.13: by default the forward graph stores the boolean mask
    ``relu(h) <= 0`` for the backward pass, and Inductor's C++ for a boolean store is a scalar
    byte loop, so the two kernels that write and read it took about a fifth of the compiled
    step, which ended slower than eager. Recomputing the mask from the saved ReLU output is one
    comparison inside a fused backward loop.
    """
    try:
        import torch._functorch.config as functorch_config

        return functorch_config.patch(aggressive_recomputation=True)
    except (ImportError, AttributeError):  # a PyTorch without this setting
        return contextlib.nullcontext()


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


@dataclass
class Checkpoint:
    """What [`load_checkpoint`][gptnotes.training.load_checkpoint] returns.

    Attributes:
        model: The rebuilt model with its weights, in ``train()`` mode.
        state: The [`TrainState`][gptnotes.training.TrainState] (optimizer, step, seed, history), or ``None`` if the
            checkpoint was saved without one.
        tokenizer: The [`CharTokenizer`][gptnotes.data.CharTokenizer] of the text, or ``None``.
        extra: The ``extra`` dict given to [`save_checkpoint`][gptnotes.training.save_checkpoint] (e.g. batch size).

    Examples:
        >>> import torch
        >>> from gptnotes import BigramLanguageModel, Checkpoint
        >>> _ = torch.manual_seed(0)
        >>> ckpt = Checkpoint(model=BigramLanguageModel(3), state=None, tokenizer=None, extra={})
        >>> ckpt.model.vocab_size
        3
    """
    model: nn.Module
    state: TrainState | None
    tokenizer: CharTokenizer | None
    extra: dict

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        if self.state is not None and not isinstance(self.state, TrainState):
            raise TypeError(f"state must be a TrainState or None, got {type(self.state).__name__}")
        if self.tokenizer is not None and not isinstance(self.tokenizer, CharTokenizer):
            raise TypeError(f"tokenizer must be a CharTokenizer or None, got {type(self.tokenizer).__name__}")
        if not isinstance(self.extra, Mapping):
            raise TypeError(f"extra must be a dict, got {type(self.extra).__name__}")


class CheckpointInUseError(OSError):
    """Another process (or another ``with`` block of this one) is writing the same checkpoint."""


class _Damaged(ValueError):
    """A payload that is not a valid gptnotes checkpoint; the message names the field."""


def _describe_model(model: nn.Module) -> tuple[str, dict]:
    if isinstance(model, GPTLanguageModel):
        return "gpt", asdict(model.config)
    if isinstance(model, BigramLanguageModel):
        return "bigram", {"vocab_size": model.vocab_size}
    raise TypeError(f"model must be a GPTLanguageModel or a BigramLanguageModel to be saved, got {type(model).__name__}")


def _build_model(kind: str, config: dict) -> nn.Module:
    if kind == "gpt":
        return GPTLanguageModel.from_config(GPTConfig(**config))
    if kind == "bigram":
        return BigramLanguageModel(**config)
    raise ValueError(f"unknown model kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# The validator: one function for what save_checkpoint writes and what load_checkpoint reads
# ---------------------------------------------------------------------------------------------

_PLAIN_TYPES = (type(None), bool, int, float, str)


def _check_plain(value: object, name: str) -> None:
    """Raise unless ``value`` is made of what ``torch.load(weights_only=True)`` reads back.

    Exact types: a subclass of ``int``, ``float``, ``str`` or ``dict`` (``numpy.float64``, an
    ``IntEnum``, ``numpy.str_``, a ``defaultdict``) is pickled as its own class, which
    ``weights_only=True`` refuses.
    """
    if type(value) in _PLAIN_TYPES:
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{name}[{i}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{name} must have str keys, got {type(key).__name__} {key!r}")
            _check_plain(item, f"{name}[{key!r}]")
        return
    raise TypeError(
        f"{name} must hold plain values (numbers, strings, lists and dicts of them), got {type(value).__name__}: "
        "a checkpoint is loaded with weights_only=True, which refuses other objects (subclasses included)"
    )


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise _Damaged(message)


def _is_number(v: object) -> bool:
    return type(v) in (int, float)


def _expected_tensor_count(kind: str, config: dict) -> int:
    if kind == "bigram":
        return 1
    per_head = 3 * config["n_head"] + 2 if config["attention"] == "heads" else 3
    return 2 + config["n_layer"] * (per_head + 8) + 4


def _expected_parameters(kind: str, config: dict) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the model's parameters, from a model built on the meta device
    (no memory, no random numbers)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = _build_model(kind, config)
    return [(name, tuple(p.shape)) for name, p in model.named_parameters()]


def _check_tensor_record(t: object, name: str, shape: tuple[int, ...]) -> None:
    _need(isinstance(t, torch.Tensor), f"{name} must be a tensor, got {type(t).__name__}")
    assert isinstance(t, torch.Tensor)
    _need(t.layout == torch.strided and not t.is_meta, f"{name} must be a dense tensor with data")
    _need(t.is_floating_point(), f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    _need(tuple(t.shape) == shape, f"{name} has shape {tuple(t.shape)}, the model's sizes need {shape}")


def _check_optimizer_state(sd: object, params: list[tuple[str, tuple[int, ...]]], step: int) -> None:
    """AdamW's state_dict against the parameters: the fused kernel trusts every shape it is given."""
    _need(isinstance(sd, dict) and set(sd) == {"state", "param_groups"},
          "train_state['optimizer'] must be an optimizer state_dict with 'state' and 'param_groups'")
    assert isinstance(sd, dict)
    groups = sd["param_groups"]
    _need(isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict),
          "train_state['optimizer']['param_groups'] must be one group of AdamW settings")
    g = groups[0]
    n = len(params)
    _need(g.get("params") == list(range(n)), f"the optimizer must hold the model's {n} parameters, numbered 0 to {n - 1}")
    lr = g.get("lr")
    _need(_is_number(lr) and math.isfinite(lr) and lr > 0, f"the optimizer's lr must be a positive finite number, got {lr!r}")
    betas = g.get("betas")
    _need(isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas),
          f"the optimizer's betas must be two numbers in [0, 1), got {betas!r}")
    eps = g.get("eps")
    _need(_is_number(eps) and math.isfinite(eps) and eps > 0, f"the optimizer's eps must be a positive finite number, got {eps!r}")
    wd = g.get("weight_decay")
    _need(_is_number(wd) and math.isfinite(wd) and wd >= 0, f"the optimizer's weight_decay must be a finite number >= 0, got {wd!r}")
    _need(g.get("amsgrad", False) is False, "the optimizer must be AdamW without amsgrad")
    for flag in ("maximize", "foreach", "capturable", "differentiable", "fused"):
        _need(g.get(flag) is None or isinstance(g.get(flag), bool), f"the optimizer's {flag} must be True, False or None")
    state = sd["state"]
    _need(isinstance(state, dict), "train_state['optimizer']['state'] must be a dict")
    _need(all(type(k) is int and 0 <= k < n for k in state), f"the optimizer's state must be numbered 0 to {n - 1}")
    if step > 0:
        _need(len(state) == n, f"the optimizer has moments for {len(state)} of the {n} parameters after {step} steps: "
                               "a resumed run would not continue the saved one")
    for i, (pname, shape) in enumerate(params):
        if i not in state:
            continue
        entry = state[i]
        where = f"the optimizer's state of {pname}"
        _need(isinstance(entry, dict) and set(entry) == {"step", "exp_avg", "exp_avg_sq"},
              f"{where} must hold exactly step, exp_avg and exp_avg_sq")
        s = entry["step"]
        _need(isinstance(s, torch.Tensor) and s.numel() == 1 and not s.is_meta and s.is_floating_point(),
              f"{where}: step must be a one-number float tensor")
        _need(float(s) == step, f"{where} counts {float(s)!r} steps, the checkpoint {step}")
        for key in ("exp_avg", "exp_avg_sq"):
            _check_tensor_record(entry[key], f"{where}: {key}", shape)
            _need(bool(torch.isfinite(entry[key]).all()), f"{where}: {key} holds NaN or infinity")
        _need(bool((entry["exp_avg_sq"] >= 0).all()), f"{where}: exp_avg_sq holds a negative number")


def _validate_payload(payload: object) -> list[tuple[str, tuple[int, ...]]]:
    """Raise `_Damaged` (a ValueError naming the field) unless ``payload`` is a checkpoint that
    [`load_checkpoint`][gptnotes.training.load_checkpoint] can rebuild safely: sizes within this machine's memory,
    weights and optimizer moments of exactly the model's shapes, train state in range, plain
    values only. Allocates nothing beyond a model on the meta device."""
    _need(isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT, "not a gptnotes checkpoint")
    assert isinstance(payload, dict)
    version = payload.get("version")
    if version != CHECKPOINT_VERSION:
        raise _Damaged(f"it has checkpoint version {version!r}, this gptnotes reads version {CHECKPOINT_VERSION}")
    keys = {"format", "version", "model_kind", "model_config", "model_state", "train_state", "vocab", "extra"}
    _need(set(payload) == keys, f"it must hold exactly {sorted(keys)}, got {sorted(map(str, payload))}")
    kind, config = payload["model_kind"], payload["model_config"]
    _need(kind in ("gpt", "bigram"), f"model_kind must be 'gpt' or 'bigram', got {kind!r}")
    try:
        _check_plain(config, "model_config")
    except TypeError as err:
        raise _Damaged(str(err)) from None
    fields = {f.name for f in dataclasses.fields(GPTConfig)} if kind == "gpt" else {"vocab_size"}
    _need(isinstance(config, dict) and set(config) == fields, f"model_config must hold exactly {sorted(fields)}")
    try:  # the sizes' own checks, and the memory they need, before anything is built
        if kind == "gpt":
            cfg = GPTConfig(**config)
            n_params, what = cfg.parameter_count(), "GPTLanguageModel"
            check_allocation(cfg.memory_bytes(), f"a {what} of {n_params:,} parameters", f"model_config={config}")
        else:
            vocab_size = check_positive_int(config["vocab_size"], "vocab_size")
            n_params = vocab_size**2
            check_allocation(4 * n_params, "a BigramLanguageModel", f"model_config={config}")
    except (TypeError, ValueError) as err:
        raise _Damaged(f"model_config: {err}") from None
    state = payload["model_state"]
    _need(isinstance(state, dict) and all(type(k) is str for k in state), "model_state must be a dict of named tensors")
    _need(len(state) == _expected_tensor_count(kind, config),
          f"model_state holds {len(state)} tensors, a model of model_config {config} has {_expected_tensor_count(kind, config)}")
    numel = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
    _need(numel == n_params, f"model_state holds {numel:,} numbers, a model of model_config {config} has {n_params:,}")
    params = _expected_parameters(kind, config)  # cheap now: the tensor count bounds the layers
    _need(set(state) == {name for name, _ in params},
          f"model_state's names are not those of a model of model_config {config}")
    for name, shape in params:
        _check_tensor_record(state[name], f"model_state[{name!r}]", shape)
    ts = payload["train_state"]
    if ts is not None:
        _need(isinstance(ts, dict) and set(ts) == {"optimizer", "step", "seed", "history"},
              "train_state must hold exactly optimizer, step, seed and history")
        step, seed = ts["step"], ts["seed"]
        _need(type(step) is int and step >= 0, f"train_state['step'] must be an integer >= 0, got {step!r}")
        _need(type(seed) is int and 0 <= seed < 2**63, f"train_state['seed'] must be an integer in [0, 2**63), got {seed!r}")
        try:
            _check_plain(ts["history"], "train_state['history']")
            history = TrainHistory.from_dict(ts["history"])
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise _Damaged(f"train_state['history'] is not a loss history ({type(err).__name__}: {err})") from None
        _need(len(history.steps) == len(history.losses) and len(history.eval_steps) == len(history.eval_losses),
              "train_state['history'] has lists of different lengths")
        _check_optimizer_state(ts["optimizer"], params, step)
    vocab = payload["vocab"]
    if vocab is not None:
        _need(type(vocab) is list and all(type(c) is str and len(c) == 1 for c in vocab) and vocab == sorted(set(vocab)),
              "vocab must be a sorted list of distinct characters")
        model_vocab = config["vocab_size"]
        _need(len(vocab) == model_vocab, f"the vocabulary has {len(vocab)} characters, the model {model_vocab} tokens")
    try:
        _check_plain(payload["extra"], "extra")
    except TypeError as err:
        raise _Damaged(str(err)) from None
    _need(isinstance(payload["extra"], dict), f"extra must be a dict, got {type(payload['extra']).__name__}")
    return params


# ---------------------------------------------------------------------------------------------
# Where a checkpoint may be written, the lock, the atomic write
# ---------------------------------------------------------------------------------------------


def _checkpoint_path(path: object) -> Path:
    """``path`` as a Path to a file that can be written: its folder exists, it is not a folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    p = Path(path)
    if str(path) == "":
        raise ValueError("path must name a file, got ''")
    _check_name_length(p)
    if p.is_dir():
        raise ValueError(f"path must name a file, got {str(path)!r}, which is a folder")
    if not p.parent.is_dir():  # Path("a.pt").parent is Path(".")
        raise FileNotFoundError(f"path: the folder {str(p.parent)!r} of {str(p)!r} does not exist")
    return p


def _check_name_length(p: Path) -> None:
    folder = p.parent if p.parent.is_dir() else Path(".")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    for part in p.parts:
        if len(os.fsencode(part)) > name_max:
            raise OSError(
                f"path: the name {part[:40]!r}... in {str(p)[:80]!r} is {len(os.fsencode(part))} bytes, longer than "
                f"the {name_max} this file system allows",
            )


def _is_gptnotes_checkpoint(path: Path) -> bool:
    """True if ``path`` is a zip written by torch.save whose pickle says it is a gptnotes checkpoint
    (reads only the small pickle record, not the tensors)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            return bool(names) and CHECKPOINT_FORMAT.encode() in z.read(names[0])
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return False


def _target(path: object, force: bool) -> Path:
    """The file a checkpoint for ``path`` is written to: a symlink is followed; an existing
    file must be a regular file, and a gptnotes checkpoint unless ``force``."""
    p = _checkpoint_path(path)
    real = Path(os.path.realpath(p))
    if real != p.absolute() and not real.parent.is_dir():
        raise FileNotFoundError(f"path: {str(p)!r} is a link to {str(real)!r}, whose folder does not exist")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:  # nothing can be there; check_checkpoint_target says why
            return real
        raise
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
        raise ValueError(f"path: {str(p)!r} is {kind}; a checkpoint is never written over it")
    if not force and st.st_size > 0 and not _is_gptnotes_checkpoint(real):
        raise ValueError(
            f"path: {str(p)!r} exists and is not a gptnotes checkpoint; it is not replaced "
            "unless you ask for it (force=True, or --force on the command line)"
        )
    return real


def _digest(real: Path) -> str:
    return hashlib.sha256(str(real).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _temp_prefix(real: Path) -> str:
    # short and fixed-length: a legal 255-byte name must not give an illegal temporary name
    return f".gptnotes-{_digest(real)}."


_HELD_LOCKS: dict[str, list] = {}


@contextlib.contextmanager
def checkpoint_lock(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of the checkpoint at ``path`` inside a ``with`` block.

    One process at a time may write a checkpoint: [`save_checkpoint`][gptnotes.training.save_checkpoint] takes the lock
    for its write, and ``gptnotes train`` holds it from reading ``--out`` to the last save, so
    that two runs on one file cannot both go on and lose one run's steps. The lock is a
    ``flock`` on a hidden file next to the checkpoint (removed on release); it is re-entrant
    within one process and released by the kernel if the process dies. Where ``fcntl`` does
    not exist (Windows) it only yields.

    Args:
        path: The checkpoint (a symlink is followed).

    Yields:
        The resolved path of the checkpoint.

    Raises:
        CheckpointInUseError: If another process holds it.
        OSError: If the lock file cannot be created (e.g. a read-only folder).

    Examples:
        >>> import os, tempfile
        >>> from gptnotes import BigramLanguageModel, save_checkpoint
        >>> from gptnotes.training import checkpoint_lock
        >>> with tempfile.TemporaryDirectory() as d, checkpoint_lock(os.path.join(d, "c.pt")):
        ...     save_checkpoint(os.path.join(d, "c.pt"), BigramLanguageModel(3))   # same process: fine
        ...     sorted(n.endswith(".lock") for n in os.listdir(d))
        [False, True]
    """
    real = Path(os.path.realpath(_checkpoint_path(path)))
    key = str(real)
    held = _HELD_LOCKS.get(key)
    if held is not None or fcntl is None:
        if held is not None:
            held[1] += 1
        try:
            yield real
        finally:
            if held is not None:
                held[1] -= 1
        return
    lock_file = real.parent / f"{_temp_prefix(real)}lock"
    while True:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:  # named by the checkpoint, not by the hidden lock file
            raise OSError(f"path: cannot write a checkpoint at {str(path)!r}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointInUseError(
                f"path: {str(path)!r} is being written by another gptnotes process (it holds {str(lock_file)!r}); "
                "wait for it to finish, or write to another file"
            ) from None
        try:  # the previous holder may have removed the file between our open and our lock
            current = os.stat(lock_file)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)
    _HELD_LOCKS[key] = [fd, 1]
    try:
        yield real
    finally:
        del _HELD_LOCKS[key]
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        os.close(fd)


def _remove_stale_temp_files(real: Path) -> None:
    """Remove temporary files of earlier writes of this checkpoint that were killed mid-save
    (only called with the lock held, so no live writer owns them)."""
    ours = glob.escape(_temp_prefix(real)) + "*.tmp"
    earlier = f".{glob.escape(real.name)}.????????.tmp"  # the temporary names of earlier gptnotes versions
    for pattern in (ours, earlier):
        for stale in real.parent.glob(pattern):
            with contextlib.suppress(OSError):
                stale.unlink()


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_checkpoint_target(path: str | Path, *, force: bool = False, size: int = 0) -> Path:
    """Check, before a long run, that a checkpoint can be written at ``path``; return the file
    it will go to (a symlink followed).

    Everything that would otherwise be found only when the run ends and its work is lost: the
    folder exists and can be written (a temporary file is created and removed), the name fits
    the file system, what is already at ``path`` may be replaced (see
    [`save_checkpoint`][gptnotes.training.save_checkpoint]'s ``force``), and about ``size`` bytes are free.

    Args:
        path: The checkpoint to be written.
        force: Allow replacing an existing regular file that is not a gptnotes checkpoint.
        size: The expected size of the checkpoint in bytes (0: do not check the free space).

    Returns:
        The resolved path.

    Raises:
        TypeError: If ``path`` is not a str or path, ``force`` not a bool or ``size`` not an int.
        ValueError: If ``path`` names a folder, a non-regular file, or (without ``force``) a
            file that is not a gptnotes checkpoint.
        FileNotFoundError: If the folder of ``path`` does not exist.
        OSError: If the folder cannot be written, the name is too long or the disk too full.

    Examples:
        >>> import os, tempfile
        >>> from gptnotes.training import check_checkpoint_target
        >>> with tempfile.TemporaryDirectory() as d:
        ...     check_checkpoint_target(os.path.join(d, "c.pt")).name, os.listdir(d)
        ('c.pt', [])
    """
    check_bool(force, "force")
    size = check_nonnegative_int(size, "size")
    real = _target(path, force)
    shown = str(path)
    _check_name_length(real)
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(real), suffix=".tmp", dir=real.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OSError(f"path: cannot write a checkpoint at {shown!r}: {err.strerror or err}") from None
    free = None
    if size:
        with contextlib.suppress(OSError, AttributeError):  # no statvfs: not checked
            fs = os.statvfs(real.parent)
            free = fs.f_bavail * fs.f_frsize + (real.stat().st_size if real.exists() else 0)
    if free is not None and free < size:
        raise OSError(f"path: a checkpoint of about {size:,} bytes does not fit on the disk of "
                      f"{shown!r} ({free:,} bytes free)")
    return real


def _estimated_checkpoint_bytes(model: nn.Module, with_optimizer: bool) -> int:
    numbers = sum(p.numel() for p in model.parameters())
    return 4 * numbers * (3 if with_optimizer else 1) + 65536


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    state: TrainState | None = None,
    *,
    tokenizer: CharTokenizer | None = None,
    extra: Mapping | None = None,
    force: bool = False,
) -> None:
    """Save a model, its sizes, the training state and the vocabulary in one file, atomically.

    The file holds only tensors and plain Python values (a ``state_dict``, the config as a
    dict, the optimizer's ``state_dict``, lists of losses, the vocabulary's characters), so
    [`load_checkpoint`][gptnotes.training.load_checkpoint] can read it with ``weights_only=True``. Before anything is
    written, the payload goes through the validator [`load_checkpoint`][gptnotes.training.load_checkpoint] uses, so a
    file that could not be loaded back is never written (and never replaces a good one). It is
    written to a temporary file in the same folder and moved over ``path`` with `os.replace`:
    a crash mid-write never leaves a half-written checkpoint under ``path``; temporary files
    of earlier writes that were killed are removed. The write holds the checkpoint's lock
    ([`checkpoint_lock`][gptnotes.training.checkpoint_lock]). A symlink at ``path`` is followed (its target is
    updated) and an existing checkpoint keeps its permissions.

    Args:
        path: Where to write, e.g. ``"ckpt.pt"``.
        model: A [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel] or [`BigramLanguageModel`][gptnotes.bigram.BigramLanguageModel].
        state: The [`TrainState`][gptnotes.training.TrainState] to save with it, for resuming.
        tokenizer: The [`CharTokenizer`][gptnotes.data.CharTokenizer], so that text can be generated without
            the training text.
        extra: Other plain values to keep (numbers, strings, lists, dicts of them).
        force: Replace an existing file at ``path`` that is not a gptnotes checkpoint (by default
            such a file is refused). A folder, pipe or device is never replaced.

    Raises:
        TypeError: If ``model`` is not one of the two model classes, ``path`` is not a str or
            path, or ``extra`` holds something other than plain values.
        ValueError: If ``path`` is empty, names a folder or a non-regular file, or (without
            ``force``) a file that is not a gptnotes checkpoint; if the state does not fit the
            model (e.g. an optimizer of other parameters, or a vocabulary of another size).
        FileNotFoundError: If the folder of ``path`` does not exist.
        CheckpointInUseError: If another process is writing the same checkpoint.
        OSError: If the file cannot be written.

    Examples:
        >>> import tempfile, os, torch
        >>> from gptnotes import BigramLanguageModel, CharTokenizer, save_checkpoint, load_checkpoint
        >>> _ = torch.manual_seed(0)
        >>> model = BigramLanguageModel(vocab_size=3)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     save_checkpoint(os.path.join(d, "ckpt.pt"), model, tokenizer=CharTokenizer("abc"))
        ...     ckpt = load_checkpoint(os.path.join(d, "ckpt.pt"))
        >>> ckpt.tokenizer.chars, torch.equal(ckpt.model.token_embedding_table.weight, model.token_embedding_table.weight)
        (['a', 'b', 'c'], True)
    """
    kind, config = _describe_model(model)
    if state is not None and not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState or None, got {type(state).__name__}")
    if state is not None:
        _check_optimizer_of(state.optimizer, model)
    if tokenizer is not None and not isinstance(tokenizer, CharTokenizer):
        raise TypeError(f"tokenizer must be a CharTokenizer or None, got {type(tokenizer).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict of plain values or None, got {type(extra).__name__}")
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    check_bool(force, "force")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_kind": kind,
        "model_config": config,
        "model_state": model.state_dict(),
        "train_state": None
        if state is None
        else {
            "optimizer": state.optimizer.state_dict(),
            "step": state.step,
            "seed": state.seed,
            "history": state.history.to_dict(),
        },
        "vocab": None if tokenizer is None else list(tokenizer.chars),
        "extra": extra,
    }
    try:
        _validate_payload(payload)
    except _Damaged as err:
        raise ValueError(f"save_checkpoint: nothing was written, as the checkpoint could not be loaded back: {err}") from None
    with checkpoint_lock(path):
        real = _target(path, force)  # under the lock: what is there now
        _remove_stale_temp_files(real)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            mode = _new_file_mode()
        try:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(real), suffix=".tmp", dir=real.parent)
        except OSError as err:
            raise OSError(f"path: cannot write the checkpoint {str(path)!r}: {err.strerror or err}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, real)
        except BaseException as err:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(err, OSError) and not isinstance(err, CheckpointInUseError) and err.strerror:
                raise OSError(f"path: cannot write the checkpoint {str(path)!r}: {err.strerror}") from None
            raise


def _read_payload(p: Path) -> dict:
    """The validated payload of the checkpoint file ``p`` (ValueError naming ``p`` otherwise)."""
    try:
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()  # reads every record and compares its CRC-32
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as err:
        raise ValueError(
            f"path: {str(p)!r} is not a readable checkpoint: damaged, truncated, or not written by "
            f"torch.save ({type(err).__name__})"
        ) from None
    if bad is not None:
        raise ValueError(f"path: {str(p)!r} is a damaged gptnotes checkpoint: the record {bad!r} fails its CRC-32 check")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False: exactly what must not be done here.
        raise ValueError(
            f"path: {str(p)!r} is not a gptnotes checkpoint: torch.load(weights_only=True) refused it "
            "(it is damaged, or holds Python objects other than tensors and plain values, which are never "
            "loaded because that could run arbitrary code)"
        ) from None
    except Exception as err:  # zip errors, truncated files, ...
        raise ValueError(
            f"path: {str(p)!r} is not a readable checkpoint: damaged, truncated, or not written by "
            f"torch.save ({type(err).__name__})"
        ) from None
    try:
        _validate_payload(payload)
    except _Damaged as err:
        text = str(err)
        if text == "not a gptnotes checkpoint" or text.startswith("it has checkpoint version"):
            raise ValueError(f"path: {str(p)!r} {'is ' + text if text.startswith('not') else text[3:]}") from None
        raise ValueError(f"path: {str(p)!r} is a damaged gptnotes checkpoint: {text}") from None
    return payload


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by [`save_checkpoint`][gptnotes.training.save_checkpoint] and rebuild everything in it.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``: only tensors and plain
    values are accepted, so a malicious file cannot run code while being loaded. Before that,
    every record's CRC-32 is checked (a flipped byte is found, not loaded); after it,
    everything is validated before it is used: the sizes against this machine's memory
    (before a model is built), every weight and every optimizer moment against the shape of
    its parameter, the step, seed and learning rate against their ranges. The global random
    state is left as it was.

    Args:
        path: The checkpoint file.

    Returns:
        A [`Checkpoint`][gptnotes.training.Checkpoint]: the model (weights loaded), the training state with a new AdamW
        optimizer holding the saved moments and learning rate, the tokenizer, and ``extra``.

    Raises:
        TypeError: If ``path`` is not a str or path.
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If ``path`` is a folder or not a regular file, or the file is not a
            readable gptnotes checkpoint (corrupt, truncated, of another program, or of another
            format version; sizes beyond this machine's memory, weights or optimizer moments of
            the wrong shape, a step, seed or learning rate out of range, a vocabulary that does
            not fit the model, or ``extra`` that is not a dict).

    Examples:
        >>> import os, tempfile, torch
        >>> from gptnotes import GPTLanguageModel, load_checkpoint, save_checkpoint, train
        >>> _ = torch.manual_seed(0)
        >>> model = GPTLanguageModel(vocab_size=4, block_size=4, n_embd=8, n_head=2, n_layer=1)
        >>> state = train(model, torch.tensor([0, 1, 2, 3] * 10), steps=3, batch_size=2, block_size=4, progress=False)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     save_checkpoint(os.path.join(d, "ckpt.pt"), model, state)
        ...     ckpt = load_checkpoint(os.path.join(d, "ckpt.pt"))
        >>> ckpt.model.config.n_embd, ckpt.state.step, ckpt.tokenizer is None
        (8, 3, True)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such checkpoint file: {str(p)!r}")
    if p.is_dir():
        raise ValueError(f"path: {str(p)!r} is a folder, not a checkpoint file")
    if not p.is_file():
        raise ValueError(f"path: {str(p)!r} is not a regular file (a pipe, socket or device), not a checkpoint file")
    payload = _read_payload(p)
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: draw them aside
        model = _build_model(payload["model_kind"], payload["model_config"])
    model.load_state_dict(payload["model_state"])  # validated: names and shapes fit
    state = None
    ts = payload["train_state"]
    if ts is not None:
        optimizer = torch.optim.AdamW(model.parameters())
        optimizer.load_state_dict(ts["optimizer"])  # validated: one group, moments of the parameters' shapes
        state = TrainState(
            optimizer=optimizer, step=ts["step"], seed=ts["seed"], history=TrainHistory.from_dict(ts["history"])
        )
    vocab = payload["vocab"]
    tokenizer = None if vocab is None else CharTokenizer("".join(vocab))
    return Checkpoint(model=model, state=state, tokenizer=tokenizer, extra=dict(payload["extra"]))
