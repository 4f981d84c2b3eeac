"""``make-pairs``, ``verify`` and ``identify`` on a tiny identities folder made from photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from custom_components.compact_ai.engine.face.detector import Detection
from tools.compact.cli import main
from tools.compact.errors import ToolError
from tools.compact.evaluate.pairs import image_path, make_pairs, read_pairs, write_pairs
from tools.compact.evaluate.verify import (
    best_threshold,
    cross_validated_accuracy,
    primary_face,
    threshold_at_far,
)
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")

# Face boxes (x0, y0, x1, y1) of the six people in t1.jpg and of the astronaut.
T1_FACES = (
    (52, 275, 168, 391),
    (267, 168, 372, 272),
    (461, 288, 577, 404),
    (730, 363, 825, 457),
    (868, 72, 1001, 204),
    (1128, 294, 1222, 388),
)
ASTRONAUT_FACE = (177, 81, 272, 175)


def _variants(crop: Image.Image) -> list[Image.Image]:
    """Four pictures of one face: as is, mirrored, brighter, and smaller."""
    small = crop.resize((crop.width * 3 // 4, crop.height * 3 // 4), Image.Resampling.BICUBIC)
    return [
        crop,
        crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        ImageEnhance.Brightness(crop).enhance(1.2),
        small,
    ]


def _crop(photo: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    x0, y0, x1, y1 = box
    pad = x1 - x0
    return photo.crop((x0 - pad, y0 - pad, x1 + pad, y1 + pad))


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIR/<name>/<name>_NNNN.jpg: seven people with four images each, LFW-style."""
    root = tmp_path_factory.mktemp("faces")
    group = Image.open(source_path("t1.jpg")).convert("RGB")
    crops = {f"person{i + 1}": _crop(group, box) for i, box in enumerate(T1_FACES)}
    astronaut = Image.open(source_path("astronaut.png")).convert("RGB")
    crops["astronaut"] = _crop(astronaut, ASTRONAUT_FACE)
    for name, crop in crops.items():
        for index, picture in enumerate(_variants(crop), start=1):
            path = image_path(root, name, index)
            path.parent.mkdir(exist_ok=True)
            picture.save(path, quality=92)
    return root


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(list(argv)) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


# --- pairs --------------------------------------------------------------------------


def test_make_pairs_is_deterministic_and_well_formed(faces_dir: Path, tmp_path: Path) -> None:
    pairs = make_pairs(faces_dir, per_class=20, seed=0)
    assert pairs == make_pairs(faces_dir, per_class=20, seed=0)
    assert pairs != make_pairs(faces_dir, per_class=20, seed=1)
    same = [pair for pair in pairs if pair.same]
    assert len(same) == 20
    assert len(pairs) == 40
    assert len(set(pairs)) == 40
    assert all(path.exists() for pair in pairs for path in pair.paths(faces_dir))
    target = tmp_path / "pairs.txt"
    write_pairs(target, pairs)
    lines = target.read_text().splitlines()
    assert lines[0] == "20"
    assert len(lines[1].split()) == 3
    assert len(lines[-1].split()) == 4
    assert read_pairs(target) == pairs


def test_make_pairs_caps_at_what_exists(faces_dir: Path) -> None:
    pairs = make_pairs(faces_dir, per_class=1000)
    assert sum(pair.same for pair in pairs) == 7 * 6  # C(4, 2) per person
    assert sum(not pair.same for pair in pairs) == 7 * 6


def test_make_pairs_cli(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pairs.txt"
    args = ["make-pairs", "--images", str(faces_dir), "--out", str(out), "--pairs-per-class", "5"]
    assert main(args) == 0
    assert "5 same-person and 5 different-person pairs" in capsys.readouterr().out
    assert len(read_pairs(out)) == 10


def test_read_pairs_rejects_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("1\nAlice 1\n")
    with pytest.raises(ToolError, match=":2:"):
        read_pairs(path)
    path.write_text("1\nAlice one 2\n")
    with pytest.raises(ToolError, match=":2:"):
        read_pairs(path)


# --- metrics ------------------------------------------------------------------------


def test_threshold_metrics_on_known_distances() -> None:
    same = np.array([True, True, True, False, False, False] * 10)
    separable = np.array([0.2, 0.3, 0.5, 0.7, 0.8, 0.9] * 10)
    assert best_threshold(separable, same) == pytest.approx(0.6)  # midway across the gap
    assert cross_validated_accuracy(separable, same) == 1.0
    rng = np.random.default_rng(
        0
    )  # overlapping classes: genuine ~ N(0.4, 0.1), impostor ~ N(0.7, 0.1)
    labels = np.arange(4000) % 2 == 0
    overlapping = np.where(labels, 0.4, 0.7) + rng.normal(0, 0.1, 4000)
    expected = 0.5 + 0.5 * math.erf(0.15 / 0.1 / math.sqrt(2))  # Phi(1.5): cut at 0.55
    assert best_threshold(overlapping, labels) == pytest.approx(0.55, abs=0.03)
    assert cross_validated_accuracy(overlapping, labels) == pytest.approx(expected, abs=0.015)
    impostors = np.concatenate([np.linspace(0.5, 1.5, 1000), [np.inf] * 10])
    everyone = np.concatenate([impostors, [0.1] * 10])
    labels = np.array([False] * 1010 + [True] * 10)
    limit = threshold_at_far(everyone, labels, target=0.001)
    assert np.mean(impostors <= limit) <= 0.001
    assert np.mean(impostors <= limit + 0.002) > 0.001


def test_primary_face_prefers_large_central_faces() -> None:
    def at(x0: float, y0: float, size: float) -> Detection:
        return Detection((x0, y0, x0 + size, y0 + size), np.zeros((6, 2)), 0.9)

    central, edge, tiny = at(90, 90, 75), at(0, 0, 90), at(120, 120, 10)
    assert primary_face([edge, central, tiny], 250, 250) is central
    assert primary_face([tiny, edge], 250, 250) is edge
    # A door frame: the visitor off-centre, a smaller person of their photo nearer the centre
    visitor, bystander = at(1500, 300, 100), at(1400, 320, 78)
    assert primary_face([bystander, visitor], 1920, 1080) is visitor


# --- verify and identify on real models ---------------------------------------------


def test_verify_json(faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "pairs.txt"
    write_pairs(pairs, make_pairs(faces_dir, per_class=1000))
    report = _run_json(
        capsys,
        *("verify", "--tier", "reference", "--pairs", str(pairs)),
        *("--images", str(faces_dir), "--json"),
    )
    for key in ("accuracy", "best_accuracy", "threshold", "far", "frr", "no_face", "pairs"):
        assert key in report
    assert report["pairs"] == 84
    assert report["images"] == 28
    assert report["no_face"] == 0
    assert report["threshold"] == 0.6
    assert report["accuracy"] >= 0.95
    assert report["far"] == 0.0
    stages = [report[f"ms_{stage}"] for stage in ("decode", "detect", "align", "embed")]
    assert all(isinstance(ms, float) and ms > 0 for ms in stages)
    assert report["ms_per_frame"] == pytest.approx(sum(stages))  # type: ignore[arg-type]


def test_verify_counts_images_without_a_face(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    for name in ("person1", "astronaut"):
        (images / name).mkdir(parents=True)
        for index in (1, 2):
            image_path(images, name, index).write_bytes(
                image_path(faces_dir, name, index).read_bytes()
            )
    (images / "cat").mkdir()
    Image.open(source_path("chelsea.png")).convert("RGB").save(image_path(images, "cat", 1))
    Image.open(source_path("coffee.png")).convert("RGB").save(image_path(images, "cat", 2))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "3\nperson1 1 2\nastronaut 1 2\ncat 1 2\nperson1 1 astronaut 2\ncat 1 astronaut 1\n"
    )
    report = _run_json(capsys, "verify", "--pairs", str(pairs), "--images", str(images), "--json")
    assert report["no_face"] == 2
    assert report["accuracy"] == pytest.approx(4 / 5)  # the cat pair cannot be "same"
    assert report["frr"] == pytest.approx(1 / 3)
    assert report["far"] == 0.0


def test_verify_missing_image_is_a_tool_error(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nperson1 1 9\n")
    assert main(["verify", "--pairs", str(pairs), "--images", str(faces_dir)]) == 1
    assert "person1_0009.jpg" in capsys.readouterr().err


def test_identify_json_rejects_impostors(
    faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _run_json(
        capsys,
        *("identify", "--tier", "reference", "--gallery", str(faces_dir)),
        *("--probe", str(faces_dir), "--enroll-per-person", "2", "--gallery-people", "4"),
        "--json",
    )
    for key in ("top1", "tar", "far", "unknown_rate", "no_face", "probes", "results"):
        assert key in report
    # 4 enrolled people x 2 remaining images + 3 impostors x 4 images
    assert report["probes"] == 4 * 2 + 3 * 4
    assert report["known_probes"] == 8
    assert report["enrolled_people"] == 4
    assert report["no_face"] == 0
    assert report["top1"] == 1.0
    assert report["tar"] >= 0.75
    assert report["far"] == 0.0
    assert report["unknown_rate"] == 1.0
    results = report["results"]
    assert isinstance(results, list)
    assert len(results) == 20
    enrolled = {f"{name}_000{i}.jpg" for name in ("astronaut", "person1") for i in (1, 2)}
    assert not enrolled & {Path(row["image"]).name for row in results}


def test_identify_door_frames_of_enrolled_photos_are_not_probed(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Probes: each photo pasted small into a 1280x720 frame; detection counted apart."""
    frames = tmp_path / "frames"
    for photo in sorted(faces_dir.glob("*/*.jpg")):
        crop = Image.open(photo).convert("RGB")
        frame = Image.new("RGB", (1280, 720), (100, 110, 120))
        frame.paste(crop.resize((crop.width // 2, crop.height // 2)), (700, 200))
        (frames / photo.parent.name).mkdir(parents=True, exist_ok=True)
        frame.save(frames / photo.parent.name / photo.name, quality=90)
    args = ["identify", "--tier", "reference", "--gallery", str(faces_dir), "--probe", str(frames)]
    args += ["--enroll-per-person", "2", "--gallery-people", "4", "--also-threshold", "0.4"]
    cascade = _run_json(capsys, *args, "--json")
    assert cascade["probes"] == 4 * 2 + 3 * 4  # the frames of enrolled photos are left out
    assert cascade["found"] == 1.0 and cascade["no_face"] == 0
    assert cascade["tar_found"] == cascade["tar"]
    assert set(cascade["at_threshold"]) == {"0.4"}  # type: ignore[arg-type]
    strict = cascade["at_threshold"]["0.4"]  # type: ignore[index]
    assert strict["far"] == 0.0 and strict["tar"] <= cascade["tar"]
    alone = _run_json(capsys, *args, "--detector", "short", "--json")
    assert alone["no_face"] > 0  # BlazeFace alone misses faces this small in the frame
    assert alone["found"] < cascade["found"]


def test_listed_label_errors_take_part_in_no_pair_and_no_identification(
    faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.compact.evaluate.labels import LABEL_ERRORS, read_label_errors

    errors = tmp_path / "errors.txt"
    errors.write_text("# comment\nperson2/person2_0003.jpg  shows someone else\n\n")
    exclude = read_label_errors(errors)
    assert exclude == {"person2/person2_0003.jpg"}
    pairs = make_pairs(faces_dir, per_class=1000, exclude=exclude)
    used = {pair.first for pair in pairs} | {pair.second for pair in pairs}
    assert ("person2", 3) not in used and ("person2", 2) in used
    report = _run_json(
        capsys,
        *("identify", "--tier", "reference", "--gallery", str(faces_dir)),
        *("--probe", str(faces_dir), "--enroll-per-person", "2", "--gallery-people", "4"),
        *("--exclude", str(errors), "--json"),
    )
    assert report["probes"] == 4 * 2 + 3 * 4 - 1
    assert "person2_0003.jpg" not in {Path(row["image"]).name for row in report["results"]}
    # the shipped list names real files of the dev data, each with a reason
    for line in LABEL_ERRORS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, reason = line.split(maxsplit=1)
            assert name.count("/") == 1 and name.endswith(".jpg") and len(reason) > 10


def test_identify_human_readable(faces_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["identify", "--gallery", str(faces_dir), "--probe", str(faces_dir)]
    assert main([*args, "--enroll-per-person", "1", "--gallery-people", "7"]) == 0
    out = capsys.readouterr().out
    assert "7 people enrolled (7 faces)" in out
    assert "top-1" in out


def test_dlib_chip_mapping_reproduces_dlibs_chip() -> None:
    dlib = pytest.importorskip("dlib")
    from custom_components.compact_ai.engine.face.align import warp_affine
    from tools.compact.pack.chip_template import dlib_chip_matrix

    image = np.asarray(Image.open(source_path("astronaut.png")).convert("RGB"))
    predictor = dlib.shape_predictor(str(source_path("shape_predictor_5_face_landmarks.dat")))
    boxes, scores, _ = dlib.get_frontal_face_detector().run(image, 1, 0)
    shape = predictor(image, boxes[int(np.argmax(scores))])
    chip = dlib.get_face_chip_details(shape, size=150, padding=0.25)
    reference = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25), float)
    ours = warp_affine(image, dlib_chip_matrix(chip), 150).astype(float)
    assert np.abs(ours - reference).mean() < 1.0


def test_derive_chip_template_lands_near_the_shipped_template(
    faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("dlib")
    from custom_components.compact_ai.engine.face.align import TEMPLATE

    argv = ["derive-chip-template", "--images", str(faces_dir), "--people", "3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    used, total = (int(word) for word in captured.err.split()[:3:2])  # "N of M faces used"
    assert 0 < used <= total == 12
    rows = [
        line.split("#")[0].strip().strip("[],").split(", ") for line in captured.out.splitlines()
    ]
    derived = np.array([[float(x), float(y)] for x, y in rows])
    assert derived.shape == TEMPLATE.shape
    assert np.abs(derived - TEMPLATE).max() < 10  # a few faces: within a few pixels
    assert main([*argv[:2], str(faces_dir / "nobody")]) == 1
