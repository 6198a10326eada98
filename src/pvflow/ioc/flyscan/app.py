"""Start the fly-scan controller IOC: configuration, logging, records, ``iocInit``, run.

Application layer. softioc is imported only here, at start, because importing it loads EPICS
base and initialises the record database.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from ..framework.settings import ConfigError, load_settings
from ..framework.structured_logging import configure_logging, log_event
from .config import FlyScanConfig
from .controller import FlyScanController

logger = logging.getLogger("pvflow.ioc.flyscan")


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the IOC until SIGINT or SIGTERM; 2 on a bad configuration."""
    try:
        config = load_settings(FlyScanConfig, environ)
    except ConfigError as error:
        print(f"pvflow ioc flyscan: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    controller = FlyScanController(config.prefix, config.nelm, seed=config.seed)

    from softioc import asyncio_dispatcher, builder, softioc

    dispatcher = asyncio_dispatcher.AsyncioDispatcher()
    controller.create_records()
    builder.LoadDatabase()
    softioc.iocInit(dispatcher)
    log_event(logger, logging.INFO, "IOC running", prefix=config.prefix, nelm=config.nelm)
    dispatcher.wait_for_quit()
    log_event(logger, logging.INFO, "IOC stopping", prefix=config.prefix)
    softioc.safeEpicsExit(0)
    return 0
