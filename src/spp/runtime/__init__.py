"""Runtime: the shared data plane (pool, rings, counters) and the workers."""
