"""The IOC framework of pvflow (application layer): what every pvflow IOC is made of.

- :mod:`.state_machine`: declarative states, transitions, hooks and the error list;
- :mod:`.records`: the ``state``/``error``/``clear`` PVs and synchronous publishing;
- :mod:`.plugins`: backends by built-in name, entry point or ``module:Class``;
- :mod:`.settings`: configuration from environment variables, one-line errors;
- :mod:`.structured_logging`: ``key=value`` log lines;
- :mod:`.runner`: start-up order, the asyncio loop, signals and exit codes.

Importing this package does not load EPICS: only the runner does, when an IOC starts.
"""

from .plugins import PluginError, load_plugin
from .runner import EXIT_CONFIG, EXIT_FAIL, EXIT_OK, IocApp, StartupFailure, run_ioc
from .settings import (ConfigError, IocSettings, load_ioc_settings, load_settings,
                       parse_duration_switch)
from .state_machine import StateMachine, TransitionError
from .structured_logging import KeyValueFormatter, configure_logging, log_event

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAIL",
    "EXIT_OK",
    "ConfigError",
    "IocApp",
    "IocSettings",
    "KeyValueFormatter",
    "PluginError",
    "StartupFailure",
    "StateMachine",
    "TransitionError",
    "configure_logging",
    "load_ioc_settings",
    "load_plugin",
    "load_settings",
    "log_event",
    "parse_duration_switch",
    "run_ioc",
]
