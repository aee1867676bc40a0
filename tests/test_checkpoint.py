"""Tests of gptnotes.checkpoint: saving, loading, resuming, the validator, the lock."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from gptnotes import (
    BigramLanguageModel,
    Checkpoint,
    GPTLanguageModel,
    load_checkpoint,
    save_checkpoint,
    train,
)
from tests.tiny_training import KW, params_of, tiny_data, tiny_gpt

# --- save and load ---------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    tok, tr, va = tiny_data()
    model = tiny_gpt()
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



def test_a_checkpoint_holds_the_parameters_not_the_lecture_masks_of_state_dict(tmp_path):
    model = tiny_gpt()
    assert any(k.endswith(".tril") for k in model.state_dict())  # for the lecture's code
    save_checkpoint(tmp_path / "c.pt", model)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert list(payload["model_state"]) == [n for n, _ in model.named_parameters()]
    loaded = load_checkpoint(tmp_path / "c.pt").model
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters()))

def test_checkpoint_without_state_or_tokenizer(tmp_path):
    model = BigramLanguageModel(5)
    save_checkpoint(tmp_path / "b.pt", model)
    ckpt = load_checkpoint(tmp_path / "b.pt")
    assert ckpt.state is None and ckpt.tokenizer is None
    assert torch.equal(ckpt.model.token_embedding_table.weight, model.token_embedding_table.weight)


def test_resume_gives_exactly_the_uninterrupted_run(tmp_path):
    tok, tr, va = tiny_data()
    # one run of 2N steps
    full = tiny_gpt(dropout=0.1)
    full_state = train(full, tr, va, steps=16, seed=7, **KW)
    # N steps, save, load, N more
    half = tiny_gpt(dropout=0.1)
    half_state = train(half, tr, va, steps=8, seed=7, **KW)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, half, half_state, tokenizer=tok)
    del half, half_state
    ckpt = load_checkpoint(path)
    resumed_state = train(ckpt.model, tr, va, steps=8, state=ckpt.state, **KW)
    assert resumed_state.step == 16
    assert resumed_state.history.losses == full_state.history.losses
    pf, pr = params_of(full), params_of(ckpt.model)
    assert all(torch.equal(pf[n], pr[n]) for n in pf)
    of, orr = full_state.optimizer.state_dict(), resumed_state.optimizer.state_dict()
    for key in of["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(of["state"][key][name], orr["state"][key][name])


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


def test_save_checkpoint_refuses_what_it_could_not_load_back(tmp_path):
    model = tiny_gpt()
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
    tok, _, _ = tiny_data()
    model = tiny_gpt()
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


def test_item11_checkpoint_validates_its_fields():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Checkpoint(model="m", state=None, tokenizer=None, extra={})
    with pytest.raises(TypeError, match="extra must be a dict"):
        Checkpoint(model=BigramLanguageModel(3), state=None, tokenizer=None, extra=None)


# ---------------------------------------------------------------------------------------
# Issue 14: checkpoints you can trust (each test names the item of the issue it guards)
# ---------------------------------------------------------------------------------------


def _trained_checkpoint(tmp_path, name="c.pt"):
    tok, tr, va = tiny_data()
    model = tiny_gpt()
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
    import gptnotes.checkpoint as checkpoint

    path = _trained_checkpoint(tmp_path)
    _tamper(path, lambda p: p["model_config"].update(block_size=40000))

    def no_build(*a, **k):
        raise AssertionError("a model was built from an unchecked config")

    monkeypatch.setattr(checkpoint, "_build_model", no_build)
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
    from gptnotes.checkpoint import check_checkpoint_target

    with pytest.raises(OSError, match=r"path: cannot write a checkpoint at '/proc/gptnotes-c.pt'"):
        check_checkpoint_target("/proc/gptnotes-c.pt")
    with pytest.raises(OSError, match="does not fit on the disk"):
        check_checkpoint_target(tmp_path / "c.pt", size=2**62)
    with pytest.raises(OSError, match="longer than the 255"):
        check_checkpoint_target(tmp_path / ("n" * 256))


def test_item6_stale_temporary_files_are_removed_mode_kept_symlink_followed(tmp_path):
    from gptnotes.checkpoint import _temp_prefix

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
    from gptnotes.checkpoint import CheckpointInUseError
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


def test_item11_load_checkpoint_leaves_the_global_random_state_alone(tmp_path):
    path = _trained_checkpoint(tmp_path)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    load_checkpoint(path)
    assert torch.equal(torch.get_rng_state(), before)
