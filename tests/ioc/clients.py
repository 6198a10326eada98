"""Independent clients for the IOC tests: caproto's threading client (CA) and p4p (PVA).

Neither shares code with pvflow, so the IOC is judged by other implementations. caproto reads
the CA address list from the environment at every search, so the environment is patched for as
long as the context lives.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: Starts a monitor that passes every (decoded) update to its argument; returns its closer.
Subscribe = Callable[[Callable[[Any], None]], Callable[[], None]]


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
        return self._decode(self.read(name))

    def text(self, name: str) -> str:
        """A long string (CHAR waveform) as text."""
        return self._decode_text(self.read(name))

    @staticmethod
    def _decode(response: Any) -> Any:
        data = response.data
        if len(data) == 1:
            value = data[0]
            return value.decode() if isinstance(value, bytes) else value
        return data

    @staticmethod
    def _decode_text(response: Any) -> str:
        data = bytes(response.data)
        return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    def put(self, name: str, value: Any) -> None:
        self._pv(name).write([value] if not isinstance(value, (list, tuple)) else value,
                             wait=True, timeout=20)

    def subscribe(self, name: str, callback: Callable[[Any], None]) -> Any:
        """Call ``callback`` with every monitor response of ``name``; ``clear()`` on the
        returned subscription removes every callback of that (shared) subscription."""
        return self._add_callback(name, callback)[0]

    def _add_callback(self, name: str, callback: Callable[[Any], None]) -> tuple[Any, int]:
        # caproto hands out one Subscription per PV and parameters, shared by all its users,
        # and keeps only weak references to callbacks: the subscription holds ours.
        subscription = self._pv(name).subscribe()

        def relay(sub: Any, response: Any) -> None:
            callback(response)

        relays = subscription.__dict__.setdefault("pvflow_relays", {})
        token = subscription.add_callback(relay)
        relays[token] = relay
        return subscription, token

    def monitor(self, name: str, text: bool = False) -> Subscribe:
        """A :data:`Subscribe` for ``name``, decoding updates as :meth:`get` (or :meth:`text`)."""
        decode = self._decode_text if text else self._decode

        def subscribe(callback: Callable[[Any], None]) -> Callable[[], None]:
            subscription, token = self._add_callback(
                name, lambda response: callback(decode(response)))

            def close() -> None:  # only our callback: others may share the subscription
                subscription.remove_callback(token)
                subscription.pvflow_relays.pop(token, None)

            return close

        return subscribe

    def wait_for(self, name: str, predicate: Callable[[Any], Any], timeout: float = 30.0,
                 what: str = "", text: bool = False) -> Any:
        """Wait on monitor updates of ``name`` until ``predicate`` holds for the latest value
        (the first update is the current value); return that value."""
        return wait_for_monitor(self.monitor(name, text), predicate, timeout,
                                f"{what} ({name})" if what else name)

    def close(self) -> None:
        self.context.disconnect()


def pva_context(env: Mapping[str, str]) -> Any:
    """A p4p client context confined to this IOC's PVA ports."""
    from p4p.client.thread import Context

    conf = {key: value for key, value in env.items() if key.startswith("EPICS_PVA_")}
    return Context("pva", conf=conf, useenv=False)


def pva_monitor(context: Any, name: str) -> Subscribe:
    """A :data:`Subscribe` for ``name`` over a p4p context, with values as ``context.get``
    returns them (error notices such as a disconnection are not values and are skipped)."""

    def subscribe(callback: Callable[[Any], None]) -> Callable[[], None]:
        def relay(value: Any) -> None:
            if not isinstance(value, Exception):
                callback(value)

        return context.monitor(name, relay).close

    return subscribe


def pvflow_monitor(context: Any, name: str) -> Subscribe:
    """A :data:`Subscribe` for ``name`` over a pvflow Context, with bare values."""

    def subscribe(callback: Callable[[Any], None]) -> Callable[[], None]:
        return context.subscribe(name, callback, form="value").close

    return subscribe


class Collector:
    """Items appended by monitor callbacks (on any thread), waited for with a timeout."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[Any]:
        with self._changed:
            return list(self.items)

    def wait_for(self, predicate: Callable[[list[Any]], Any], timeout: float = 30.0,
                 what: str = "condition") -> list[Any]:
        """Wait until ``predicate(items)`` holds; return a copy of the items at that moment."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                     f"(seen: {self.items!r})")
            return list(self.items)


def wait_for_monitors(sources: Mapping[str, Subscribe], predicate: Callable[[dict], Any],
                      timeout: float = 30.0, what: str = "condition") -> dict[str, Any]:
    """Monitor every source; wait until each has a value and ``predicate`` holds for the
    latest values (by source key); return them. The monitors are always closed."""
    latest: dict[str, Any] = {}
    changed = threading.Condition()

    def update(key: str, value: Any) -> None:
        with changed:
            latest[key] = value
            changed.notify_all()

    closers = []
    try:
        for key, subscribe in sources.items():
            closers.append(subscribe(functools.partial(update, key)))
        with changed:
            if not changed.wait_for(lambda: len(latest) == len(sources) and predicate(latest),
                                    timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                     f"(last: {latest!r})")
            return dict(latest)
    finally:
        for close in closers:
            close()


def wait_for_monitor(subscribe: Subscribe, predicate: Callable[[Any], Any],
                     timeout: float = 30.0, what: str = "condition") -> Any:
    """Monitor one source until ``predicate`` holds for its latest value; return that value."""
    return wait_for_monitors({"value": subscribe}, lambda latest: predicate(latest["value"]),
                             timeout, what)["value"]
