"""The small GPT trained twice, in full precision and as BitNet b1.58, from the same start.

The experiment of the page *Training a BitNet GPT* ("Side by side with the full-precision
GPT"), whose loss curves, table and weight histogram ``sitetools/figures/bitnet.py`` draws.
One model is built and copied, so both start from the same weights; the copy gets
BitLinear in every block (`replace_linear_with_bitlinear`);
both train on the same batches. Then every model is measured on the same batches:

* ``fp``: the full-precision model;
* ``bit``: the BitNet model, as trained (float forward with rounded weights and activations);
* ``int``: the BitNet model frozen for integer inference
  (`freeze_bitlinear_layers`);
* ``ptq``: the full-precision model with its block weights ternarised after training
  (post-training quantisation: no training with the rounding).

`run` does it for any settings (the test uses
tiny ones); `site_run` is the run the
site shows, with `SETTINGS`, done once
per process.
"""

from __future__ import annotations

import copy
import time
from functools import lru_cache

#: Settings of the side-by-side run. The GPT is the site's small model's size (block_size 8,
#: C = 64, 4 heads, 4 blocks) with the fused attention (the same maths as the per-head
#: modules, fewer modules, so a quicker run); the text is the package's own corpus.
SETTINGS = {
    "block_size": 8,
    "n_embd": 64,
    "n_head": 4,
    "n_layer": 4,
    "attention": "fused",
    "steps": 240,
    "batch_size": 32,
    "lr": 2e-3,
    "eval_interval": 40,
    "eval_iters": 5,
    "final_batches": 12,
    "final_batch_size": 64,
    "seed": 0,
}

#: The layer whose master weights the histogram shows (its input is the first block's
#: layer-normed stream; 64 -> 256, 16,384 weights).
HIST_LAYER = "blocks.0.ffwd.net.0"


def ternarise_block_weights(model) -> int:
    """Post-training quantisation, weights only: each block Linear's weight becomes ``gamma * ternary``.

    The layers stay float ``Linear`` layers with their biases and float activations; only
    their weights are rounded, once, with `weight_fake_quant`.
    Returns the number of layers changed.
    """
    import torch

    from gptnotes import Linear, weight_fake_quant

    n = 0
    with torch.no_grad():
        for module in model.blocks.modules():
            if isinstance(module, Linear):
                module.weight.copy_(weight_fake_quant(module.weight))
                n += 1
    return n


def run(settings: dict) -> dict:
    """Train the full-precision and the BitNet GPT side by side; return curves and final numbers.

    Args:
        settings: The keys of `SETTINGS`
            (``n_layer`` at least 1, since the histogram layer is in the first block).

    Returns:
        A dict: ``histories`` (``"fp"``, ``"bit"``: the training histories), ``results``
        (``"fp"``, ``"bit"``, ``"int"``, ``"ptq"``: ``{"train": loss, "val": loss}``),
        ``replaced``, ``ptq_layers``, ``frozen_layers`` (layer counts), ``same_logits``
        (whether the integer path gives the BitNet model's logits bit for bit), the corpus
        sizes, the parameter counts, and the master weights of ``HIST_LAYER`` with their
        ternary codes and ``gamma``, and the seconds it took.
    """
    import torch

    from gptnotes import (
        CharTokenizer,
        GPTLanguageModel,
        estimate_loss,
        freeze_bitlinear_layers,
        load_corpus,
        replace_linear_with_bitlinear,
        train,
        train_val_split,
        weight_quant,
    )

    r = settings
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster and steadier, and deterministic
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            text = load_corpus()
            tok = CharTokenizer(text)
            data = torch.tensor(tok.encode(text))
            train_data, val_data = train_val_split(data)
            torch.manual_seed(r["seed"])
            fp = GPTLanguageModel(
                tok.vocab_size, r["block_size"], r["n_embd"], r["n_head"], r["n_layer"], attention=r["attention"]
            )
            bit = copy.deepcopy(fp)  # the same initial weights
            replaced = replace_linear_with_bitlinear(bit.blocks)
            histories = {}
            for name, model in (("fp", fp), ("bit", bit)):
                state = train(
                    model, train_data, val_data, steps=r["steps"], batch_size=r["batch_size"],
                    block_size=r["block_size"], lr=r["lr"], eval_interval=r["eval_interval"],
                    eval_iters=r["eval_iters"], seed=r["seed"], progress=False,
                )
                histories[name] = state.history

            def final(model) -> dict:
                g = torch.Generator().manual_seed(1234)  # the same batches for every model
                return estimate_loss(
                    model, {"train": train_data, "val": val_data}, r["block_size"],
                    r["final_batch_size"], r["final_batches"], generator=g,
                )

            ptq = copy.deepcopy(fp)
            n_ptq = ternarise_block_weights(ptq)
            frozen = copy.deepcopy(bit).eval()
            n_frozen = len(freeze_bitlinear_layers(frozen))
            idx = torch.randint(tok.vocab_size, (64, r["block_size"]), generator=torch.Generator().manual_seed(5))
            with torch.no_grad():
                same_logits = torch.equal(bit.eval()(idx)[0], frozen(idx)[0])
            bit.train()
            results = {
                "fp": final(fp),
                "bit": final(bit),
                "int": final(frozen),
                "ptq": final(ptq),
            }
            layer = bit.get_submodule(HIST_LAYER)
            master = layer.weight.detach().clone()
            ternary, gamma = weight_quant(master)
    finally:
        torch.set_num_threads(threads)
    return {
        "histories": histories,
        "results": results,
        "replaced": len(replaced),
        "ptq_layers": n_ptq,
        "frozen_layers": n_frozen,
        "same_logits": same_logits,
        "vocab_size": tok.vocab_size,
        "train_tokens": len(train_data),
        "val_tokens": len(val_data),
        "params_fp": sum(p.numel() for p in fp.parameters()),
        "params_bit": sum(p.numel() for p in bit.parameters()),
        "master": master,
        "ternary": ternary,
        "gamma": float(gamma),
        "seconds": time.perf_counter() - start,
    }


@lru_cache(maxsize=1)
def site_run() -> dict:
    """The run the site shows: `run` with
    `SETTINGS`, once per process."""
    return run(SETTINGS)
