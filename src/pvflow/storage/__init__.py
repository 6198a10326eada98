"""Detector images to disk (integration layer, over :class:`pvflow.Context`).

A Diss-compatible detector IOC publishes each series of images, then lets ``acquire`` fall.
:mod:`.assembler` turns the monitor updates of its PVs back into whole series (no I/O),
:mod:`.detector_source` runs those monitors on a Context, and :mod:`.series_file` appends
series to an HDF5 file. ``pvflow save`` and the bluesky detector both build on these; nothing
here imports the command line, the demo or bluesky.
"""
