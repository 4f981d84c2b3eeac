"""Packs: sources, the reference pack, building the shipped tiers and writing manifests."""
