"""`Interface`: a Badger machine interface over pvflow's Context (integration layer).

Imports :class:`pvflow.Context` and Badger only, never pvflow's transports. One interface
serves Channel Access and pvAccess alike: channel names route by prefix (``NAME`` or
``ca://NAME`` for CA, ``pva://NAME`` for pvAccess), so an environment may mix both.

Badger builds an environment's interface as ``Interface()`` from the plugin folder
``interfaces/pvflow``: every field must have a default that is safe on a live machine.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any, ClassVar

import numpy as np
from badger import interface as badger_interface
from pydantic import Field, PrivateAttr, WithJsonSchema

from pvflow import Context, PVFlowError

from .errors import SetValuesError
from .retry import put_with_retry
from .validation import Validation

log = logging.getLogger("pvflow.badger")


def plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists: Badger keeps observations in
    pandas and archives runs as YAML, which cannot represent numpy types."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Interface(badger_interface.Interface):
    """EPICS channels for Badger through pvflow: bulk reads, retried puts, validations.

    ``read_only`` turns every write into a log line; ``parallel`` runs the puts and
    validations of one ``set_values`` call concurrently (threads) and reports every failed
    channel at once.
    """

    name: ClassVar[str] = "pvflow"

    timeout: float = Field(3.0, gt=0, description="Seconds for each get, put and connection")
    read_only: bool = Field(False, description="Log the values set_values would write, "
                            "write nothing; get_values still reads")
    parallel: bool = Field(False, description="Run the puts and validations of one "
                           "set_values call concurrently and collect every channel's error")
    put_attempts: int = Field(2, ge=1, description="Tries of a put that times out")
    retry_delay: float = Field(1.0, ge=0, description="Seconds between two tries of a put")
    validations: Annotated[dict[str, Validation], WithJsonSchema({"type": "object"})] = Field(
        default_factory=dict, exclude=True,
        description="Validation per set PV, for environments that pass none to set_values")
    epics_variables: dict[str, str] | None = Field(
        None, description="EPICS_* variables for this interface (None: the process environment)")

    _context: Context | None = PrivateAttr(None)
    _context_pid: int = PrivateAttr(0)

    @property
    def context(self) -> Context:
        """The Context, created on first use: loading a plugin or building an environment
        connects to nothing, and a forked child gets a Context of its own."""
        if self._context is None or self._context_pid != os.getpid():
            self._context = Context(self.epics_variables, timeout=self.timeout)
            self._context_pid = os.getpid()
        return self._context

    def reset_interface(self) -> None:
        """Drop the Context (Badger calls this at a run's start and after forking): the next
        call searches every channel afresh. One inherited through fork is left alone, since
        its circuits belong to the parent."""
        if self._context is not None and self._context_pid == os.getpid():
            self._context.close()
        self._context = None

    @badger_interface.log
    def get_values(self, channel_names: list[str]) -> dict[str, Any]:
        """Read every channel in one bulk request; a channel that cannot be read gives NaN
        and a warning, so one bad PV does not cost the optimisation step."""
        results = self.context.get_many(channel_names, timeout=self.timeout)
        values: dict[str, Any] = {}
        for name in channel_names:
            value = results[name]
            if isinstance(value, BaseException):
                log.warning("%s cannot be read, NaN stands in for it: %s", name, value)
                values[name] = math.nan
            else:
                values[name] = plain(value)
        return values

    @badger_interface.log
    def set_values(self, channel_inputs: dict[str, Any],
                   configs: Mapping[str, Validation] | None = None) -> dict[str, Any]:
        """Put each value (waiting for completion, retrying timeouts), then run its
        validation: from ``configs`` (as Badger's environments pass them), else from the
        ``validations`` field. Returns what each validation returned (None without one).

        In order, the first failure raises and later channels stay untouched; with
        ``parallel``, all channels run and :class:`SetValuesError` carries every failure.
        """
        checks = {**self.validations, **(configs or {})}
        if self.read_only:
            for name, value in channel_inputs.items():
                log.info("read-only: would put %r to %s%s", value, name,
                         " and validate it" if name in checks else "")
            return {}
        context = self.context

        def set_one(name: str, value: Any) -> Any:
            put_with_retry(context, name, value, timeout=self.timeout,
                           attempts=self.put_attempts, delay=self.retry_delay)
            check = checks.get(name)
            return None if check is None else plain(check(set_pv=name, set_value=value,
                                                          context=context))

        inputs = {name: plain(value) for name, value in channel_inputs.items()}
        if not self.parallel:
            return {name: set_one(name, value) for name, value in inputs.items()}
        with ThreadPoolExecutor(max(1, len(inputs)), thread_name_prefix="pvflow-badger") as pool:
            futures: dict[str, Future[Any]] = {
                name: pool.submit(set_one, name, value) for name, value in inputs.items()}
        errors = {name: error for name, future in futures.items()
                  if (error := future.exception()) is not None}
        if errors:
            raise SetValuesError(errors)
        return {name: future.result() for name, future in futures.items()}

    def get_info(self, channels: list[str]) -> badger_interface.InterfaceInfo:
        """What Badger's variable table shows: per channel, whether it answers, where it
        lives, its type and access; read in one bulk request first, so dead channels cost
        one timeout together rather than one each."""
        readings = self.context.get_many(channels, timeout=self.timeout)
        rows = [self._describe(name, readings[name]) for name in channels]
        settings = {"name": self.name, "timeout": str(self.timeout),
                    "read_only": str(self.read_only), "parallel": str(self.parallel),
                    "put_attempts": str(self.put_attempts),
                    "retry_delay": str(self.retry_delay)}
        return {"interface": settings, "vars": rows}

    def _describe(self, name: str, reading: Any) -> dict[str, str]:
        """One row of :meth:`get_info`; ``reading`` is the value or the error reading it."""
        row = {"name": name, "protocol": "PVA" if name.startswith("pva://") else "CA"}
        if isinstance(reading, BaseException):
            return {**row, "connected": "no", "reason": str(reading)}
        try:
            info = self.context.info(name, timeout=self.timeout)
        except PVFlowError as error:
            return {**row, "connected": "no", "reason": str(error)}
        access = "/".join(kind for kind, allowed in (("read", info.read_access),
                                                      ("write", info.write_access)) if allowed)
        return {**row, "connected": "yes", "address": info.address or "",
                "type": info.native_type, "count": str(info.element_count), "access": access,
                "value": str(plain(reading))}
