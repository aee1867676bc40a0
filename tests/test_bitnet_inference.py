"""Tests of gptnotes.bitnet.inference: int8_matmul and BitLinearInference, equal bit for bit to BitLinear."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptnotes.bitnet.inference import INT8_MATMUL_MAX_K, BitLinearInference, _int8_matmul_int32, int8_matmul
from gptnotes.bitnet.layers import BitLinear
from gptnotes.bitnet.packing import pack_ternary
from gptnotes.bitnet.quant import activation_fake_quant, activation_quant, weight_fake_quant, weight_quant

U32 = 2.0**-24  # unit roundoff of float32
HYP = settings(max_examples=30, deadline=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@given(
    seed=st.integers(0, 10_000),
    lead=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    c_in=st.integers(1, 48),
    c_out=st.integers(1, 16),
)
@HYP
def test_integer_path_equals_the_training_forward_bit_for_bit(seed, lead, c_in, c_out):
    torch.manual_seed(seed)
    layer = BitLinear(c_in, c_out)
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
    layer.eval()
    frozen = layer.quantize()
    x = torch.randn(*lead, c_in)
    with torch.no_grad():
        y_sim, y_int = layer(x), frozen(x)
    assert y_int.shape == y_sim.shape == (*lead, c_out)
    assert torch.equal(y_int, y_sim)
    # both are the exact integer product followed by two float32 roundings
    codes, s = activation_quant(layer.norm(x))
    ternary, gamma = weight_quant(layer.weight)
    exact = (codes.double() @ ternary.double().T) * gamma.double() / s.double()
    assert bool(((y_int.double() - exact).abs() <= 2.01 * U32 * exact.abs()).all())


@given(seed=st.integers(0, 10_000), c_in=st.integers(1, 64), c_out=st.integers(1, 16))
@HYP
def test_dequantised_product_agrees_to_float_rounding(seed, c_in, c_out):
    # Microsoft's order, F.linear(codes / s, gamma * ternary), sums rounded float32 terms:
    # it differs from the exact product by at most about (c_in + 2) u sum |terms|.
    torch.manual_seed(seed)
    layer = BitLinear(c_in, c_out)
    x = torch.randn(5, c_in)
    with torch.no_grad():
        x_n = layer.norm(x)
        y = layer(x)
        y_ms = F.linear(activation_fake_quant(x_n), weight_fake_quant(layer.weight))
    codes, s = activation_quant(x_n)
    ternary, gamma = weight_quant(layer.weight)
    terms = (codes.double().abs() / s.double()) @ ternary.double().abs().T * gamma.double()
    assert bool(((y_ms.double() - y.double()).abs() <= (c_in + 4) * U32 * terms).all())


def test_stacked_layers_integer_path_equals_training_forward():
    torch.manual_seed(1)
    net = nn.Sequential(BitLinear(96, 128), nn.GELU(), BitLinear(128, 128), nn.GELU(), BitLinear(128, 32)).eval()
    frozen = nn.Sequential(*(m.quantize() if isinstance(m, BitLinear) else m for m in net))
    x = torch.randn(64, 96)
    with torch.no_grad():
        assert torch.equal(net(x), frozen(x))
        wide = BitLinear(8192, 4).eval()  # sums up to 128 * 8192 = 2**20, still exact in float32
        x = torch.randn(3, 8192)
        assert torch.equal(wide(x), wide.quantize()(x))


def test_int8_matmul_is_exact_and_matches_the_fallback():
    g = _gen(10)
    for m, k, n in [(1, 1, 1), (5, 17, 3), (64, 256, 32), (0, 4, 3), (3, 0, 2)]:
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g)
        b = torch.randint(-1, 2, (k, n), dtype=torch.int8, generator=g)
        out = int8_matmul(a, b)
        assert out.dtype == torch.int32 and out.shape == (m, n)
        assert torch.equal(out.long(), a.long() @ b.long())
        assert torch.equal(out, _int8_matmul_int32(a, b))
        # floats hold these sums exactly (|sum| <= 128 k < 2**24): a float matmul agrees
        assert torch.equal(out.float(), a.float() @ b.float())
    # a transposed (non-contiguous) operand, as in BitLinearInference
    w = torch.randint(-1, 2, (8, 16), dtype=torch.int8, generator=g)
    a = torch.randint(-128, 128, (4, 16), dtype=torch.int8, generator=g)
    assert torch.equal(int8_matmul(a, w.t()).long(), a.long() @ w.long().T)


def test_int8_matmul_survives_size_one_dims_with_odd_strides():
    # w.t() for a (C_out, 1) weight has shape (1, C_out) and strides (1, 1); torch._int_mm on
    # the CPU mishandles such layouts, int8_matmul copies them to a plain layout first.
    g = _gen(12)
    for _ in range(5):
        a = torch.randint(-128, 128, (1, 1), dtype=torch.int8, generator=g)
        w = torch.randint(-1, 2, (6, 1), dtype=torch.int8, generator=g)
        assert w.t().stride() == (1, 1)
        assert torch.equal(int8_matmul(a, w.t()).long(), a.long() @ w.long().T)
        row = torch.randint(-128, 128, (3, 1), dtype=torch.int8, generator=g).t()  # (1, 3), strides (1, 1)
        b = torch.randint(-1, 2, (3, 2), dtype=torch.int8, generator=g)
        assert torch.equal(int8_matmul(row, b).long(), row.long() @ b.long())


def test_int8_matmul_errors():
    with pytest.raises(TypeError, match="a"):
        int8_matmul(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(TypeError, match="b"):
        int8_matmul(torch.ones(2, 2, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="a"):
        int8_matmul(torch.ones(2, 3, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(ValueError, match="a"):
        int8_matmul(torch.ones(2, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int8))


def test_int8_matmul_refuses_a_k_where_int32_would_wrap():
    k = INT8_MATMUL_MAX_K + 1  # 131072: 16384 * K = 2**31
    a = torch.full((1, k), -128, dtype=torch.int8)
    b = torch.full((k, 1), -128, dtype=torch.int8)
    with pytest.raises(ValueError, match="K=131072: .* exact in int32 only for K <= 131071"):
        int8_matmul(a, b)  # returned -2147483648 (wrapped)
    ok = int8_matmul(a[:, :INT8_MATMUL_MAX_K], b[:INT8_MATMUL_MAX_K])
    assert ok.item() == 16384 * INT8_MATMUL_MAX_K


def test_bitlinear_inference_buffers_and_packed_round_trip():
    torch.manual_seed(0)
    layer = BitLinear(37, 11)
    frozen = layer.quantize()
    ternary, gamma = weight_quant(layer.weight)
    assert frozen.ternary.dtype == torch.int8 and torch.equal(frozen.ternary, ternary)
    assert float(frozen.scale) == float(gamma)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.training
    packed = pack_ternary(frozen.ternary)
    again = BitLinearInference.from_packed(packed, (11, 37), frozen.scale, layer.norm.weight.detach())
    x = torch.randn(2, 3, 37)
    assert torch.equal(again(x), frozen(x))


def test_bitlinear_inference_errors():
    ok_t = torch.zeros(3, 4, dtype=torch.int8)
    with pytest.raises(TypeError, match="ternary"):
        BitLinearInference(torch.zeros(3, 4), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="ternary"):
        BitLinearInference(torch.full((3, 4), 2, dtype=torch.int8), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="ternary"):
        BitLinearInference(torch.zeros(3, dtype=torch.int8), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="scale"):
        BitLinearInference(ok_t, 0.0, torch.ones(4))
    with pytest.raises(ValueError, match="scale"):
        BitLinearInference(ok_t, float("nan"), torch.ones(4))
    with pytest.raises(ValueError, match="norm_weight"):
        BitLinearInference(ok_t, 1.0, torch.ones(5))
    with pytest.raises(ValueError, match="scale must be finite in float32"):
        BitLinearInference(torch.tensor([[1, 0, -1]], dtype=torch.int8), 1e300, torch.ones(3))
    with pytest.raises(ValueError, match="input"):
        BitLinearInference(ok_t, 1.0, torch.ones(4))(torch.ones(2, 3))
    with pytest.raises(TypeError, match="input"):
        BitLinearInference(ok_t, 1.0, torch.ones(4))(torch.ones(2, 4, dtype=torch.int64))
