"""Tests of gptnotes.training: estimate_loss, eval_mode, train, make_optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gptnotes import (
    BigramLanguageModel,
    CharTokenizer,
    TrainState,
    estimate_loss,
    eval_mode,
    get_batch,
    make_optimizer,
    train,
)
from tests.tiny_training import KW, TEXT, params_of, tiny_data, tiny_gpt

# --- estimate_loss and eval_mode -------------------------------------------------------


def test_estimate_loss_is_the_mean_of_the_batch_losses():
    _, tr, va = tiny_data()
    model = tiny_gpt()
    got = estimate_loss(model, {"train": tr, "val": va}, 8, 4, 3, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    expected = {}
    for name, data in (("train", tr), ("val", va)):
        losses = [model(*get_batch(data, 8, 4, generator=g))[1].item() for _ in range(3)]
        expected[name] = sum(losses) / 3
    assert list(got) == ["train", "val"]
    for name in got:
        assert abs(got[name] - expected[name]) < 1e-6


@pytest.mark.parametrize("start_training", [True, False])
def test_estimate_loss_restores_the_previous_mode(start_training):
    _, tr, _ = tiny_data()
    model = tiny_gpt(dropout=0.2)
    model.train(start_training)
    estimate_loss(model, {"train": tr}, 8, 4, 2)
    assert all(m.training == start_training for m in model.modules())


def test_estimate_loss_restores_mixed_modes_and_runs_in_eval_without_grad():
    _, tr, _ = tiny_data()
    seen = {}

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny_gpt(dropout=0.2)

        def forward(self, x, y):
            seen["training"] = [m.training for m in self.modules()]
            seen["grad"] = torch.is_grad_enabled()
            return self.inner(x, y)

    spy = Spy()
    spy.inner.blocks.eval()  # mixed: some modules train, some eval
    before = [m.training for m in spy.modules()]
    estimate_loss(spy, {"train": tr}, 8, 4, 1)
    assert not any(seen["training"]) and seen["grad"] is False
    assert [m.training for m in spy.modules()] == before


def test_estimate_loss_restores_the_mode_after_an_error():
    class Broken(nn.Module):
        def forward(self, x, y):
            raise RuntimeError("boom")

    model = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        estimate_loss(model, {"train": torch.arange(20)}, 4, 2, 1)
    assert model.training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training


def test_estimate_loss_errors():
    model = tiny_gpt()
    _, tr, _ = tiny_data()
    with pytest.raises(ValueError, match="splits"):
        estimate_loss(model, {}, 8, 4, 1)
    with pytest.raises(TypeError, match="splits"):
        estimate_loss(model, [tr], 8, 4, 1)
    with pytest.raises(TypeError, match="splits"):
        estimate_loss(model, {"train": tr.float()}, 8, 4, 1)
    with pytest.raises(ValueError, match="eval_iters"):
        estimate_loss(model, {"train": tr}, 8, 4, 0)
    with pytest.raises(ValueError, match="block_size"):
        estimate_loss(model, {"train": tr[:5]}, 8, 4, 1)


def test_item11_estimate_loss_names_the_split_it_was_given():
    model = BigramLanguageModel(5)
    with pytest.raises(ValueError, match=r"splits\['val'\] has 3 tokens, too few for block_size=4"):
        estimate_loss(model, {"val": torch.tensor([0, 1, 2])}, block_size=4, batch_size=2, eval_iters=1)


def test_eval_mode_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        with eval_mode(5):
            pass


# --- train -----------------------------------------------------------------------------


def test_train_same_seed_is_bit_identical_and_leaves_global_rng_alone():
    _, tr, va = tiny_data()
    a, b = tiny_gpt(dropout=0.1), tiny_gpt(dropout=0.1)
    rng_before = torch.get_rng_state()  # after _gpt, which seeds the global generator itself
    sa = train(a, tr, va, steps=12, seed=3, **KW)
    sb = train(b, tr, va, steps=12, seed=3, **KW)
    assert sa.history.losses == sb.history.losses  # exact float equality
    assert sa.history.eval_losses == sb.history.eval_losses
    pa, pb = params_of(a), params_of(b)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert torch.equal(torch.get_rng_state(), rng_before)
    c = tiny_gpt(dropout=0.1)
    sc = train(c, tr, va, steps=12, seed=4, **KW)
    assert sc.history.losses != sa.history.losses


def test_train_lowers_the_loss_and_records_history():
    _, tr, va = tiny_data()
    model = tiny_gpt()
    state = train(model, tr, va, steps=40, seed=0, **{**KW, "eval_interval": 10})
    h = state.history
    assert state.step == 40 and h.steps == list(range(1, 41)) and len(h.losses) == 40
    assert h.eval_steps == [0, 10, 20, 30, 40]
    assert all(set(e) == {"train", "val"} for e in h.eval_losses)
    assert h.eval_losses[-1]["train"] < h.eval_losses[0]["train"] - 0.5
    assert isinstance(state.optimizer, torch.optim.AdamW)
    assert state.optimizer.param_groups[0]["lr"] == KW["lr"]


def test_train_works_for_the_bigram_model_too():
    _, tr, _ = tiny_data()
    torch.manual_seed(0)
    model = BigramLanguageModel(CharTokenizer(TEXT).vocab_size)
    state = train(model, tr, steps=30, batch_size=8, block_size=8, lr=0.1, progress=False)
    assert state.history.eval_losses[-1]["train"] < state.history.eval_losses[0]["train"]


def test_on_step_sees_every_finished_step():
    _, tr, va = tiny_data()
    seen = []
    train(tiny_gpt(), tr, va, steps=3, on_step=lambda s: seen.append((s.step, len(s.history.losses))), **KW)
    assert seen == [(1, 1), (2, 2), (3, 3)]


def test_train_errors():
    _, tr, va = tiny_data()
    model = tiny_gpt()
    with pytest.raises(ValueError, match="block_size"):
        train(model, tr, steps=1, batch_size=2, block_size=9, progress=False)
    with pytest.raises(ValueError, match="val_data"):
        train(model, tr, va[:5], steps=1, batch_size=2, block_size=8, progress=False)
    with pytest.raises(ValueError, match="steps"):
        train(model, tr, steps=0, batch_size=2, block_size=8, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(model, tr, steps=1, batch_size=2, block_size=8, lr=-1.0, progress=False)
    with pytest.raises(TypeError, match="train_data"):
        train(model, tr.float(), steps=1, batch_size=2, block_size=8, progress=False)
    with pytest.raises(TypeError, match="state"):
        train(model, tr, steps=1, batch_size=2, block_size=8, progress=False, state={"step": 3})
    with pytest.raises(TypeError, match="model"):
        train("model", tr, steps=1, batch_size=2, block_size=8, progress=False)


def test_train_and_estimate_loss_name_a_model_that_takes_no_targets():
    _, tr, _ = tiny_data()
    for call in (lambda m: train(m, tr, steps=2, **KW), lambda m: estimate_loss(m, {"val": tr}, 8, 4, 1)):
        with pytest.raises(TypeError, match=r"model must be called as model\(x, y\)"):
            call(nn.Linear(4, 4))


def test_item9_train_finds_an_out_of_vocabulary_id_before_the_first_step():
    _, tr, va = tiny_data()
    model = tiny_gpt()
    bad = tr.clone()
    bad[-1] = 10_000  # drawn by no batch of 2 steps, found anyway
    with pytest.raises(ValueError, match="train_data holds token id 10000, outside the vocabulary"):
        train(model, bad, va, steps=2, seed=0, **KW)
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*63 - 1"):
        train(model, tr, va, steps=1, seed=2**70, **KW)


def test_train_refuses_an_optimizer_of_other_parameters():
    _, tr, _ = tiny_data()
    model = tiny_gpt()
    with pytest.raises(ValueError, match="state.optimizer does not update the parameters of model"):
        train(model, tr, steps=2, state=TrainState(optimizer=make_optimizer(nn.Linear(2, 2))), **KW)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        TrainState(optimizer=5)  # refused when the state is made, before train sees it


def test_train_needs_a_batch_that_the_processes_can_share(monkeypatch):
    import gptnotes.training as training

    _, tr, _ = tiny_data()
    monkeypatch.setattr(training, "rank_and_world_size", lambda: (1, 3))
    with pytest.raises(ValueError, match="batch_size=4 must be divisible by the number of processes \\(3\\)"):
        train(tiny_gpt(), tr, steps=1, **KW)


def test_train_state_defaults():
    opt = torch.optim.AdamW(BigramLanguageModel(3).parameters())
    s = TrainState(optimizer=opt)
    assert s.step == 0 and s.seed == 0 and s.history.losses == []


def test_item11_train_state_validates_and_flags_must_be_bools():
    opt = make_optimizer(BigramLanguageModel(3))
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        TrainState(optimizer=opt, step=-100)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 2"):
        TrainState(optimizer=opt, seed=2**70)
    with pytest.raises(TypeError, match="history must be a TrainHistory"):
        TrainState(optimizer=opt, history=[])
    _, tr, _ = tiny_data()
    with pytest.raises(TypeError, match="progress must be True or False"):
        train(tiny_gpt(), tr, steps=1, **{**KW, "progress": 1})


# --- make_optimizer: fused AdamW -------------------------------------------------------


def _step_with(model, optimizer, x, y):
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_make_optimizer_is_fused_adamw_with_the_default_update():
    _, tr, _ = tiny_data()
    a, b = tiny_gpt(), tiny_gpt()
    fused = make_optimizer(a, lr=3e-3)
    plain = torch.optim.AdamW(b.parameters(), lr=3e-3)  # the lecture's: a loop over parameters
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    assert {k: v for k, v in fused.defaults.items() if k not in ("fused", "foreach")} == {
        k: v for k, v in plain.defaults.items() if k not in ("fused", "foreach")
    }
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = get_batch(tr, 8, 4, generator=g)
        assert _step_with(a, fused, x, y) == pytest.approx(_step_with(b, plain, x, y), abs=1e-5)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert not torch.equal(a.lm_head.weight, tiny_gpt().lm_head.weight)  # the steps changed it


def test_make_optimizer_errors():
    with pytest.raises(TypeError, match="model"):
        make_optimizer("model")
    with pytest.raises(ValueError, match="lr"):
        make_optimizer(tiny_gpt(), lr=0.0)
