"""YuNet's model-free parts on known values: input blob, output decoding, suppression."""

from __future__ import annotations

import numpy as np

from custom_components.compact_ai.engine.face import proposals as yn


def _outputs(height: int, width: int) -> dict[str, np.ndarray]:
    """All-zero outputs (no face anywhere) of a padded input of height x width."""
    outputs = {}
    for stride in yn.STRIDES:
        cells = (height // stride) * (width // stride)
        for kind, size in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
            outputs[f"{kind}_{stride}"] = np.zeros((1, cells, size), np.float32)
    return outputs


def test_blob_is_bgr_planar_and_zero_padded_to_multiples_of_32() -> None:
    image = np.zeros((50, 70, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # R, G, B
    blob = yn.to_blob(image)
    assert blob.shape == (1, 3, 64, 96) and blob.dtype == np.float32
    assert blob[0, :, 0, 0].tolist() == [30.0, 20.0, 10.0]  # B, G, R: no normalization
    assert np.all(blob[0, :, 50:, :] == 0) and np.all(blob[0, :, :, 70:] == 0)
    assert yn.padded_size(64, 65) == (64, 96)


def test_decode_places_box_and_landmarks_on_the_cell() -> None:
    outputs = _outputs(64, 96)
    columns = 96 // 16
    cell = 2 * columns + 3  # stride 16, row 2, column 3
    outputs["cls_16"][0, cell] = 0.81
    outputs["obj_16"][0, cell] = 1.0  # score sqrt(0.81 * 1) = 0.9
    outputs["bbox_16"][0, cell] = [0.5, 0.25, np.log(2.0), np.log(3.0)]
    outputs["kps_16"][0, cell] = [0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0]
    boxes, landmarks, scores = yn.decode(outputs, (64, 96))
    np.testing.assert_allclose(scores, [0.9], atol=1e-6)
    # centre ((3, 2) + (0.5, 0.25)) * 16 = (56, 36); size (2, 3) * 16 = (32, 48)
    np.testing.assert_allclose(boxes, [[40, 12, 72, 60]], atol=1e-4)
    offsets = np.array([[0, 0], [1, 0], [0.5, 0.5], [0, 1], [1, 1]])
    expected = (offsets + np.array([3, 2])) * 16
    np.testing.assert_allclose(landmarks[0], expected, atol=1e-4)


def test_decode_drops_low_scores_and_clips_probabilities() -> None:
    outputs = _outputs(32, 32)
    outputs["cls_8"][0, :2, 0] = [0.35, 1.7]  # score 0.59 (dropped) and clip(1.7) = 1
    outputs["obj_8"][0, :2, 0] = [1.0, 1.0]
    _, _, scores = yn.decode(outputs, (32, 32), min_score=0.6)
    np.testing.assert_allclose(scores, [1.0])


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], dtype=float)
    keep = yn.nms(boxes, np.array([0.7, 0.9, 0.8]), 0.3)
    assert keep.tolist() == [1, 2]
    assert yn.nms(np.zeros((0, 4)), np.zeros(0), 0.3).tolist() == []
