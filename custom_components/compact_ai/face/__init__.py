"""Faces in Home Assistant: scans and enrollment, the people store and their services."""
