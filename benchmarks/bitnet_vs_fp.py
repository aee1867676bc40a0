"""Train a tiny character model with float linear layers and with BitLinear, side by side.

Plain script, not run by the tests:

    python benchmarks/bitnet_vs_fp.py PATH_TO_TEXT [--steps 3000] [--context 8] [--hidden 256]

The model reads ``context`` characters, embeds them (full precision), concatenates the
embeddings and runs two hidden layers and a full-precision output head: an MLP language
model, until the GPT of ``gptnotes.gpt`` can be plugged in the same way
(``replace_linear_with_bitlinear(model.blocks)``). Variants, all from the same initial
weights and the same batches:

* ``float``      each hidden layer is RMSNorm + Linear (no bias): BitLinear without quantisation;
* ``bitlinear``  each hidden layer is a BitLinear (ternary weights, int8 activations, STE);
* ``ptq``        the trained ``float`` model, its hidden layers turned into BitLinear afterwards
                 and not trained again (post-training quantisation);
* ``notes``      each hidden layer is the notes' BinaryLinear (sign, no STE): its weights get
                 no gradient, only the embeddings, biases and head learn.

It prints the validation loss during training, the final numbers, and the int8 inference
path of the trained BitLinear model against its float forward.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes import CharTokenizer, Linear, get_batch, load_text, train_val_split
from gptnotes.bitnet import BinaryLinear, BitLinear, RMSNorm, replace_linear_with_bitlinear


class NormLinear(nn.Module):
    """RMSNorm then a bias-free Linear: the float twin of BitLinear."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = RMSNorm(in_features)
        self.linear = Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x))


class CharMLP(nn.Module):
    """Embed ``context`` characters, two hidden layers, a full-precision head."""

    def __init__(self, vocab_size: int, context: int, n_embd: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, n_embd)
        self.hidden = nn.Sequential(
            NormLinear(context * n_embd, hidden), nn.GELU(), NormLinear(hidden, hidden), nn.GELU()
        )
        self.lm_head = nn.Linear(hidden, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embedding(idx).flatten(1)  # (B, context * n_embd)
        return self.lm_head(self.hidden(x))  # (B, vocab)


def to_bitlinear(model: CharMLP) -> CharMLP:
    """A copy whose hidden layers are BitLinear with the same master weights and norm gains."""
    new = copy.deepcopy(model)
    for i, layer in enumerate(new.hidden):
        if isinstance(layer, NormLinear):
            bit = BitLinear.from_linear(layer.linear)
            with torch.no_grad():
                bit.norm.weight.copy_(layer.norm.weight)
            new.hidden[i] = bit
    return new


def to_notes_binary(model: CharMLP) -> CharMLP:
    """A copy whose hidden layers are the notes' BinaryLinear (sign weights, no STE)."""
    new = copy.deepcopy(model)
    for i, layer in enumerate(new.hidden):
        if isinstance(layer, NormLinear):
            w = layer.linear.weight
            binary = BinaryLinear(w.shape[1], w.shape[0])
            with torch.no_grad():
                binary.weight.copy_(w)
                binary.bias.zero_()
            new.hidden[i] = binary
    return new


def batches(data: torch.Tensor, context: int, batch_size: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = get_batch(data, context, batch_size, generator=g)
        yield x, y[:, -1]  # predict the character after the window


@torch.no_grad()
def evaluate(model: nn.Module, data: torch.Tensor, context: int, n_batches: int = 40) -> float:
    model.eval()
    losses = [F.cross_entropy(model(x), y).item() for x, y in batches(data, context, 256, n_batches, seed=1234)]
    model.train()
    return sum(losses) / len(losses)


def train(model, train_data, val_data, args, label):
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    curve, recent = [], []
    start = time.perf_counter()
    for step, (x, y) in enumerate(batches(train_data, args.context, args.batch_size, args.steps, seed=0), 1):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent = (recent + [loss.item()])[-100:]
        if step % args.eval_every == 0 or step == args.steps:
            curve.append((step, evaluate(model, val_data, args.context)))
    seconds = time.perf_counter() - start
    print(f"  {label:<10} trained in {seconds:6.1f} s")
    return curve, sum(recent) / len(recent), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a text file, e.g. tinyshakespeare.txt")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--context", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this size)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = load_text(args.path)
    tok = CharTokenizer(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    train_data, val_data = train_val_split(data)
    torch.manual_seed(args.seed)
    base = CharMLP(len(tok), args.context, args.n_embd, args.hidden)
    print(
        f"{len(text):,} characters, vocab {len(tok)}, context {args.context}, hidden {args.hidden}, "
        f"{sum(p.numel() for p in base.parameters()):,} parameters, {args.steps} steps of {args.batch_size}, "
        f"lr {args.lr}; uniform guess = ln(vocab) = {math.log(len(tok)):.4f}"
    )

    float_model = copy.deepcopy(base)
    bit_model = to_bitlinear(base)
    notes_model = to_notes_binary(base)
    print(f"initial val loss: float {evaluate(float_model, val_data, args.context):.4f}, "
          f"bitlinear {evaluate(bit_model, val_data, args.context):.4f}")
    results = {}
    for label, model in (("float", float_model), ("bitlinear", bit_model), ("notes", notes_model)):
        results[label] = train(model, train_data, val_data, args, label)
    ptq = to_bitlinear(float_model)
    ptq_val = evaluate(ptq, val_data, args.context)

    print("\nvalidation loss during training")
    print(f"{'step':>6} | " + " | ".join(f"{k:>9}" for k in results))
    for i, (step, _) in enumerate(results["float"][0]):
        print(f"{step:>6} | " + " | ".join(f"{results[k][0][i][1]:9.4f}" for k in results))
    print("\nfinal")
    print(f"{'variant':<10} | {'train (last 100)':>16} | {'val':>7} | {'seconds':>7}")
    for k, (curve, train_loss, seconds) in results.items():
        print(f"{k:<10} | {train_loss:16.4f} | {curve[-1][1]:7.4f} | {seconds:7.1f}")
    print(f"{'ptq':<10} | {'(not trained)':>16} | {ptq_val:7.4f} |")

    # the trained BitLinear model, run with the integer path
    bit_model.eval()
    frozen = copy.deepcopy(bit_model)
    for i, layer in enumerate(frozen.hidden):
        if isinstance(layer, BitLinear):
            frozen.hidden[i] = layer.quantize()
    x, y = next(batches(val_data, args.context, 512, 1, seed=99))
    with torch.no_grad():
        a, b = bit_model(x), frozen(x)
        print(
            f"\nint8 path vs float forward of the trained BitLinear model: max |logit diff| "
            f"{(a - b).abs().max().item():.3g} (logits up to {a.abs().max().item():.3g}), "
            f"loss {F.cross_entropy(a, y).item():.6f} vs {F.cross_entropy(b, y).item():.6f}"
        )
    # the notes' layers never moved
    moved = [
        (layer.weight - base.hidden[i].linear.weight).abs().max().item()
        for i, layer in enumerate(notes_model.hidden)
        if isinstance(layer, BinaryLinear)
    ]
    print(f"notes' BinaryLinear weights, largest change during training: {max(moved)}")
    # the helper gives the same model structure as to_bitlinear when there is no norm to keep
    plain = nn.Sequential(Linear(4, 4), nn.GELU(), Linear(4, 4))
    assert replace_linear_with_bitlinear(plain) == ["0", "2"]


if __name__ == "__main__":
    main()
