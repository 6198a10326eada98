"""Blocking RBP/HRT client for a Menlo Syncro RRE on a serial port (pyserial).

Transport inside the sync app. Every call blocks for at most its timeout; the ``rre`` backend
runs them in a worker thread so the IOC's event loop never waits on the serial line. Failures
are :class:`RreError` subclasses whose message names the port and the request, because they end
up verbatim in the IOC's ``error`` PV.
"""

from __future__ import annotations

import termios
import time
from collections.abc import Sequence
from typing import Any

from .protocol import (BROADCAST_ADDRESS, Command, CorruptFrame, FrameDecoder, Message,
                           encode_frame, nack_reason)
from .registers import (RegisterDefinition, decode_value, definition_address,
                            mangle_label, parse_definition, read_request, register_address,
                            split_read_reply, subregisters_address)

DEFAULT_TIMEOUT = 3.0
CRC_RETRIES = 5  # a CRCERR answer means our frame was damaged on the line: send it again
BAUD_RATE = 115200


class RreError(Exception):
    """The RRE could not be talked to; the message says why, naming the port."""


class RreTimeoutError(RreError, TimeoutError):
    """No (complete) answer within the timeout."""


class RreNackError(RreError):
    """The device refused the request (NACK)."""


class RreProtocolError(RreError):
    """The device answered something that does not fit the request (or only corrupt frames)."""


class RreDisconnectedError(RreError, ConnectionError):
    """The serial port went away (unplugged, or its pseudo-terminal closed)."""


class RreClient:
    """Request/answer over one serial port; HRT paths resolved by introspection and cached."""

    def __init__(self, port: str, *, timeout: float = DEFAULT_TIMEOUT,
                 source: int = BROADCAST_ADDRESS, destination: int = BROADCAST_ADDRESS,
                 serial_port: Any = None):
        if not port:
            raise ValueError("port must name a serial device, e.g. /dev/ttyUSB0")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.port = port
        self.timeout = timeout
        self.source = source
        self.destination = destination
        self._serial = serial_port
        self._decoder = FrameDecoder()
        self._paths: dict[tuple[str, ...], tuple[bytes, RegisterDefinition]] = {}
        self.corrupt_frames = 0

    # ------------------------------------------------------------------ port
    def open(self) -> None:
        """Open the serial port (115200 8N1, no flow control), if not open yet."""
        if self._serial is not None and self._serial.is_open:
            return
        import serial

        try:
            self._serial = serial.Serial(self.port, baudrate=BAUD_RATE, bytesize=8,
                                         parity="N", stopbits=1, timeout=0.05,
                                         write_timeout=self.timeout, exclusive=True)
        except (serial.SerialException, OSError) as error:
            raise RreDisconnectedError(f"cannot open {self.port}: {error}") from error
        self._decoder.reset()

    def close(self) -> None:
        serial_port, self._serial = self._serial, None
        if serial_port is not None:
            try:
                serial_port.close()
            except Exception:  # noqa: BLE001 - closing a dead port may fail; it is gone anyway
                pass
        self._paths.clear()

    @property
    def is_open(self) -> bool:
        return self._serial is not None and bool(self._serial.is_open)

    # -------------------------------------------------------------- requests
    def request(self, message: Message, *, timeout: float | None = None) -> Message:
        """Send ``message`` and return the device's answer (DGRAM, ACK or REPLY).

        A CRCERR answer resends the request (up to 5 times); a NACK raises
        :class:`RreNackError`; corrupt frames from the device are skipped while waiting.
        """
        self.open()
        timeout = self.timeout if timeout is None else timeout
        for _attempt in range(1 + CRC_RETRIES):
            self._write(encode_frame(message), message)
            answer = self._read_answer(message, timeout)
            if answer.command == Command.CRCERR:
                continue
            if answer.command == Command.NACK:
                raise RreNackError(f"{self.port}: {message} refused: {nack_reason(answer)}")
            if answer.command in (Command.DGRAM, Command.ACK, Command.REPLY):
                return answer
            raise RreProtocolError(f"{self.port}: unexpected answer {answer} to {message}")
        raise RreProtocolError(f"{self.port}: {message} rejected with CRCERR "
                               f"{1 + CRC_RETRIES} times")

    def _write(self, frame: bytes, message: Message) -> None:
        import serial

        try:
            self._serial.reset_input_buffer()
            self._serial.write(frame)
            self._serial.flush()
        except (serial.SerialException, OSError, termios.error) as error:
            self.close()
            raise RreDisconnectedError(f"{self.port}: writing {message} failed: {error}") \
                from error

    def _read_answer(self, message: Message, timeout: float) -> Message:
        import serial

        deadline = time.monotonic() + timeout
        last_corruption = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = f" (last corrupt frame: {last_corruption})" if last_corruption else ""
                raise RreTimeoutError(f"{self.port}: no answer to {message} within "
                                      f"{timeout:g} s{detail}")
            try:
                waiting = self._serial.in_waiting
                data = self._serial.read(max(1, waiting))
            except (serial.SerialException, OSError, termios.error) as error:
                self.close()
                raise RreDisconnectedError(f"{self.port}: reading the answer to {message} "
                                           f"failed: {error}") from error
            for event in self._decoder.receive(data):
                if isinstance(event, CorruptFrame):
                    self.corrupt_frames += 1
                    last_corruption = event.reason
                    continue
                return event

    # ------------------------------------------------------------------- HRT
    def read(self, address: bytes) -> bytes:
        """The data of the register at ``address`` (the DGRAM's address byte removed)."""
        answer = self.request(read_request(address, self.source, self.destination))
        if answer.command != Command.DGRAM:
            raise RreProtocolError(f"{self.port}: READ {address.hex(' ')} answered by "
                                   f"{answer.command_name}")
        _address_byte, data = split_read_reply(answer.payload)
        return data

    def subregisters(self, node: bytes = b"") -> list[int]:
        data = self.read(subregisters_address(node))
        return list(data)

    def definition(self, node: bytes, register: int) -> RegisterDefinition:
        try:
            return parse_definition(self.read(definition_address(node, register)))
        except ValueError as error:
            raise RreProtocolError(f"{self.port}: bad RegDef of {register_address(node, register).hex(' ')}: "
                                   f"{error}") from error

    def resolve(self, path: Sequence[str]) -> tuple[bytes, RegisterDefinition]:
        """Address and definition of the register at a label path, by introspection (cached)."""
        key = tuple(mangle_label(label) for label in path)
        if not key:
            raise ValueError("the register path is empty")
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        node = b""
        definition: RegisterDefinition | None = None
        for depth, name in enumerate(key):
            found = None
            for register in self.subregisters(node):
                candidate = self.definition(node, register)
                if candidate.name == name:
                    found = (register, candidate)
                    break
            if found is None:
                where = ".".join(key[:depth]) or "the root"
                raise RreProtocolError(f"{self.port}: no entry {name!r} in {where}")
            node = register_address(node, found[0])
            definition = found[1]
            if depth < len(key) - 1 and not definition.is_node:
                raise RreProtocolError(f"{self.port}: {'.'.join(key[:depth + 1])} is a "
                                       f"register, not a node")
        if definition is None:  # unreachable: the path is not empty
            raise ValueError("the register path is empty")
        self._paths[key] = (node, definition)
        return node, definition

    def read_path(self, path: Sequence[str]) -> object:
        """Decoded value of the register at a label path, e.g. ``("LOCKBOX", "PID", "Status")``."""
        address, definition = self.resolve(path)
        if "r" not in definition.access:
            raise RreProtocolError(f"{self.port}: {'.'.join(path)} is not readable "
                                   f"(access {definition.access!r})")
        data = self.read(address)
        try:
            return decode_value(definition.type_id, data)
        except ValueError as error:
            raise RreProtocolError(f"{self.port}: {'.'.join(path)}: {error}") from error
