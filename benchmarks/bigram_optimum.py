"""How close does the neural bigram model get to the best bigram model of a text?

Plain script, not run by the tests:

    python benchmarks/bigram_optimum.py PATH_TO_TEXT [--steps 300] [--lr 0.5] [--minibatch-steps 3000]

The first 90% of the characters are the training text, the last 10% the validation text.
Reported, all as exact means over every pair of consecutive characters (no sampling):

* the counted bigram model without smoothing: its training loss is the exact minimum that
  any bigram model can reach on the training text (the neural model can approach it, never
  beat it); on validation text it is infinite as soon as a pair unseen in training occurs;
* the counted model with add-one smoothing, the usual finite-validation-loss variant;
* the neural ``BigramLanguageModel`` trained *full batch*: a bigram model's loss depends on the
  text only through its ``V x V`` count matrix, so :func:`gptnotes.fit_to_counts` takes Adam
  steps on the exact loss of the whole training text, each as cheap as one small batch. It
  must end within 0.01 nats of the optimum (the script exits with status 1 otherwise);
* optionally (``--minibatch-steps``) the same model trained the lecture's way, on random
  batches with :func:`gptnotes.train`, for comparison.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from gptnotes import (
    BigramLanguageModel,
    CharTokenizer,
    CountBigramModel,
    bigram_counts,
    fit_to_counts,
    load_text,
    nll_from_counts,
    train,
    train_val_split,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a UTF-8 text file, e.g. tinyshakespeare.txt")
    ap.add_argument("--steps", type=int, default=300, help="full-batch Adam steps")
    ap.add_argument("--lr", type=float, default=0.5, help="full-batch Adam learning rate")
    ap.add_argument("--minibatch-steps", type=int, default=0, help="also train on random batches for this many steps")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    text = load_text(args.path)
    tok = CharTokenizer(text)
    V = tok.vocab_size
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    train_data, val_data = train_val_split(data, 0.9)
    train_counts, val_counts = bigram_counts(train_data, V), bigram_counts(val_data, V)
    unseen = int(((train_counts == 0) & (val_counts > 0)).sum())
    print(f"{args.path}: {len(data)} characters, vocabulary {V}, {len(train_data)} train / {len(val_data)} val; "
          f"{int((train_counts > 0).sum())} of {V * V} pairs occur in training; {unseen} pair types of the "
          f"validation text never occur in training")

    mle = CountBigramModel(train_counts, smoothing=0.0)
    laplace = CountBigramModel(train_counts, smoothing=1.0)
    optimum = mle.nll(train_data)
    rows = [
        ("uniform guess, ln V", math.log(V), math.log(V)),
        ("counts, no smoothing (optimum)", optimum, mle.nll(val_data)),
        ("counts, add-one smoothing", laplace.nll(train_data), laplace.nll(val_data)),
    ]

    def exact(model):
        with torch.no_grad():
            w = model.token_embedding_table.weight
            return nll_from_counts(w, train_counts).item(), nll_from_counts(w, val_counts).item()

    torch.manual_seed(args.seed)
    rows.append(("neural, at initialisation", *exact(BigramLanguageModel(V))))
    # the trace: separate runs from the same initial table, each with a fresh Adam
    trace = []
    for s in sorted({n for n in (10, 25, 50, 100, 200) if n < args.steps} | {args.steps}):
        torch.manual_seed(args.seed)
        neural = BigramLanguageModel(V)
        t0 = time.perf_counter()
        fit_to_counts(neural, train_counts, steps=s, lr=args.lr)
        seconds = time.perf_counter() - t0
        trace.append((s, *exact(neural)))
    rows.append((f"neural, full batch, {args.steps} Adam steps (lr {args.lr})", *exact(neural)))

    if args.minibatch_steps:
        torch.manual_seed(args.seed)
        mb = BigramLanguageModel(V)
        t1 = time.perf_counter()
        train(mb, train_data, steps=args.minibatch_steps, batch_size=32, block_size=8, lr=0.1,
              eval_iters=1, seed=args.seed, progress=False)
        mb_seconds = time.perf_counter() - t1
        rows.append((f"neural, {args.minibatch_steps} random batches of 32x8 (AdamW lr 0.1)", *exact(mb)))

    print(f"\n{'model':<58} {'train':>8} {'val':>8}")
    for name, tr, va in rows:
        print(f"{name:<58} {tr:>8.4f} {va:>8.4f}")
    print("\nfull-batch trace (steps: train, val):  " + ";  ".join(f"{s}: {a:.4f}, {b:.4f}" for s, a, b in trace))
    gap = rows[4][1] - optimum
    print(f"full-batch training took {seconds:.2f} s; gap to the optimum {gap:.6f} nats")
    if args.minibatch_steps:
        print(f"mini-batch training took {mb_seconds:.2f} s; gap to the optimum {rows[5][1] - optimum:.6f} nats")
    if not gap < 0.01:
        print("FAIL: the neural model did not reach the optimum within 0.01 nats", file=sys.stderr)
        return 1
    print("PASS: within 0.01 nats of the counted optimum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
