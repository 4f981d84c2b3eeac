"""Tests of Compact AI."""
