"""``python -m spp.cli``: same as ``spp``."""

import sys

from spp.cli.main import main

sys.exit(main())
