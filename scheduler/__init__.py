"""The scheduler: the leader lock, the registry of sweeps, thin jobs, and their replay.

Entry points: :func:`scheduler.service.build_scheduler` (live), :func:`scheduler.replay.run_due`
(tests), :func:`scheduler.registry.default_registry` (what /jobs lists).
"""
