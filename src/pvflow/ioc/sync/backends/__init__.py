"""Synchronisation-device backends: :mod:`.base` is the contract and the built-in names,
:mod:`.sim` a device whose lock tests set, :mod:`.rre` the Menlo Syncro RRE on a serial port
(with its protocol-level simulator)."""
