"""Tests of gptnotes.speed: compiled (torch.compile from outside the model) and keep_freed_memory."""

from __future__ import annotations

import pytest
import torch

from gptnotes import BigramLanguageModel, GPTLanguageModel, compiled, get_batch, train
from tests.tiny_training import KW, params_of, tiny_data, tiny_gpt

# --- compiled --------------------------------------------------------------------------


def _no_cxx():
    """Simulate a machine without a C++ compiler: Inductor looks for one that is not there."""
    import torch._inductor.config as inductor_config

    return inductor_config.patch({"cpp.cxx": (None, "/nonexistent/bin/g++")})


def test_compiled_falls_back_to_eager_without_a_compiler():
    _, tr, va = tiny_data()
    model, reference = tiny_gpt(dropout=0.1), tiny_gpt(dropout=0.1)
    runner = model._compiled_call_impl
    with _no_cxx(), pytest.warns(RuntimeWarning, match="C\\+\\+ compiler") as record:
        with compiled(model) as status:
            state = train(model, tr, va, steps=6, seed=1, **KW)
    assert len(record) == 1
    assert status.active is False and "C++ compiler" in status.reason
    assert model._compiled_call_impl is runner  # nothing left behind
    ref_state = train(reference, tr, va, steps=6, seed=1, **KW)
    assert state.history.losses == ref_state.history.losses  # eager both times: bit-identical
    pm, pr = params_of(model), params_of(reference)
    assert all(torch.equal(pm[n], pr[n]) for n in pm)


def test_compiled_falls_back_when_the_first_compilation_fails(monkeypatch):
    _, tr, _ = tiny_data()
    calls = []

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            raise RuntimeError("InductorError: the C++ compiler crashed\nmore details")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model, reference = tiny_gpt(), tiny_gpt()
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
    tok, tr, _ = tiny_data()
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

        def run(*args, **kwargs):
            calls.append(fn.__self__)  # the model whose call it compiled
            return compiled_fn(*args, **kwargs)
        return run

    monkeypatch.setattr(torch, "compile", counting_compile)
    torch._dynamo.reset()
    tok, tr, _ = tiny_data()
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
