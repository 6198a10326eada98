"""Fixtures for the ophyd layer: pvflow installed as ophyd's control layer over a Context
bound to the test module's own server."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest


def _installed(env: Mapping[str, str]) -> Iterator[Any]:
    import ophyd

    from pvflow import Context
    from pvflow.ophyd import use_pvflow

    previous = ophyd.cl
    context = Context(env, timeout=10.0)
    yield use_pvflow(context)
    ophyd.cl = previous
    context.close()


@pytest.fixture(scope="module")
def install_pvflow() -> Callable[[Mapping[str, str]], Iterator[Any]]:
    """``yield from install_pvflow(env)`` in a module fixture: pvflow as ophyd's layer over a
    Context on ``env`` until the fixture ends."""
    return _installed
