"""The ``gptnotes`` command: train a small GPT on a text file, sample from it, count parameters.

Examples (in a shell)::

    gptnotes train input.txt --out ckpt.pt --steps 2000
    gptnotes train input.txt --out ckpt.pt --steps 1000 --resume     # 1000 more steps
    gptnotes train input.txt --attention fused                       # the fast path
    gptnotes train input.txt --attention fused --compile             # ... with torch.compile
    torchrun --nproc_per_node=2 -m gptnotes train input.txt          # data-parallel, 2 processes
    gptnotes generate ckpt.pt --tokens 300 --temperature 0.8 --prompt "ROMEO:"
    gptnotes params --block-size 8 --n-embd 64 --n-head 4 --n-layer 4

``python -m gptnotes`` is the same command. Errors in what the user gave (a missing, empty or
non-UTF-8 file, a damaged checkpoint, a character the model does not know, sizes beyond the
machine's memory) end with a one-line message on stderr and exit status 2, never a traceback;
Ctrl-C ends with one line and status 130.

``gptnotes train`` checks before training that ``--out`` can be written (and refuses to replace
a file that is not a gptnotes checkpoint unless ``--force``, and never the training text), holds
the checkpoint's lock for the whole run (a second run on the same ``--out`` stops at once),
saves every ``--save-every`` steps, and on Ctrl-C saves the last finished step before it exits.

``gptnotes train`` runs unchanged under ``torchrun``: every process trains its slice of each
batch (``--batch-size`` is the batch of all processes together) with DistributedDataParallel,
and only rank 0 prints and writes the checkpoint (see [`gptnotes.distributed`][gptnotes.distributed]).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from gptnotes.checkpoint import (
    check_checkpoint_target,
    checkpoint_lock,
    load_checkpoint,
    save_checkpoint,
)
from gptnotes.data import CharTokenizer, load_text, train_val_split
from gptnotes.distributed import DistributedContext, distributed_from_env
from gptnotes.gpt import ATTENTION_KINDS, GPTConfig, GPTLanguageModel
from gptnotes.parameters import (
    count_parameters,
    format_millions,
    format_parameter_table,
)
from gptnotes.speed import compiled
from gptnotes.training import TrainState, train

__all__ = ["main"]

# The sizes a new model gets when the user gives none: the site's small model with a longer context.
SIZE_DEFAULTS = {"block_size": 32, "n_embd": 64, "n_head": 4, "n_layer": 4, "dropout": 0.0, "attention": "heads"}


class UserError(Exception):
    """A problem with what the user asked for; reported without a traceback."""


def _add_size_options(p: argparse.ArgumentParser, defaults: dict, keep_none: bool = False) -> None:
    """Add the model size options; with ``keep_none`` their default is None (so that one can
    tell which were given) and ``defaults`` is only what the help shows."""
    def default(key):
        return None if keep_none else defaults[key]

    g = p.add_argument_group("model size")
    g.add_argument("--block-size", type=int, default=default("block_size"), help=f"context length in tokens (default: {defaults['block_size']})")
    g.add_argument("--n-embd", type=int, default=default("n_embd"), help=f"embedding size C (default: {defaults['n_embd']})")
    g.add_argument("--n-head", type=int, default=default("n_head"), help=f"attention heads per block (default: {defaults['n_head']})")
    g.add_argument("--n-layer", type=int, default=default("n_layer"), help=f"number of blocks (default: {defaults['n_layer']})")
    g.add_argument("--dropout", type=float, default=default("dropout"), help=f"dropout probability (default: {defaults['dropout']})")
    g.add_argument("--attention", choices=ATTENTION_KINDS, default=default("attention"),
                   help=f"'heads': one module per head (the lecture's names); 'fused': one matrix, faster (default: {defaults['attention']})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gptnotes", description="Train and sample the small GPT of GPT Notes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a character-level GPT on a UTF-8 text file",
                       description="Train a character-level GPT on FILE (first 90%% train, last 10%% validation).")
    t.add_argument("file", metavar="FILE", help="UTF-8 text file")
    t.add_argument("--out", default="ckpt.pt", help="checkpoint to write (default: %(default)s)")
    t.add_argument("--steps", type=int, default=500, help="optimizer steps to run now (default: %(default)s)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint at --out (its sizes, optimizer, step and seed) for --steps more steps")
    t.add_argument("--batch-size", type=int, default=None,
                   help="sequences per batch, all processes together under torchrun (default: 16)")
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of a new run (default: %(default)s)")
    t.add_argument("--eval-interval", type=int, default=100, help="estimate train/val loss every N steps (default: %(default)s)")
    t.add_argument("--eval-iters", type=int, default=20, help="batches per loss estimate (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="seed of a new run (default: %(default)s)")
    t.add_argument("--save-every", type=int, default=None, metavar="N",
                   help="also save the checkpoint every N steps (default: only at the end and on Ctrl-C)")
    t.add_argument("--force", action="store_true",
                   help="replace a file at --out that is not a gptnotes checkpoint (never the training text)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--compile", action="store_true",
                   help="run the model through torch.compile (needs a C++ compiler on a CPU; "
                        "without one, trains as usual after a warning)")
    _add_size_options(t, SIZE_DEFAULTS, keep_none=True)

    g = sub.add_parser("generate", help="sample text from a checkpoint")
    g.add_argument("checkpoint", metavar="CKPT", help="checkpoint written by 'gptnotes train'")
    g.add_argument("--tokens", type=int, default=500, help="characters to generate (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    g.add_argument("--prompt", default=None, help="text to continue (default: a newline, or the first character)")

    p = sub.add_parser("params", help="print the parameters of a model of the given size")
    p.add_argument("--vocab-size", type=int, default=65, help="vocabulary size (default: %(default)s)")
    _add_size_options(p, {**SIZE_DEFAULTS, "block_size": 8})
    return parser


def _given_sizes(args: argparse.Namespace) -> dict:
    keys = ("block_size", "n_embd", "n_head", "n_layer", "dropout", "attention")
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _cmd_train(args: argparse.Namespace) -> None:
    with distributed_from_env() as ctx:  # a single process unless started by torchrun
        _train(args, ctx)


class _Interrupted(Exception):
    """Ctrl-C arrived during a step; raised at the end of that step, when the state is whole."""


@contextlib.contextmanager
def _stop_at_step_end() -> Iterator[list]:
    """Turn the first Ctrl-C into a flag read after each step (a second one interrupts at once)."""
    flag: list[bool] = []
    if not hasattr(signal, "SIGINT") or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag  # not the main thread, or someone else handles Ctrl-C
        return

    def handler(signum, frame):
        if flag:
            raise KeyboardInterrupt
        flag.append(True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _out_error(err: Exception) -> UserError:
    """The error of gptnotes.checkpoint about its argument ``path``, told about ``--out``."""
    text = str(err).replace("force=True, or --force on the command line", "--force")
    return UserError("--out" + text.removeprefix("path") if text.startswith("path") else f"--out: {text}")


def _train(args: argparse.Namespace, ctx: DistributedContext) -> None:
    out = Path(args.out)
    real = None
    if ctx.is_main:  # before anything is printed or loaded: the checkpoint can be written there
        try:
            real = check_checkpoint_target(out, force=args.force)
        except (ValueError, OSError) as err:
            raise _out_error(err) from None
    for option, value in (("--steps", args.steps), ("--batch-size", args.batch_size), ("--save-every", args.save_every),
                          ("--eval-interval", args.eval_interval), ("--eval-iters", args.eval_iters)):
        if value is not None and value < 1:  # before anything is printed or loaded
            raise UserError(f"{option} must be a positive integer, got {value}")
    if not (args.lr > 0 and args.lr < float("inf")):
        raise UserError(f"--lr must be a positive finite number, got {args.lr}")
    _check_seed(args.seed)
    if args.resume and _given_sizes(args):
        raise UserError("--resume continues the checkpoint's model: do not give model size options with it")
    text = load_text(args.file)
    if not ctx.is_main:
        _train_locked(args, ctx, out, text)
        return
    with contextlib.suppress(OSError):
        if os.path.samefile(real, args.file):
            raise UserError(f"--out {args.out!r} is the training text {args.file!r}: it is never overwritten")
    try:
        lock = checkpoint_lock(out)
        lock.__enter__()
    except OSError as err:
        raise _out_error(err) from None
    try:
        _train_locked(args, ctx, out, text)
    finally:
        lock.__exit__(None, None, None)


def _train_locked(args: argparse.Namespace, ctx: DistributedContext, out: Path, text: str) -> None:
    batch_size = args.batch_size
    if args.resume:
        ckpt = _load(out)
        if ckpt.state is None or ckpt.tokenizer is None or not isinstance(ckpt.model, GPTLanguageModel):
            raise UserError(f"{str(out)!r} was not written by 'gptnotes train': it cannot be resumed")
        tokenizer, model, state = ckpt.tokenizer, ckpt.model, ckpt.state
        if CharTokenizer(text).chars != tokenizer.chars:
            raise UserError(f"{args.file!r} does not have the vocabulary of the checkpoint {str(out)!r}: resume on the same text")
        saved_batch = ckpt.extra.get("batch_size", 16)
        if isinstance(saved_batch, bool) or not isinstance(saved_batch, int) or saved_batch < 1:
            raise UserError(f"{str(out)!r} holds a batch size of {saved_batch!r}, not a positive integer: it is damaged")
        if batch_size is not None and batch_size != saved_batch:
            raise UserError(f"--batch-size {batch_size} differs from the checkpoint's {saved_batch}")
        batch_size = saved_batch
    else:
        tokenizer = CharTokenizer(text)
        config = GPTConfig(vocab_size=tokenizer.vocab_size, **{**SIZE_DEFAULTS, **_given_sizes(args)})
        torch.manual_seed(args.seed)
        model = GPTLanguageModel.from_config(config)
        state = None
        batch_size = 16 if batch_size is None else batch_size
    if batch_size > 0 and batch_size % ctx.world_size:
        raise UserError(f"--batch-size {batch_size} must be divisible by the number of processes ({ctx.world_size})")
    if ctx.is_main:  # the disk must hold the checkpoint at the end: know it now, not then
        check_checkpoint_target(out, force=True, size=4 * 3 * count_parameters(model) + 65536)
    _to_device(model, state, ctx.device)
    cfg = model.config
    data = tokenizer.encode_tensor(text)  # 8 bytes per character, no Python list
    del text
    if len(data) < 20:
        raise UserError(f"{args.file!r} has only {len(data)} characters: too short to split into training and validation text")
    train_data, val_data = train_val_split(data, 0.9)
    if len(val_data) < cfg.block_size + 1:
        raise UserError(
            f"{args.file!r} is too short for --block-size {cfg.block_size}: its last 10% ({len(val_data)} characters) "
            f"must hold at least block_size + 1 = {cfg.block_size + 1}; use a longer text or a smaller --block-size"
        )
    first_new_eval = 0 if state is None else state.step + 1  # report only what this run measures
    say = _printer(ctx)
    processes = f", {ctx.world_size} processes ({ctx.backend})" if ctx.distributed else ""
    say(f"{format_millions(count_parameters(model))} M parameters, vocabulary of {tokenizer.vocab_size} characters, "
        f"{len(train_data)} training and {len(val_data)} validation tokens{processes}")
    latest: list[TrainState] = []

    saved_at: list[int] = []

    def save(st: TrainState) -> None:
        if saved_at != [st.step]:  # --save-every may have just saved this step
            save_checkpoint(out, model, st, tokenizer=tokenizer, extra={"batch_size": batch_size}, force=True)
            saved_at[:] = [st.step]

    with _stop_at_step_end() as stop:
        def on_step(st: TrainState) -> None:
            latest[:] = [st]
            if ctx.is_main and args.save_every is not None and st.step % args.save_every == 0:
                save(st)
            if stop:
                raise _Interrupted

        try:
            with _maybe_compiled(model, args.compile, say):
                state = train(
                    model, train_data, val_data,
                    steps=args.steps, batch_size=batch_size, block_size=cfg.block_size, lr=args.lr,
                    eval_interval=args.eval_interval, eval_iters=args.eval_iters, seed=args.seed,
                    progress=not args.no_progress and ctx.is_main, state=state, on_step=on_step,
                )
        except _Interrupted:  # Ctrl-C: the step it arrived in has finished, the state is whole
            st = latest[0]
            if ctx.is_main:
                _report(st, first_new_eval)
                save(st)
            raise _Stopped(f"interrupted: saved {str(out)!r} after step {st.step}; continue with --resume") from None
    if not ctx.is_main:  # the other processes hold the same model; rank 0 reports and saves it
        return
    _report(state, first_new_eval)
    save(state)
    say(f"saved {str(out)!r} after step {state.step}")


class _Stopped(Exception):
    """Training stopped on Ctrl-C after saving; the message says where."""


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be an integer from 0 to 2**63 - 1, got {seed}")


def _printer(ctx: DistributedContext):
    def say(message: str) -> None:
        if ctx.is_main:
            print(message, file=sys.stderr)
    return say


def _to_device(model: GPTLanguageModel, state: TrainState | None, device: torch.device) -> None:
    """Move the model (and a resumed optimizer's moments) to ``device``, e.g. this rank's GPU."""
    if next(model.parameters()).device == device:
        return
    model.to(device)
    if state is not None:  # loading the state again puts it next to its parameters
        state.optimizer.load_state_dict(state.optimizer.state_dict())


@contextlib.contextmanager
def _maybe_compiled(model: GPTLanguageModel, wanted: bool, say):
    if not wanted:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        with compiled(model) as status:
            if status.active:
                say("--compile: the first step compiles the model (this takes a while)")
            try:
                yield
            finally:
                for w in caught:
                    if "torch.compile" in str(w.message):
                        say(f"--compile: {w.message}")
                    else:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _report(state: TrainState, since: int) -> None:
    for step, losses in zip(state.history.eval_steps, state.history.eval_losses):
        if step < since:
            continue
        parts = ", ".join(f"{name} loss {value:.4f}" for name, value in losses.items())
        print(f"step {step}: {parts}")


def _load(path: Path):
    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {str(path)!r}") from None
    except ValueError as err:
        raise UserError(str(err).removeprefix("path: ")) from None


def _cmd_generate(args: argparse.Namespace) -> None:
    if args.tokens < 0:
        raise UserError(f"--tokens must be 0 or more, got {args.tokens}")
    ckpt = _load(Path(args.checkpoint))
    if ckpt.tokenizer is None:
        raise UserError(f"{args.checkpoint!r} holds no vocabulary: it was not written by 'gptnotes train'")
    tok, model = ckpt.tokenizer, ckpt.model
    if args.prompt:
        try:
            start = tok.encode(args.prompt)
        except ValueError as err:
            raise UserError(f"--prompt: {err}") from None
    else:
        start = [tok.encode("\n")[0] if "\n" in tok.chars else 0]
    _check_seed(args.seed)
    if not (args.temperature > 0 and args.temperature < float("inf")):
        raise UserError(f"--temperature must be a positive finite number, got {args.temperature!r}")
    if sys.stdout is None:
        raise UserError("standard output is closed: there is nowhere to write the text")
    generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
    model.eval()
    context = model.config.block_size if isinstance(model, GPTLanguageModel) else 1
    idx = torch.tensor([start], dtype=torch.long)
    try:
        if args.prompt:
            _write(args.prompt)
        for _ in range(args.tokens):  # one token at a time, printed as it comes
            idx = model.generate(idx[:, -context:], max_new_tokens=1, temperature=args.temperature, generator=generator)
            _write(tok.chars[int(idx[0, -1])])
        _write("\n")
    except BrokenPipeError:  # e.g. '| head -c 100': the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail again
        os.close(devnull)
        raise UserError("standard output was closed before the text was complete") from None


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _cmd_params(args: argparse.Namespace) -> None:
    model = GPTLanguageModel.from_config(GPTConfig(vocab_size=args.vocab_size, **_given_sizes(args)))
    print(format_parameter_table(model))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gptnotes`` command line; return the exit status (0 ok, 2 bad input, 130 Ctrl-C).

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Examples:
        >>> from gptnotes.cli import main
        >>> main(["params", "--n-layer", "1"])          # doctest: +ELLIPSIS
        token_embedding_table.weight     [65, 64]   4,160
        ...
        lm_head.bias                     [65]          65
        total: 58,817 parameters (0.058817 M parameters)
        0
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage line and the problem (or --help)
        return exit_.code if isinstance(exit_.code, int) else 2
    commands = {"train": _cmd_train, "generate": _cmd_generate, "params": _cmd_params}

    def fail(message: str, code: int = 2) -> int:
        with contextlib.suppress(OSError, AttributeError, ValueError):  # stderr closed too: the status says it
            print(f"gptnotes {args.command}: error: {message}", file=sys.stderr)
        return code

    try:
        commands[args.command](args)
    except _Stopped as stopped:  # Ctrl-C during training, after saving
        return fail(str(stopped), 130)
    except KeyboardInterrupt:
        return fail("interrupted (Ctrl-C)" + (": nothing saved" if args.command == "train" else ""), 130)
    except (UserError, OSError, ValueError, FloatingPointError) as err:
        # FloatingPointError: the loss diverged (train says at which step and what to lower)
        return fail(str(err).removeprefix("path: "))
    except MemoryError:
        return fail("out of memory: choose smaller sizes (see 'gptnotes params' for what they need)")
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or [""])[0]
        if "alloc" in first.lower() or "out of memory" in first.lower():  # torch's allocation failures
            return fail(f"out of memory ({first}): choose smaller sizes")
        raise
    return 0
