"""Dependency-group pruning keeps graphs valid and small; reconstruction lowers the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from tests.tools.synthetic import batchnorm_net, mixed_net
from tools.compact.compress.channels import remove_channels
from tools.compact.compress.graph import Feed, first_sample, tensor_shapes
from tools.compact.compress.groups import find_groups
from tools.compact.compress.measure import fidelity, flops, run_outputs
from tools.compact.compress.prune import allocate, analyze, prune, removal_for
from tools.compact.compress.reconstruct import GRAM_CHUNK, _products, reconstruct

pytest.importorskip("onnxruntime")


def _smooth_images(seed: int, count: int = 4, batch: int = 8) -> list[Feed]:
    """Low-frequency random images (correlated pixels, like photos), NCHW 16x16."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        coarse = rng.standard_normal((batch, 3, 4, 4)).astype(np.float32)
        feeds.append({"x": np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3) + 0.1})
    return feeds


def _weights(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inits = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return {n.name: inits[n.input[1]] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}


def test_groups_follow_residual_depthwise_pad_and_concat() -> None:
    model = mixed_net()
    deps = find_groups(model, tensor_shapes(model, first_sample(_smooth_images(0)[0])))
    by_source = {group.sources[0]: group for group in deps.groups}
    stream = by_source["conv3"]  # stem, residual Add, depthwise conv, real channels of the Pad
    tensors = {name for name, _ in stream.tensors}
    assert stream.size == 16
    assert stream.prunable
    assert {"add12", "conv16", "conv20", "pad26", "add27", "prelu22"} <= tensors
    padded = by_source["conv20"]  # conv20's channels 16..23 meet only the Pad's zeros
    assert padded.size == 8
    assert {"pad26", "conv20"} <= set(padded.sources)
    assert padded.units[0]["conv20"] == (16,)
    assert padded.units[0]["add27"] == (16,)
    assert by_source["conv31"].units[0]["concat37"] == (0,)
    assert by_source["conv35"].units[0]["concat37"] == (8,)  # Concat offset
    # the Gemm output is the graph output: no group holds it
    assert all("gemm" not in name for group in deps.groups for name, _ in group.tensors)


@pytest.mark.parametrize("factory", [mixed_net, batchnorm_net])
def test_pruned_graph_is_valid_smaller_and_runs(factory) -> None:  # type: ignore[no-untyped-def]
    model = factory()
    feeds = _smooth_images(1)
    result = prune(model, feeds, 0.5, with_reconstruction=False, progress=False)
    pruned = result.model
    onnx.checker.check_model(pruned, full_check=True)
    before, after = _weights(model), _weights(pruned)
    assert all(np.prod(after[n]) <= np.prod(before[n]) for n in before)
    assert sum(np.prod(s) for s in after.values()) < 0.75 * sum(np.prod(s) for s in before.values())
    sample = first_sample(feeds[0])
    ratio = flops(pruned, sample) / flops(model, sample)
    assert ratio <= 0.5
    assert ratio == pytest.approx(result.flops_after / result.flops_before)
    (out,) = run_outputs(pruned, feeds)
    assert out.shape == run_outputs(model, feeds)[0].shape  # outputs are never pruned


def test_reconstruction_lowers_output_error() -> None:
    model = mixed_net()
    calibration, held_out = _smooth_images(2, count=8), _smooth_images(3)
    analysis = analyze(model, calibration, calibration[:2], progress=False)
    removal = removal_for(analysis, allocate(analysis, 0.5))
    pruned = remove_channels(model, removal, analysis.deps)
    rebuilt = reconstruct(model, pruned, removal, calibration, progress=False)
    reference = run_outputs(model, held_out)
    plain = fidelity(run_outputs(pruned, held_out), reference)
    solved = fidelity(run_outputs(rebuilt, held_out), reference)
    assert 1 - solved.cosine_mean < 0.5 * (1 - plain.cosine_mean)
    assert solved.max_abs < plain.max_abs


def test_chunked_products_equal_the_whole_products() -> None:
    rng = np.random.default_rng(0)
    a, y = rng.normal(size=(GRAM_CHUNK + 300, 7)), rng.normal(size=(GRAM_CHUNK + 300, 3))
    rows = np.flatnonzero(rng.random(len(a)) < 0.8)
    a_mean, y_mean = a[rows].mean(0), y[rows].mean(0)
    gram, cross = _products(a, y, rows, a_mean, y_mean)
    centred = a[rows] - a_mean
    np.testing.assert_allclose(gram, centred.T @ centred, rtol=1e-10)
    np.testing.assert_allclose(cross, centred.T @ (y[rows] - y_mean), rtol=1e-10)


def test_same_input_and_seed_give_the_same_bytes() -> None:
    model = mixed_net()
    feeds = _smooth_images(4)
    first = prune(model, feeds, 0.6, seed=3, progress=False).model.SerializeToString()
    second = prune(model, feeds, 0.6, seed=3, progress=False).model.SerializeToString()
    assert first == second


@pytest.fixture(scope="module")
def face_feeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Feed], list[Feed]]:
    """Engine-aligned chips of real photos: two people calibrate, a third evaluates."""
    from tools.compact.compress.calibration import FaceChipper, batches, face_chips
    from tools.compact.importers.tflite import import_tflite
    from tools.compact.pack.sources import source_path

    detector = tmp_path_factory.mktemp("detector") / "face_detector.onnx"
    onnx.save(import_tflite(source_path("face_detection_short_range.tflite")), detector)
    chipper = FaceChipper(detector)
    photos = [source_path(name) for name in ("astronaut.png", "t1.jpg")]
    calibration = face_chips(photos, per_image=8, jitter=0.06, chipper=chipper)
    held_out = face_chips(
        [source_path("Tom_Hanks_54745.png")], per_image=8, jitter=0.06, chipper=chipper
    )
    assert len(calibration) == 16
    assert len(held_out) == 8
    return batches("chip", calibration), batches("chip", held_out)


@pytest.mark.slow
def test_real_dlib_embedder_pruned_by_30_percent(face_feeds: tuple[list[Feed], list[Feed]]) -> None:
    from tools.compact.importers.dlib_resnet import import_dlib_resnet
    from tools.compact.pack.sources import source_path

    model = import_dlib_resnet(source_path("dlib_face_recognition_resnet_model_v1.dat"))
    calibration, held_out = face_feeds
    analysis = analyze(model, calibration, calibration[:1], progress=False)
    assert sum(g.prunable for g in analysis.deps.groups) >= 15
    removal = removal_for(analysis, allocate(analysis, 0.7))
    pruned = remove_channels(model, removal, analysis.deps)
    onnx.checker.check_model(pruned, full_check=True)
    before, after = _weights(model), _weights(pruned)
    assert sum(a != before[n] for n, a in after.items()) >= 10  # many layers really shrank
    assert after["fc"][1] == 128  # the 128-d descriptor is never pruned
    sample = first_sample(held_out[0])
    assert flops(pruned, sample) <= 0.7 * flops(model, sample)
    rebuilt = reconstruct(model, pruned, removal, calibration, rows=2048, progress=False)
    reference = run_outputs(model, held_out)
    plain = fidelity(run_outputs(pruned, held_out), reference)
    solved = fidelity(run_outputs(rebuilt, held_out), reference)
    assert run_outputs(rebuilt, held_out)[0].shape == (8, 128)
    assert solved.cosine_mean > plain.cosine_mean
    assert solved.cosine_mean > 0.9


def _identity_photos(root: Path) -> Path:
    """Three identities (one source photo each) of three crops: calibration data for the CLI."""
    from PIL import Image

    from tools.compact.pack.sources import source_path

    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        folder = root / name.split(".")[0]  # one identity per photo
        folder.mkdir(parents=True)
        image = Image.open(source_path(name)).convert("RGB")
        for index, box in enumerate([(0, 0, 200, 200), (100, 50, 300, 250), (50, 100, 250, 300)]):
            image.crop(box).save(folder / f"{index}.png")
    return root


def test_cli_prune_quantize_and_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.compact.cli import main

    photos = _identity_photos(tmp_path / "photos")
    model = tmp_path / "model.onnx"
    onnx.save(mixed_net(), model)
    pruned, quantized = tmp_path / "pruned.onnx", tmp_path / "int8.onnx"
    common = ["--calib", str(photos), "--samples", "6", "--pixel-range", "-1", "1"]
    assert main(["prune", str(model), "--target-flops", "0.6", "--out", str(pruned), *common]) == 0
    printed = capsys.readouterr().out
    assert "FLOPs 0.5" in printed
    assert "before" in printed
    assert "cosine" in printed
    onnx.checker.check_model(onnx.load(pruned))
    assert main(["quantize", str(pruned), "--out", str(quantized), *common]) == 0
    printed = capsys.readouterr().out
    assert "chosen: " in printed
    assert "ms" in printed
    assert quantized.exists()
    assert main(["evaluate", str(pruned), str(quantized), "--reference", str(model), *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["reference", "pruned.onnx", "int8.onnx"]
    assert main(["prune", str(tmp_path / "missing.onnx"), "--target-flops", "0.5",
                 "--out", str(pruned), *common]) == 1  # fmt: skip


def test_cli_json_reports_what_each_command_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tools.compact.cli import main

    def run(*argv: str) -> dict[str, Any]:
        assert main([*argv, "--json"]) == 0
        report: dict[str, Any] = json.loads(capsys.readouterr().out)  # nothing else on stdout
        return report

    photos = _identity_photos(tmp_path / "photos")
    model = tmp_path / "model.onnx"
    onnx.save(mixed_net(), model)
    pruned, quantized = tmp_path / "pruned.onnx", tmp_path / "int8.onnx"
    common = ["--calib", str(photos), "--samples", "6", "--pixel-range", "-1", "1"]

    report = run("prune", str(model), "--target-flops", "0.6", "--out", str(pruned), *common)
    assert report["out"] == str(pruned)
    assert report["flops_ratio"] == report["flops_after"] / report["flops_before"] <= 0.6
    before, after = report["models"]["before"], report["models"]["after"]
    assert before["flops"] == report["flops_before"]
    assert after["flops"] == report["flops_after"]
    assert after["size_bytes"] == onnx.load(pruned).ByteSize() < before["size_bytes"]
    assert before["cosine_mean"] == pytest.approx(1.0)
    assert 0.5 < after["cosine_min"] <= after["cosine_mean"] < 1.0
    assert after["latency_ms"] > 0

    report = run("quantize", str(pruned), "--out", str(quantized), *common)
    assert report["method"] in {row["method"] for row in report["tried"]}
    assert len(report["tried"]) >= 3  # every calibration method, then float nodes
    assert report["speedup"] == pytest.approx(report["fp32_ms"] / report["int8_ms"])
    assert report["keep_int8"] != report["reason"].endswith("keeping fp32")
    shipped = "QuantizeLinear" in {node.op_type for node in onnx.load(quantized).graph.node}
    assert shipped == report["keep_int8"]
    assert set(report["models"]) == {"fp32", "int8"}
    assert report["models"]["int8"]["cosine_mean"] > 0.9

    report = run("evaluate", str(pruned), str(quantized), "--reference", str(model), *common)
    assert report["reference"] == str(model)
    assert list(report["models"]) == ["reference", "pruned.onnx", "int8.onnx"]
    assert report["models"]["pruned.onnx"]["flops"] == after["flops"]


@pytest.mark.slow
def test_real_blazeface_with_depthwise_and_channel_padding_stays_valid() -> None:
    from PIL import Image

    from tools.compact.importers.tflite import import_tflite
    from tools.compact.pack.sources import source_path

    model = import_tflite(source_path("face_detection_short_range.tflite"))
    names = ("astronaut.png", "coffee.png", "chelsea.png", "t1.jpg", "Tom_Hanks_54745.png")
    images = [Image.open(source_path(name)).convert("RGB").resize((128, 128)) for name in names]
    feeds = [{"input": np.asarray(im, np.float32)[None] / 127.5 - 1} for im in images]
    result = prune(model, feeds, 0.6, with_reconstruction=False, progress=False)
    onnx.checker.check_model(result.model, full_check=True)
    assert flops(result.model, feeds[0]) <= 0.6 * flops(model, feeds[0])

    def depthwise_channels(m: onnx.ModelProto) -> int:
        groups = [a.i for n in m.graph.node for a in n.attribute if a.name == "group"]
        return sum(g for g in groups if g > 1)

    assert depthwise_channels(result.model) < 0.9 * depthwise_channels(model)
    shapes = [o.shape for o in run_outputs(result.model, feeds)]
    assert shapes == [o.shape for o in run_outputs(model, feeds)]
