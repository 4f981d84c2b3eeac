"""Import a TensorFlow Lite flatbuffer (float models) as an ONNX model.

The file is read with the ``tflite`` schema bindings into plain records first, so a truncated
or garbage file fails early with a :class:`ToolError` naming it. The graph is then rebuilt op
by op (converters in the ``ops_*`` modules, table in :mod:`.ops`) with ``onnx.helper``.

Layout: TFLite tensors are NHWC, ONNX convolutions are NCHW. Every converted tensor carries a
permutation ``perm`` (ONNX axis ``i`` holds TFLite axis ``perm[i]``). Layout-free ops keep the
layout of their inputs, convolutions and pools ask for NCHW, and a Transpose (or a Reshape, when
only size-1 axes move) is emitted only where a consumer needs a layout that is not available.
"""

from tools.compact.importers.tflite.importer import import_tflite

__all__ = ["import_tflite"]
