"""spp: a software patch panel for Linux hosts (DPDK SPP's spp_vf and spp_mirror in Python)."""

from spp._jitcache import guard as _guard_jit_cache

__version__ = "0.1.0"

_guard_jit_cache()
