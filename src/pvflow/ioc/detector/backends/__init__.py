"""Detector backends: :mod:`.base` is the contract, :mod:`.sim` the built-in simulated
detector, :mod:`.eiger` the Dectris Eiger2 (with its protocol-level simulator)."""
