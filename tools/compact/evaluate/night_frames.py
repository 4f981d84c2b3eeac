"""``night-frames``: grey and IR-like copies of ``doorcam.py`` frames, for the night door.

A doorbell switches to infrared at night: one channel, flat contrast lifted by the camera,
sensor noise. These copies stand in for such frames (synthetic, not real IR): ``gray_<W>`` is
each frame of ``doorcam_<W>`` as a one-channel JPEG; ``ir_<W>`` is grey with its 1st-99th
percentile stretched to full range, gamma :data:`GAMMA` and Gaussian noise of sigma
:data:`NOISE` (seeded by the file's name, so a rerun writes the same bytes).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from tools.compact.errors import ToolError

GAMMA: Final = 0.75
NOISE: Final = 5.0  # grey levels
QUALITY: Final = 85  # doorcam.py's JPEG quality


def infrared(grey: np.ndarray, seed: int) -> np.ndarray:
    """Return an IR-like uint8 copy of a grey frame: stretched, gamma, sensor noise."""
    low, high = np.percentile(grey, (1, 99))
    stretched = np.clip((grey.astype(np.float64) - low) / max(high - low, 1.0), 0.0, 1.0)
    noisy = 255.0 * stretched**GAMMA + np.random.default_rng(seed).normal(0.0, NOISE, grey.shape)
    ir: np.ndarray = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return ir


def night_frames(frames: Path, widths: list[int]) -> dict[str, int]:
    """Write ``gray_<W>`` and ``ir_<W>`` beside each ``doorcam_<W>``; return frames per folder."""
    written: dict[str, int] = {}
    for width in widths:
        source = frames / f"doorcam_{width}"
        paths = sorted(source.glob("*/*.jpg"))
        if not paths:
            raise ToolError(f"{source}: no frames (make them with doorcam.py --widths {width})")
        for path in paths:
            relative = path.relative_to(source)
            with Image.open(path) as image:
                grey = np.asarray(image.convert("L"))
            seed = zlib.crc32(str(relative).encode())
            for kind, pixels in (("gray", grey), ("ir", infrared(grey, seed))):
                target = frames / f"{kind}_{width}" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels, mode="L").save(target, quality=QUALITY)
        for kind in ("gray", "ir"):
            written[f"{kind}_{width}"] = len(paths)
    return written
