"""Running ophyd's and ophyd-async's own test suites (from their sdists) on pvflow."""
