"""``spp demo`` (work in progress)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Placeholder until the demo lands."""
    print("spp demo: not available yet", file=sys.stderr)
    return 2
