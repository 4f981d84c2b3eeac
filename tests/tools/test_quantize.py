"""int8 quantization: real QDQ models, the method search, and the latency gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import onnx
import pytest

from tests.tools.synthetic import Net, mixed_net
from tools.compact.compress.graph import Feed, first_sample
from tools.compact.compress.measure import fidelity, run_outputs
from tools.compact.compress.quantize import decide, preprocess, quantize_int8, search

pytest.importorskip("onnxruntime")


def _feeds(seed: int, count: int = 4) -> list[Feed]:
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        coarse = rng.standard_normal((4, 3, 4, 4)).astype(np.float32)
        feeds.append({"x": np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)})
    return feeds


def _timer(fp32_ms: float, int8_ms: float):  # type: ignore[no-untyped-def]
    def timer(models: Sequence[onnx.ModelProto], feed: Feed) -> list[float]:
        assert len(models) == 2
        assert "x" in feed
        return [fp32_ms, int8_ms]

    return timer


@pytest.fixture(scope="module")
def int8_model() -> onnx.ModelProto:
    return quantize_int8(preprocess(mixed_net()), _feeds(0))


def test_static_qdq_quantization_is_faithful(int8_model: onnx.ModelProto) -> None:
    onnx.checker.check_model(int8_model)
    ops = Counter(node.op_type for node in int8_model.graph.node)
    assert ops["QuantizeLinear"] >= 5
    assert ops["DequantizeLinear"] >= 10
    weights = [i for i in int8_model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert any(len(w.dims) == 4 for w in weights)  # conv weights are stored as int8
    held_out = _feeds(1)
    fid = fidelity(run_outputs(int8_model, held_out), run_outputs(mixed_net(), held_out))
    assert fid.cosine_mean > 0.98


def test_quantization_is_deterministic(int8_model: onnx.ModelProto) -> None:
    again = quantize_int8(preprocess(mixed_net()), _feeds(0))
    assert again.SerializeToString() == int8_model.SerializeToString()


def test_search_measures_every_method_and_keeps_the_best() -> None:
    choice = search(mixed_net(), _feeds(0), _feeds(1), exclude_counts=(1,), progress=False)
    methods = [method for method, excluded, _ in choice.tried if not excluded]
    assert methods == ["MinMax", "Percentile", "Entropy"]
    assert len(choice.tried) == 4
    assert len(choice.tried[-1][1]) == 1
    best = max(fid.cosine_mean for _, _, fid in choice.tried)
    assert choice.fidelity.cosine_mean >= best - 1e-4
    assert (choice.method, choice.excluded, choice.fidelity) in choice.tried


def test_int8_is_refused_when_it_is_slower(int8_model: onnx.ModelProto) -> None:
    sample = first_sample(_feeds(0)[0])
    slower = decide(mixed_net(), int8_model, sample, timer=_timer(2.0, 2.5))
    assert not slower.keep_int8
    assert "not faster" in slower.reason
    assert (slower.fp32_ms, slower.int8_ms) == (2.0, 2.5)
    assert slower.speedup == pytest.approx(0.8)
    assert slower.int8_bytes < slower.fp32_bytes
    for_size = decide(mixed_net(), int8_model, sample, timer=_timer(2.0, 2.5), prefer_size=True)
    assert for_size.keep_int8
    assert "smaller" in for_size.reason
    faster = decide(mixed_net(), int8_model, sample, timer=_timer(2.0, 1.0))
    assert faster.keep_int8
    assert faster.speedup == pytest.approx(2.0)


def test_tiny_model_measured_int8_is_refused() -> None:
    net = Net(0, channels=2, size=4)
    model = net.model({net.conv("x", 2, 2, k=1): ["batch", 2, 4, 4]})
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 2, 4, 4)).astype(np.float32)} for _ in range(4)]
    int8 = quantize_int8(preprocess(model), feeds)
    decision = decide(model, int8, feeds[0])
    assert decision.fp32_ms > 0
    assert decision.int8_ms > 0
    assert decision.keep_int8 == (decision.speedup >= 1.05)
    assert not decision.keep_int8, decision  # Quantize/Dequantize cost more than a 2x2 conv
