"""Storage: ternary weights packed five to a byte (1.6 bits) or four to a byte (2 bits).

The page *BitLinear*, "Storage: 1.6 bits per weight":
[`pack_ternary`][gptnotes.bitnet.packing.pack_ternary] /
[`unpack_ternary`][gptnotes.bitnet.packing.unpack_ternary] write five weights as the digits of
one base-3 number (3⁵ = 243 ≤ 256);
[`pack_ternary_2bit`][gptnotes.bitnet.packing.pack_ternary_2bit] /
[`unpack_ternary_2bit`][gptnotes.bitnet.packing.unpack_ternary_2bit] give each weight two bits;
[`weight_memory_report`][gptnotes.bitnet.packing.weight_memory_report] measures the bytes of
a weight matrix in each format, from tensors actually built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from gptnotes._checks import check_float_tensor, check_tensor
from gptnotes.bitnet.quant import weight_quant

__all__ = ["pack_ternary", "unpack_ternary", "pack_ternary_2bit", "unpack_ternary_2bit", "weight_memory_report"]

_TRITS_PER_BYTE = 5  # 3**5 = 243 <= 256
_POW3 = (1, 3, 9, 27, 81)
_MAX_TRIT_BYTE = 3**_TRITS_PER_BYTE - 1  # 242
_CRUMBS_PER_BYTE = 4  # 2 bits each


def _ternary_codes(weights: object) -> torch.Tensor:
    """Check ``weights`` and return them flat as ``int64`` codes 0, 1, 2 (weight + 1).

    A NaN or an infinity is one of the values other than -1, 0 and 1, and refused as such.
    """
    check_tensor(weights, "weights")
    if weights.dtype == torch.bool or weights.is_complex():
        raise TypeError(f"weights must be an integer or floating-point tensor, got dtype {weights.dtype}")
    flat = weights.detach().flatten()
    if flat.numel() and bool(((flat != -1) & (flat != 0) & (flat != 1)).any()):
        bad = flat[(flat != -1) & (flat != 0) & (flat != 1)][0].item()
        raise ValueError(f"weights must hold only -1, 0 and 1, found {bad!r}")
    return flat.to(torch.int64) + 1


def _check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, torch.Size):
        return tuple(int(s) for s in shape)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise TypeError(f"shape must be a tuple of non-negative integers, got {type(shape).__name__}")
    dims = tuple(shape)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"shape must be a tuple of non-negative integers, got {dims!r}")
        if d < 0:
            raise ValueError(f"shape must be a tuple of non-negative integers, got {dims!r}")
    return dims


def _check_packed(packed: object, expected_len: int, per_byte: int, shape: tuple[int, ...]) -> torch.Tensor:
    check_tensor(packed, "packed")
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 tensor, got dtype {packed.dtype}")
    if packed.dim() != 1:
        raise ValueError(f"packed must be 1-D, got shape {tuple(packed.shape)}")
    if packed.numel() != expected_len:
        raise ValueError(
            f"packed must hold {expected_len} bytes for shape {shape} ({per_byte} weights per byte), "
            f"got {packed.numel()}"
        )
    return packed


def pack_ternary(weights: torch.Tensor) -> torch.Tensor:
    r"""Pack ternary weights five to a byte: 1.6 bits per weight.

    Five weights \(w_0 \dots w_4 \in \{-1, 0, 1\}\) become the digits
    \(d_i = w_i + 1 \in \{0, 1, 2\}\) of one base-3 number
    \(d_0 + 3 d_1 + 9 d_2 + 27 d_3 + 81 d_4 \le 242\), which fits a byte because
    \(3^5 = 243 \le 256\). The weights are read in row-major order; the last byte is
    padded with weights 0. 8 / 5 = 1.6 bits per weight, 0.95 % above the
    \(\log_2 3 \approx 1.585\) of an ideal code for equally likely values.

    Args:
        weights: Tensor of any shape (integer, or float holding only -1.0, 0.0, 1.0).

    Shape:
        - weights: any shape, ``n`` elements; output: ``(ceil(n / 5),)``.

    Returns:
        A 1-D ``uint8`` tensor of ``ceil(weights.numel() / 5)`` bytes.

    Raises:
        TypeError: If ``weights`` is not an integer or floating-point tensor.
        ValueError: If ``weights`` holds a value other than -1, 0, 1 (or NaN).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import pack_ternary, unpack_ternary
        >>> w = torch.tensor([[1, 0, -1], [-1, 1, 1]], dtype=torch.int8)
        >>> packed = pack_ternary(w)
        >>> packed.tolist(), packed.dtype
        ([167, 122], torch.uint8)
        >>> torch.equal(unpack_ternary(packed, (2, 3)), w)
        True
    """
    return _pack_base3(_ternary_codes(weights))


def _pack_base3(codes: torch.Tensor) -> torch.Tensor:
    """[`pack_ternary`][gptnotes.bitnet.packing.pack_ternary] of flat codes 0, 1, 2, unchecked."""
    n = codes.numel()
    n_bytes = -(-n // _TRITS_PER_BYTE)
    padded = torch.ones(n_bytes * _TRITS_PER_BYTE, dtype=torch.int64, device=codes.device)  # pad: weight 0
    padded[:n] = codes
    powers = torch.tensor(_POW3, dtype=torch.int64, device=codes.device)
    return (padded.view(n_bytes, _TRITS_PER_BYTE) * powers).sum(dim=1).to(torch.uint8)


def unpack_ternary(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Unpack [`pack_ternary`][gptnotes.bitnet.packing.pack_ternary]'s bytes into an ``int8`` tensor of -1, 0, 1.

    Args:
        packed: 1-D ``uint8`` tensor of exactly ``ceil(prod(shape) / 5)`` bytes.
        shape: The shape of the weights, a tuple (or ``torch.Size``) of non-negative ints.

    Shape:
        - packed: ``(ceil(n / 5),)`` with ``n = prod(shape)``; output: ``shape``.

    Returns:
        An ``int8`` tensor of shape ``shape``.

    Raises:
        TypeError: If ``packed`` is not a ``uint8`` tensor or ``shape`` not a tuple of ints.
        ValueError: If ``packed`` is not 1-D, has the wrong length for ``shape``, or holds a
            byte that [`pack_ternary`][gptnotes.bitnet.packing.pack_ternary] cannot produce (above 242, or non-zero padding).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import unpack_ternary
        >>> unpack_ternary(torch.tensor([167, 122], dtype=torch.uint8), (2, 3)).tolist()
        [[1, 0, -1], [-1, 1, 1]]
    """
    dims = _check_shape(shape)
    n = math.prod(dims)
    n_bytes = -(-n // _TRITS_PER_BYTE)
    _check_packed(packed, n_bytes, _TRITS_PER_BYTE, dims)
    values = packed.to(torch.int64)
    if n_bytes and int(values.max()) > _MAX_TRIT_BYTE:
        raise ValueError(f"packed holds byte {int(values.max())}; pack_ternary writes at most {_MAX_TRIT_BYTE}")
    powers = torch.tensor(_POW3, dtype=torch.int64, device=packed.device)
    digits = (values.unsqueeze(1) // powers) % 3  # (n_bytes, 5)
    flat = digits.flatten()
    if bool((flat[n:] != 1).any()):
        raise ValueError("packed has non-zero padding after the last weight; it was not written by pack_ternary")
    return (flat[:n] - 1).to(torch.int8).reshape(dims)


def pack_ternary_2bit(weights: torch.Tensor) -> torch.Tensor:
    """Pack ternary weights four to a byte, two bits each: 2 bits per weight.

    Simpler and faster to decode than [`pack_ternary`][gptnotes.bitnet.packing.pack_ternary] (shifts and masks instead of
    divisions), at 25 % more memory; a common layout for ternary weights (Hugging Face's
    BitNet integration packs four values per ``uint8``). Weight ``w`` becomes the 2-bit code
    ``w + 1``; weight ``i`` of a group of four sits at bits ``2i, 2i + 1``. The code 3 is unused.

    Args:
        weights: Tensor of any shape (integer, or float holding only -1.0, 0.0, 1.0).

    Shape:
        - weights: any shape, ``n`` elements; output: ``(ceil(n / 4),)``.

    Returns:
        A 1-D ``uint8`` tensor of ``ceil(weights.numel() / 4)`` bytes.

    Raises:
        TypeError: If ``weights`` is not an integer or floating-point tensor.
        ValueError: If ``weights`` holds a value other than -1, 0, 1 (or NaN).

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import pack_ternary_2bit
        >>> pack_ternary_2bit(torch.tensor([1, 0, -1, 1, 0])).tolist()
        [134, 85]
    """
    return _pack_2bit(_ternary_codes(weights))


def _pack_2bit(codes: torch.Tensor) -> torch.Tensor:
    """[`pack_ternary_2bit`][gptnotes.bitnet.packing.pack_ternary_2bit] of flat codes 0, 1, 2, unchecked."""
    n = codes.numel()
    n_bytes = -(-n // _CRUMBS_PER_BYTE)
    padded = torch.ones(n_bytes * _CRUMBS_PER_BYTE, dtype=torch.int64, device=codes.device)  # pad: weight 0
    padded[:n] = codes
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.int64, device=codes.device)
    return (padded.view(n_bytes, _CRUMBS_PER_BYTE) << shifts).sum(dim=1).to(torch.uint8)


def unpack_ternary_2bit(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Unpack [`pack_ternary_2bit`][gptnotes.bitnet.packing.pack_ternary_2bit]'s bytes into an ``int8`` tensor of -1, 0, 1.

    Args:
        packed: 1-D ``uint8`` tensor of exactly ``ceil(prod(shape) / 4)`` bytes.
        shape: The shape of the weights.

    Shape:
        - packed: ``(ceil(n / 4),)`` with ``n = prod(shape)``; output: ``shape``.

    Returns:
        An ``int8`` tensor of shape ``shape``.

    Raises:
        TypeError: If ``packed`` is not a ``uint8`` tensor or ``shape`` not a tuple of ints.
        ValueError: If ``packed`` has the wrong length or holds the unused code 3.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import unpack_ternary_2bit
        >>> unpack_ternary_2bit(torch.tensor([134, 85], dtype=torch.uint8), (5,)).tolist()
        [1, 0, -1, 1, 0]
    """
    dims = _check_shape(shape)
    n = math.prod(dims)
    n_bytes = -(-n // _CRUMBS_PER_BYTE)
    _check_packed(packed, n_bytes, _CRUMBS_PER_BYTE, dims)
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.int64, device=packed.device)
    codes = ((packed.to(torch.int64).unsqueeze(1) >> shifts) & 3).flatten()
    if bool((codes == 3).any()):
        raise ValueError("packed holds the 2-bit code 3, which pack_ternary_2bit never writes")
    if bool((codes[n:] != 1).any()):
        raise ValueError("packed has non-zero padding after the last weight; it was not written by pack_ternary_2bit")
    return (codes[:n] - 1).to(torch.int8).reshape(dims)


def weight_memory_report(layer: nn.Module | torch.Tensor) -> dict[str, int]:
    """Measure the bytes a weight matrix takes in five formats, from real tensors.

    Each number is the ``nbytes`` of a tensor actually built: the weight cast to float32
    and float16, the ternary codes as ``int8`` (one byte per weight, what the integer matmul
    reads), packed four per byte ([`pack_ternary_2bit`][gptnotes.bitnet.packing.pack_ternary_2bit]) and five per byte
    ([`pack_ternary`][gptnotes.bitnet.packing.pack_ternary]). The three ternary formats add the ``nbytes`` of the float32
    scale ``gamma`` (4 bytes). Biases and norm gains are not counted.

    Args:
        layer: A module with a 2-D float ``weight`` (``Linear``, ``nn.Linear``,
            ``BitLinear``) or a float weight tensor.

    Shape:
        - the weight: ``(C_out, C_in)``; output: a dict of byte counts.

    Returns:
        ``{"fp32": ..., "fp16": ..., "int8": ..., "2-bit": ..., "1.6-bit": ...}`` in bytes.

    Raises:
        TypeError: If ``layer`` has no floating-point ``weight``.
        ValueError: If the weight is not 2-D, is empty or is not finite.

    Examples:
        >>> import torch
        >>> from gptnotes.bitnet import weight_memory_report
        >>> weight_memory_report(torch.nn.Linear(64, 64))
        {'fp32': 16384, 'fp16': 8192, 'int8': 4100, '2-bit': 1028, '1.6-bit': 824}
    """
    if isinstance(layer, torch.Tensor):
        weight = layer
    else:
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"layer must be a tensor or a module with a weight tensor, got {type(layer).__name__}")
    check_float_tensor(weight, "layer.weight", ndim=2)
    weight = weight.detach()
    ternary, gamma = weight_quant(weight)  # checks that the weight is non-empty and finite
    codes = ternary.flatten().to(torch.int64) + 1  # 0, 1, 2: valid by construction
    gamma32 = gamma.to(torch.float32)
    return {
        "fp32": weight.to(torch.float32).nbytes,
        "fp16": weight.to(torch.float16).nbytes,
        "int8": ternary.nbytes + gamma32.nbytes,
        "2-bit": _pack_2bit(codes).nbytes + gamma32.nbytes,
        "1.6-bit": _pack_base3(codes).nbytes + gamma32.nbytes,
    }
