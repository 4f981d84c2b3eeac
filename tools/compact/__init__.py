"""Compact AI offline toolkit: import, prune, quantize, evaluate and pack models."""
