"""The Menlo Syncro RRE backend of the sync IOC (``SYNCSTER_BACKEND=rre``): the RBP frame
codec (:mod:`.protocol`), the HRT register tree (:mod:`.registers`), the serial client
(:mod:`.client`), the backend itself (:mod:`.backend`) and a pseudo-terminal simulator
(:mod:`.sim`)."""

from .backend import RreSyncDevice

__all__ = ["RreSyncDevice"]
