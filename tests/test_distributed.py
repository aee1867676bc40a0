"""Tests of gptnotes.distributed and data-parallel training (two gloo processes on 127.0.0.1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from gptnotes import (
    DistributedContext,
    GPTLanguageModel,
    batch_rows,
    distributed_from_env,
    load_checkpoint,
    rank_and_world_size,
    train,
)
from gptnotes.cli import main

DATA = (torch.arange(400) * 7 + torch.arange(400) // 5) % 11  # 11 token ids, not periodic in 8
TRAIN = dict(steps=4, batch_size=8, block_size=8, lr=1e-2, eval_iters=2, progress=False, seed=3)

# Each process builds the same model, perturbs it on rank 1 (DistributedDataParallel must give
# every process the weights of rank 0), trains, and saves its parameters and recorded losses.
RANK_SCRIPT = r"""
import sys
import torch
from gptnotes import GPTLanguageModel, distributed_from_env, train

out, train_kw = sys.argv[1], eval(sys.argv[2])
data = (torch.arange(400) * 7 + torch.arange(400) // 5) % 11
with distributed_from_env() as ctx:
    torch.manual_seed(0)
    model = GPTLanguageModel(11, block_size=8, n_embd=16, n_head=2, n_layer=1)
    if ctx.rank == 1:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
    state = train(model, data, **train_kw)
    torch.save({"params": model.state_dict(), "losses": state.history.losses, "evals": state.history.eval_losses,
                "ctx": (ctx.rank, ctx.world_size, ctx.backend)}, f"{out}/rank{ctx.rank}.pt")
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _single_process_run():
    torch.manual_seed(0)
    model = GPTLanguageModel(11, block_size=8, n_embd=16, n_head=2, n_layer=1)
    state = train(model, DATA, **TRAIN)
    return model, state


def test_two_gloo_processes_equal_one_process_over_the_global_batch(tmp_path):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT, str(tmp_path), repr(TRAIN)],
            env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        assert err == "", err
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["ctx"] == (0, 2, "gloo") and r1["ctx"] == (1, 2, "gloo")
    # the two processes hold exactly the same model, though rank 1 started from other weights
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name
    assert r0["losses"] == r1["losses"] and r0["evals"] == r1["evals"]
    # ... and it is the model of one process computing the whole batch of every step
    model, state = _single_process_run()
    for name, p in model.state_dict().items():
        assert torch.allclose(p, r0["params"][name], atol=1e-5), name
    assert r0["losses"] == pytest.approx(state.history.losses, abs=1e-5)
    assert state.history.losses[-1] < state.history.losses[0]  # it did train
    start = GPTLanguageModel(11, block_size=8, n_embd=16, n_head=2, n_layer=1)
    assert not torch.equal(start.lm_head.weight, model.lm_head.weight)


def test_gptnotes_train_runs_unchanged_under_torchrun(tmp_path, capsys):
    text = tmp_path / "input.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 12, encoding="utf-8")
    args = ["train", str(text), "--steps", "4", "--batch-size", "4", "--eval-interval", "2", "--eval-iters", "2",
            "--block-size", "8", "--n-embd", "16", "--n-head", "2", "--n-layer", "1", "--no-progress"]
    port = _free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "-m", "gptnotes",
         *args, "--out", str(tmp_path / "ddp.pt")],
        env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    # rank 0 alone reports: one line per evaluation, one "saved" line
    assert proc.stdout.count("step 4: train loss") == 1, proc.stdout
    assert proc.stderr.count("saved ") == 1 and "2 processes (gloo)" in proc.stderr
    assert main([*args, "--out", str(tmp_path / "one.pt")]) == 0
    one_out = capsys.readouterr().out
    ddp, one = load_checkpoint(tmp_path / "ddp.pt"), load_checkpoint(tmp_path / "one.pt")
    assert ddp.state.step == one.state.step == 4
    for (name, p), q in zip(ddp.model.named_parameters(), one.model.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name
    assert ddp.state.history.losses == pytest.approx(one.state.history.losses, abs=1e-5)
    assert len(one_out.splitlines()) == len([line for line in proc.stdout.splitlines() if line.startswith("step ")])


def test_without_torchrun_there_is_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with distributed_from_env() as ctx:
        assert ctx == DistributedContext(0, 1, 0, None, torch.device("cpu"))
        assert ctx.is_main and not ctx.distributed
        assert rank_and_world_size() == (0, 1)


@pytest.mark.parametrize(
    "env, match",
    [
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE must be an integer"),
        ({"WORLD_SIZE": "2"}, "RANK must be set"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 must be smaller than WORLD_SIZE=2"),
        ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE must be a positive integer"),
        ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK must be a non-negative integer"),
    ],
)
def test_bad_environment_is_reported_by_name(monkeypatch, env, match):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        with distributed_from_env():
            pass


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        with distributed_from_env(backend="mpi"):
            pass


def test_batch_rows_split_the_global_batch_into_equal_slices():
    x = torch.arange(12 * 3).view(12, 3)  # (B, T)
    for world_size in (1, 2, 3, 4, 6, 12):
        parts = [x[batch_rows(12, r, world_size)] for r in range(world_size)]
        assert all(part.shape == (12 // world_size, 3) for part in parts)
        assert torch.equal(torch.cat(parts), x)  # every row once, in order
        losses = x.float().mean(dim=1)
        means = [part.float().mean(dim=1).mean() for part in parts]
        assert torch.allclose(torch.stack(means).mean(), losses.mean())  # mean of means = global mean


def test_batch_rows_errors():
    with pytest.raises(ValueError, match="batch_size=10 must be divisible by the number of processes \\(4\\)"):
        batch_rows(10, 0, 4)
    with pytest.raises(ValueError, match="rank"):
        batch_rows(8, 4, 4)
    with pytest.raises(TypeError, match="world_size"):
        batch_rows(8, 0, 2.0)
    with pytest.raises(ValueError, match="batch_size"):
        batch_rows(0, 0, 1)


def test_cli_rejects_a_batch_the_processes_cannot_share(monkeypatch, tmp_path, capsys):
    import gptnotes.cli as cli

    text = tmp_path / "input.txt"
    text.write_text("abcdefgh" * 40, encoding="utf-8")

    class ThreeProcesses:
        def __enter__(self):
            return DistributedContext(0, 3, 0, "gloo", torch.device("cpu"))

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(cli, "distributed_from_env", ThreeProcesses)
    assert main(["train", str(text), "--batch-size", "4", "--out", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gptnotes train: error: --batch-size 4 must be divisible by the number of processes (3)")


def test_item11_distributed_context_validates_its_fields():
    from gptnotes import DistributedContext

    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size - 1\] = \[0, 1\], got 2"):
        DistributedContext(rank=2, world_size=2, local_rank=0, backend="gloo", device=cpu)
    with pytest.raises(ValueError, match="backend must be one of"):
        DistributedContext(rank=0, world_size=1, local_rank=0, backend="mpi?", device=cpu)
    with pytest.raises(TypeError, match="device must be a torch.device, got str"):
        DistributedContext(rank=0, world_size=1, local_rank=0, backend=None, device="cpu")
    assert DistributedContext(rank=0, world_size=1, local_rank=0, backend=None, device=cpu).is_main
