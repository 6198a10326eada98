"""`pvflow demo`: a simulated beamline on loopback, driven through pvflow (applications layer)."""
