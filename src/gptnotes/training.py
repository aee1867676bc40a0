"""Training a language model: the loop and the loss estimate.

* [`estimate_loss`][gptnotes.training.estimate_loss] averages the loss over a few random batches of each split, in
  ``eval()`` mode and without gradients, and puts every module back in the mode it was in.
* [`train`][gptnotes.training.train] runs AdamW on random batches of the training data and returns a
  [`TrainState`][gptnotes.training.TrainState] (the optimizer, the number of steps done, and a [`TrainHistory`][gptnotes.training.TrainHistory]
  of losses for a loss curve), which [`gptnotes.save_checkpoint`][gptnotes.checkpoint.save_checkpoint] writes to a file.

Randomness is a function of ``(seed, step)``: the batch of step ``s`` and the dropout masks of
step ``s`` come from generators seeded with both, never from the global random state. So on
the CPU the same seed gives bit-identical losses, and training ``2N`` steps gives exactly the
same model as training ``N``, saving, loading and training ``N`` more.

Speed: [`train`][gptnotes.training.train] steps with PyTorch's fused AdamW (one kernel for all parameters, the
same update as the default implementation up to float rounding) and keeps the memory it frees
for the next step ([`gptnotes.speed.keep_freed_memory`][gptnotes.speed.keep_freed_memory]); inside
[`gptnotes.compiled`][gptnotes.speed.compiled] the model runs through ``torch.compile``. Under ``torchrun``
(see [`gptnotes.distributed`][gptnotes.distributed]) [`train`][gptnotes.training.train] trains data-parallel with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from gptnotes._checks import (
    check_bool,
    check_int_tensor,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
    check_token_ids,
)
from gptnotes.bigram import BigramLanguageModel
from gptnotes.data import get_batch
from gptnotes.distributed import batch_rows, data_parallel, rank_and_world_size
from gptnotes.gpt import GPTLanguageModel
from gptnotes.speed import keep_freed_memory

__all__ = [
    "estimate_loss",
    "train",
    "TrainHistory",
    "TrainState",
    "eval_mode",
    "make_optimizer",
]

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
    [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint] and get it back from [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint].

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

    def check_model(self, model: nn.Module) -> None:
        """Raise unless this state's optimizer updates exactly the parameters of ``model``.

        [`train`][gptnotes.training.train] and [`gptnotes.save_checkpoint`][gptnotes.checkpoint.save_checkpoint] call it: a state
        resumed or saved with another model would go on silently with the wrong moments.

        Raises:
            ValueError: If the optimizer updates other parameters.

        Examples:
            >>> import torch
            >>> from gptnotes import BigramLanguageModel, TrainState, make_optimizer
            >>> a, b = BigramLanguageModel(3), BigramLanguageModel(3)
            >>> TrainState(optimizer=make_optimizer(a)).check_model(a)   # fine: returns None
            >>> TrainState(optimizer=make_optimizer(a)).check_model(b)
            Traceback (most recent call last):
            ...
            ValueError: state.optimizer does not update the parameters of model: build it from this model (make_optimizer(model)), or pass state=None for a new run
        """
        theirs = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        if theirs != {id(p) for p in model.parameters()}:
            raise ValueError(
                "state.optimizer does not update the parameters of model: build it from this model "
                "(make_optimizer(model)), or pass state=None for a new run"
            )


def _check_seed(seed: object, name: str = "seed") -> int:
    """A seed of a run: an integer in ``[0, 2**63)`` (what ``torch.manual_seed`` keeps of it)."""
    seed = check_nonnegative_int(seed, name)
    if seed >= 2**63:
        raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1, got {seed}")
    return seed


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
        state.check_model(model)

    def evaluate(at_step: int) -> None:
        g = torch.Generator().manual_seed(_step_seed(state.seed, at_step, _EVAL_STREAM))
        state.history.eval_steps.append(at_step)
        state.history.eval_losses.append(estimate_loss(model, splits, block_size, batch_size, eval_iters, g))

    device = _device_of(model)
    net = data_parallel(model, device) if world_size > 1 else model  # copies rank 0's weights to all
    if state.step == 0 and not state.history.eval_steps:
        evaluate(0)
    first, last = state.step + 1, state.step + steps
    shown = progress and rank == 0
    # tqdm.auto (a widget in Jupyter) only when a bar is shown: importing it in a Jupyter kernel
    # without ipywidgets warns "IProgress not found" on stderr, into every notebook of the site.
    bar_type = importlib.import_module("tqdm.auto").tqdm if shown else tqdm
    bar = bar_type(range(first, last + 1), desc="train", disable=not shown, leave=False)
    try:
        with keep_freed_memory():  # no fresh pages from the kernel for every step
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
