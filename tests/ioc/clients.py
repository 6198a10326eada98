"""Independent clients for the IOC tests: caproto's threading client (CA) and p4p (PVA).

Neither shares code with pvflow, so the IOC is judged by other implementations. caproto reads
the CA address list from the environment at every search, so the environment is patched for as
long as the context lives.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class CaClient:
    """caproto threading client bound to one IOC's ports."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from caproto.threading.client import Context, SharedBroadcaster

        self._env = env
        with patched_environ(env):
            self.context = Context(SharedBroadcaster())
        self._pvs: dict[str, Any] = {}

    def _pv(self, name: str) -> Any:
        pv = self._pvs.get(name)
        if pv is None:
            with patched_environ(self._env):
                (pv,) = self.context.get_pvs(name, timeout=10)
                pv.wait_for_connection(timeout=20)
            self._pvs[name] = pv
        return pv

    def read(self, name: str, data_type: Any = None) -> Any:
        return self._pv(name).read(timeout=20, data_type=data_type)

    def get(self, name: str) -> Any:
        data = self.read(name).data
        if len(data) == 1:
            value = data[0]
            return value.decode() if isinstance(value, bytes) else value
        return data

    def text(self, name: str) -> str:
        """A long string (CHAR waveform) as text."""
        data = bytes(self.read(name).data)
        return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def put(self, name: str, value: Any) -> None:
        self._pv(name).write([value] if not isinstance(value, (list, tuple)) else value,
                             wait=True, timeout=20)

    def subscribe(self, name: str, callback: Callable[[Any], None]) -> Any:
        subscription = self._pv(name).subscribe()

        def relay(sub: Any, response: Any) -> None:
            callback(response)

        # caproto keeps only weak references to callbacks: the subscription holds ours.
        subscription.pvflow_relay = relay
        subscription.add_callback(relay)
        return subscription

    def close(self) -> None:
        self.context.disconnect()


def pva_context(env: Mapping[str, str]) -> Any:
    """A p4p client context confined to this IOC's PVA ports."""
    from p4p.client.thread import Context

    conf = {key: value for key, value in env.items() if key.startswith("EPICS_PVA_")}
    return Context("pva", conf=conf, useenv=False)


def wait_until(probe: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
