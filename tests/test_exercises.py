"""The exercise checkers pass the package's own implementations and catch the usual mistakes,
each with a message that says what is wrong."""

from __future__ import annotations

import torch
from torch import nn

from gptnotes import Head, Linear, get_batch, softmax
from gptnotes.bitnet import weight_quant
from gptnotes.exercises import (CheckReport, check_get_batch, check_head, check_linear, check_softmax,
                                check_weight_quant)


def test_every_checker_passes_the_package_and_pytorch():
    reports = [check_linear(Linear), check_linear(nn.Linear), check_get_batch(get_batch), check_head(Head),
               check_weight_quant(weight_quant), check_softmax(softmax), check_softmax(torch.softmax)]
    for report in reports:
        assert report.passed and bool(report), str(report)
        assert str(report) == f"{report.name}: all {len(report.results)} checks passed"
        assert len(report.results) >= 5


def test_a_report_lists_what_failed():
    report = CheckReport("check_x", [("a", None), ("b", "wrong"), ("c", None)])
    assert not report.passed and not report
    assert report.failures == ["b: wrong"]
    assert str(report) == "check_x: 1 of 3 checks failed\n- b: wrong"
    assert not CheckReport("check_x").passed  # no check ran


# -- typical mistakes -----------------------------------------------------------------------

class LinearInOut(nn.Module):
    """The weight stored (in, out), used as x @ W."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        return x @ self.weight + (0 if self.bias is None else self.bias)


class LinearUnregistered:
    """Plain tensors, not parameters, and a unit-variance initialisation."""

    def __init__(self, in_features, out_features, bias=True):
        self.weight = torch.randn(out_features, in_features)
        self.bias = torch.zeros(out_features) if bias else None

    def __call__(self, x):
        return x @ self.weight.T + (0 if self.bias is None else self.bias)


def test_check_linear_catches_a_transposed_weight_and_a_plain_class():
    report = check_linear(LinearInOut)
    assert not report.passed
    assert any("(in, out)" in f and "(out_features, in_features) = (3, 5)" in f for f in report.failures), report
    report = check_linear(LinearUnregistered)
    assert any("not an nn.Module" in f for f in report.failures), report


def _no_shift(data, block_size, batch_size, generator=None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in ix])
    return x, x.clone()


def _short_range(data, block_size, batch_size, generator=None):
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    return (torch.stack([data[i:i + block_size] for i in ix]),
            torch.stack([data[i + 1:i + block_size + 1] for i in ix]))


def _global_rng(data, block_size, batch_size, generator=None):
    return get_batch(data, block_size, batch_size)


def test_check_get_batch_catches_unshifted_targets_a_missed_start_and_an_ignored_generator():
    assert any("y equals x" in f for f in check_get_batch(_no_shift).failures)
    assert any("never drawn" in f for f in check_get_batch(_short_range).failures)
    assert any("draw the starts with `generator`" in f for f in check_get_batch(_global_rng).failures)


class _HeadBase(nn.Module):
    scale_by_c = False
    strict_mask = False

    def __init__(self, n_embd, head_size, block_size):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k = self.query(x), self.key(x)
        wei = q @ k.transpose(-2, -1) * (C if self.scale_by_c else k.shape[-1]) ** -0.5
        keep = torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1 if self.strict_mask else 0)
        wei = torch.softmax(wei.masked_fill(~keep, float("-inf")), dim=-1)
        return wei @ self.value(x)


class HeadScaledByC(_HeadBase):
    scale_by_c = True


class HeadHidingItself(_HeadBase):
    strict_mask = True


def test_check_head_passes_a_correct_head_and_names_the_scale_and_the_mask_mistakes():
    assert check_head(_HeadBase).passed, str(check_head(_HeadBase))
    report = check_head(HeadScaledByC)
    assert report.failures == ["same output as gptnotes.Head with your weights: the scores are scaled by "
                               "C ** -0.5 (n_embd); scale by head_size ** -0.5"], report
    report = check_head(HeadHidingItself)
    assert any("does the mask hide the diagonal" in f for f in report.failures), report
    assert any("first position" in f for f in report.failures), report


def _per_row(w):
    gamma = w.abs().mean(dim=1, keepdim=True)
    return (w / gamma).round().clamp(-1, 1), gamma


def _absmax(w):
    gamma = w.abs().max().clamp(min=1e-5)
    return (w / gamma).round().clamp(-1, 1), gamma


def _no_clip(w):
    gamma = w.abs().mean().clamp(min=1e-5)
    return (w / gamma).round(), gamma


def test_check_weight_quant_names_a_per_row_scale_absmax_and_a_missing_clip():
    assert any("one scale per row" in f for f in check_weight_quant(_per_row).failures)
    assert any("(absmax)" in f for f in check_weight_quant(_absmax).failures)
    assert any("clip w / gamma to [-1, 1]" in f for f in check_weight_quant(_no_clip).failures)


def _naive_softmax(logits, dim=-1):
    e = logits.exp()
    return e / e.sum(dim, keepdim=True)


def _last_dim_only(logits, dim=-1):
    return torch.softmax(logits, dim=-1)


def test_check_softmax_names_overflow_and_an_ignored_dim():
    assert check_softmax(_naive_softmax).failures == [
        "large logits (1000) stay finite: logits of 1000 give NaN or inf: exp overflows; subtract the largest "
        "logit first"]
    assert any("dim=0" in f for f in check_softmax(_last_dim_only).failures)


def test_a_crash_in_the_readers_code_is_a_failed_check_not_an_exception():
    def broken(data, block_size, batch_size, generator=None):
        raise RuntimeError("oops")

    report = check_get_batch(broken)
    assert report.failures == ["returns (x, y), two tensors: raised RuntimeError: oops"]
