"""Faces: decode a frame, detect, align, check quality, embed, match against the gallery."""
