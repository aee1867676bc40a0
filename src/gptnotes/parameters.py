"""Look inside a ``torch.nn.Module``: its parameters, their names, shapes and counts.

A model built from `torch.nn.Module` knows its own structure: every ``nn.Parameter``
assigned as an attribute (directly, or inside a sub-module) is *registered*, and
`torch.nn.Module.named_parameters` walks them all with dotted names such as
``blocks.0.sa.heads.0.key.weight``. The helpers here turn that walk into numbers and a
printable table:

- [`count_parameters`][gptnotes.parameters.count_parameters] — the lecture's
  ``sum(p.numel() for p in m.parameters())``.
- [`parameter_table`][gptnotes.parameters.parameter_table] — one ``(name, shape, numel)`` row per
  parameter.
- [`format_parameter_table`][gptnotes.parameters.format_parameter_table] — the same rows as text,
  with a total line that gives the count in millions exactly as the lecture prints it
  (``0.208193 M parameters``).
- [`parameter_counts_by_module`][gptnotes.parameters.parameter_counts_by_module] — the counts
  grouped by sub-module, to answer "how many weights does each layer have?".

A parameter shared by two sub-modules (weight tying) is one tensor: it is listed and
counted once, as `torch.nn.Module.parameters` does.

The module is named for what it reads, a module's parameters (it was ``gptnotes.inspect``, a
name it shared with the standard library's `inspect`).
"""

from __future__ import annotations

from torch import nn

from gptnotes._checks import check_positive_int

__all__ = [
    "count_parameters",
    "parameter_table",
    "format_parameter_table",
    "format_millions",
    "parameter_counts_by_module",
]


def _check_module(module: object) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Count the numbers a model learns: the elements of all its parameters.

    The same number as ``sum(p.numel() for p in module.parameters())``: every parameter
    tensor contributes the product of its dimensions (a ``(65, 64)`` weight counts
    4,160), and a tensor shared by two sub-modules counts once. Buffers (such as a
    causal mask registered with ``register_buffer``, or the running statistics of a
    batch norm) are not parameters and are not counted.

    Args:
        module: Any `torch.nn.Module`.
        trainable_only: If ``True``, count only parameters with ``requires_grad=True``
            (the ones an optimiser updates).

    Returns:
        The number of scalar parameters.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module`` or ``trainable_only`` is not a bool.

    Examples:
        >>> from torch import nn
        >>> from gptnotes import count_parameters
        >>> layer = nn.Linear(10, 5)          # weight (5, 10) + bias (5,)
        >>> count_parameters(layer)
        55
        >>> _ = layer.bias.requires_grad_(False)
        >>> count_parameters(layer, trainable_only=True)
        50
    """
    _check_module(module)
    if not isinstance(trainable_only, bool):
        raise TypeError(f"trainable_only must be True or False, got {type(trainable_only).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_table(module: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """List every parameter as ``(name, shape, numel)``, in registration order.

    The rows of `torch.nn.Module.named_parameters`, with the shape as a plain
    tuple of ints (stable across PyTorch versions, unlike a printed ``torch.Size``).
    The name is the dotted path of attributes that leads to the tensor, e.g.
    ``blocks.0.ffwd.net.0.weight``: ``blocks`` is a list of blocks, ``0`` the first one,
    ``net.0`` the first layer of its ``nn.Sequential``. A tied parameter appears once,
    under the first name that reaches it.

    Args:
        module: Any `torch.nn.Module`.

    Returns:
        A list of ``(name, shape, numel)`` tuples.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module``.

    Examples:
        >>> from torch import nn
        >>> from gptnotes import parameter_table
        >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> for row in parameter_table(mlp):
        ...     print(row)
        ('0.weight', (8, 4), 32)
        ('0.bias', (8,), 8)
        ('2.weight', (2, 8), 16)
        ('2.bias', (2,), 2)
    """
    _check_module(module)
    return [(name, tuple(int(d) for d in p.shape), p.numel()) for name, p in module.named_parameters()]


def format_millions(n: int) -> str:
    """Write a parameter count in millions, as the lecture's ``n / 1e6`` prints it.

    The decimal is exact (integer arithmetic, no float rounding), with trailing zeros
    removed but at least one digit after the point: ``208193 -> '0.208193'``,
    ``1_000_000 -> '1.0'``, ``3 -> '0.000003'`` (where ``print(3 / 1e6)`` would show
    ``3e-06``).

    Args:
        n: A non-negative integer.

    Returns:
        The count in millions, as a string.

    Raises:
        TypeError: If ``n`` is not an int.
        ValueError: If ``n`` is negative.

    Examples:
        >>> from gptnotes import format_millions
        >>> format_millions(208_193)
        '0.208193'
        >>> format_millions(10_745_000)
        '10.745'
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be a non-negative int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be a non-negative int, got {n}")
    whole, frac = divmod(n, 1_000_000)
    digits = f"{frac:06d}".rstrip("0") or "0"
    return f"{whole}.{digits}"


def format_parameter_table(module: nn.Module) -> str:
    """Return a printable table of the parameters and a total line.

    One line per parameter: its name, its shape written as a list (``[65, 64]``, the
    same on every PyTorch version) and its number of elements; then a line with the
    total, also in millions as the lecture prints it.

    Args:
        module: Any `torch.nn.Module`.

    Returns:
        The table, lines joined with ``"\\n"`` (no trailing newline).

    Raises:
        TypeError: If ``module`` is not an ``nn.Module``.

    Examples:
        >>> from torch import nn
        >>> from gptnotes import format_parameter_table
        >>> model = nn.Sequential(nn.Embedding(65, 64), nn.Linear(64, 65))
        >>> print(format_parameter_table(model))
        0.weight  [65, 64]  4,160
        1.weight  [65, 64]  4,160
        1.bias    [65]         65
        total: 8,385 parameters (0.008385 M parameters)
    """
    rows = parameter_table(module)
    total = count_parameters(module)
    footer = f"total: {total:,} parameters ({format_millions(total)} M parameters)"
    if not rows:
        return footer
    names = [name for name, _, _ in rows]
    shapes = [f"[{', '.join(str(d) for d in shape)}]" for _, shape, _ in rows]
    counts = [f"{numel:,}" for _, _, numel in rows]
    wn, ws, wc = (max(len(s) for s in col) for col in (names, shapes, counts))
    lines = [f"{n:<{wn}}  {s:<{ws}}  {c:>{wc}}" for n, s, c in zip(names, shapes, counts)]
    return "\n".join([*lines, footer])


def parameter_counts_by_module(module: nn.Module, depth: int = 1) -> dict[str, int]:
    """Group the parameter count by the first ``depth`` parts of each parameter's name.

    With ``depth=1`` a GPT splits into ``token_embedding_table``, ``position_embedding_table``,
    ``blocks``, ``ln_f`` and ``lm_head``; with ``depth=2`` the blocks split into
    ``blocks.0``, ``blocks.1``, ... A parameter registered directly on ``module`` (a name
    with fewer parts than ``depth``) is grouped under its own name. The values add up to
    [`count_parameters`][gptnotes.parameters.count_parameters].

    Args:
        module: Any `torch.nn.Module`.
        depth: How many dot-separated parts of a name form the group, a positive int.

    Returns:
        A dict from group name to parameter count, in registration order.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module`` or ``depth`` not an int.
        ValueError: If ``depth`` is not positive.

    Examples:
        >>> from torch import nn
        >>> from gptnotes import parameter_counts_by_module
        >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> parameter_counts_by_module(mlp)
        {'0': 40, '2': 18}
    """
    rows = parameter_table(module)
    depth = check_positive_int(depth, "depth")
    groups: dict[str, int] = {}
    for name, _, numel in rows:
        key = ".".join(name.split(".")[:depth])
        groups[key] = groups.get(key, 0) + numel
    return groups
