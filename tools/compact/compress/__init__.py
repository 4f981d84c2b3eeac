"""Compression: graph view, dependency groups, passes, pruning, quantization, calibration."""
