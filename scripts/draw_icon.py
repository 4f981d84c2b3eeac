"""Draw the integration's brand icon (brand/icon.png, 256x256) from code: no third-party art."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
SCALE = 4  # draw large, then downsample for smooth edges
OUT = Path(__file__).resolve().parents[1] / "custom_components/compact_ai/brand/icon.png"


def draw() -> Image.Image:
    """Return the icon: a chip outline holding a face and a sound wave."""
    s = SIZE * SCALE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((8 * SCALE, 8 * SCALE, s - 8 * SCALE, s - 8 * SCALE), 48 * SCALE,
                          fill=(3, 169, 244, 255))  # fmt: skip
    for i in range(5):  # chip pins
        offset = (56 + i * 36) * SCALE
        for box in (
            (offset, 20 * SCALE, offset + 14 * SCALE, 44 * SCALE),
            (offset, s - 44 * SCALE, offset + 14 * SCALE, s - 20 * SCALE),
        ):
            pen.rounded_rectangle(box, 4 * SCALE, fill=(255, 255, 255, 200))
    pen.rounded_rectangle((48 * SCALE, 56 * SCALE, s - 48 * SCALE, s - 56 * SCALE), 28 * SCALE,
                          outline=(255, 255, 255, 255), width=10 * SCALE)  # fmt: skip
    white = (255, 255, 255, 255)
    pen.ellipse((84 * SCALE, 92 * SCALE, 144 * SCALE, 168 * SCALE), outline=white, width=9 * SCALE)
    pen.ellipse((100 * SCALE, 116 * SCALE, 110 * SCALE, 126 * SCALE), fill=white)
    pen.ellipse((118 * SCALE, 116 * SCALE, 128 * SCALE, 126 * SCALE), fill=white)
    for i, height in enumerate((24, 44, 30)):  # sound wave bars
        x = (160 + i * 14) * SCALE
        top = (130 - height // 2) * SCALE
        pen.rounded_rectangle((x, top, x + 8 * SCALE, top + height * SCALE), 4 * SCALE, fill=white)
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, optimize=True)
    print(OUT)
