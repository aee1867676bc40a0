"""Bad input found by an audit of the public API, each now a clear error or a correct answer.

Every case here once failed deep inside PyTorch (a RuntimeError, a ZeroDivisionError), or
answered silently with NaN or an empty tensor. The error tests of each module cover the
common cases; these are the ones that slipped past them.
"""

from __future__ import annotations

import pytest
import torch

from gptnotes import (
    BigramLanguageModel,
    BinaryLinear,
    BitLinear,
    Block,
    GPTLanguageModel,
    Linear,
    ThresholdTernaryLinear,
    TrainState,
    causal_attention,
    cosine_similarity,
    dot_similarity,
    eval_mode,
    make_optimizer,
    nearest,
    sample_next_token,
    softmax_with_temperature,
    train,
    train_next_token_embeddings,
)
from gptnotes.cli import main


def _gpt(**kw) -> GPTLanguageModel:
    torch.manual_seed(0)
    return GPTLanguageModel(vocab_size=10, block_size=4, n_embd=8, n_head=2, n_layer=1, **kw)


# --- token ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_models_take_token_ids_of_any_integer_type(dtype):
    ids, nxt = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]])
    for model in (_gpt(), _gpt(attention="fused"), BigramLanguageModel(10)):
        _, want = model(ids, nxt)
        _, got = model(ids.to(dtype), nxt.to(dtype))
        assert torch.equal(got, want), type(model).__name__
    g = torch.Generator().manual_seed(0)
    out = _gpt().generate(ids.to(dtype), 2, generator=g)
    assert out.dtype == torch.long and out.shape == (1, 5)


@pytest.mark.parametrize("model", [_gpt(), BigramLanguageModel(10)], ids=["gpt", "bigram"])
@pytest.mark.parametrize("shape", [(0, 3), (1, 0)])
def test_an_empty_batch_is_refused_not_answered_with_nan(model, shape):
    empty = torch.zeros(shape, dtype=torch.long)
    with pytest.raises(ValueError, match="idx"):
        model(empty, empty)
    with pytest.raises(ValueError, match="idx"):
        model.generate(empty, 2)


# --- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1e-40, 1e-45])
def test_a_tiny_temperature_reaches_the_argmax_instead_of_overflowing(temperature):
    z = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(softmax_with_temperature(z, temperature), torch.tensor([0.0, 0.0, 1.0]))
    assert sample_next_token(z, temperature).item() == 2
    assert sample_next_token(torch.tensor([3e38, 0.0]), 0.1).item() == 0  # z / T would overflow
    half = torch.tensor([60000.0, 0.0], dtype=torch.float16)
    assert sample_next_token(half, 0.5).item() == 0
    out = _gpt().eval().generate(torch.tensor([[1]]), 3, temperature=temperature)
    assert out.shape == (1, 4)


def test_softmax_with_temperature_is_unchanged_by_the_shift():
    torch.manual_seed(0)
    z = torch.randn(5, 7) * 4
    for t in (0.3, 1.0, 2.5):
        assert torch.allclose(softmax_with_temperature(z, t), torch.softmax(z / t, dim=-1), atol=1e-6)
    masked = torch.tensor([[1.0, float("-inf"), 3.0]])
    assert softmax_with_temperature(masked, 0.5)[0, 1].item() == 0.0


def test_sampling_from_no_rows_is_refused():
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.zeros(0, 3))


# --- layers --------------------------------------------------------------------------------


@pytest.mark.parametrize("x, error, word", [
    (torch.randn(1, 3, 5), ValueError, "n_embd=8"),
    (torch.ones(1, 3, 8, dtype=torch.long), TypeError, "floating-point"),
    (torch.randn(1, 9, 8), ValueError, "block_size=4"),
    (torch.randn(3, 8), ValueError, "3-D"),
])
def test_a_block_checks_its_input_before_the_layer_norm(x, error, word):
    with pytest.raises(error, match=word):
        Block(8, 2, 4)(x)


@pytest.mark.parametrize("layer", [Linear, BinaryLinear, ThresholdTernaryLinear, BitLinear])
def test_linear_layers_name_a_dtype_mismatch(layer):
    torch.manual_seed(0)
    with pytest.raises(TypeError, match="input must have the dtype of the weight"):
        layer(3, 2)(torch.randn(2, 3, dtype=torch.float64))


def test_causal_attention_checks_dtypes_head_size_and_flags():
    q = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="head size"):
        causal_attention(torch.randn(2, 4, 0), torch.randn(2, 4, 0), q)
    with pytest.raises(TypeError, match="k must have the dtype of q"):
        causal_attention(q, q.double(), q)
    with pytest.raises(TypeError, match="v must have the dtype of q"):
        causal_attention(q, q, q.double())
    with pytest.raises(TypeError, match="return_weights"):
        causal_attention(q, q, q, return_weights="no")


def test_bitnet_helpers_check_shapes_dtypes_and_the_stored_scale():
    from gptnotes import BitLinearInference, entropy_bits, straight_through, tensor_entropy_bits, weight_memory_report

    with pytest.raises(ValueError, match="q must have the shape of x"):
        straight_through(torch.randn(3), torch.randn(4))
    with pytest.raises(TypeError, match="values must hold real numbers"):
        tensor_entropy_bits(torch.tensor([1 + 1j, 2 + 0j]))
    with pytest.raises(TypeError, match="probs must hold real numbers"):
        entropy_bits(torch.tensor([1 + 0j]))
    with pytest.raises(ValueError, match="2-D"):
        weight_memory_report(torch.randn(5))
    with pytest.raises(ValueError, match="scale must be finite in float32"):
        BitLinearInference(torch.tensor([[1, 0, -1]], dtype=torch.int8), 1e300, torch.ones(3))


# --- embeddings ----------------------------------------------------------------------------


def test_similarities_of_empty_vectors_are_refused_not_zero():
    for fn in (dot_similarity, cosine_similarity):
        with pytest.raises(ValueError, match="at least one number"):
            fn(torch.randn(0), torch.randn(0))
    with pytest.raises(ValueError, match="empty"):
        nearest(torch.zeros(0), torch.zeros(5, 0))
    with pytest.raises(ValueError, match="query must be finite"):
        nearest(torch.full((3,), float("nan")), torch.randn(4, 3), k=2)


def test_learned_embeddings_check_the_seed_and_a_diverging_loss():
    data = torch.tensor([0, 1, 2, 1, 0])
    with pytest.raises(ValueError, match="seed"):
        train_next_token_embeddings(data, 3, steps=2, seed=2**70)
    with pytest.raises(FloatingPointError, match="lower lr"):
        train_next_token_embeddings(data, 3, steps=5, lr=1e30)


# --- training and checkpoints --------------------------------------------------------------


def test_eval_mode_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        with eval_mode(5):
            pass


def test_train_refuses_an_optimizer_of_other_parameters():
    data = torch.arange(100) % 10
    model = _gpt()
    with pytest.raises(ValueError, match="state.optimizer does not update the parameters of model"):
        train(model, data, steps=2, batch_size=2, block_size=4, state=TrainState(optimizer=make_optimizer(Linear(2, 2))))
    with pytest.raises(TypeError, match="state.optimizer"):
        train(model, data, steps=2, batch_size=2, block_size=4, state=TrainState(optimizer=5))


def test_save_checkpoint_refuses_what_it_could_not_load_back(tmp_path):
    from gptnotes import load_checkpoint, save_checkpoint

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
    from gptnotes import CharTokenizer, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, _gpt(), tokenizer=CharTokenizer("abc" if damage.startswith("vocab") else "abcdefghij"))
    payload = torch.load(path, weights_only=True)
    if damage == "no extra":
        del payload["extra"]
    elif damage == "extra not a dict":
        payload["extra"] = [1, 2]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(path)


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def text_file(tmp_path):
    from gptnotes import load_corpus

    path = tmp_path / "in.txt"
    path.write_text(load_corpus()[:3000], encoding="utf-8")
    return path


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


FAST = ["--steps", "2", "--eval-interval", "2", "--eval-iters", "1", "--no-progress", "--n-layer", "1", "--n-embd", "8",
        "--n-head", "2", "--block-size", "4"]


def test_cli_refuses_a_folder_as_out_before_training(capsys, text_file, tmp_path):
    for out in ("", tmp_path):
        code, err = _cli(capsys, "train", text_file, "--out", out, *FAST)
        assert code == 2 and "--out must name a checkpoint file" in err and "Traceback" not in err


def test_cli_reports_a_diverging_run_in_one_line(capsys, text_file, tmp_path):
    code, err = _cli(capsys, "train", text_file, "--out", tmp_path / "c.pt", "--lr", "1e30", *FAST)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("gptnotes train: error:") and "lower lr" in last and "Traceback" not in err


def test_cli_checks_the_seed(capsys, text_file, tmp_path):
    code, err = _cli(capsys, "train", text_file, "--out", tmp_path / "c.pt", "--seed", str(2**70), *FAST)
    assert code == 2 and "--seed must be an integer from 0 to 2**63 - 1" in err


def test_cli_generate_from_damaged_checkpoints_and_tiny_temperatures(capsys, text_file, tmp_path):
    ckpt = tmp_path / "c.pt"
    assert _cli(capsys, "train", text_file, "--out", ckpt, *FAST)[0] == 0
    assert main(["generate", str(ckpt), "--tokens", "5", "--temperature", "1e-45", "--seed", "0"]) == 0
    payload = torch.load(ckpt, weights_only=True)
    payload["extra"] = {"batch_size": "16"}
    torch.save(payload, ckpt)
    code, err = _cli(capsys, "train", text_file, "--out", ckpt, "--resume", "--steps", "1", "--no-progress")
    assert code == 2 and "not a positive integer" in err
    del payload["extra"]
    torch.save(payload, ckpt)
    code, err = _cli(capsys, "generate", ckpt, "--tokens", "5")
    assert code == 2 and "damaged" in err and "Traceback" not in err


def test_cli_returns_the_usage_error_status_instead_of_raising(capsys):
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err

