"""The Dectris Eiger2 backend of the detector IOC (``DISS_DEVICE_BACKEND=eiger``) and its
protocol-level simulator (``pvflow sim eiger``)."""

from .backend import EigerDetector

__all__ = ["EigerDetector"]
