"""IOCs of pvflow (application layer): the framework and the apps built on it.

Apps run on pythonSoftIOC, which loads EPICS base when imported; nothing here imports it at
module level, so importing :mod:`pvflow.ioc` is cheap and side-effect free.
"""
