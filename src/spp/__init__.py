"""spp: a software patch panel for Linux hosts (DPDK SPP's spp_vf and spp_mirror in Python)."""

__version__ = "0.1.0"
