"""Tests of sitetools.experiments.bitnet_vs_float: a tiny run gives everything the figures draw."""

from __future__ import annotations

import pytest
import torch

from gptnotes import Linear, weight_quant
from sitetools.experiments import bitnet_vs_float
from sitetools.figures import bitnet as bitnet_figures

TINY = {
    **bitnet_vs_float.SETTINGS,
    "n_embd": 16,
    "n_head": 2,
    "n_layer": 1,
    "steps": 4,
    "batch_size": 4,
    "eval_interval": 2,
    "eval_iters": 1,
    "final_batches": 2,
    "final_batch_size": 4,
}


@pytest.fixture(scope="module")
def tiny_run() -> dict:
    return bitnet_vs_float.run(TINY)


def test_a_tiny_run_returns_what_the_figures_and_the_table_need(tiny_run):
    run = tiny_run
    # the curves of both models, evaluated at the same steps
    for key in ("fp", "bit"):
        h = run["histories"][key]
        assert len(h.losses) == TINY["steps"] and h.eval_steps == [0, 2, 4]
        assert all(set(e) == {"train", "val"} for e in h.eval_losses)
    # the four rows of the table, each with finite losses
    assert set(run["results"]) == {"fp", "bit", "int", "ptq"}
    for losses in run["results"].values():
        assert set(losses) == {"train", "val"} and all(torch.isfinite(torch.tensor(list(losses.values()))))
    # one block: 3 linear layers of the fused attention's projections + 2 of the feed-forward
    assert run["replaced"] == run["frozen_layers"] == run["ptq_layers"] > 0
    assert run["same_logits"] is True  # the integer path is the BitNet model, bit for bit
    assert run["results"]["int"] == run["results"]["bit"]
    # the histogram's layer: its master weights, their codes and scale
    master, ternary = run["master"], run["ternary"]
    assert master.shape == (4 * TINY["n_embd"], TINY["n_embd"]) and ternary.dtype == torch.int8
    expected, gamma = weight_quant(master)
    assert torch.equal(ternary, expected) and run["gamma"] == float(gamma)
    assert run["params_bit"] != run["params_fp"]  # BitLinear drops biases and adds RMSNorm gains


def test_the_same_settings_give_the_same_numbers(tiny_run):
    a, b = tiny_run, bitnet_vs_float.run(TINY)
    assert a["results"] == b["results"] and torch.equal(a["master"], b["master"])


def test_post_training_ternarisation_rounds_only_the_block_weights():
    from gptnotes import GPTLanguageModel

    torch.manual_seed(0)
    model = GPTLanguageModel(11, 4, 8, 2, 2, attention="fused")
    head = model.lm_head.weight.detach().clone()
    n = bitnet_vs_float.ternarise_block_weights(model)
    linears = [m for m in model.blocks.modules() if isinstance(m, Linear)]
    assert n == len(linears) > 0
    for m in linears:
        assert len(m.weight.detach().abs().unique()) <= 2  # 0 and gamma
    assert torch.equal(model.lm_head.weight, head)


def test_a_change_to_the_experiment_re_renders_its_figures():
    # the render cache's key includes the files a figure module lists in INPUTS
    assert bitnet_vs_float.__file__ in bitnet_figures.INPUTS
