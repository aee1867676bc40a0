"""The small GPT of the lecture: embeddings, a stack of blocks, and a language-model head.

``idx (B, T)`` → token embedding + position embedding ``(B, T, C)`` → ``n_layer`` ×
[`Block`][gptnotes.gpt.Block] (pre-norm: ``x + attention(ln1(x))``, then ``x + feed_forward(ln2(x))``) →
final layer norm → ``lm_head`` → logits ``(B, T, vocab_size)``.

With ``vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4`` the parameters are
exactly those of the lecture's model (``token_embedding_table.weight [65, 64]`` …
``lm_head.bias [65]``), 208,193 in all.

All weights keep PyTorch's default initialisation, as the lecture's ``gpt.py`` does in the
video: embeddings N(0, 1), linear layers uniform in ±1/sqrt(fan_in) ([`Linear`][gptnotes.linear.Linear] draws
exactly as `torch.nn.Linear`), layer norms weight 1 and bias 0. (The ``gpt.py`` in the
lecture's repository today adds, after the video, an N(0, 0.02) initialisation of every linear
and embedding weight, with zero biases.) A ``state_dict`` of the lecture's model loads into
[`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel], and one of it into the lecture's model.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gptnotes._checks import (
    check_allocation,
    check_eps,
    check_float_tensor,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
    check_probability,
    check_targets,
    check_token_ids,
    skip_input_checks,
)
from gptnotes.attention import CausalSelfAttention, MultiHeadAttention
from gptnotes.linear import Linear
from gptnotes.sampling import sample_next_token

__all__ = ["layer_norm", "FeedForward", "Block", "GPTConfig", "GPTLanguageModel"]

ATTENTION_KINDS = ("heads", "fused")


def layer_norm(
    x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, eps: float = 1e-5
) -> torch.Tensor:
    r"""Layer normalisation of the last dimension, from scratch: what `torch.nn.LayerNorm` computes.

    Each position's \(C\) numbers are standardised with their own mean and variance, then
    scaled by ``weight`` (\(\gamma\)) and shifted by ``bias`` (\(\beta\)):

    $$
    y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \, \gamma + \beta, \qquad
    \mu = \frac{1}{C} \sum_{c} x_c, \quad \sigma^2 = \frac{1}{C} \sum_{c} (x_c - \mu)^2
    $$

    The variance divides by \(C\), not \(C - 1\). The statistics never mix positions or
    sequences, so a batch of one, training and evaluation all compute the same thing (unlike
    batch norm). Equal to ``torch.nn.LayerNorm(C, eps=eps)`` with the same ``weight`` and
    ``bias``, up to float rounding, gradients included.

    Args:
        x: Floating-point tensor whose last dimension is normalised, e.g. ``(B, T, C)``.
        weight: The gain \(\gamma\), ``(C,)``; ``None`` for ones.
        bias: The shift \(\beta\), ``(C,)``; ``None`` for zeros.
        eps: Added to the variance before the square root; a number in ``[1.2e-38, 1e30]``
            (smaller is 0 in float32, larger overflows or drowns the variance).

    Shape:
        - x: ``(*, C)``, e.g. ``(B, T, C)``; weight, bias: ``(C,)``.
        - Output: the shape of ``x``.

    Returns:
        The normalised tensor.

    Raises:
        TypeError: If ``x``, ``weight`` or ``bias`` is not a floating-point tensor, or ``eps``
            is not a number.
        ValueError: If ``x`` is 0-D or empty along C, ``weight`` or ``bias`` does not have
            shape ``(C,)``, or ``eps`` is not positive and finite.

    Examples:
        >>> import torch
        >>> from gptnotes import layer_norm
        >>> x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])     # mean 3, variance 3.5
        >>> [round(v, 4) for v in layer_norm(x)[0].tolist()]
        [-1.069, -0.5345, 0.0, 1.6036]
        >>> ln = torch.nn.LayerNorm(4)
        >>> torch.allclose(layer_norm(x, ln.weight, ln.bias), ln(x))
        True
    """
    check_float_tensor(x, "x")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension C to normalise, got shape {tuple(x.shape)}")
    eps = check_eps(eps)
    C = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float_tensor(p, name)
            if tuple(p.shape) != (C,):
                raise ValueError(f"{name} must have shape (C,) = ({C},) for x of shape {tuple(x.shape)}, got {tuple(p.shape)}")
    mean = x.mean(dim=-1, keepdim=True)  # (*, 1)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)  # (*, 1): divided by C
    y = (x - mean) / torch.sqrt(var + eps)  # (*, C): mean 0, variance about 1 per position
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``Linear(C, 4C)``, ReLU, ``Linear(4C, C)``, dropout.

    Applied to every position separately and identically (no information moves between
    positions here; attention does that): after the tokens have gathered information from
    each other, each one "thinks" about what it gathered.

    Args:
        n_embd: C.
        dropout: Dropout probability after the second linear layer.

    Shape:
        - x: ``(B, T, C)`` (any leading dimensions); output: the same shape.

    Attributes:
        net: `torch.nn.Sequential` of [`Linear`][gptnotes.linear.Linear] ``(C -> 4C)``, ReLU,
            [`Linear`][gptnotes.linear.Linear] ``(4C -> C)``, dropout; so the parameters are named
            ``net.0.weight``, ``net.0.bias``, ``net.2.weight``, ``net.2.bias``.

    Raises:
        TypeError: If ``n_embd`` is not an integer or ``dropout`` not a number.
        ValueError: If ``n_embd`` is not positive or ``dropout`` not in ``[0, 1)``.

    Examples:
        >>> import torch
        >>> from gptnotes import FeedForward
        >>> _ = torch.manual_seed(0)
        >>> ffwd = FeedForward(n_embd=8)
        >>> [(n, tuple(p.shape)) for n, p in ffwd.named_parameters()]
        [('net.0.weight', (32, 8)), ('net.0.bias', (32,)), ('net.2.weight', (8, 32)), ('net.2.bias', (8,))]
        >>> tuple(ffwd(torch.randn(2, 5, 8)).shape)
        (2, 5, 8)
    """

    def __init__(self, n_embd: int, dropout: float = 0.0) -> None:
        super().__init__()
        n_embd = check_positive_int(n_embd, "n_embd")
        dropout = check_probability(dropout, "dropout")
        self.net = nn.Sequential(
            Linear(n_embd, 4 * n_embd),
            nn.ReLU(),
            Linear(4 * n_embd, n_embd),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """One transformer block: communication (attention) then computation (feed-forward).

    Pre-norm residual form, as in the lecture and GPT-2: each sub-layer reads a layer-normed
    copy of ``x`` and *adds* its result to ``x``::

        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))

    The residual additions give the gradient a direct path through every block.

    Args:
        n_embd: C.
        n_head: Number of attention heads; each has size ``n_embd // n_head``.
        block_size: The longest sequence accepted.
        dropout: Dropout probability in attention and feed-forward.
        attention: ``"heads"`` ([`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention], one module per head, the
            default) or ``"fused"`` ([`CausalSelfAttention`][gptnotes.attention.CausalSelfAttention]).

    Shape:
        - x: ``(B, T, C)`` with ``T <= block_size``; output: ``(B, T, C)``.

    ``forward`` does not check ``x``: inside [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel] it
    receives what the model made from checked token ids, and checking every block's input again
    would only cost time. Its layers raise on an ``x`` of the wrong size.

    Attributes:
        sa: The attention layer.
        ffwd: [`FeedForward`][gptnotes.gpt.FeedForward].
        ln1, ln2: `torch.nn.LayerNorm` over C.

    Raises:
        TypeError: If a size is not an integer.
        ValueError: If ``n_embd`` is not divisible by ``n_head``, a size is not positive, or
            ``attention`` is unknown.

    Examples:
        >>> import torch
        >>> from gptnotes import Block
        >>> _ = torch.manual_seed(0)
        >>> block = Block(n_embd=8, n_head=2, block_size=6)
        >>> tuple(block(torch.randn(3, 5, 8)).shape)
        (3, 5, 8)
    """

    def __init__(
        self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, attention: str = "heads"
    ) -> None:
        super().__init__()
        n_embd = check_positive_int(n_embd, "n_embd")
        n_head = check_positive_int(n_head, "n_head")
        _check_divisible(n_embd, n_head)
        _check_attention(attention)
        head_size = n_embd // n_head
        layer = MultiHeadAttention if attention == "heads" else CausalSelfAttention
        self.sa = layer(n_embd, n_head, head_size, block_size, dropout)
        self.ffwd = FeedForward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))  # (B, T, C)
        x = x + self.ffwd(self.ln2(x))  # (B, T, C)
        return x


def _check_divisible(n_embd: int, n_head: int) -> None:
    if n_embd % n_head != 0:
        raise ValueError(
            f"n_embd={n_embd} must be divisible by n_head={n_head}: each head gets n_embd // n_head features"
        )


def _check_attention(attention: object) -> None:
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")


def _lecture_mask_keys(model: GPTLanguageModel, prefix: str) -> list[str]:
    """The state_dict keys of the lecture's causal masks, one per head ("heads" attention only)."""
    return [
        f"{prefix}blocks.{i}.sa.heads.{j}.tril"
        for i, block in enumerate(model.blocks)
        if isinstance(block.sa, MultiHeadAttention)
        for j in range(len(block.sa.heads))
    ]


def _add_lecture_masks(model: GPTLanguageModel, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """state_dict post-hook: add the lecture's ``tril`` entries, one tensor shared by all heads
    (``torch.save`` stores it once)."""
    keys = _lecture_mask_keys(model, prefix)
    if keys:
        T = model.config.block_size
        tril = torch.tril(torch.ones(T, T, device=model.lm_head.weight.device))  # the lecture's float mask
        for key in keys:
            state_dict[key] = tril


def _take_lecture_masks(
    model: GPTLanguageModel, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
    missing_keys: list, unexpected_keys: list, error_msgs: list,
) -> None:
    """load_state_dict pre-hook: check and drop the lecture's ``tril`` entries (absent from the
    package's own checkpoints: the masks are constants, rebuilt by every Head)."""
    T = model.config.block_size
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for key in _lecture_mask_keys(model, prefix):
        if key not in state_dict:
            continue
        value = state_dict.pop(key)
        if not (isinstance(value, torch.Tensor) and tuple(value.shape) == (T, T) and torch.equal(value.cpu() != 0, mask)):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            error_msgs.append(f"{key} must be the causal mask torch.tril(torch.ones({T}, {T})) of block_size={T}, got {shape}")


@dataclass
class GPTConfig:
    """The sizes of a [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel]; the defaults are the small model used throughout the site.

    Checked when created: every size a positive integer, ``n_embd`` divisible by ``n_head``,
    ``dropout`` in ``[0, 1)``, ``attention`` one of ``"heads"``, ``"fused"``.

    Examples:
        >>> import torch
        >>> from gptnotes import GPTConfig, GPTLanguageModel
        >>> _ = torch.manual_seed(0)
        >>> cfg = GPTConfig()
        >>> cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_head, cfg.n_layer
        (65, 8, 64, 4, 4)
        >>> sum(p.numel() for p in GPTLanguageModel.from_config(cfg).parameters())
        208193
        >>> cfg.parameter_count(), cfg.memory_bytes()    # computed, nothing allocated
        (208193, 832836)
    """

    vocab_size: int = 65  # V: number of distinct tokens (65 characters in tiny Shakespeare)
    block_size: int = 8  # longest context, in tokens; also the rows of the position table
    n_embd: int = 64  # C: size of every token's vector inside the model
    n_head: int = 4  # attention heads per block; each has head_size = n_embd // n_head
    n_layer: int = 4  # number of transformer blocks
    dropout: float = 0.0  # dropout probability while training (0 = none)
    attention: str = "heads"  # "heads": one Head module per head (teaching path); "fused": one matrix + SDPA

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            setattr(self, name, check_positive_int(getattr(self, name), name))
        self.dropout = check_probability(self.dropout, "dropout")
        _check_divisible(self.n_embd, self.n_head)
        _check_attention(self.attention)
        self.attention = str(self.attention)  # a str subclass (numpy.str_) would not load back

    def parameter_count(self) -> int:
        """The number of parameters of a model of these sizes, computed without building it."""
        V, T, C, L = self.vocab_size, self.block_size, self.n_embd, self.n_layer
        attention = 3 * C * C + C * C + C  # queries, keys, values of all heads; projection
        feed_forward = C * 4 * C + 4 * C + 4 * C * C + C
        block = attention + feed_forward + 4 * C  # two layer norms
        return V * C + T * C + L * block + 2 * C + C * V + V

    def memory_bytes(self) -> int:
        """Bytes a model of these sizes holds: float32 parameters and (per-head attention) one
        ``(block_size, block_size)`` boolean causal mask, shared by all heads. Training needs
        about three times the parameters more (gradients and AdamW's two moments)."""
        mask = self.block_size**2 if self.attention == "heads" else 0
        return 4 * self.parameter_count() + mask


class GPTLanguageModel(nn.Module):
    """A decoder-only transformer that predicts the next token at every position.

    Token ids are looked up in a token table and their positions in a position table; the two
    ``(B, T, C)`` embeddings are added, so the same character at two positions enters as two
    different vectors. ``n_layer`` [`Block`][gptnotes.gpt.Block] modules let every position gather
    information from its past and process it; a final layer norm and a linear ``lm_head``
    turn each position's vector into ``vocab_size`` logits for the next token.

    Build it from sizes, ``GPTLanguageModel(vocab_size, block_size, n_embd, n_head, n_layer)``,
    or from a [`GPTConfig`][gptnotes.gpt.GPTConfig] with [`from_config`][gptnotes.gpt.GPTLanguageModel.from_config]; either way ``model.config`` holds
    the [`GPTConfig`][gptnotes.gpt.GPTConfig]. The position table has ``block_size`` rows, so ``forward`` accepts
    at most ``block_size`` tokens per sequence and [`generate`][gptnotes.gpt.GPTLanguageModel.generate] feeds only the last
    ``block_size`` tokens.

    The ``state_dict`` is the lecture's, name for name: with ``attention="heads"`` it also
    holds each head's causal mask ``blocks.N.sa.heads.M.tril`` (one shared
    ``torch.tril(torch.ones(block_size, block_size))``, which the lecture's ``Head`` registers
    as a buffer), so that ``load_state_dict(..., strict=True)`` works both ways: a model trained
    with the lecture's ``gpt.py`` loads into this class, and this one into the lecture's.
    Loading checks those masks and drops them (every head has its own); a ``state_dict``
    without them loads too.

    Args:
        vocab_size: V.
        block_size: The longest context, in tokens.
        n_embd: C.
        n_head: Heads per block (``n_embd`` must be divisible by it).
        n_layer: Number of blocks.
        dropout: Dropout probability while training.
        attention: ``"heads"`` (default, per-head modules, the lecture's parameter names) or
            ``"fused"`` (one ``c_attn`` matrix per block and PyTorch's fused attention; same
            maths, see [`to_fused`][gptnotes.gpt.GPTLanguageModel.to_fused]).

    Shape:
        - idx, targets: ``(B, T)`` with ``1 <= T <= block_size``.
        - logits: ``(B, T, V)``.

    Attributes:
        config: The [`GPTConfig`][gptnotes.gpt.GPTConfig].
        token_embedding_table: ``nn.Embedding(V, C)``.
        position_embedding_table: ``nn.Embedding(block_size, C)``, learned like any weight.
        blocks: `torch.nn.Sequential` of ``n_layer`` [`Block`][gptnotes.gpt.Block].
        ln_f: Final `torch.nn.LayerNorm`.
        lm_head: [`Linear`][gptnotes.linear.Linear] ``(C -> V)`` with bias.

    Raises:
        TypeError: If a size is not an integer; in ``forward``, if ``idx`` or ``targets`` is
            not an integer tensor.
        ValueError: If a size is not positive, ``n_embd % n_head != 0``, ``dropout`` is not in
            ``[0, 1)`` or ``attention`` is unknown; in ``forward``, if ``idx`` is not 2-D,
            longer than ``block_size``, empty, or holds ids outside the vocabulary, or
            ``targets`` has another shape or bad ids.

    Examples:
        >>> import torch
        >>> from gptnotes import GPTLanguageModel
        >>> _ = torch.manual_seed(0)
        >>> model = GPTLanguageModel(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=4)
        >>> sum(p.numel() for p in model.parameters())
        208193
        >>> idx = torch.randint(65, (2, 8))                   # (B, T)
        >>> logits, loss = model(idx, targets=idx)
        >>> tuple(logits.shape)
        (2, 8, 65)
        >>> out = model.generate(idx[:, :1], max_new_tokens=20, generator=torch.Generator().manual_seed(0))
        >>> tuple(out.shape)                                  # longer than block_size: cropped inside
        (2, 21)
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_embd: int,
        n_head: int,
        n_layer: int,
        dropout: float = 0.0,
        attention: str = "heads",
    ) -> None:
        super().__init__()
        cfg = GPTConfig(vocab_size, block_size, n_embd, n_head, n_layer, dropout, attention)
        check_allocation(
            cfg.memory_bytes(), f"a GPTLanguageModel of {cfg.parameter_count():,} parameters",
            f"vocab_size={cfg.vocab_size}, block_size={cfg.block_size}, n_embd={cfg.n_embd}, "
            f"n_head={cfg.n_head}, n_layer={cfg.n_layer}",
        )
        self.config = cfg
        self.token_embedding_table = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.position_embedding_table = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.Sequential(
            *[Block(cfg.n_embd, cfg.n_head, cfg.block_size, cfg.dropout, cfg.attention) for _ in range(cfg.n_layer)]
        )
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = Linear(cfg.n_embd, cfg.vocab_size)
        # forward checks idx once: the layers inside trust what their caller hands them.
        skip_input_checks(*(m for m in self.modules() if getattr(m, "checks_input", False)))
        # The lecture's Head keeps its causal mask in the state_dict ("...heads.M.tril");
        # these hooks write and read those entries, so that checkpoints go both ways.
        self.register_state_dict_post_hook(_add_lecture_masks)
        self.register_load_state_dict_pre_hook(_take_lecture_masks)

    @classmethod
    def from_config(cls, config: GPTConfig) -> GPTLanguageModel:
        """Build a model from a [`GPTConfig`][gptnotes.gpt.GPTConfig].

        Raises:
            TypeError: If ``config`` is not a [`GPTConfig`][gptnotes.gpt.GPTConfig].

        Examples:
            >>> import torch
            >>> from gptnotes import GPTConfig, GPTLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> model = GPTLanguageModel.from_config(GPTConfig(vocab_size=10, block_size=4, n_embd=8, n_head=2, n_layer=1))
            >>> model.config.n_embd
            8
        """
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        return cls(**asdict(config))

    def _check_idx(self, idx: object) -> torch.Tensor:
        if torch.compiler.is_compiling():  # inside gptnotes.compiled: train checked the data once
            return idx
        idx = check_token_ids(idx, self.config.vocab_size, "idx", ndim=2)
        if idx.shape[0] == 0:
            raise ValueError(f"idx must hold at least one sequence, got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(
                f"idx has T={T} tokens per sequence, more than block_size={self.config.block_size} "
                "(the position table has one row per position); crop it, e.g. idx[:, -block_size:]"
            )
        if T == 0:
            raise ValueError(f"idx must hold at least one token per sequence, got shape {tuple(idx.shape)}")
        return idx

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Return token embedding + position embedding, the input of the first block.

        The first lines of [`forward`][gptnotes.gpt.GPTLanguageModel.forward], on their own, for pictures of
        what the first block receives.

        Args:
            idx: ``(B, T)`` token ids, ``T <= block_size``.

        Shape:
            - idx: ``(B, T)``; output: ``(B, T, C)``.

        Returns:
            ``(B, T, C)``: ``token_embedding_table(idx) + position_embedding_table(arange(T))``,
            the ``(T, C)`` position part broadcast over the batch.

        Raises:
            TypeError: If ``idx`` is not an integer tensor.
            ValueError: If ``idx`` is not 2-D, empty, longer than ``block_size`` or holds ids
                outside the vocabulary.

        Examples:
            >>> import torch
            >>> from gptnotes import GPTLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)
            >>> x = model.embed(torch.tensor([[3, 3]]))       # the same token twice
            >>> bool(torch.equal(x[0, 0], x[0, 1]))            # differs by its position
            False
        """
        idx = self._check_idx(idx)
        T = idx.shape[1]
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        return tok_emb + pos_emb  # (B, T, C)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the next-token logits of every position, and the loss if targets are given.

        The inputs are checked here, once; the blocks inside do not check again.

        Args:
            idx: ``(B, T)`` token ids, ``1 <= T <= block_size``.
            targets: Optional ``(B, T)`` ids of the next tokens.

        Returns:
            ``(logits, loss)``: logits ``(B, T, V)``; loss the mean cross-entropy over the
            ``B * T`` positions, or ``None``.

        Examples:
            >>> import torch
            >>> from gptnotes import GPTLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)
            >>> logits, loss = model(torch.tensor([[0, 1, 2]]), targets=torch.tensor([[1, 2, 3]]))
            >>> tuple(logits.shape), tuple(loss.shape)
            ((1, 3, 5), ())
        """
        idx = self._check_idx(idx)
        if targets is not None and not torch.compiler.is_compiling():
            targets = check_targets(targets, idx, self.config.vocab_size)
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        x = tok_emb + pos_emb  # (B, T, C)
        x = self.blocks(x)  # (B, T, C)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T))
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue every row of ``idx`` by ``max_new_tokens`` sampled tokens.

        At each step the last ``block_size`` tokens (all of them while shorter) go through the
        model and the next token is *sampled* from the softmax of the last position's logits
        ([`gptnotes.sample_next_token`][gptnotes.sampling.sample_next_token]), not taken as the most likely one. Runs under
        ``torch.no_grad()`` and in the model's current mode: call ``model.eval()`` first if it
        has dropout.

        Args:
            idx: ``(B, T)`` token ids to continue; ``T`` may exceed ``block_size``.
            max_new_tokens: How many tokens to append, ``>= 0``.
            temperature: Divides the logits before the softmax.
            generator: Optional `torch.Generator` for reproducible samples.

        Shape:
            - idx: ``(B, T)``; output: ``(B, T + max_new_tokens)``.

        Returns:
            The extended sequences.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If ``idx`` is not 2-D, empty or outside the vocabulary,
                ``max_new_tokens`` is negative or ``temperature`` is not positive and finite.
        """
        idx = check_token_ids(idx, self.config.vocab_size, "idx", ndim=2)
        max_new_tokens = check_nonnegative_int(max_new_tokens, "max_new_tokens")
        temperature = check_positive_finite(temperature, "temperature")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if idx.shape[0] == 0 or idx.shape[1] == 0:
            raise ValueError(
                f"idx must hold at least one row of at least one token to continue from, got shape {tuple(idx.shape)}"
            )
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size:]  # (B, T'): the position table has block_size rows
            logits, _ = self(idx_cond)  # (B, T', V)
            next_id = sample_next_token(logits[:, -1, :], temperature, generator)  # (B, 1)
            idx = torch.cat((idx, next_id), dim=1)  # (B, T + 1)
        return idx

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Return the attention weights of every head of every block for ``idx``.

        Runs the model block by block and asks each attention layer for its weights, for
        pictures of what each position looks at. Call ``model.eval()`` first if the model has
        dropout.

        Args:
            idx: ``(B, T)`` token ids, ``T <= block_size``.

        Shape:
            - Output: ``(n_layer, B, n_head, T, T)``; each row sums to 1 and is zero above the
              diagonal.

        Examples:
            >>> import torch
            >>> from gptnotes import GPTLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=3)
            >>> tuple(model.attention_maps(torch.tensor([[0, 1, 2, 3]])).shape)
            (3, 1, 2, 4, 4)
        """
        x = self.embed(idx)  # (B, T, C)
        maps = []
        for block in self.blocks:
            _, wei = block.sa(block.ln1(x), return_weights=True)  # (B, nh, T, T)
            maps.append(wei)
            x = block(x)  # (B, T, C)
        return torch.stack(maps)  # (n_layer, B, nh, T, T)

    def to_fused(self) -> GPTLanguageModel:
        """Return a copy of this model that uses the fused attention, with the same weights.

        Every block's [`MultiHeadAttention`][gptnotes.attention.MultiHeadAttention] becomes a
        [`CausalSelfAttention`][gptnotes.attention.CausalSelfAttention] holding the same numbers; everything else is
        copied. The copy gives the same logits, loss and gradients (up to float rounding) and
        trains faster. A model that is already fused is simply copied.

        Examples:
            >>> import torch
            >>> from gptnotes import GPTLanguageModel
            >>> _ = torch.manual_seed(0)
            >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)
            >>> fast = model.to_fused()
            >>> fast.config.attention
            'fused'
            >>> idx = torch.tensor([[0, 1, 2, 3]])
            >>> torch.allclose(fast(idx)[0], model(idx)[0], atol=1e-5)
            True
        """
        fused = copy.deepcopy(self)
        fused.config = GPTConfig(**{**asdict(self.config), "attention": "fused"})
        for block in fused.blocks:
            if isinstance(block.sa, MultiHeadAttention):
                block.sa = CausalSelfAttention.from_multi_head(block.sa)
        return fused
