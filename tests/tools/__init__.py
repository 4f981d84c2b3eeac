"""Tests of the offline toolkit."""
