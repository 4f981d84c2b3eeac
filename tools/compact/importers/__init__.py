"""Importers turning pretrained source models into ONNX."""
