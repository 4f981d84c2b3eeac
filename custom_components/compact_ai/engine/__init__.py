"""Compact AI engine: model pack, inference backends and pipelines.

Nothing in this package imports Home Assistant, so the offline toolkit and the
evaluation commands run exactly the code the integration runs.
"""
