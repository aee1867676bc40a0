"""Tests of the gptnotes command line (gptnotes.cli and python -m gptnotes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gptnotes import load_checkpoint
from gptnotes.cli import main
from tests.lock_holder import lock_held_elsewhere

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 12
TINY = ["--block-size", "8", "--n-embd", "16", "--n-head", "2", "--n-layer", "1"]
FAST = ["--eval-interval", "5", "--eval-iters", "2", "--batch-size", "4", "--no-progress"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_params_prints_the_notes_listing_and_total(capsys):
    code, out, _ = _run(capsys, "params")
    lines = [line.split() for line in out.strip().splitlines()]
    assert code == 0
    assert lines[0] == ["token_embedding_table.weight", "[65,", "64]", "4,160"]
    assert lines[2] == ["blocks.0.sa.heads.0.key.weight", "[16,", "64]", "1,024"]
    assert lines[-2] == ["lm_head.bias", "[65]", "65"]
    assert " ".join(lines[-1]) == "total: 208,193 parameters (0.208193 M parameters)"
    assert len(lines) == 95


def test_params_with_sizes_and_fused(capsys):
    code, out, _ = _run(capsys, "params", "--n-layer", "1", "--attention", "fused")
    assert code == 0
    assert "blocks.0.sa.c_attn.weight [192, 64] 12,288" in " ".join(out.split())
    assert out.strip().endswith("total: 58,817 parameters (0.058817 M parameters)")


def test_train_then_generate_end_to_end(capsys, text_file, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    code, out, err = _run(capsys, "train", str(text_file), "--out", str(ckpt), "--steps", "10", *TINY, *FAST)
    assert code == 0, err
    assert "step 0: train loss" in out and "step 10: train loss" in out
    loaded = load_checkpoint(ckpt)
    assert loaded.state.step == 10
    assert loaded.tokenizer.chars == sorted(set(TEXT))
    assert loaded.model.config.block_size == 8

    code, a, _ = _run(capsys, "generate", str(ckpt), "--tokens", "40", "--seed", "1")
    assert code == 0
    code, b, _ = _run(capsys, "generate", str(ckpt), "--tokens", "40", "--seed", "1")
    assert a == b and len(a.rstrip("\n")) == 40
    assert set(a) <= set(TEXT) | {"\n"}
    code, c, _ = _run(capsys, "generate", str(ckpt), "--tokens", "5", "--seed", "1", "--prompt", "Before", "--temperature", "0.5")
    assert code == 0 and c.startswith("Before") and len(c.rstrip("\n")) == len("Before") + 5


def test_cli_reports_a_diverging_run_in_one_line(capsys, text_file, tmp_path):
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--lr", "1e30", "--steps", "3",
                        *TINY, *FAST)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("gptnotes train: error:") and "lower lr" in last and "Traceback" not in err


def test_generate_needs_no_text_file(capsys, text_file, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(ckpt), "--steps", "2", *TINY, *FAST)[0] == 0
    text_file.unlink()  # the vocabulary travels in the checkpoint
    code, out, _ = _run(capsys, "generate", str(ckpt), "--tokens", "10", "--seed", "0")
    assert code == 0 and len(out.rstrip("\n")) == 10


def test_resume_equals_one_longer_run(capsys, text_file, tmp_path):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(one), "--steps", "10", *TINY, *FAST)[0] == 0
    assert _run(capsys, "train", str(text_file), "--out", str(two), "--steps", "5", *TINY, *FAST)[0] == 0
    code, out, err = _run(capsys, "train", str(text_file), "--out", str(two), "--steps", "5", "--resume", *FAST)
    assert code == 0, err
    assert "step 10: train loss" in out and "step 0:" not in out and "step 5:" not in out
    a, b = load_checkpoint(one), load_checkpoint(two)
    assert b.state.step == 10
    assert a.state.history.losses == b.state.history.losses
    for (n, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(p, q), n


def _assert_clean_error(code, err, *words):
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("gptnotes ")
    for w in words:
        assert w in err


def test_missing_empty_and_non_utf8_files(capsys, tmp_path):
    code, _, err = _run(capsys, "train", str(tmp_path / "missing.txt"))
    _assert_clean_error(code, err, "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, _, err = _run(capsys, "train", str(empty))
    _assert_clean_error(code, err, "empty")
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9 au lait".encode("latin-1") * 10)
    code, _, err = _run(capsys, "train", str(binary))
    _assert_clean_error(code, err, "UTF-8")


def test_text_too_short_for_the_block_size(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij" * 5, encoding="utf-8")
    code, _, err = _run(capsys, "train", str(short), "--block-size", "32", "--steps", "1")
    _assert_clean_error(code, err, "block-size")


def test_bad_model_sizes(capsys, text_file):
    code, _, err = _run(capsys, "train", str(text_file), "--n-embd", "30", "--n-head", "4", "--steps", "1")
    _assert_clean_error(code, err, "n_embd")


def test_cli_refuses_a_folder_as_out_before_training(capsys, text_file, tmp_path):
    for out in ("", str(tmp_path)):
        code, _, err = _run(capsys, "train", str(text_file), "--out", out, "--steps", "2", *TINY, *FAST)
        assert code == 2 and "--out must name a checkpoint file" in err and "Traceback" not in err


def test_cli_checks_the_seed(capsys, text_file, tmp_path):
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--seed", str(2**70), *TINY, *FAST)
    assert code == 2 and "--seed must be an integer from 0 to 2**63 - 1" in err


def test_missing_and_corrupt_checkpoints(capsys, tmp_path):
    code, _, err = _run(capsys, "generate", str(tmp_path / "none.pt"))
    _assert_clean_error(code, err, "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00\x01garbage")
    code, _, err = _run(capsys, "generate", str(bad))
    _assert_clean_error(code, err, "bad.pt")
    code, _, err = _run(capsys, "train", str(bad), "--resume", "--out", str(tmp_path / "none.pt"))
    _assert_clean_error(code, err)


def test_cli_generate_and_resume_from_damaged_checkpoints(capsys, text_file, tmp_path):
    ckpt = str(tmp_path / "c.pt")
    assert _run(capsys, "train", str(text_file), "--out", ckpt, "--steps", "2", *TINY, *FAST)[0] == 0
    assert _run(capsys, "generate", ckpt, "--tokens", "5", "--temperature", "1e-45", "--seed", "0")[0] == 0
    payload = torch.load(ckpt, weights_only=True)
    payload["extra"] = {"batch_size": "16"}
    torch.save(payload, ckpt)
    code, _, err = _run(capsys, "train", str(text_file), "--out", ckpt, "--resume", "--steps", "1", "--no-progress")
    assert code == 2 and "not a positive integer" in err
    del payload["extra"]
    torch.save(payload, ckpt)
    code, _, err = _run(capsys, "generate", ckpt, "--tokens", "5")
    assert code == 2 and "damaged" in err and "Traceback" not in err


def test_prompt_with_unknown_characters(capsys, text_file, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(ckpt), "--steps", "1", *TINY, *FAST)[0] == 0
    code, _, err = _run(capsys, "generate", str(ckpt), "--prompt", "Zebra!", "--tokens", "3")
    _assert_clean_error(code, err, "--prompt", "'Z'")
    code, _, err = _run(capsys, "generate", str(ckpt), "--temperature", "0", "--tokens", "3")
    _assert_clean_error(code, err, "temperature")


def test_resume_rejects_size_options(capsys, text_file, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(ckpt), "--steps", "1", *TINY, *FAST)[0] == 0
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(ckpt), "--resume", "--n-layer", "2")
    _assert_clean_error(code, err, "--resume")


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2  # the status is returned, as for every other error
    assert "usage: gptnotes" in capsys.readouterr().err
    assert main(["params", "--n-layer", "x"]) == 2
    assert "--n-layer: invalid int value: 'x'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "usage: gptnotes" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "gptnotes", "params", "--n-layer", "1"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("total: 58,817 parameters (0.058817 M parameters)")


def test_compile_without_a_compiler_trains_as_usual(capsys, text_file, tmp_path):
    import torch._inductor.config as inductor_config

    plain, comp = tmp_path / "plain.pt", tmp_path / "compiled.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(plain), "--steps", "3", *TINY, *FAST)[0] == 0
    with inductor_config.patch({"cpp.cxx": (None, "/nonexistent/bin/g++")}):  # a machine without one
        code, out, err = _run(capsys, "train", str(text_file), "--out", str(comp), "--steps", "3", "--compile", *TINY, *FAST)
    assert code == 0, err
    assert "--compile: no working C++ compiler for torch.compile" in err and "Traceback" not in err
    a, b = load_checkpoint(plain), load_checkpoint(comp)
    assert a.state.history.losses == b.state.history.losses
    for (n, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), n


# ---------------------------------------------------------------------------------------
# Issue 14: a command line you can trust (each test names the item of the issue it guards)
# ---------------------------------------------------------------------------------------

def _cli(*argv, **kw):
    """``python -m gptnotes`` in a child process (what a crash would kill is not the test run)."""
    return subprocess.run([sys.executable, "-m", "gptnotes", *argv], capture_output=True, text=True, timeout=300, **kw)


def _one_line_error(err, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gptnotes ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err


def test_item1_resume_from_moments_of_the_wrong_shape_is_an_error_not_a_crash(capsys, text_file, tmp_path):
    ckpt = str(tmp_path / "c.pt")
    assert _run(capsys, "train", str(text_file), "--out", ckpt, "--steps", "2", *TINY, *FAST)[0] == 0
    payload = torch.load(ckpt, weights_only=True)
    for s in payload["train_state"]["optimizer"]["state"].values():
        s["exp_avg"] = torch.zeros(3)
    torch.save(payload, ckpt)
    result = _cli("train", str(text_file), "--out", ckpt, "--resume", "--steps", "1", "--no-progress")
    assert result.returncode == 2  # was -11 (SIGSEGV) or -7 (SIGBUS)
    _one_line_error(result.stderr, "exp_avg has shape (3,)")


def test_item2_out_never_replaces_the_text_a_foreign_file_or_a_fifo(capsys, text_file, tmp_path):
    before = text_file.read_bytes()
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(text_file), "--steps", "1", "--force", *TINY, *FAST)
    assert code == 2 and "is the training text" in err and text_file.read_bytes() == before
    other = tmp_path / "thesis.txt"
    other.write_text("years of work", encoding="utf-8")
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(other), "--steps", "1", *TINY, *FAST)
    _one_line_error(err, "is not a gptnotes checkpoint", "--force")
    assert code == 2 and other.read_text(encoding="utf-8") == "years of work"
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(other), "--steps", "1", "--force", *TINY, *FAST)
    assert code == 0, err
    assert load_checkpoint(other).state.step == 1
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(fifo), "--steps", "1", "--force", *TINY, *FAST)
    assert code == 2 and "not a regular file" in err and fifo.is_fifo()


def test_item5_an_unwritable_out_is_reported_before_training(capsys, text_file):
    code, out, err = _run(capsys, "train", str(text_file), "--out", "/proc/gptnotes-c.pt", "--steps", "1", *TINY, *FAST)
    assert code == 2 and out == ""  # no step was trained (and lost)
    _one_line_error(err, "'/proc/gptnotes-c.pt'")
    assert ".tmp" not in err


def test_item6_a_second_run_on_the_same_out_stops_at_once(capsys, text_file, tmp_path):
    ckpt = tmp_path / "c.pt"
    assert _run(capsys, "train", str(text_file), "--out", str(ckpt), "--steps", "2", *TINY, *FAST)[0] == 0
    with lock_held_elsewhere(ckpt):
        code, _, err = _run(capsys, "train", str(text_file), "--out", str(ckpt), "--resume", "--steps", "3", "--no-progress")
    assert code == 2  # was 0, and one of the two runs' steps was lost
    _one_line_error(err, "being written by another gptnotes process")
    assert load_checkpoint(ckpt).state.step == 2


def test_item6_ctrl_c_saves_the_last_finished_step_and_exits_130(text_file, tmp_path):
    ckpt = tmp_path / "c.pt"
    child = subprocess.Popen(
        [sys.executable, "-m", "gptnotes", "train", str(text_file), "--out", str(ckpt), "--steps", "1000000",
         *TINY, "--eval-interval", "1000000", "--eval-iters", "1", "--batch-size", "4", "--no-progress"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert "M parameters" in child.stderr.readline()  # training has started
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    _one_line_error(err, "interrupted: saved", "continue with --resume")
    step = load_checkpoint(ckpt).state.step
    assert step >= 1 and f"after step {step};" in err
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "input.txt"]  # no temporary or lock file left


def test_item6_save_every_saves_during_the_run(capsys, text_file, tmp_path, monkeypatch):
    import gptnotes.cli as cli

    saved = []
    real_save = cli.save_checkpoint

    def recording_save(path, model, state, **kw):
        saved.append(state.step)
        real_save(path, model, state, **kw)

    monkeypatch.setattr(cli, "save_checkpoint", recording_save)
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--steps", "6",
                        "--save-every", "2", *TINY, *FAST)
    assert code == 0, err
    assert saved == [2, 4, 6]
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--steps", "6",
                        "--save-every", "0", *TINY, *FAST)
    assert code == 2 and "--save-every must be a positive integer" in err


def test_item7_allocation_failures_and_absurd_sizes_are_one_line(capsys, text_file, tmp_path, monkeypatch):
    import gptnotes._checks as checks

    code, _, err = _run(capsys, "params", "--vocab-size", "100000000")
    assert code == 2
    _one_line_error(err, "vocab_size=100000000", "would need", "more than this machine's")
    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 10**9)
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--block-size", "100000",
                        "--steps", "1", "--no-progress")
    assert code == 2
    _one_line_error(err, "block_size=100000", "would need")


def test_item7_torch_allocation_errors_are_one_line(capsys, monkeypatch):
    import gptnotes.cli as cli

    def failing(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 40000000000 bytes.\nmore lines")

    monkeypatch.setattr(cli.GPTLanguageModel, "from_config", failing)
    code, _, err = _run(capsys, "params")
    assert code == 2
    _one_line_error(err, "out of memory", "DefaultCPUAllocator")


def test_item7_tiny_temperature_closed_stdout_and_tampered_lr(capsys, text_file, tmp_path):
    ckpt = str(tmp_path / "c.pt")
    assert _run(capsys, "train", str(text_file), "--out", ckpt, "--steps", "2", *TINY, *FAST)[0] == 0
    code, out, err = _run(capsys, "generate", ckpt, "--tokens", "5", "--temperature", "1e-50", "--seed", "0")
    assert code == 0 and len(out.rstrip("\n")) == 5, err  # the one-hot limit, not NaN
    result = _cli("generate", ckpt, "--tokens", "5", preexec_fn=lambda: os.close(1))  # gptnotes generate c.pt >&-
    assert result.returncode == 2
    _one_line_error(result.stderr, "standard output is closed")
    payload = torch.load(ckpt, weights_only=True)
    payload["train_state"]["optimizer"]["param_groups"][0]["lr"] = -1.0
    torch.save(payload, ckpt)
    code, _, err = _run(capsys, "train", str(text_file), "--out", ckpt, "--resume", "--steps", "1", "--no-progress")
    assert code == 2
    _one_line_error(err, "lr must be a positive finite number, got -1.0")


def test_item7_a_folder_or_fifo_as_file_is_named_for_what_it_is(capsys, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, expected in ((tmp_path, "is a folder"), (fifo, "not a regular file")):
        code, _, err = _run(capsys, "train", str(path), "--out", str(tmp_path / "c.pt"), "--steps", "1", *TINY, *FAST)
        assert code == 2
        _one_line_error(err, expected)
        assert "no such file" not in err


def test_item7_ctrl_c_outside_training_is_one_line(capsys, monkeypatch):
    import gptnotes.cli as cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "format_parameter_table", interrupted)
    try:
        code, _, err = _run(capsys, "params")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main: a traceback, not one line")
    assert code == 130
    _one_line_error(err, "interrupted")


def test_item8_params_with_a_long_context_builds_one_mask(capsys, monkeypatch):
    import gptnotes.attention as attention

    made = []
    real = attention.causal_mask
    monkeypatch.setattr(attention, "causal_mask", lambda T, device=None: made.append(T) or real(T, device))
    code, out, _ = _run(capsys, "params", "--block-size", "2048")
    assert code == 0 and "total:" in out
    assert made == [2048]  # one block_size² mask shared by the 16 heads, not one each


def test_item11_generate_prints_each_token_as_it_comes(capsys, text_file, tmp_path, monkeypatch):
    ckpt = str(tmp_path / "c.pt")
    assert _run(capsys, "train", str(text_file), "--out", ckpt, "--steps", "2", *TINY, *FAST)[0] == 0
    code, whole, _ = _run(capsys, "generate", ckpt, "--tokens", "30", "--seed", "3")
    assert code == 0 and len(whole.rstrip("\n")) == 30

    class Recorder:
        def __init__(self):
            self.flushed = []
            self.buffer = ""

        def write(self, text):
            self.buffer += text

        def flush(self):
            self.flushed.append(self.buffer)

        def fileno(self):
            return 1

    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    assert main(["generate", ckpt, "--tokens", "30", "--seed", "3"]) == 0
    assert rec.buffer == whole  # the same text as before ...
    assert len(rec.flushed) >= 30  # ... shown token by token, not all at the end


def test_item11_train_does_not_build_a_list_of_ints(capsys, text_file, tmp_path, monkeypatch):
    from gptnotes.data import CharTokenizer

    def no_list(self, text):
        raise AssertionError("train built a Python list of ids")

    monkeypatch.setattr(CharTokenizer, "encode", no_list)
    code, _, err = _run(capsys, "train", str(text_file), "--out", str(tmp_path / "c.pt"), "--steps", "1", *TINY, *FAST)
    assert code == 0, err
