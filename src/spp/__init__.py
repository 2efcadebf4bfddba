"""spp: a software patch panel for Linux hosts (DPDK SPP's spp_vf and spp_mirror in Python)."""

from spp._cachedir import choose as _choose_cache_dir

_choose_cache_dir()  # before anything imports numba: a read-only install needs a writable cache

from spp._jitcache import guard as _guard_jit_cache  # noqa: E402

__version__ = "0.1.0"

_guard_jit_cache()
