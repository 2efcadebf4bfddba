"""``python -m spp.ctl``: same as ``spp-ctl``."""

import sys

from spp.ctl.main import main

sys.exit(main())
