"""Entry point for ``python -m tools.compact``."""

from tools.compact.cli import main

raise SystemExit(main())
