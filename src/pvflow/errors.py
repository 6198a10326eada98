"""The one exception tree of pvflow (base layer: imports nothing of pvflow).

    PVFlowError
    ├── PVTimeoutError (also TimeoutError)   no answer in time: search, connect, get, put
    ├── DisconnectedError (also ConnectionError)  the circuit closed under a pending request
    ├── AccessDeniedError (also PermissionError)  the server refuses read or write access
    ├── PutError                              the server answered a put with an error status
    └── ProtocolError                         a peer broke the wire protocol
        ├── LocalProtocolError                we were asked to send something invalid
        └── RemoteProtocolError               the server sent something invalid

Every error names the PV it is about (``.pv``) and, when known, the server (``.address``),
because in a beamline with thousands of PVs an error without a name is useless.
"""

from __future__ import annotations


class PVFlowError(Exception):
    """Root of every error pvflow raises on purpose."""

    def __init__(self, message: str, *, pv: str | None = None, address: str | None = None):
        super().__init__(message)
        self.pv = pv
        self.address = address


class PVTimeoutError(PVFlowError, TimeoutError):
    """No answer in time (name search, connection, get or put completion)."""


class DisconnectedError(PVFlowError, ConnectionError):
    """The circuit carrying a request closed before the answer came."""


class AccessDeniedError(PVFlowError, PermissionError):
    """The server's access rights forbid the read or write."""


class PutError(PVFlowError):
    """The server answered a put with an error status (record rejected the value)."""


class ProtocolError(PVFlowError):
    """A party broke the wire protocol."""


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The server sent something malformed; the circuit that carried it is closed."""


def naming_pv(error: BaseException, name: str, address: str | None = None) -> BaseException:
    """``error`` as one request on ``name`` sees it: a circuit's loss names no PV by itself,
    and an error without one is useless among thousands of PVs."""
    if isinstance(error, PVFlowError) and error.pv is None:
        kind = type(error) if isinstance(error, DisconnectedError) else DisconnectedError
        return kind(f"{name}: {error}", pv=name, address=error.address or address)
    return error


def no_answer(what: str, shown: str, pv: str, address: str | None,
              timeout: float | None) -> PVTimeoutError:
    """The timeout of a request on a connected channel. A put that waits for completion has
    been sent and taken: only the server's completion report is missing (a busy record)."""
    if what == "put":
        return PVTimeoutError(f"put to {shown} sent, but {address} has not reported its "
                              f"completion within {timeout} s (the record is still busy)",
                              pv=pv, address=address)
    return PVTimeoutError(f"{what} of {shown}: no answer from {address} within {timeout} s",
                          pv=pv, address=address)
