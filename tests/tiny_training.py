"""A tiny text and a tiny GPT shared by the tests of training, checkpoints and speed."""

from __future__ import annotations

import torch

from gptnotes import CharTokenizer, GPTLanguageModel

TEXT = "to be or not to be, that is the question. " * 8

KW = dict(batch_size=4, block_size=8, lr=3e-3, eval_interval=5, eval_iters=2, progress=False)


def tiny_data():
    """``(tokenizer, train ids, validation ids)`` of TEXT."""
    tok = CharTokenizer(TEXT)
    data = torch.tensor(tok.encode(TEXT))
    return tok, data[:300], data[300:]


def tiny_gpt(seed=0, dropout=0.0, vocab_size=None):
    """A one-block GPT of C=16 over TEXT's vocabulary, its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    V = vocab_size or CharTokenizer(TEXT).vocab_size
    return GPTLanguageModel(V, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=dropout)


def params_of(model):
    """A copy of every parameter, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}
