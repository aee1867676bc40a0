"""Checkpoint files: save a model and its training state, load them back, safely.

* [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint] / [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint] write and read the model, its sizes, the
  optimizer, the step, the history and the tokenizer's vocabulary: the file is written to a
  temporary name and renamed, and read with ``torch.load(..., weights_only=True)``, which
  refuses arbitrary pickled objects. One validator checks what is written and what is read.
* [`checkpoint_lock`][gptnotes.checkpoint.checkpoint_lock] lets one process at a time write a checkpoint;
  [`check_checkpoint_target`][gptnotes.checkpoint.check_checkpoint_target] finds, before a long run, what would stop its last save.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import hashlib
import math
import os
import pickle
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_bool,
    check_existing_file,
    check_nonnegative_int,
    check_positive_int,
)
from gptnotes.bigram import BigramLanguageModel
from gptnotes.data import CharTokenizer
from gptnotes.gpt import GPTConfig, GPTLanguageModel
from gptnotes.training import TrainHistory, TrainState

try:
    import fcntl
except ImportError:  # Windows: checkpoints are written without a lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_lock",
    "check_checkpoint_target",
    "CheckpointInUseError",
]

CHECKPOINT_FORMAT = "gptnotes-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """What [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint] returns.

    Attributes:
        model: The rebuilt model with its weights, in ``train()`` mode.
        state: The [`TrainState`][gptnotes.training.TrainState] (optimizer, step, seed, history), or ``None`` if the
            checkpoint was saved without one.
        tokenizer: The [`CharTokenizer`][gptnotes.data.CharTokenizer] of the text, or ``None``.
        extra: The ``extra`` dict given to [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint] (e.g. batch size).

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
    _need(t.layout == torch.strided and not t.is_meta, f"{name} must be a dense tensor with data")
    _need(t.is_floating_point(), f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    _need(tuple(t.shape) == shape, f"{name} has shape {tuple(t.shape)}, the model's sizes need {shape}")


def _check_optimizer_state(sd: object, params: list[tuple[str, tuple[int, ...]]], step: int) -> None:
    """AdamW's state_dict against the parameters: the fused kernel trusts every shape it is given."""
    _need(isinstance(sd, dict) and set(sd) == {"state", "param_groups"},
          "train_state['optimizer'] must be an optimizer state_dict with 'state' and 'param_groups'")
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
    [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint] can rebuild safely: sizes within this machine's memory,
    weights and optimizer moments of exactly the model's shapes, train state in range, plain
    values only. Allocates nothing beyond a model on the meta device."""
    _need(isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT, "not a gptnotes checkpoint")
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
        raise ValueError("path must name a checkpoint file, got ''")
    _check_name_length(p)
    if p.is_dir():
        raise ValueError(f"path must name a checkpoint file, got {str(path)!r}, which is a folder")
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

    One process at a time may write a checkpoint: [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint] takes the lock
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
        >>> from gptnotes.checkpoint import checkpoint_lock
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
    [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint]'s ``force``), and about ``size`` bytes are free.

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
        >>> from gptnotes.checkpoint import check_checkpoint_target
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
    [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint] can read it with ``weights_only=True``. Before anything is
    written, the payload goes through the validator [`load_checkpoint`][gptnotes.checkpoint.load_checkpoint] uses, so a
    file that could not be loaded back is never written (and never replaces a good one). It is
    written to a temporary file in the same folder and moved over ``path`` with `os.replace`:
    a crash mid-write never leaves a half-written checkpoint under ``path``; temporary files
    of earlier writes that were killed are removed. The write holds the checkpoint's lock
    ([`checkpoint_lock`][gptnotes.checkpoint.checkpoint_lock]). A symlink at ``path`` is followed (its target is
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
        state.check_model(model)
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
        "model_state": {name: p.detach() for name, p in model.named_parameters()},  # no constant masks
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
    """Read a checkpoint written by [`save_checkpoint`][gptnotes.checkpoint.save_checkpoint] and rebuild everything in it.

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
        A [`Checkpoint`][gptnotes.checkpoint.Checkpoint]: the model (weights loaded), the training state with a new AdamW
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
    p = check_existing_file(path, "checkpoint file")
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
