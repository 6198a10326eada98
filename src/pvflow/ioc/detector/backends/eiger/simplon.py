"""A SIMPLON HTTP API client: the Eiger's configuration, status and commands (asyncio).

Every key lives at ``http://host:port/{subsystem}/api/{version}/{group}/{key}``: a GET answers
``{"value": ...}`` (plus type, unit and limits), a PUT takes ``{"value": ...}``; commands are
PUTs to ``command/{name}``. Errors name the URL and what the detector said, because the IOC
shows them to the user as they are.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

COMMANDS = ("initialize", "arm", "trigger", "disarm", "abort", "cancel")


class SimplonError(RuntimeError):
    """The detector could not be reached or refused a request; the message says which."""


class SimplonClient:
    """One HTTP session to one detector control unit."""

    def __init__(self, host: str, port: int, version: str, timeout: float) -> None:
        self.base = f"http://{host}:{port}"
        self.version = version
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def url(self, subsystem: str, group: str, key: str) -> str:
        return f"{self.base}/{subsystem}/api/{self.version}/{group}/{key}"

    async def get(self, subsystem: str, group: str, key: str) -> Any:
        """The ``value`` of one key."""
        answer = await self._request("GET", self.url(subsystem, group, key))
        if not isinstance(answer, dict) or "value" not in answer:
            raise SimplonError(f"GET {self.url(subsystem, group, key)}: no 'value' in {answer!r}")
        return answer["value"]

    async def put(self, subsystem: str, group: str, key: str, value: Any) -> Any:
        """Set one key; returns what the detector answers (the keys the change affected)."""
        return await self._request("PUT", self.url(subsystem, group, key), {"value": value})

    async def command(self, name: str, timeout: float | None = None) -> Any:
        """Run a detector command (``arm`` answers ``{"sequence id": N}``)."""
        if name not in COMMANDS:
            raise ValueError(f"unknown SIMPLON command {name!r}; known: {', '.join(COMMANDS)}")
        return await self._request("PUT", self.url("detector", "command", name), None, timeout)

    async def api_version(self) -> str:
        """The version the detector serves (``/detector/api/version/``)."""
        answer = await self._request("GET", f"{self.base}/detector/api/version/")
        return str(answer.get("value", "")) if isinstance(answer, dict) else ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, url: str, body: Any = None,
                       timeout: float | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        options: dict[str, Any] = {}
        if body is not None:
            options["json"] = body
        if timeout is not None:
            options["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.request(method, url, **options) as response:
                text = await response.text()
                if response.status >= 400:
                    raise SimplonError(f"{method} {url}: HTTP {response.status} "
                                       f"{text.strip()[:200]}")
        except asyncio.TimeoutError:
            raise SimplonError(f"{method} {url}: no answer within "
                               f"{timeout or self._timeout.total} s") from None
        except aiohttp.ClientError as exc:
            raise SimplonError(f"{method} {url}: detector unreachable ({exc})") from None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise SimplonError(f"{method} {url}: answer is not JSON: {text[:200]!r}") from None
