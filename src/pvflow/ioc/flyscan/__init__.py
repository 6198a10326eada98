"""Fly-scan controller IOC (``pvflow ioc flyscan``): the external controller of a hardware fly
scan triggered by a synApps-style busy record.

Putting "Busy" to ``$(P)mybusy`` runs a simulated constant-speed motor scan with a detector
signal, filling ``$(P)t_array``, ``$(P)x_array`` and ``$(P)y_array`` in real time; the record
returns to "Done" when the scan has finished. See ``docs/flyscan.md``.
"""
