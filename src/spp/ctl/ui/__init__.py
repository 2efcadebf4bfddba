"""The live topology page of spp-ctl (``GET /ui``): its data (:mod:`.snapshot`), its shared
poller (:mod:`.hub`) and its assets (``static/``: HTML, CSS and hand-written JS, no library).
The routes are in :mod:`spp.ctl.routes.ui`."""
