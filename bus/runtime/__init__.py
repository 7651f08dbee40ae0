"""Running jobs: the worker loop, its runner and pool, liveness, and recovery of dead workers."""
