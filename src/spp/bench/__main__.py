"""``python -m spp.bench`` is ``spp bench``."""

from spp.bench.main import main

raise SystemExit(main())
