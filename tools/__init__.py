"""Compact AI repository tools."""
