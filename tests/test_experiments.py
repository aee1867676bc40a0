"""The experiments of sitetools/experiments, in small configurations: each gives what its figures draw."""

from __future__ import annotations

import math

import torch

from sitetools.experiments import attention, bigram, training

TEXT = "MARA: the lamp is lit.\nTOM: the sea is calm, the sky is dark.\n" * 8


def test_bigram_run_approaches_the_counted_optimum_from_above():
    run = bigram.run(TEXT, steps=40)
    V = run.tok.vocab_size
    assert run.counts.shape == (V, V) and run.full.vocab_size == V
    assert len(run.full_losses) == 40 and len(run.mini_losses) == 41
    assert run.full_losses[0] > run.full_losses[-1] > run.optimum - 1e-6   # nothing beats the counts
    assert min(run.mini_losses) > run.optimum - 1e-6
    assert abs(run.full_losses[0] - (math.log(V) + 0.5)) < 0.5              # the page's line at init
    probs = run.full.log_prob_table().exp()
    assert torch.allclose(probs.sum(dim=1), torch.ones(V), atol=1e-5)     # the table figure's rows


def test_bigram_run_is_the_same_every_time():
    a, b = bigram.run(TEXT, steps=5), bigram.run(TEXT, steps=5)
    assert a.full_losses == b.full_losses and a.mini_losses == b.mini_losses


def test_small_gpt_run_gives_a_trained_model_and_its_attention_maps():
    run = attention.run(TEXT, n_layer=1, n_head=2, n_embd=8, block_size=8, steps=20)
    assert not run.model.training
    assert set(run.losses) == {"train", "val"} and all(math.isfinite(v) for v in run.losses.values())
    idx = torch.tensor([run.tok.encode("MARA: th")])                         # (1, T=8)
    maps = run.model.attention_maps(idx)                                     # what the figure draws
    weights = maps[0, 0]                                                     # layer 0, sequence 0
    assert weights.shape == (2, 8, 8)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 8), atol=1e-5)
    assert bool((weights.triu(diagonal=1) == 0).all())


def test_scale_experiment_has_the_variances_the_page_explains():
    T, hs, C, scores = attention.scale_experiment()
    assert scores.shape == (attention.SCALE_SAMPLES, T, T)
    assert abs(scores.var().item() / hs - 1) < 0.05                          # variance hs
    assert abs((scores * hs**-0.5).var().item() - 1) < 0.05                  # scaled: 1


def test_training_run_records_the_curves_the_figure_draws():
    run = training.run(TEXT, steps=6, eval_interval=3, block_size=8, n_embd=8, n_head=2, n_layer=1)
    h = run.history
    assert run.vocab_size == len(set(TEXT)) and run.corpus_bytes == len(TEXT)
    assert run.params > 0
    assert len(h.steps) == len(h.losses) == 6
    assert h.eval_steps and all(set(e) == {"train", "val"} for e in h.eval_losses)
    assert h.losses[0] < math.log(run.vocab_size) + 1.0                      # near a uniform guess at first
