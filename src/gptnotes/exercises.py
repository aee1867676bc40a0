"""Checkers for the site's build-it-yourself exercises.

Each checker takes the class or function you wrote, runs it on small seeded inputs next to
the package's own implementation, and returns a [`CheckReport`][gptnotes.exercises.CheckReport]:
which shapes, values or gradients differ, on which input, and what the usual cause is; or
"all N checks passed". Nothing is printed and nothing raises because your code is wrong:
print the report, or test ``report.passed``.

    >>> from gptnotes import Linear
    >>> from gptnotes.exercises import check_linear
    >>> print(check_linear(Linear))
    check_linear: all 9 checks passed

Checks stop early only where the later ones cannot run (a class that cannot be built, a
function that returns the wrong kind of thing); a crash inside your code is reported as a
failed check with its exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CheckReport", "check_linear", "check_get_batch", "check_head", "check_weight_quant", "check_softmax"]


@dataclass
class CheckReport:
    """What a checker found: one entry per check, ``None`` where it passed, else the problem.

    Attributes:
        name (str): The checker, e.g. ``"check_head"``.
        results (list): ``(what was checked, problem or None)`` in the order they ran.
    """

    name: str
    results: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed (and at least one ran)."""
        return bool(self.results) and all(problem is None for _, problem in self.results)

    @property
    def failures(self) -> list[str]:
        """The problems found, each naming what was checked."""
        return [f"{what}: {problem}" for what, problem in self.results if problem is not None]

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        n = len(self.results)
        if self.passed:
            return f"{self.name}: all {n} checks passed"
        lines = [f"{self.name}: {len(self.failures)} of {n} checks failed"]
        lines += [f"- {f}" for f in self.failures]
        return "\n".join(lines)


class _Stop(Exception):
    """The checks that follow cannot run."""


class _Checks:
    def __init__(self, name: str):
        self.report = CheckReport(name)

    def check(self, what: str, test: Callable[[], str | None], *, needed: bool = False):
        try:
            problem = test()
        except Exception as err:  # noqa: BLE001 - the reader's code may raise anything
            problem = f"raised {type(err).__name__}: {err}"
        self.report.results.append((what, problem))
        if problem is not None and needed:
            raise _Stop
        return problem is None


def _shape(t: object) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(
        a.detach().double(), b.detach().double(), atol=atol, rtol=1e-4)


# --------------------------------------------------------------------------------------
# nn.Linear
# --------------------------------------------------------------------------------------

def check_linear(cls: Callable[..., nn.Module]) -> CheckReport:
    """Check a linear layer written like ``nn.Linear``: ``cls(in_features, out_features,
    bias=True)`` with ``.weight`` of shape ``(out_features, in_features)``, ``.bias`` of
    shape ``(out_features,)`` (``None`` with ``bias=False``), computing ``x @ weight.T +
    bias`` over any leading dimensions, with PyTorch's initialisation (uniform in
    ``±1/sqrt(in_features)``).

    Args:
        cls: Your class.

    Returns:
        The report. Typical mistakes it names: a weight stored ``(in, out)``, ``x @ W``
        instead of ``x @ W.T``, weights that are not registered parameters, a bias on the
        wrong axis, an initialisation that ignores ``in_features``.

    Examples:
        >>> from torch import nn
        >>> from gptnotes.exercises import check_linear
        >>> check_linear(nn.Linear).passed
        True
    """
    c = _Checks("check_linear")
    try:
        torch.manual_seed(0)
        layer = None

        def build():
            nonlocal layer
            layer = cls(5, 3)
            return None if isinstance(layer, nn.Module) else f"cls(5, 3) is a {type(layer).__name__}, not an nn.Module"

        c.check("cls(5, 3) builds a module", build, needed=True)

        def weight_shape():
            w = getattr(layer, "weight", None)
            if not isinstance(w, torch.Tensor):
                return "it has no .weight tensor"
            if tuple(w.shape) == (5, 3):
                return "weight has shape (5, 3), i.e. (in, out); nn.Linear stores (out_features, in_features) = (3, 5)"
            return None if tuple(w.shape) == (3, 5) else f"weight has shape {_shape(w)}, expected (3, 5)"

        c.check("weight of shape (out_features, in_features)", weight_shape, needed=True)
        c.check("bias of shape (out_features,)", lambda: None if isinstance(getattr(layer, "bias", None), torch.Tensor)
                and tuple(layer.bias.shape) == (3,) else f"bias is {_shape(getattr(layer, 'bias', None))}, expected (3,)",
                needed=True)

        def registered():
            names = {id(p) for p in layer.parameters()}
            missing = [n for n in ("weight", "bias") if id(getattr(layer, n)) not in names]
            return None if not missing else (f"{' and '.join(missing)} not among layer.parameters(): wrap them in "
                                             "nn.Parameter so that an optimiser sees them")

        c.check("weight and bias are registered parameters", registered)
        x = torch.randn(4, 5)

        def values():
            out = layer(x)
            ref = x @ layer.weight.T + layer.bias
            if _close(out, ref):
                return None
            if isinstance(out, torch.Tensor) and out.shape == ref.shape:
                wrong_bias = x @ layer.weight.T
                if _close(out, wrong_bias):
                    return "the bias is not added"
            return f"on x of shape (4, 5): output {_shape(out)} differs from x @ weight.T + bias (4, 3)" + (
                f" by up to {_max_diff(out, ref):.3g}" if isinstance(out, torch.Tensor) and out.shape == ref.shape else "")

        c.check("x @ weight.T + bias on a (4, 5) input", values)

        def leading():
            x3 = torch.randn(2, 4, 5)
            out = layer(x3)
            ref = x3 @ layer.weight.T + layer.bias
            return None if _close(out, ref) else f"on x of shape (2, 4, 5): output {_shape(out)}, expected (2, 4, 3)"

        c.check("any leading dimensions, e.g. (B, T, C)", leading)

        def no_bias():
            plain = cls(5, 3, bias=False)
            if getattr(plain, "bias", "missing") is not None:
                return "cls(5, 3, bias=False).bias should be None"
            return None if _close(plain(x), x @ plain.weight.T) else "with bias=False the output is not x @ weight.T"

        c.check("bias=False: no bias, output x @ weight.T", no_bias)

        def gradients():
            out = layer(x)
            out.pow(2).sum().backward()
            w, b = layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_()
            F.linear(x, w, b).pow(2).sum().backward()
            if layer.weight.grad is None:
                return "no gradient reached weight"
            return None if _close(layer.weight.grad, w.grad) and _close(layer.bias.grad, b.grad) else (
                "gradients differ from those of F.linear")

        c.check("gradients of weight and bias", gradients)

        def init():
            torch.manual_seed(1)
            wide = cls(256, 64)
            w = wide.weight.detach()
            bound = 1 / math.sqrt(256)
            if w.abs().max() > bound * 1.0001:
                return (f"with in_features=256 a weight reaches {w.abs().max():.3f}; PyTorch's init keeps them in "
                        f"±1/sqrt(in_features) = ±{bound:.4f}")
            if w.std() < bound / math.sqrt(3) * 0.8:
                return f"weights have std {w.std():.4f}, expected about {bound / math.sqrt(3):.4f} (uniform in ±{bound})"
            return None

        c.check("initialisation uniform in ±1/sqrt(in_features)", init)
    except _Stop:
        pass
    return c.report


# --------------------------------------------------------------------------------------
# get_batch
# --------------------------------------------------------------------------------------

def check_get_batch(fn: Callable) -> CheckReport:
    """Check a batch sampler written like [`get_batch`][gptnotes.data.get_batch]:
    ``fn(data, block_size, batch_size, generator=None) -> (x, y)``, both ``(batch_size,
    block_size)``, each row of ``x`` a window of ``data`` at a random start and the row of
    ``y`` the same window shifted by one token, drawn with ``generator``.

    Args:
        fn: Your function.

    Returns:
        The report. Typical mistakes it names: targets not shifted by one, windows that run
        past the end, a last start that is never drawn, ``x`` and ``y`` swapped, the
        generator ignored.

    Examples:
        >>> from gptnotes import get_batch
        >>> from gptnotes.exercises import check_get_batch
        >>> check_get_batch(get_batch).passed
        True
    """
    c = _Checks("check_get_batch")
    data = torch.arange(100)  # the value of each token is its index: windows are visible
    T, B = 8, 4
    try:
        out = None

        def call():
            nonlocal out
            out = fn(data, T, B, generator=torch.Generator().manual_seed(0))
            ok = isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)
            return None if ok else f"returned {type(out).__name__}, expected a pair of tensors (x, y)"

        c.check("returns (x, y), two tensors", call, needed=True)
        x, y = out
        c.check("x and y of shape (batch_size, block_size)", lambda: None if tuple(x.shape) == tuple(y.shape) == (B, T)
                else f"x {_shape(x)}, y {_shape(y)}, expected ({B}, {T}) each", needed=True)
        c.check("token ids keep their integer dtype", lambda: None if x.dtype == y.dtype == data.dtype
                else f"x is {x.dtype}, y is {y.dtype}; data is {data.dtype}")

        def windows():
            for row in x:
                s = int(row[0])
                if not torch.equal(row, data[s:s + T]):
                    return f"row {row.tolist()} is not a window data[s : s + {T}]"
            return None

        c.check("each row of x is a window of the data", windows)

        def shifted():
            if torch.equal(x, y):
                return "y equals x: the targets must be the windows shifted by one token, y = data[s + 1 : s + T + 1]"
            if torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y, x + 1):
                return None
            if torch.equal(y[:, 1:], x[:, :-1]):
                return "y is shifted the wrong way (x and y swapped?): y[t] must be the token after x[t]"
            return "y is not x shifted by one token"

        c.check("y is x shifted by one token", shifted)

        def in_range():
            small = torch.arange(12)  # starts 0 .. 12 - 8 - 1 = 3
            starts = set()
            g = torch.Generator().manual_seed(1)
            for _ in range(200):
                xs, ys = fn(small, T, 16, generator=g)
                if int(ys.max()) > 11:
                    return "a window runs past the end of the data"
                starts.update(int(s) for s in xs[:, 0])
            if max(starts) > 3:
                return f"a start of {max(starts)} leaves no target for the last token"
            if 3 not in starts:
                return (f"the last valid start, len(data) - block_size - 1 = 3, is never drawn (starts seen: "
                        f"{sorted(starts)}): draw starts from range(len(data) - block_size)")
            return None

        c.check("starts cover 0 .. len(data) - block_size - 1, no more", in_range)

        def generator():
            a = fn(data, T, B, generator=torch.Generator().manual_seed(5))
            b = fn(data, T, B, generator=torch.Generator().manual_seed(5))
            d = fn(data, T, B, generator=torch.Generator().manual_seed(6))
            if not (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])):
                return "two generators with the same seed gave different batches: draw the starts with `generator`"
            return None if not torch.equal(a[0], d[0]) else "generators with other seeds gave the same batch"

        c.check("draws with the generator it is given", generator)
    except _Stop:
        pass
    return c.report


# --------------------------------------------------------------------------------------
# One head of causal self-attention
# --------------------------------------------------------------------------------------

def _attend(x, wq, wk, wv, scale: float, mask: str) -> torch.Tensor:
    q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
    wei = q @ k.transpose(-2, -1) * scale
    T = x.shape[-2]
    if mask != "none":
        keep = torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=0 if mask == "causal" else -1)
        wei = wei.masked_fill(~keep, float("-inf"))
    return torch.softmax(wei, dim=-1) @ v


def check_head(cls: Callable[..., nn.Module]) -> CheckReport:
    """Check one head of causal self-attention written like [`Head`][gptnotes.attention.Head]:
    ``cls(n_embd, head_size, block_size)`` with bias-free layers ``.key``, ``.query`` and
    ``.value`` whose ``.weight`` is ``(head_size, n_embd)``, and a forward pass ``(B, T, C)
    -> (B, T, head_size)`` for any ``T <= block_size``: scores ``q @ k.T * head_size **
    -0.5``, the future masked (the position itself kept), a softmax over each row, then the
    values weighted.

    Your head runs in eval mode (no dropout); its output is compared with the package's
    ``Head`` given your weights.

    Args:
        cls: Your class.

    Returns:
        The report. Typical mistakes it names: scores scaled by ``C ** -0.5`` (``n_embd``)
        instead of ``head_size ** -0.5``, or not at all; a mask that hides the diagonal (the
        first position then has nothing to attend to); no mask (the future leaks in); the
        softmax over the wrong axis; layers with a bias.

    Examples:
        >>> from gptnotes import Head
        >>> from gptnotes.exercises import check_head
        >>> check_head(Head).passed
        True
    """
    from gptnotes.attention import Head

    c = _Checks("check_head")
    C, hs, block = 12, 4, 8
    try:
        torch.manual_seed(0)
        head = None

        def build():
            nonlocal head
            head = cls(C, hs, block)
            if not isinstance(head, nn.Module):
                return f"cls({C}, {hs}, {block}) is a {type(head).__name__}, not an nn.Module"
            head.eval()
            return None

        c.check(f"cls(n_embd={C}, head_size={hs}, block_size={block}) builds a module", build, needed=True)

        def layers():
            for name in ("key", "query", "value"):
                w = getattr(getattr(head, name, None), "weight", None)
                if not isinstance(w, torch.Tensor):
                    return f"head.{name} has no .weight"
                if tuple(w.shape) != (hs, C):
                    return f"head.{name}.weight is {_shape(w)}, expected (head_size, n_embd) = ({hs}, {C})"
            return None

        c.check("key, query, value layers with weights (head_size, n_embd)", layers, needed=True)
        c.check("key, query and value have no bias", lambda: next(
            (f"head.{n} has a bias: the head's projections are bias-free (bias=False)" for n in ("key", "query", "value")
             if getattr(getattr(head, n), "bias", None) is not None), None))
        wq, wk, wv = (getattr(head, n).weight.detach() for n in ("query", "key", "value"))
        x = torch.randn(2, 6, C)
        out = None

        def shape():
            nonlocal out
            with torch.no_grad():
                out = head(x)
            if isinstance(out, tuple):
                out = out[0]
            return None if isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 6, hs) else (
                f"on x of shape (2, 6, {C}) the output is {_shape(out)}, expected (2, 6, {hs})")

        c.check("output of shape (B, T, head_size)", shape, needed=True)

        def values():
            ref = Head(C, hs, block).eval()
            with torch.no_grad():
                ref.query.weight.copy_(wq)
                ref.key.weight.copy_(wk)
                ref.value.weight.copy_(wv)
                expected = ref(x)
            if _close(out, expected):
                return None
            if torch.isnan(out).any():
                return "the output holds NaN (a row of scores that is all -inf: does the mask hide the diagonal?)"
            hints = [
                (hs**-0.5, "strict", "the mask hides the diagonal: a position must also attend to itself (tril, not "
                 "tril shifted by one)"),
                (C**-0.5, "causal", "the scores are scaled by C ** -0.5 (n_embd); scale by head_size ** -0.5"),
                (1.0, "causal", "the scores are not scaled: multiply them by head_size ** -0.5"),
                (hs**-0.5, "none", "nothing is masked: future positions leak into the past"),
            ]
            for scale, mask, why in hints:
                guess = _attend(x, wq, wk, wv, scale, mask)
                if mask == "strict":
                    guess = guess.nan_to_num(0.0)
                if _close(out.nan_to_num(0.0), guess):
                    return why
            return f"differs from the reference head with the same weights by up to {_max_diff(out, expected):.3g}"

        c.check("same output as gptnotes.Head with your weights", values)

        def causal():
            x2 = x.clone()
            x2[:, 4:] = torch.randn(2, 2, C)
            with torch.no_grad():
                a, b = head(x), head(x2)
            a = a[0] if isinstance(a, tuple) else a
            b = b[0] if isinstance(b, tuple) else b
            same = _close(a[:, :4].nan_to_num(0.0), b[:, :4].nan_to_num(0.0))
            return None if same else "changing positions 4 and 5 changed the output at 0..3"

        c.check("no position sees the future", causal)

        def first():
            return None if _close(out[:, 0], x[:, 0] @ wv.T) else (
                "position 0 should output its own value (it can attend only to itself)")

        c.check("the first position attends only to itself", first)

        def lengths():
            for T in (1, block):
                with torch.no_grad():
                    o = head(torch.randn(1, T, C))
                o = o[0] if isinstance(o, tuple) else o
                if tuple(o.shape) != (1, T, hs):
                    return f"T = {T} gives {_shape(o)}"
            return None

        c.check("T = 1 and T = block_size both work", lengths)
    except _Stop:
        pass
    return c.report


# --------------------------------------------------------------------------------------
# BitNet b1.58: absmean weight quantisation
# --------------------------------------------------------------------------------------

def check_weight_quant(fn: Callable) -> CheckReport:
    """Check absmean weight quantisation as in BitNet b1.58, written like
    [`weight_quant`][gptnotes.bitnet.weight_quant]: ``fn(w) -> (ternary, gamma)`` with one
    scale for the whole tensor, ``gamma = mean(|w|)``, and ``ternary = RoundClip(w / gamma,
    -1, 1)`` (values -1, 0, +1), so that ``w ≈ gamma * ternary``. Dividing by ``gamma +
    eps`` (the paper) or by ``max(gamma, eps)`` (the reference code) both pass.

    Args:
        fn: Your function.

    Returns:
        The report. Typical mistakes it names: one scale per row where one per tensor is
        meant, the largest ``|w|`` (absmax) instead of the mean, rounding without clipping
        to ``[-1, 1]``, an all-zero matrix giving NaN.

    Examples:
        >>> from gptnotes.bitnet import weight_quant
        >>> from gptnotes.exercises import check_weight_quant
        >>> check_weight_quant(weight_quant).passed
        True
    """
    c = _Checks("check_weight_quant")
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 16, generator=g) * torch.linspace(0.2, 2.0, 6).unsqueeze(1)  # rows of other sizes
    gamma_ref = w.abs().mean()
    try:
        out = None

        def call():
            nonlocal out
            out = fn(w.clone())
            ok = isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)
            return None if ok else f"returned {type(out).__name__}, expected (ternary, gamma), two tensors"

        c.check("returns (ternary, gamma)", call, needed=True)
        ternary, gamma = out

        def scale():
            if gamma.numel() != 1:
                per_row = w.abs().mean(dim=1)
                if gamma.numel() == w.shape[0] and _close(gamma.flatten(), per_row):
                    return (f"gamma has shape {_shape(gamma)}: one scale per row; b1.58 uses one scale for the whole "
                            "matrix, the mean of |w| over all its entries")
                return f"gamma has shape {_shape(gamma)}, expected one number"
            value = float(gamma)
            if math.isclose(value, float(w.abs().max()), rel_tol=1e-5):
                return "gamma is the largest |w| (absmax); b1.58 uses the mean of |w| (absmean)"
            return None if math.isclose(value, float(gamma_ref), rel_tol=1e-5) else (
                f"gamma = {value:.4f}, expected mean(|w|) = {float(gamma_ref):.4f}")

        c.check("one scale, gamma = mean(|w|)", scale)

        def codes():
            if tuple(ternary.shape) != tuple(w.shape):
                return f"ternary has shape {_shape(ternary)}, expected {tuple(w.shape)}"
            values = set(torch.unique(ternary.detach().float()).tolist())
            if not values <= {-1.0, 0.0, 1.0}:
                extra = sorted(values - {-1.0, 0.0, 1.0})[:4]
                return f"ternary holds {extra}: clip w / gamma to [-1, 1] after rounding (RoundClip)"
            return None

        c.check("ternary of w's shape, values in {-1, 0, +1}", codes)

        def rounding():
            ref_a = (w / gamma_ref).round().clamp(-1, 1)
            ref_b = (w / (gamma_ref + 1e-5)).round().clamp(-1, 1)
            t = ternary.detach().float()
            if torch.equal(t, ref_a) or torch.equal(t, ref_b):
                return None
            wrong = int((t != ref_a).sum())
            return f"{wrong} of {w.numel()} codes differ from RoundClip(w / gamma, -1, 1)"

        c.check("ternary = RoundClip(w / gamma, -1, 1)", rounding)

        def zeros():
            t0, g0 = fn(torch.zeros(3, 4))
            if torch.isnan(t0.float()).any() or torch.isnan(g0.float()).any():
                return "an all-zero matrix gives NaN: keep gamma away from 0 (+ eps, or max(gamma, eps))"
            return None if not t0.float().abs().sum() and float(g0.flatten()[0]) > 0 else (
                "an all-zero matrix should give all-zero codes and a small positive gamma")

        c.check("an all-zero matrix gives zeros, not NaN", zeros)

        def shape_kept():
            t3, _ = fn(torch.randn(2, 3, 4, generator=g))
            return None if tuple(t3.shape) == (2, 3, 4) else f"a (2, 3, 4) tensor gives codes of shape {_shape(t3)}"

        c.check("works on any shape", shape_kept)
    except _Stop:
        pass
    return c.report


# --------------------------------------------------------------------------------------
# Softmax
# --------------------------------------------------------------------------------------

def check_softmax(fn: Callable) -> CheckReport:
    """Check a softmax written like [`softmax`][gptnotes.sampling.softmax]: ``fn(logits,
    dim=-1)`` returns probabilities of the logits' shape that sum to 1 along ``dim``, equal
    to ``torch.softmax``, and stays finite for large logits and for ``-inf`` (masked) ones.

    Args:
        fn: Your function.

    Returns:
        The report. Typical mistakes it names: no subtraction of the largest logit (large
        logits overflow to NaN), the sum taken over the wrong dimension, ``dim`` ignored.

    Examples:
        >>> import torch
        >>> from gptnotes.exercises import check_softmax
        >>> check_softmax(torch.softmax).passed
        True
    """
    c = _Checks("check_softmax")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, generator=g)

    def values():
        out = fn(x, dim=-1)
        ref = torch.softmax(x, dim=-1)
        if _close(out, ref):
            return None
        if isinstance(out, torch.Tensor) and out.shape == ref.shape and _close(out.sum(-1), torch.ones(2, 3)):
            return "rows sum to 1 but the values differ from torch.softmax"
        if isinstance(out, torch.Tensor) and out.shape == ref.shape:
            return "the rows do not sum to 1 along dim=-1 (normalised over another dimension?)"
        return f"output {_shape(out)}, expected {tuple(ref.shape)}"

    c.check("equals torch.softmax on (2, 3, 5) logits, dim=-1", values)
    c.check("keeps the logits' shape", lambda: None if tuple(fn(x, dim=-1).shape) == (2, 3, 5) else "shape changed")

    def other_dim():
        return None if _close(fn(x, dim=0), torch.softmax(x, dim=0)) else "dim=0 does not match torch.softmax(x, dim=0)"

    c.check("honours dim (dim=0)", other_dim)

    def large():
        big = torch.tensor([[1000.0, 1001.0, 1002.0]])
        out = fn(big, dim=-1)
        if torch.isnan(out).any() or torch.isinf(out).any():
            return "logits of 1000 give NaN or inf: exp overflows; subtract the largest logit first"
        return None if _close(out, torch.softmax(big, dim=-1)) else "logits of 1000 give the wrong probabilities"

    c.check("large logits (1000) stay finite", large)

    def masked():
        m = torch.tensor([[0.0, float("-inf"), 1.0]])
        out = fn(m, dim=-1)
        if torch.isnan(out).any():
            return "a -inf logit gives NaN"
        return None if _close(out, torch.softmax(m, dim=-1)) else "a -inf logit should get probability 0"

    c.check("-inf logits (masked) get probability 0", masked)
    return c.report
