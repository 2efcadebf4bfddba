"""The worker graph: plans, the compiled worker loop and the worker threads.

This layer sits above :mod:`spp.runtime` (pool, rings, atomics, counters, pause and
quiesce), :mod:`spp.ports`, :mod:`spp.components` and :mod:`spp.mirror`: it composes
their compiled kernels into one loop per worker (VPP's graph of nodes, Click's
router), so none of them has to know about the others and ``runtime`` knows none of them.
"""
