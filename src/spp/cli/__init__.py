"""The ``spp`` command: SPP's interactive CLI over REST, declarative topologies and the demo."""
