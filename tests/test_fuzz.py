"""A fuzz of the public API and of the ``gptnotes`` command, as a careless or hostile user would.

Every example replaces one argument of a valid call by a bad value (from a catalogue of the
values users get wrong, and numbers Hypothesis draws) and classifies what happens:

* ``clear``: a ``TypeError`` or ``ValueError`` (``FileNotFoundError`` for a path) whose one-line
  message names the argument; for the command, exit status 2 and one line on stderr that names
  the option;
* ``unclear``: any other exception, a message that does not name the argument, a traceback or
  several lines;
* ``silent``: the bad value was accepted (a wrong answer, or work on nonsense);
* ``crash``: the child process died from a signal (the command runs in a child process in the
  long profile; in-process, a crash ends the test run, which fails it too).

Anything but ``clear`` fails the test. A second group checks valid but extreme values (tiny
and huge temperatures, epsilons at the edge of float32) for silent NaN.

Profiles: the normal test run draws a bounded number of examples (a few seconds); for the
long profile run by hand::

    GPTNOTES_FUZZ=long python -m pytest -q -p no:cacheprovider tests/test_fuzz.py -s

``-s`` shows the counts by outcome at the end of the module (``GPTNOTES_FUZZ_REPORT=file``
also writes them to a file).
"""

from __future__ import annotations

import collections
import math
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptnotes import (
    BigramLanguageModel,
    CharTokenizer,
    Embedding,
    GPTConfig,
    GPTLanguageModel,
    Head,
    Linear,
    MultiHeadAttention,
    causal_mask,
    cosine_similarity,
    estimate_loss,
    get_batch,
    layer_norm,
    load_checkpoint,
    nearest,
    one_hot,
    sample_next_token,
    save_checkpoint,
    softmax,
    softmax_with_temperature,
    train,
    train_val_split,
)
from gptnotes.bitnet import RMSNorm, activation_quant, int8_matmul
from gptnotes.cli import main

LONG = os.environ.get("GPTNOTES_FUZZ", "") == "long"
API_EXAMPLES = 3000 if LONG else 120
CLI_EXAMPLES = 300 if LONG else 12
EXTREME_EXAMPLES = 2000 if LONG else 60
FUZZ = settings(
    max_examples=API_EXAMPLES, deadline=None, derandomize=not LONG, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

OUTCOMES: collections.Counter = collections.Counter()

NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, -(2**63), True, False, 1.5, "3", None, NAN, [2]]
BAD_SIZE = [*BAD_POS_INT, 2**63, 10**15]  # sizes: a huge one must be refused before allocating
BAD_POS_FLOAT = [0, 0.0, -1.0, -1e-300, NAN, INF, -INF, "1", None, True, 1j]
BAD_EPS = [*BAD_POS_FLOAT, 1e-320, 5e-324, 1e300]
BAD_PROB = [-0.1, 1.0, 1.5, NAN, INF, "0.1", None, True]
BAD_BOOL = [1, 0, "yes", None, 1.0]
BAD_FLOAT_TENSOR = [None, [1.0, 2.0], 3.0, torch.tensor([1, 2]), torch.tensor(True)]
BAD_IDS = [None, [0, 1], torch.tensor([0.0, 1.0]), torch.tensor([0, 99]), torch.tensor([-1, 0]),
           torch.zeros(2, dtype=torch.long, device="meta")]
BAD_PATH = [None, 5, "", b"x.pt", [1]]


def _text():
    return "hello world, the quick brown fox. " * 6


def _tok():
    return CharTokenizer(_text())


def _data():
    return torch.tensor(_tok().encode(_text()))


def _tiny_gpt():
    torch.manual_seed(0)
    return GPTLanguageModel(_tok().vocab_size, 4, 8, 2, 1)


_TMP: list[str] = []


def _tmp() -> str:
    if not _TMP:
        import tempfile

        _TMP.append(tempfile.mkdtemp(prefix="gptnotes-fuzz-"))
    return _TMP[0]



# (name, function of keyword arguments, valid keyword arguments, {argument: (bad values, names
# the message may use)})
TARGETS = [
    ("Linear", lambda **k: Linear(**k), lambda: dict(in_features=3, out_features=2, bias=True),
     {"in_features": BAD_SIZE, "out_features": BAD_SIZE, "bias": BAD_BOOL}),
    ("Embedding", lambda **k: Embedding(**k), lambda: dict(num_embeddings=5, embedding_dim=3),
     {"num_embeddings": BAD_SIZE, "embedding_dim": BAD_SIZE}),
    ("Embedding.forward", lambda idx: Embedding(3, 2)(idx), lambda: dict(idx=torch.tensor([0, 2])),
     {"idx": BAD_IDS}),
    ("one_hot", lambda **k: one_hot(**k), lambda: dict(idx=torch.tensor([0, 1]), num_classes=3),
     {"idx": BAD_IDS, "num_classes": BAD_SIZE}),
    ("softmax", lambda **k: softmax(**k), lambda: dict(logits=torch.tensor([1.0, 2.0]), dim=-1),
     {"logits": BAD_FLOAT_TENSOR + [torch.empty(0)], "dim": [5, -3, 1.0, "x", None, True]}),
    ("softmax_with_temperature", lambda **k: softmax_with_temperature(**k),
     lambda: dict(logits=torch.tensor([1.0, 2.0]), temperature=0.5),
     {"logits": BAD_FLOAT_TENSOR, "temperature": BAD_POS_FLOAT}),
    ("sample_next_token", lambda **k: sample_next_token(**k),
     lambda: dict(logits=torch.tensor([[1.0, 2.0]]), temperature=1.0, generator=None),
     {"logits": BAD_FLOAT_TENSOR + [torch.tensor([[NAN, 1.0]]), torch.tensor([[-INF, -INF]])],
      "temperature": BAD_POS_FLOAT, "generator": [0, "g", torch.tensor(1)]}),
    ("causal_mask", lambda **k: causal_mask(**k), lambda: dict(T=4), {"T": BAD_SIZE}),
    ("Head", lambda **k: Head(**k), lambda: dict(n_embd=8, head_size=4, block_size=4, dropout=0.0),
     {"n_embd": BAD_SIZE, "head_size": BAD_SIZE, "block_size": BAD_SIZE, "dropout": BAD_PROB}),
    ("MultiHeadAttention", lambda **k: MultiHeadAttention(**k),
     lambda: dict(n_embd=8, num_heads=2, head_size=4, block_size=4, dropout=0.0),
     {"n_embd": BAD_SIZE, "num_heads": BAD_SIZE, "head_size": BAD_SIZE, "block_size": BAD_SIZE,
      "dropout": BAD_PROB}),
    ("Head.forward", lambda **k: Head(8, 4, 4)(**k), lambda: dict(x=torch.zeros(1, 3, 8), return_weights=False),
     {"x": BAD_FLOAT_TENSOR + [torch.zeros(1, 5, 8), torch.zeros(1, 3, 7), torch.zeros(3, 8)],
      "return_weights": BAD_BOOL}),
    ("BigramLanguageModel", lambda **k: BigramLanguageModel(**k), lambda: dict(vocab_size=5),
     {"vocab_size": BAD_SIZE}),
    ("GPTConfig", lambda **k: GPTConfig(**k), lambda: dict(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1),
     {"vocab_size": BAD_POS_INT, "block_size": BAD_POS_INT, "n_embd": BAD_POS_INT, "n_head": BAD_POS_INT,
      "n_layer": BAD_POS_INT}),
    ("GPTLanguageModel", lambda **k: GPTLanguageModel(**k),
     lambda: dict(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1, dropout=0.0, attention="heads"),
     {"vocab_size": BAD_SIZE, "block_size": BAD_SIZE, "n_embd": BAD_SIZE, "n_layer": BAD_SIZE,
      "dropout": BAD_PROB, "attention": ["Heads", None, 1, "flash"]}),
    ("GPTLanguageModel.generate", lambda **k: _tiny_gpt().generate(**k),
     lambda: dict(idx=torch.tensor([[0]]), max_new_tokens=2, temperature=1.0),
     {"idx": BAD_IDS, "max_new_tokens": [-1, 1.5, "2", None, True], "temperature": BAD_POS_FLOAT}),
    ("layer_norm", lambda **k: layer_norm(**k), lambda: dict(x=torch.ones(2, 3), eps=1e-5),
     {"x": BAD_FLOAT_TENSOR, "eps": BAD_EPS}),
    ("RMSNorm", lambda **k: RMSNorm(**k), lambda: dict(dim=4, eps=1e-5), {"dim": BAD_SIZE, "eps": BAD_EPS}),
    ("cosine_similarity", lambda **k: cosine_similarity(**k), lambda: dict(a=torch.ones(3), b=torch.ones(3), eps=1e-8),
     {"a": BAD_FLOAT_TENSOR, "b": BAD_FLOAT_TENSOR + [torch.ones(4)], "eps": BAD_EPS}),
    ("nearest", lambda **k: nearest(**k), lambda: dict(query=torch.ones(2), table=torch.eye(2), k=1, exclude=()),
     {"query": BAD_FLOAT_TENSOR + [torch.tensor([NAN, 1.0])], "table": BAD_FLOAT_TENSOR + [torch.tensor([[NAN, 0.0]])],
      "k": [*BAD_POS_INT, 3], "exclude": [None, 5, "ab", [7], [0.5]]}),
    ("int8_matmul", lambda **k: int8_matmul(**k),
     lambda: dict(a=torch.ones(1, 2, dtype=torch.int8), b=torch.ones(2, 1, dtype=torch.int8)),
     {"a": [None, torch.ones(1, 2), torch.ones(1, 3, dtype=torch.int8)], "b": [None, torch.ones(2, 1, dtype=torch.int32)]}),
    ("activation_quant", lambda **k: activation_quant(**k), lambda: dict(x=torch.ones(2, 3), eps=1e-5),
     {"x": BAD_FLOAT_TENSOR + [torch.tensor([[NAN, 1.0]])], "eps": BAD_EPS}),
    ("CharTokenizer", lambda **k: CharTokenizer(**k), lambda: dict(text="abc"), {"text": [None, "", 5, ["a"], b"abc"]}),
    ("CharTokenizer.encode", lambda **k: CharTokenizer("abc").encode(**k), lambda: dict(text="ab"),
     {"text": [None, "abz", 5, b"ab"]}),
    ("CharTokenizer.decode", lambda **k: CharTokenizer("abc").decode(**k), lambda: dict(ids=[0, 1]),
     {"ids": [None, [5], [-1], [0.5], "ab", torch.tensor([0.0]), 3]}),
    ("get_batch", lambda **k: get_batch(**k),
     lambda: dict(data=torch.arange(20), block_size=4, batch_size=2, generator=None),
     {"data": [None, torch.arange(3), torch.zeros(20), [1, 2, 3]], "block_size": BAD_POS_INT + [50],
      "batch_size": BAD_POS_INT, "generator": [1, "g"]}),
    ("train_val_split", lambda **k: train_val_split(**k), lambda: dict(data=torch.arange(20), train_fraction=0.9),
     {"data": [None, 5, torch.zeros(2, 2)], "train_fraction": [0, 1, -0.5, 1.5, NAN, "0.9", None, True]}),
    ("estimate_loss", lambda **k: estimate_loss(BigramLanguageModel(_tok().vocab_size), **k),
     lambda: dict(splits={"val": _data()}, block_size=4, batch_size=2, eval_iters=1),
     {"splits": [None, {}, [1], {"val": torch.zeros(10)}, {"val": torch.tensor([0, 1])}],
      "block_size": BAD_POS_INT, "batch_size": BAD_POS_INT, "eval_iters": BAD_POS_INT}),
    ("train", lambda **k: train(_tiny_gpt(), **k),
     lambda: dict(train_data=_data(), steps=1, batch_size=2, block_size=4, lr=1e-3, seed=0, progress=False),
     {"train_data": [None, torch.zeros(50), torch.arange(3), torch.full((50,), 99)],
      "steps": BAD_POS_INT, "batch_size": BAD_POS_INT, "block_size": [*BAD_POS_INT, 5],
      "lr": BAD_POS_FLOAT, "seed": [-1, 2**63, 2**70, 1.5, "0", None], "progress": BAD_BOOL}),
    ("save_checkpoint", lambda **k: save_checkpoint(model=BigramLanguageModel(3), **k),
     lambda: dict(path=os.path.join(_tmp(), "c.pt"), extra={}, force=False),
     {"path": BAD_PATH + [_tmp(), "/nonexistent-folder/c.pt", "/dev/null", "/proc/c.pt"],
      "extra": [5, "x", {1: 2}, {"o": object()}, {"t": torch.ones(1)}, {"s": {1, 2}}], "force": BAD_BOOL}),
    ("load_checkpoint", lambda **k: load_checkpoint(**k), lambda: dict(path=os.path.join(_tmp(), "c.pt")),
     {"path": BAD_PATH + [_tmp(), "/nonexistent.pt", "/dev/null", "/dev/zero", "/etc/hostname"]}),
]

CASES = [(name, fn, valid, arg, bad) for name, fn, valid, args in TARGETS for arg, bads in args.items() for bad in bads]


def _names(arg: str) -> tuple[str, ...]:
    extra = {"train_data": ("train_data",), "path": ("path",), "splits": ("splits",), "x": ("x", "input")}
    return extra.get(arg, (arg,))


def _classify(call, names, path_arg=False) -> tuple[str, str]:
    try:
        call()
    except (TypeError, ValueError) as err:
        msg = str(err)
        if "\n" not in msg and any(n in msg for n in names):
            return "clear", msg
        return "unclear", f"{type(err).__name__}: {msg}"
    except FileNotFoundError as err:
        return ("clear" if path_arg and "path" in str(err) else "unclear"), str(err)
    except OSError as err:
        ok = path_arg and "path" in str(err) and "\n" not in str(err)
        return ("clear" if ok else "unclear"), f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - the point is to see every kind
        return "unclear", f"{type(err).__name__}: {err}"
    return "silent", "accepted the bad value"


def _record(kind: str, where: str, detail: str) -> None:
    OUTCOMES[kind] += 1
    assert kind == "clear", f"{kind}: {where}: {detail}"


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    save_checkpoint(os.path.join(_tmp(), "c.pt"), BigramLanguageModel(3))
    yield
    line = "fuzz outcomes (" + ("long" if LONG else "normal") + " profile): " + ", ".join(
        f"{k} {OUTCOMES[k]}" for k in ("clear", "unclear", "silent", "crash"))
    print("\n" + line)
    if os.environ.get("GPTNOTES_FUZZ_REPORT"):
        with open(os.environ["GPTNOTES_FUZZ_REPORT"], "a", encoding="utf-8") as f:
            f.write(line + "\n")


def test_every_bad_argument_of_the_catalogue_gets_a_clear_error():
    failures = []
    for name, fn, valid, arg, bad in CASES:
        kwargs = valid()
        kwargs[arg] = bad
        kind, detail = _classify(lambda fn=fn, kwargs=kwargs: fn(**kwargs), _names(arg), path_arg=arg == "path")
        OUTCOMES[kind] += 1
        if kind != "clear":
            failures.append(f"{kind}: {name}({arg}={bad!r}): {detail[:300]}")
    assert not failures, "\n".join(failures)


@FUZZ
@given(case=st.sampled_from(CASES))
def test_one_bad_argument_of_the_public_api_gets_a_clear_error(case):
    name, fn, valid, arg, bad = case
    kwargs = valid()
    kwargs[arg] = bad
    kind, detail = _classify(lambda: fn(**kwargs), _names(arg), path_arg=arg == "path")
    _record(kind, f"{name}({arg}={bad!r})", detail)


bad_ints = st.one_of(st.integers(max_value=0), st.integers(min_value=2**63, max_value=2**200))
bad_floats = st.one_of(st.floats(max_value=0.0), st.just(NAN), st.just(INF), st.floats(min_value=1e-320, max_value=1e-39))
INT_ARGS = [(n, fn, valid, arg) for n, fn, valid, args in TARGETS for arg, bads in args.items() if bads in (BAD_SIZE,)]
EPS_ARGS = [(n, fn, valid, arg) for n, fn, valid, args in TARGETS for arg, bads in args.items() if bads is BAD_EPS]


def _call_with(target, value) -> None:
    """Call a target with one argument replaced by ``value``, and record the outcome."""
    name, fn, valid, arg = target
    kwargs = valid()
    kwargs[arg] = value
    kind, detail = _classify(lambda: fn(**kwargs), _names(arg))
    _record(kind, f"{name}({arg}={value!r})", detail)


@FUZZ
@given(target=st.sampled_from(INT_ARGS), value=bad_ints)
def test_drawn_bad_sizes_get_a_clear_error(target, value):
    _call_with(target, value)


@FUZZ
@given(target=st.sampled_from(EPS_ARGS), value=bad_floats)
def test_drawn_bad_epsilons_get_a_clear_error(target, value):
    _call_with(target, value)


# --- valid but extreme values: no silent NaN ------------------------------------------------

finite_logits = st.lists(st.floats(-1e30, 1e30).map(lambda v: float(torch.tensor(v))), min_size=1, max_size=6)


@settings(max_examples=EXTREME_EXAMPLES, deadline=None, derandomize=not LONG, database=None)
@given(logits=finite_logits, temperature=st.floats(min_value=5e-324, max_value=1e300))
def test_softmax_with_any_valid_temperature_is_a_distribution(logits, temperature):
    probs = softmax_with_temperature(torch.tensor(logits), temperature)
    ok = bool(torch.isfinite(probs).all()) and math.isclose(float(probs.sum()), 1.0, rel_tol=1e-4)
    _record("clear" if ok else "silent", f"softmax_with_temperature({logits}, {temperature})", f"{probs.tolist()}")


@settings(max_examples=EXTREME_EXAMPLES, deadline=None, derandomize=not LONG, database=None)
@given(eps=st.floats(min_value=1.2e-38, max_value=1e30), values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5))
def test_norms_with_any_accepted_eps_are_finite(eps, values):
    x = torch.tensor([values])
    outs = [layer_norm(x, eps=eps), RMSNorm(len(values), eps=eps)(x), cosine_similarity(x[0], x[0], eps=eps)]
    ok = all(bool(torch.isfinite(o).all()) for o in outs)
    _record("clear" if ok else "silent", f"eps={eps}, x={values}", str([o.tolist() for o in outs]))


# --- the command line ------------------------------------------------------------------------

TEXT_FILE = "fuzz-input.txt"
TRAIN_OK = ["--steps", "1", "--block-size", "4", "--n-embd", "8", "--n-head", "2", "--n-layer", "1",
            "--eval-iters", "1", "--batch-size", "2", "--no-progress"]
CLI_CASES = [
    ("train", "--steps", ["0", "-1"]), ("train", "--batch-size", ["0", "-3"]), ("train", "--lr", ["0", "-1", "nan", "inf"]),
    ("train", "--eval-interval", ["0", "-2"]), ("train", "--eval-iters", ["0"]), ("train", "--seed", ["-1", str(2**64)]),
    ("train", "--block-size", ["0", "-1", "1000000000000", "500"]), ("train", "--n-embd", ["0", "7", str(10**9)]),
    ("train", "--n-head", ["0", "3"]), ("train", "--n-layer", ["0", str(10**12)]), ("train", "--dropout", ["1", "-0.1", "nan"]),
    ("train", "--save-every", ["0", "-5"]), ("train", "--out", ["", "/", "/proc/x.pt", "/dev/null", "/nonexistent/x.pt"]),
    ("train", "FILE", ["/nonexistent.txt", "/", "/dev/zero", "EMPTY", "BINARY"]),
    ("generate", "--tokens", ["-1"]), ("generate", "--temperature", ["0", "-1", "nan", "inf"]),
    ("generate", "--seed", ["-1", str(2**64)]), ("generate", "--prompt", ["\x01~§"]),
    ("generate", "CKPT", ["/nonexistent.pt", "/", "/dev/zero", "TEXT"]),
    ("params", "--vocab-size", ["0", "-1", "100000000", str(10**15)]), ("params", "--block-size", ["0", str(10**9)]),
    ("params", "--n-head", ["0", "5"]), ("params", "--dropout", ["1.0"]),
]
FLAT_CLI = [(cmd, opt, v) for cmd, opt, vals in CLI_CASES for v in vals]


def _option_names(opt: str) -> tuple[str, ...]:
    bare = opt.lstrip("-")
    return (opt, bare, bare.replace("-", "_"), "path", "FILE", "CKPT", "no such", "folder", "regular file", "empty", "UTF-8",
            "checkpoint") if opt in ("FILE", "CKPT", "--out") else (opt, bare.replace("-", "_"))


def _cli_argv(cmd, opt, value, folder):
    text = os.path.join(folder, TEXT_FILE)
    ckpt = os.path.join(folder, "fuzz.pt")
    special = {"EMPTY": os.path.join(folder, "empty.txt"), "BINARY": os.path.join(folder, "binary.txt"), "TEXT": text}
    value = special.get(value, value)
    if cmd == "train":
        file = value if opt == "FILE" else text
        out = value if opt == "--out" else os.path.join(folder, "out.pt")
        argv = ["train", file, "--out", out, *TRAIN_OK]
        if opt not in ("FILE", "--out"):
            i = argv.index(opt) if opt in argv else None
            argv = argv[: i] + argv[i + 2:] if i is not None else argv
            argv += [opt, value]
        return argv
    if cmd == "generate":
        argv = ["generate", value if opt == "CKPT" else ckpt, "--tokens", "3"]
        if opt != "CKPT":
            argv = [a for a in argv if a not in ("--tokens", "3")] if opt == "--tokens" else argv
            argv += [opt, value]
        return argv
    return ["params", opt, value]


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-fuzz")
    (folder / TEXT_FILE).write_text(_text() * 3, encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert main(["train", str(folder / TEXT_FILE), "--out", str(folder / "fuzz.pt"), *TRAIN_OK]) == 0
    return str(folder)


def _classify_cli(code: int, err: str, names) -> tuple[str, str]:
    lines = err.strip().splitlines()
    if code < 0:
        return "crash", f"killed by signal {-code}"
    if code == 0:
        return "silent", "exit status 0"
    one = len(lines) >= 1 and "Traceback" not in err and lines[-1].startswith(("gptnotes", "usage:"))
    named = any(n in lines[-1] for n in names) if lines else False
    if code == 2 and one and named and (len(lines) == 1 or lines[0].startswith("usage:")):
        return "clear", lines[-1]
    return "unclear", f"exit {code}: {err.strip()[-500:]}"


@settings(max_examples=CLI_EXAMPLES, deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=st.sampled_from(FLAT_CLI))
def test_one_bad_option_of_the_command_gets_one_clear_line(case, cli_folder, capsys):
    cmd, opt, value = case
    argv = _cli_argv(cmd, opt, value, cli_folder)
    capsys.readouterr()
    if LONG:  # a child process: a crash is seen as a signal, not as the end of the test run
        result = subprocess.run([sys.executable, "-m", "gptnotes", *argv], capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        code, err = result.returncode, result.stderr
    else:
        code = main(argv)
        err = capsys.readouterr().err
    kind, detail = _classify_cli(code, err, _option_names(opt))
    _record(kind, "gptnotes " + " ".join(argv[:1] + [opt, repr(value)]), detail)
