"""spp's processes and their control: the command language, the manager, spp-vf/spp-mirror."""
