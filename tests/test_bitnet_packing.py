"""Tests of gptnotes.bitnet.packing: 1.6-bit and 2-bit packing, and the memory report."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes.bitnet.layers import BitLinear
from gptnotes.bitnet.packing import (
    pack_ternary,
    pack_ternary_2bit,
    unpack_ternary,
    unpack_ternary_2bit,
    weight_memory_report,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


shapes = st.lists(st.integers(0, 7), min_size=0, max_size=4)


@given(shape=shapes, seed=st.integers(0, 10_000))
@settings(max_examples=50, deadline=None)
def test_pack_unpack_round_trip_any_shape(shape, seed):
    w = torch.randint(-1, 2, tuple(shape), dtype=torch.int8, generator=_gen(seed))
    n = w.numel()
    packed = pack_ternary(w)
    assert packed.dtype == torch.uint8 and packed.shape == (math.ceil(n / 5),)
    assert torch.equal(unpack_ternary(packed, tuple(shape)), w)
    packed2 = pack_ternary_2bit(w)
    assert packed2.dtype == torch.uint8 and packed2.shape == (math.ceil(n / 4),)
    assert torch.equal(unpack_ternary_2bit(packed2, torch.Size(shape)), w)


def test_pack_accepts_float_and_wide_integer_ternary():
    w = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -0.0]])
    expected = w.to(torch.int8)
    assert torch.equal(unpack_ternary(pack_ternary(w), (2, 3)), expected)
    assert torch.equal(unpack_ternary(pack_ternary(w.long()), (2, 3)), expected)
    assert torch.equal(unpack_ternary_2bit(pack_ternary_2bit(w.double()), (2, 3)), expected)


def test_every_byte_up_to_242_is_a_code():
    # base 3 with 5 digits is a bijection between 0..242 and the 243 groups of 5 trits
    all_bytes = torch.arange(243, dtype=torch.uint8)
    trits = unpack_ternary(all_bytes, (243 * 5,))
    assert torch.equal(pack_ternary(trits), all_bytes)
    assert len({tuple(row) for row in trits.view(243, 5).tolist()}) == 243


def test_packed_bits_per_weight():
    w = torch.randint(-1, 2, (100_000,), dtype=torch.int8, generator=_gen(11))
    bits = pack_ternary(w).nbytes * 8 / w.numel()
    assert 1.6 <= bits <= 1.6001
    assert pack_ternary_2bit(w).nbytes * 8 / w.numel() == 2.0
    assert math.log2(3) < bits < 1.01 * math.log2(3)
    # an odd size pays for at most one padded byte
    w = torch.zeros(100_003, dtype=torch.int8)
    assert pack_ternary(w).nbytes == 20_001


@pytest.mark.parametrize("pack", [pack_ternary, pack_ternary_2bit])
def test_pack_errors(pack):
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="weights"):
        pack(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="weights"):
        pack(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="weights"):
        pack([1, 0, -1])


@pytest.mark.parametrize(("unpack", "per_byte"), [(unpack_ternary, 5), (unpack_ternary_2bit, 4)])
def test_unpack_errors(unpack, per_byte):
    good = torch.zeros(2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="packed"):
        unpack(good, (3 * per_byte,))  # needs 3 bytes
    with pytest.raises(ValueError, match="packed"):
        unpack(torch.zeros(1, 2, dtype=torch.uint8), (2,))
    with pytest.raises(TypeError, match="packed"):
        unpack(torch.zeros(2, dtype=torch.int16), (2 * per_byte,))
    with pytest.raises(TypeError, match="packed"):
        unpack([0, 0], (2 * per_byte,))
    with pytest.raises(ValueError, match="shape"):
        unpack(good, (-1, 5))
    with pytest.raises(TypeError, match="shape"):
        unpack(good, "ab")
    with pytest.raises(TypeError, match="shape"):
        unpack(good, (2.0, 5))


def test_unpack_rejects_bytes_the_packers_never_write():
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary(torch.tensor([243], dtype=torch.uint8), (5,))
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary(torch.tensor([0], dtype=torch.uint8), (3,))  # padding digits must mean weight 0
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary_2bit(torch.tensor([0b11], dtype=torch.uint8), (4,))
    with pytest.raises(ValueError, match="packed"):
        unpack_ternary_2bit(torch.tensor([0], dtype=torch.uint8), (2,))


def test_weight_memory_report_matches_the_byte_counts():
    for c_out, c_in in [(64, 64), (256, 1024), (3, 7)]:
        n = c_out * c_in
        report = weight_memory_report(nn.Linear(c_in, c_out))
        assert report == {
            "fp32": 4 * n,
            "fp16": 2 * n,
            "int8": n + 4,
            "2-bit": math.ceil(n / 4) + 4,
            "1.6-bit": math.ceil(n / 5) + 4,
        }
    assert weight_memory_report(BitLinear(1024, 1024)) == weight_memory_report(torch.zeros(1024, 1024))
    with pytest.raises(TypeError, match="layer"):
        weight_memory_report(nn.ReLU())
    with pytest.raises(TypeError, match="layer"):
        weight_memory_report(torch.zeros(3, 3, dtype=torch.int8))
    with pytest.raises(ValueError, match="2-D"):
        weight_memory_report(torch.randn(5))
