"""Entry point for ``python -m tools.compact``."""

import os

# OpenBLAS 0.3.30 (numpy 2.3's wheel) writes past its buffers in multi-threaded SYRK and LU
# on ~17,000-wide matrices (reconstructing SFace's pruned fc layer: a segmentation fault); one
# thread runs them (a 17,640-wide solve in 73 s). onnxruntime and ncnn keep their own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from tools.compact.cli import main  # after the thread limit: numpy reads it once

raise SystemExit(main())
