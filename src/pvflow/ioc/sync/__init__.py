"""Laser-sync IOC (``pvflow ioc sync``), compatible with syncster: tracks whether a Menlo
Syncro RRE is locked to its reference and exposes the state machine INIT OFF STRAY SYNCED ERROR
FAIL through ``state``/``error``/``clear``/``stray`` PVs. See ``docs/sync.md``.
"""
