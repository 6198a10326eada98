"""``python -m pvflow.ioc.sync``: run the sync IOC."""

from .app import main

raise SystemExit(main())
