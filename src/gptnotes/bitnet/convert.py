"""Converting a model: its Linear layers into BitLinear for training, its BitLinear layers into integer layers for inference.

The page *Training a BitNet GPT*:
[`replace_linear_with_bitlinear`][gptnotes.bitnet.convert.replace_linear_with_bitlinear]
before training (applied to ``model.blocks`` of a GPT), and
[`freeze_bitlinear_layers`][gptnotes.bitnet.convert.freeze_bitlinear_layers] after it. Both
change the model in place and return the dotted names of the layers they replaced.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from gptnotes.bitnet.layers import BitLinear, is_plain_linear

__all__ = ["replace_linear_with_bitlinear", "freeze_bitlinear_layers"]


def replace_linear_with_bitlinear(module: nn.Module, exclude: Iterable[str] = ("lm_head",)) -> list[str]:
    """Replace, in place, every ``Linear`` / ``nn.Linear`` inside ``module`` by a BitLinear.

    Each new [`BitLinear`][gptnotes.bitnet.layers.BitLinear] has the same shape and a copy of the old weight as its
    master weights. Biases are dropped: BitNet b1.58 has none (the paper removes all
    biases, like LLaMA), and BitLinear's fixed signature has no ``bias``. The replacement is
    meant to be followed by training (BitNet is quantisation-aware training, not a
    conversion of a trained model: quantising a trained float model's weights without
    training changes its outputs a lot). In a GPT, apply it to ``model.blocks``: the token
    and position embeddings and the output head ``lm_head`` stay full precision, as in the
    paper; any submodule whose name, or last name component, is in ``exclude`` is left
    alone too.

    Args:
        module: The model or submodule to change (not itself a Linear: for one layer use
            [`BitLinear.from_linear`][gptnotes.bitnet.layers.BitLinear.from_linear]).
        exclude: Names of submodules to keep, full dotted names or last components.

    Returns:
        The dotted names of the replaced layers, in module order.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module``, is itself a Linear, or
            ``exclude`` is a single string.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from gptnotes import Linear
        >>> from gptnotes.bitnet import BitLinear, replace_linear_with_bitlinear
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), Linear(16, 8))
        >>> replace_linear_with_bitlinear(net)
        ['0', '2']
        >>> [type(m).__name__ for m in net]
        ['BitLinear', 'ReLU', 'BitLinear']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if is_plain_linear(module):
        raise TypeError("module must contain Linear layers, not be one; use BitLinear.from_linear(layer)")
    if isinstance(exclude, (str, bytes)):
        raise TypeError("exclude must be a collection of names, e.g. ('lm_head',), not a single string")
    skip = set(exclude)
    replaced: list[str] = []
    for name, child in list(module.named_modules()):
        if not name or not is_plain_linear(child):
            continue
        if name in skip or name.rsplit(".", 1)[-1] in skip:
            continue
        parent_name = name.rpartition(".")[0]
        if any(part in skip for part in parent_name.split(".") if part):
            continue
        _swap(module, name, BitLinear.from_linear(child))
        replaced.append(name)
    return replaced


def freeze_bitlinear_layers(module: nn.Module) -> list[str]:
    """Replace, in place, every [`BitLinear`][gptnotes.bitnet.layers.BitLinear] inside ``module`` by its integer layer.

    Each BitLinear becomes what its [`quantize`][gptnotes.bitnet.layers.BitLinear.quantize]
    returns: a [`BitLinearInference`][gptnotes.bitnet.inference.BitLinearInference] with the
    ternary weights as ``int8``, one scale, and ``int8 x int8 -> int32`` products. The model
    then computes the same outputs as before, bit for bit, and can no longer be trained (the
    new layers have no master weights). Everything else is left as it is; the old layers are
    gone, so freeze a copy (``copy.deepcopy(model)``) to keep training the original.

    Args:
        module: The model or submodule to change (not itself a BitLinear: for one layer use
            ``layer.quantize()``).

    Returns:
        The dotted names of the replaced layers, in module order.

    Raises:
        TypeError: If ``module`` is not an ``nn.Module``, or is itself a BitLinear.
        ValueError: If the master weights of a BitLinear hold NaN or infinity.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from gptnotes.bitnet import freeze_bitlinear_layers, replace_linear_with_bitlinear
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        >>> replace_linear_with_bitlinear(net)
        ['0', '2']
        >>> x = torch.randn(3, 8)
        >>> before = net(x)
        >>> freeze_bitlinear_layers(net)
        ['0', '2']
        >>> [type(m).__name__ for m in net]
        ['BitLinearInference', 'ReLU', 'BitLinearInference']
        >>> torch.equal(net(x), before)
        True
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, BitLinear):
        raise TypeError("module must contain BitLinear layers, not be one; use layer.quantize()")
    frozen: list[str] = []
    for name, child in list(module.named_modules()):
        if name and isinstance(child, BitLinear):
            _swap(module, name, child.quantize())
            frozen.append(name)
    return frozen


def _swap(module: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in place of the submodule ``name`` (dotted) of ``module``."""
    parent_name, _, attr = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, attr, new)
