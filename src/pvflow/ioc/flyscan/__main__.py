"""``python -m pvflow.ioc.flyscan``: run the fly-scan controller IOC."""

from .app import main

raise SystemExit(main())
