"""Tests of gptnotes.training: estimate_loss, train, checkpoints and resuming."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from gptnotes import (
    BigramLanguageModel,
    CharTokenizer,
    GPTLanguageModel,
    TrainState,
    compiled,
    estimate_loss,
    eval_mode,
    get_batch,
    load_checkpoint,
    make_optimizer,
    save_checkpoint,
    train,
)

TEXT = "to be or not to be, that is the question. " * 8


def _data():
    tok = CharTokenizer(TEXT)
    data = torch.tensor(tok.encode(TEXT))
    return tok, data[:300], data[300:]


def _gpt(seed=0, dropout=0.0, vocab_size=None):
    torch.manual_seed(seed)
    V = vocab_size or CharTokenizer(TEXT).vocab_size
    return GPTLanguageModel(V, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=dropout)


KW = dict(batch_size=4, block_size=8, lr=3e-3, eval_interval=5, eval_iters=2, progress=False)


# --- estimate_loss -------------------------------------------------------------------------


def test_estimate_loss_is_the_mean_of_the_batch_losses():
    _, tr, va = _data()
    model = _gpt()
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
    _, tr, _ = _data()
    model = _gpt(dropout=0.2)
    model.train(start_training)
    estimate_loss(model, {"train": tr}, 8, 4, 2)
    assert all(m.training == start_training for m in model.modules())


def test_estimate_loss_restores_mixed_modes_and_runs_in_eval_without_grad():
    _, tr, _ = _data()
    seen = {}

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = _gpt(dropout=0.2)

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
    model = _gpt()
    _, tr, _ = _data()
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


# --- train ---------------------------------------------------------------------------------


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_train_same_seed_is_bit_identical_and_leaves_global_rng_alone():
    _, tr, va = _data()
    a, b = _gpt(dropout=0.1), _gpt(dropout=0.1)
    rng_before = torch.get_rng_state()  # after _gpt, which seeds the global generator itself
    sa = train(a, tr, va, steps=12, seed=3, **KW)
    sb = train(b, tr, va, steps=12, seed=3, **KW)
    assert sa.history.losses == sb.history.losses  # exact float equality
    assert sa.history.eval_losses == sb.history.eval_losses
    pa, pb = _params(a), _params(b)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert torch.equal(torch.get_rng_state(), rng_before)
    c = _gpt(dropout=0.1)
    sc = train(c, tr, va, steps=12, seed=4, **KW)
    assert sc.history.losses != sa.history.losses


def test_train_lowers_the_loss_and_records_history():
    _, tr, va = _data()
    model = _gpt()
    state = train(model, tr, va, steps=40, seed=0, **{**KW, "eval_interval": 10})
    h = state.history
    assert state.step == 40 and h.steps == list(range(1, 41)) and len(h.losses) == 40
    assert h.eval_steps == [0, 10, 20, 30, 40]
    assert all(set(e) == {"train", "val"} for e in h.eval_losses)
    assert h.eval_losses[-1]["train"] < h.eval_losses[0]["train"] - 0.5
    assert isinstance(state.optimizer, torch.optim.AdamW)
    assert state.optimizer.param_groups[0]["lr"] == KW["lr"]


def test_train_works_for_the_bigram_model_too():
    _, tr, _ = _data()
    torch.manual_seed(0)
    model = BigramLanguageModel(CharTokenizer(TEXT).vocab_size)
    state = train(model, tr, steps=30, batch_size=8, block_size=8, lr=0.1, progress=False)
    assert state.history.eval_losses[-1]["train"] < state.history.eval_losses[0]["train"]


def test_resume_gives_exactly_the_uninterrupted_run(tmp_path):
    tok, tr, va = _data()
    # one run of 2N steps
    full = _gpt(dropout=0.1)
    full_state = train(full, tr, va, steps=16, seed=7, **KW)
    # N steps, save, load, N more
    half = _gpt(dropout=0.1)
    half_state = train(half, tr, va, steps=8, seed=7, **KW)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, half, half_state, tokenizer=tok)
    del half, half_state
    ckpt = load_checkpoint(path)
    resumed_state = train(ckpt.model, tr, va, steps=8, state=ckpt.state, **KW)
    assert resumed_state.step == 16
    assert resumed_state.history.losses == full_state.history.losses
    pf, pr = _params(full), _params(ckpt.model)
    assert all(torch.equal(pf[n], pr[n]) for n in pf)
    of, orr = full_state.optimizer.state_dict(), resumed_state.optimizer.state_dict()
    for key in of["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(of["state"][key][name], orr["state"][key][name])


def test_train_errors():
    _, tr, va = _data()
    model = _gpt()
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


# --- checkpoints ---------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    tok, tr, va = _data()
    model = _gpt()
    state = train(model, tr, va, steps=3, seed=1, **KW)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, state, tokenizer=tok, extra={"batch_size": 4})
    ckpt = load_checkpoint(str(path))
    assert isinstance(ckpt.model, GPTLanguageModel) and ckpt.model.config == model.config
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), ckpt.model.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert ckpt.state.step == 3 and ckpt.state.seed == 1
    assert ckpt.state.history == state.history
    assert ckpt.tokenizer.chars == tok.chars
    assert ckpt.extra == {"batch_size": 4}
    assert ckpt.state.optimizer.param_groups[0]["lr"] == KW["lr"]
    # the file is plain data: loadable with weights_only=True by torch itself
    payload = torch.load(path, weights_only=True)
    assert payload["vocab"] == tok.chars and payload["model_config"]["n_embd"] == 16


def test_checkpoint_without_state_or_tokenizer(tmp_path):
    model = BigramLanguageModel(5)
    save_checkpoint(tmp_path / "b.pt", model)
    ckpt = load_checkpoint(tmp_path / "b.pt")
    assert ckpt.state is None and ckpt.tokenizer is None
    assert torch.equal(ckpt.model.token_embedding_table.weight, model.token_embedding_table.weight)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    first = BigramLanguageModel(4)
    save_checkpoint(path, first)
    before = path.read_bytes()

    def failing_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, BigramLanguageModel(4))
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="path"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a gptnotes checkpoint"):
        load_checkpoint(foreign)
    good = tmp_path / "good.pt"
    save_checkpoint(good, BigramLanguageModel(4))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="path"):
        load_checkpoint(truncated)


class _Evil:
    def __reduce__(self):
        return (os.makedirs, (_Evil.target,))


def test_load_refuses_a_pickle_that_would_run_code(tmp_path):
    _Evil.target = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "gptnotes-checkpoint", "x": _Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match="path"):
        load_checkpoint(path)
    assert not os.path.exists(_Evil.target)


def test_save_rejects_unknown_models(tmp_path):
    with pytest.raises(TypeError, match="model"):
        save_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2))
    with pytest.raises(TypeError, match="state"):
        save_checkpoint(tmp_path / "x.pt", BigramLanguageModel(3), state="s")


def test_train_state_defaults():
    opt = torch.optim.AdamW(BigramLanguageModel(3).parameters())
    s = TrainState(optimizer=opt)
    assert s.step == 0 and s.seed == 0 and s.history.losses == []


# --- the fast path: fused AdamW and compiled blocks ------------------------------------------


def _step_with(model, optimizer, x, y):
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_make_optimizer_is_fused_adamw_with_the_default_update():
    _, tr, _ = _data()
    a, b = _gpt(), _gpt()
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
    assert not torch.equal(a.lm_head.weight, _gpt().lm_head.weight)  # the steps changed it


def test_make_optimizer_errors():
    with pytest.raises(TypeError, match="model"):
        make_optimizer("model")
    with pytest.raises(ValueError, match="lr"):
        make_optimizer(_gpt(), lr=0.0)


def _no_cxx():
    """Simulate a machine without a C++ compiler: Inductor looks for one that is not there."""
    import torch._inductor.config as inductor_config

    return inductor_config.patch({"cpp.cxx": (None, "/nonexistent/bin/g++")})


def test_compiled_falls_back_to_eager_without_a_compiler():
    _, tr, va = _data()
    model, reference = _gpt(dropout=0.1), _gpt(dropout=0.1)
    runner = model._run_forward
    with _no_cxx(), pytest.warns(RuntimeWarning, match="C\\+\\+ compiler") as record:
        with compiled(model) as status:
            state = train(model, tr, va, steps=6, seed=1, **KW)
    assert len(record) == 1
    assert status.active is False and "C++ compiler" in status.reason
    assert model._run_forward is runner  # nothing left behind
    ref_state = train(reference, tr, va, steps=6, seed=1, **KW)
    assert state.history.losses == ref_state.history.losses  # eager both times: bit-identical
    pm, pr = _params(model), _params(reference)
    assert all(torch.equal(pm[n], pr[n]) for n in pm)


def test_compiled_falls_back_when_the_first_compilation_fails(monkeypatch):
    _, tr, _ = _data()
    calls = []

    def broken_compile(fn, **kwargs):
        def run(*args):
            calls.append(1)
            raise RuntimeError("InductorError: the C++ compiler crashed\nmore details")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model, reference = _gpt(), _gpt()
    with pytest.warns(RuntimeWarning, match="torch.compile failed") as record:
        with compiled(model) as status:
            state = train(model, tr, steps=4, seed=2, **KW)
    assert len(record) == 1 and len(calls) == 1  # tried once, then eager for good
    assert status.active is False and "InductorError" in status.reason
    assert state.history.losses == train(reference, tr, steps=4, seed=2, **KW).history.losses


def test_compiled_model_gives_the_eager_losses_and_gradients(monkeypatch):
    # The wiring of compiled(): Dynamo captures the forward pass as one graph and AOTAutograd
    # makes its backward. The "aot_eager" backend runs that graph with PyTorch's own kernels instead
    # of generated C++ (which takes minutes to compile on a small CPU), so this test is quick.
    from torch._dynamo.utils import counters

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend="aot_eager", **kw))
    torch._dynamo.reset()
    counters.clear()
    tok, tr, _ = _data()
    model = GPTLanguageModel(tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=2).to_fused()
    reference = GPTLanguageModel(tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=2).to_fused()
    reference.load_state_dict(model.state_dict())
    x, y = get_batch(tr, 8, 4, generator=torch.Generator().manual_seed(0))
    with compiled(model) as status:
        logits, loss = model(x, y)
        loss.backward()
        assert status.active
        with torch.no_grad():  # evaluation stays eager: nothing more to compile
            model(x, y)
    assert counters["stats"]["unique_graphs"] == 1  # the whole forward pass in one graph: no break
    assert not counters["graph_break"], dict(counters["graph_break"])
    ref_logits, ref_loss = reference(x, y)
    ref_loss.backward()
    assert torch.allclose(logits, ref_logits, atol=1e-5) and torch.allclose(loss, ref_loss, atol=1e-6)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    torch._dynamo.reset()


def test_a_copy_made_inside_compiled_runs_eagerly(monkeypatch):
    import copy

    calls = []
    real_compile = torch.compile

    def counting_compile(fn, **kw):
        compiled_fn = real_compile(fn, backend="aot_eager", **kw)

        def run(*args):
            calls.append(args[0])  # the model it ran
            return compiled_fn(*args)
        return run

    monkeypatch.setattr(torch, "compile", counting_compile)
    torch._dynamo.reset()
    tok, tr, _ = _data()
    model = GPTLanguageModel(tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=1)
    x, y = get_batch(tr, 8, 4, generator=torch.Generator().manual_seed(0))
    with compiled(model) as status:
        copies = [copy.deepcopy(model), model.to_fused()]
        for m in [*copies, model]:
            m(x, y)[1].backward()
    assert status.active and calls == [model]  # only the model given to compiled() ran compiled
    for m in copies:
        m(x, y)[1].backward()  # and after the block, nothing of it is left in the copies
    assert calls == [model]
    torch._dynamo.reset()


def test_compiled_needs_a_gpt_model():
    with pytest.raises(TypeError, match="model"):
        with compiled(BigramLanguageModel(5)):
            pass


def test_train_needs_a_batch_that_the_processes_can_share(monkeypatch):
    import gptnotes.training as training

    _, tr, _ = _data()
    monkeypatch.setattr(training, "rank_and_world_size", lambda: (1, 3))
    with pytest.raises(ValueError, match="batch_size=4 must be divisible by the number of processes \\(3\\)"):
        train(_gpt(), tr, steps=1, **KW)


# ---------------------------------------------------------------------------------------
# Bad input found by an audit of the public API (it failed deep in PyTorch or answered
# silently with NaN or an empty tensor)
# ---------------------------------------------------------------------------------------


def test_eval_mode_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        with eval_mode(5):
            pass


def test_train_refuses_an_optimizer_of_other_parameters():
    _, tr, _ = _data()
    model = _gpt()
    with pytest.raises(ValueError, match="state.optimizer does not update the parameters of model"):
        train(model, tr, steps=2, state=TrainState(optimizer=make_optimizer(nn.Linear(2, 2))), **KW)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        TrainState(optimizer=5)  # refused when the state is made, before train sees it


def test_save_checkpoint_refuses_what_it_could_not_load_back(tmp_path):
    model = _gpt()
    with pytest.raises(TypeError, match=r"extra\['o'\] must hold plain values"):
        save_checkpoint(tmp_path / "a.pt", model, extra={"o": object()})
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(tmp_path / "a.pt", model, extra=5)
    with pytest.raises(TypeError, match="path"):
        save_checkpoint(5, model)
    with pytest.raises(ValueError, match="path"):
        save_checkpoint(tmp_path, model)  # a folder
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "a.pt", model)
    with pytest.raises(TypeError, match="path"):
        load_checkpoint(None)
    assert not list(tmp_path.iterdir())  # nothing half-written
    save_checkpoint(tmp_path / "ok.pt", model, extra={"batch_size": 16, "notes": ["a", 1.5, None]})
    assert load_checkpoint(tmp_path / "ok.pt").extra == {"batch_size": 16, "notes": ["a", 1.5, None]}


@pytest.mark.parametrize("damage", ["no extra", "extra not a dict", "vocabulary of another size"])
def test_load_checkpoint_calls_a_damaged_file_damaged(tmp_path, damage):
    tok, _, _ = _data()
    model = _gpt()
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, tokenizer=tok)  # save_checkpoint itself refuses each damage
    payload = torch.load(path, weights_only=True)
    if damage == "no extra":
        del payload["extra"]
    elif damage == "extra not a dict":
        payload["extra"] = [1, 2]
    else:
        payload["vocab"] = ["a", "b", "c"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(path)


def test_train_and_estimate_loss_name_a_model_that_takes_no_targets():
    _, tr, _ = _data()
    for call in (lambda m: train(m, tr, steps=2, **KW), lambda m: estimate_loss(m, {"val": tr}, 8, 4, 1)):
        with pytest.raises(TypeError, match=r"model must be called as model\(x, y\)"):
            call(nn.Linear(4, 4))


# ---------------------------------------------------------------------------------------
# Issue 14: checkpoints you can trust (each test names the item of the issue it guards)
# ---------------------------------------------------------------------------------------


def _trained_checkpoint(tmp_path, name="c.pt"):
    tok, tr, va = _data()
    model = _gpt()
    state = train(model, tr, va, steps=2, **KW)
    path = tmp_path / name
    save_checkpoint(path, model, state, tokenizer=tok, extra={"batch_size": 4})
    return path


def _tamper(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_item1_optimizer_moments_of_the_wrong_shape_are_refused_on_load(tmp_path):
    path = _trained_checkpoint(tmp_path)

    def shrink(p):
        for s in p["train_state"]["optimizer"]["state"].values():
            s["exp_avg"] = torch.zeros(3)  # the fused AdamW kernel would read and write past its end

    _tamper(path, shrink)
    with pytest.raises(ValueError, match=r"damaged .*exp_avg has shape \(3,\), the model's sizes need"):
        load_checkpoint(path)


def test_item2_save_checkpoint_refuses_to_replace_a_file_that_is_not_a_checkpoint(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes", encoding="utf-8")
    with pytest.raises(ValueError, match="path: .*notes.txt.* exists and is not a gptnotes checkpoint"):
        save_checkpoint(notes, BigramLanguageModel(3))
    assert notes.read_text(encoding="utf-8") == "my notes"
    save_checkpoint(notes, BigramLanguageModel(3), force=True)  # asked for: replaced
    assert load_checkpoint(notes).model.vocab_size == 3
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        save_checkpoint(fifo, BigramLanguageModel(3), force=True)  # never, even when forced


def test_item3_save_refuses_what_load_would_refuse_and_keeps_the_good_file(tmp_path):
    import enum
    from collections import defaultdict

    import numpy as np

    class Size(enum.IntEnum):
        BIG = 3

    class Name(str):
        pass

    path = tmp_path / "c.pt"
    save_checkpoint(path, BigramLanguageModel(3), extra={"n": 1})
    before = path.read_bytes()
    for bad in (np.float64(0.5), Size.BIG, Name("x"), np.str_("x"), defaultdict(int)):
        with pytest.raises(TypeError, match=r"extra\['v'\] must hold plain values|extra must hold plain values"):
            save_checkpoint(path, BigramLanguageModel(3), extra={"v": bad})
        assert path.read_bytes() == before
    model = GPTLanguageModel(5, 4, 8, 2, 1, attention=np.str_("fused"))  # normalised to a str
    save_checkpoint(tmp_path / "g.pt", model)
    assert load_checkpoint(tmp_path / "g.pt").model.config.attention == "fused"


def test_item4_a_tampered_config_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    import gptnotes.training as training

    path = _trained_checkpoint(tmp_path)
    _tamper(path, lambda p: p["model_config"].update(block_size=40000))

    def no_build(*a, **k):
        raise AssertionError("a model was built from an unchecked config")

    monkeypatch.setattr(training, "_build_model", no_build)
    with pytest.raises(ValueError, match="damaged .*model_state holds .* numbers, a model of model_config"):
        load_checkpoint(path)
    _tamper(path, lambda p: p["model_config"].update(block_size=8, n_layer=100000))
    with pytest.raises(ValueError, match="model_state holds .* tensors"):
        load_checkpoint(path)


def test_item4_sizes_beyond_the_machine_are_refused_with_the_numbers(tmp_path, monkeypatch):
    import gptnotes._checks as checks

    path = _trained_checkpoint(tmp_path)
    _tamper(path, lambda p: p["model_config"].update(block_size=100000))
    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 2 * 10**9)
    with pytest.raises(ValueError, match=r"model_config: .* would need 10 GB of memory, more than this machine's 2 GB"):
        load_checkpoint(path)


def test_item4_a_flipped_byte_in_a_weight_is_found_by_the_crc(tmp_path):
    model = BigramLanguageModel(4)
    with torch.no_grad():
        model.token_embedding_table.weight.copy_(torch.arange(16.0).reshape(4, 4) + 0.25)
    path = tmp_path / "b.pt"
    save_checkpoint(path, model)
    raw = bytearray(path.read_bytes())
    at = raw.find(model.token_embedding_table.weight.detach().numpy().tobytes())
    assert at > 0
    raw[at + 5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="damaged .*fails its CRC-32 check"):
        load_checkpoint(path)


def test_item5_a_legal_long_name_can_be_saved(tmp_path):
    path = tmp_path / ("n" * 250 + ".pt")  # 253 bytes: legal; ".<name>.XXXXXXXX.tmp" was not
    save_checkpoint(path, BigramLanguageModel(3))
    assert load_checkpoint(path).model.vocab_size == 3
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_item5_an_unwritable_place_is_found_before_training_and_named(tmp_path):
    from gptnotes.training import check_checkpoint_target

    with pytest.raises(OSError, match=r"path: cannot write a checkpoint at '/proc/gptnotes-c.pt'"):
        check_checkpoint_target("/proc/gptnotes-c.pt")
    with pytest.raises(OSError, match="does not fit on the disk"):
        check_checkpoint_target(tmp_path / "c.pt", size=2**62)
    with pytest.raises(OSError, match="longer than the 255"):
        check_checkpoint_target(tmp_path / ("n" * 256))


def test_item6_stale_temporary_files_are_removed_mode_kept_symlink_followed(tmp_path):
    from gptnotes.training import _temp_prefix

    path = tmp_path / "c.pt"
    save_checkpoint(path, BigramLanguageModel(3))
    os.chmod(path, 0o644)
    stale = [tmp_path / ".c.pt.abcd1234.tmp", tmp_path / f"{_temp_prefix(path.resolve())}x1y2.tmp"]
    for s in stale:
        s.write_bytes(b"killed mid-save")
    save_checkpoint(path, BigramLanguageModel(3))
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]
    assert os.stat(path).st_mode & 0o777 == 0o644  # mkstemp's 0600 would have replaced it
    target = tmp_path / "runs" / "real.pt"
    target.parent.mkdir()
    save_checkpoint(target, BigramLanguageModel(3))
    link = tmp_path / "latest.pt"
    link.symlink_to(target)
    save_checkpoint(link, BigramLanguageModel(5))
    assert link.is_symlink() and load_checkpoint(target).model.vocab_size == 5


def test_item6_the_lock_refuses_a_second_writer(tmp_path):
    from gptnotes.training import CheckpointInUseError
    from tests.lock_holder import lock_held_elsewhere

    path = tmp_path / "c.pt"
    with lock_held_elsewhere(path):
        with pytest.raises(CheckpointInUseError, match="being written by another gptnotes process"):
            save_checkpoint(path, BigramLanguageModel(3))
    save_checkpoint(path, BigramLanguageModel(3))  # released
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p["train_state"].update(step=-100), r"train_state\['step'\] must be an integer >= 0"),
        (lambda p: p["train_state"].update(seed=2**70), r"train_state\['seed'\] must be an integer in \[0, 2\*\*63\)"),
        (lambda p: p["train_state"]["optimizer"].update(state={}), "moments for 0 of the .* parameters after 2 steps"),
        (lambda p: p["train_state"]["optimizer"]["param_groups"][0].update(lr=float("nan")), "lr must be a positive finite"),
    ],
    ids=["negative step", "seed 2**70", "empty optimizer state", "nan lr"],
)
def test_item9_damaged_training_state_is_refused(tmp_path, damage, message):
    path = _trained_checkpoint(tmp_path)
    _tamper(path, damage)
    with pytest.raises(ValueError, match="damaged .*" + message):
        load_checkpoint(path)


def test_item9_train_finds_an_out_of_vocabulary_id_before_the_first_step():
    _, tr, va = _data()
    model = _gpt()
    bad = tr.clone()
    bad[-1] = 10_000  # drawn by no batch of 2 steps, found anyway
    with pytest.raises(ValueError, match="train_data holds token id 10000, outside the vocabulary"):
        train(model, bad, va, steps=2, seed=0, **KW)
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*63 - 1"):
        train(model, tr, va, steps=1, seed=2**70, **KW)


def test_item11_dataclasses_validate_and_flags_must_be_bools():
    from gptnotes import Checkpoint

    opt = make_optimizer(BigramLanguageModel(3))
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        TrainState(optimizer=opt, step=-100)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 2"):
        TrainState(optimizer=opt, seed=2**70)
    with pytest.raises(TypeError, match="history must be a TrainHistory"):
        TrainState(optimizer=opt, history=[])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Checkpoint(model="m", state=None, tokenizer=None, extra={})
    with pytest.raises(TypeError, match="extra must be a dict"):
        Checkpoint(model=BigramLanguageModel(3), state=None, tokenizer=None, extra=None)
    _, tr, _ = _data()
    with pytest.raises(TypeError, match="progress must be True or False"):
        train(_gpt(), tr, steps=1, **{**KW, "progress": 1})


def test_item11_load_checkpoint_leaves_the_global_random_state_alone(tmp_path):
    path = _trained_checkpoint(tmp_path)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    load_checkpoint(path)
    assert torch.equal(torch.get_rng_state(), before)


def test_item11_estimate_loss_names_the_split_it_was_given():
    model = BigramLanguageModel(5)
    with pytest.raises(ValueError, match=r"splits\['val'\] has 3 tokens, too few for block_size=4"):
        estimate_loss(model, {"val": torch.tensor([0, 1, 2])}, block_size=4, batch_size=2, eval_iters=1)


def test_on_step_sees_every_finished_step():
    _, tr, va = _data()
    seen = []
    train(_gpt(), tr, va, steps=3, on_step=lambda s: seen.append((s.step, len(s.history.losses))), **KW)
    assert seen == [(1, 1), (2, 2), (3, 3)]
