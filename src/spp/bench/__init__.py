"""``spp bench``: benchmark scenarios for the data plane, beside dpdk-testpmd.

* ``forward`` — nullpmd → forward → nullpmd on one core vs testpmd io forwarding.
* ``ring`` — a ring between two worker processes.
* ``phy`` — veth to veth through spp's phy driver under an offered load vs testpmd
  on ``net_af_packet`` (root).
* ``memory`` — worker resident size and start-up time, cold and warm compile cache.

Run ``python -m spp.bench --help`` (or ``spp bench --help``).  Entry point:
:func:`spp.bench.main.main`.
"""
