"""Shared helpers of the Home Assistant layer: bounded file reads, inference limit, store checks."""
