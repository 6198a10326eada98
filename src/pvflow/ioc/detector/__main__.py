"""``python -m pvflow.ioc.detector``: run the detector IOC."""

from .app import main

raise SystemExit(main())
