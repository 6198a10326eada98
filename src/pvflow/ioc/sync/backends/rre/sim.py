"""A protocol-level Menlo Syncro RRE simulator on a pseudo-terminal (for tests and dry runs).

It speaks RBP and HRT on the master side of a pty; the IOC opens the slave side like a USB
serial device. The register tree has the introspection registers on every node, ``DEV``
(``VerHW``, ``VerFW``, ``ID``), ``LOCKBOX`` -> ``PID`` -> ``Status`` and ``TRACKER0`` ->
``STATE``. Faults can be injected: damaged CRCs in answers, NACKs, CRCERR answers, silence
(timeouts) and a disconnect (the pty closes; :meth:`reconnect` opens a new one behind the same
stable symlink, as udev's ``/dev/serial/by-id`` links do).

Run ``python -m pvflow.ioc.sync.backends.rre.sim`` to get a simulated RRE for a dry run of
``SYNCSTER_RRE_PORT=<printed path> pvflow ioc sync``.
"""

from __future__ import annotations

import os
import select
import tempfile
import threading
import tty
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import Command, FrameDecoder, Message, NackReason, encode_frame, nack_payload
from .protocol import CorruptFrame
from .registers import (REGISTER_DEFINITION, REGISTER_VERSION, SUBREGISTERS, PidState,
                            RegisterDefinition, RegisterType, TrackerState, encode_value,
                            read_reply)


@dataclass
class Entry:
    """One entry of a simulated node: a register with a value, or a sub-node."""

    definition: RegisterDefinition
    value: object = None
    children: dict[int, Entry] = field(default_factory=dict)


def _register(label: str, type_id: RegisterType, value: object, access: str = "r") -> Entry:
    return Entry(RegisterDefinition(int(type_id), label, access), value)


def _node(label: str, children: dict[int, Entry]) -> Entry:
    return Entry(RegisterDefinition(int(RegisterType.NODE), label, ""), children=children)


def default_tree() -> dict[int, Entry]:
    """The registers the sync IOC reads, at ids a real RRE could use."""
    return {
        0x01: _node("DEV", {
            0x0A: _register("ID", RegisterType.DEVICE_ID, "SIM-RRE-0001"),
            0x0B: _register("VerHW", RegisterType.VERSION, (0, 0, 1, 2)),
            0x0C: _register("VerFW", RegisterType.VERSION, (7, 3, 4, 1)),
        }),
        0x05: _node("LOCKBOX", {
            0x02: _node("PID", {
                0x01: _register("Status", RegisterType.U8_ENUM, int(PidState.LOCKED)),
            }),
        }),
        0x07: _node("TRACKER0", {
            0x03: _register("STATE", RegisterType.U8_ENUM, int(TrackerState.ACTIVE)),
        }),
    }


class SimRre:
    """Serve a simulated RRE on a pty until :meth:`close`; thread-safe setters for tests."""

    def __init__(self, link_directory: str | None = None) -> None:
        self._lock = threading.Lock()
        self._tree = default_tree()
        self._corrupt_answers = 0
        self._nack_answers: list[NackReason] = []
        self._crc_error_answers = 0
        self._silent = False
        self.requests = 0
        self.crc_errors_seen = 0
        self._directory = tempfile.TemporaryDirectory(prefix="rre-sim-", dir=link_directory)
        self.link = str(Path(self._directory.name) / "ttyRRE")
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop_read, self._stop_write = os.pipe()
        self._open_pty()

    # --------------------------------------------------------------- the pty
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no CR/LF translation: SOT is 0x0d and EOT 0x0a
        self._master, self._slave = master, slave
        path = os.ttyname(slave)
        temporary = self.link + ".new"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(path, temporary)
        os.replace(temporary, self.link)
        self._thread = threading.Thread(target=self._serve, args=(master,), daemon=True,
                                        name="rre-simulator")
        self._thread.start()

    @property
    def port(self) -> str:
        """The stable path to give the IOC (a symlink to the current pty)."""
        return self.link

    def disconnect(self) -> None:
        """Close the pty, as if the USB cable were pulled; the IOC's reads fail."""
        master, slave = self._master, self._slave
        self._master = self._slave = -1
        os.write(self._stop_write, b"x")
        if self._thread is not None:
            self._thread.join(5)
        os.read(self._stop_read, 1)
        for descriptor in (master, slave):
            if descriptor >= 0:
                os.close(descriptor)

    def reconnect(self) -> None:
        """A new pty behind the same link, as after plugging the cable back in."""
        if self._master >= 0:
            self.disconnect()
        self._open_pty()

    def close(self) -> None:
        if self._master >= 0:
            self.disconnect()
        os.close(self._stop_read)
        os.close(self._stop_write)
        self._directory.cleanup()

    def __enter__(self) -> SimRre:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- test control
    def set_pid_state(self, state: PidState | int) -> None:
        self._set(("LOCKBOX", "PID", "Status"), int(PidState(state)))

    def set_tracker_state(self, state: TrackerState | int) -> None:
        self._set(("TRACKER0", "STATE"), int(TrackerState(state)))

    def corrupt_next_answers(self, count: int = 1) -> None:
        """Damage the CRC of the next ``count`` answers."""
        with self._lock:
            self._corrupt_answers += count

    def nack_next_requests(self, count: int = 1,
                           reason: NackReason = NackReason.INTERNAL_ERROR) -> None:
        with self._lock:
            self._nack_answers.extend([reason] * count)

    def crc_error_next_requests(self, count: int = 1) -> None:
        """Answer the next ``count`` requests with CRCERR (the client must resend)."""
        with self._lock:
            self._crc_error_answers += count

    def clear_faults(self) -> None:
        """Forget every pending injected fault and answer normally again."""
        with self._lock:
            self._corrupt_answers = 0
            self._nack_answers.clear()
            self._crc_error_answers = 0
            self._silent = False

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) answering: the client times out."""
        with self._lock:
            self._silent = silent

    def _set(self, path: tuple[str, ...], value: int) -> None:
        with self._lock:
            entries = self._tree
            entry = None
            for label in path:
                entry = next(e for e in entries.values() if e.definition.label == label)
                entries = entry.children
            if entry is None:
                raise ValueError(f"no register {path}")
            entry.value = value

    # --------------------------------------------------------------- serving
    def _serve(self, master: int) -> None:
        decoder = FrameDecoder()
        while True:
            try:
                ready, _, _ = select.select([master, self._stop_read], [], [])
            except (OSError, ValueError):
                return
            if self._stop_read in ready:
                return
            try:
                data = os.read(master, 4096)
            except OSError:
                return  # EIO: nobody has the slave open at the moment; wait for the next open
            if not data:
                return
            for event in decoder.receive(data):
                answer = self._answer(event)
                if answer is not None:
                    try:
                        os.write(master, answer)
                    except OSError:
                        return

    def _answer(self, event: Message | CorruptFrame) -> bytes | None:
        with self._lock:
            self.requests += 1
            if self._silent:
                return None
            if isinstance(event, CorruptFrame):
                self.crc_errors_seen += 1
                return encode_frame(Message(0xFF, 0xFF, Command.CRCERR))
            request = event
            if self._crc_error_answers:
                self._crc_error_answers -= 1
                return encode_frame(self._reply(request, Command.CRCERR))
            if self._nack_answers:
                reason = self._nack_answers.pop(0)
                return encode_frame(self._reply(request, Command.NACK, nack_payload(reason)))
            message = self._handle(request)
            frame = encode_frame(message)
            if self._corrupt_answers:
                self._corrupt_answers -= 1
                damaged = bytearray(frame)
                damaged[-2] ^= 0x01  # flip a bit of the CRC's last byte
                if damaged[-2] in (0x0A, 0x0D, 0x5E):
                    damaged[-2] ^= 0x03  # keep the frame boundaries intact
                frame = bytes(damaged)
            return frame

    @staticmethod
    def _reply(request: Message, command: Command, payload: bytes = b"") -> Message:
        return Message(request.source, request.destination, command, payload)

    def _handle(self, request: Message) -> Message:
        if request.command == Command.ECHO:
            return self._reply(request, Command.REPLY, request.payload[:100])
        if request.command == Command.WRITE:
            return self._reply(request, Command.NACK, nack_payload(NackReason.NOT_WRITABLE))
        if request.command != Command.READ or not request.payload:
            return self._reply(request, Command.NACK, nack_payload(NackReason.WRONG_ARGUMENT))
        address = request.payload
        try:
            data = self._read(address)
        except LookupError:
            return self._reply(request, Command.NACK, nack_payload(NackReason.WRONG_ARGUMENT))
        return read_reply(request, data)

    def _entries(self, node_path: bytes) -> dict[int, Entry]:
        entries = self._tree
        for register in node_path:
            entry = entries[register]
            if not entry.definition.is_node:
                raise LookupError("not a node")
            entries = entry.children
        return entries

    def _read(self, address: bytes) -> bytes:
        first, rest = address[0], address[1:]
        if first == SUBREGISTERS:
            ids = sorted(self._entries(rest)) + [REGISTER_VERSION, SUBREGISTERS,
                                                 REGISTER_DEFINITION]
            return bytes(ids)
        if first == REGISTER_VERSION:
            self._entries(rest)
            return bytes((2, 1, 1))
        if first == REGISTER_DEFINITION:
            if not rest:
                raise LookupError("RegDef needs an entry id")
            node, register = rest[:-1], rest[-1]
            introspection = {
                REGISTER_VERSION: RegisterDefinition(RegisterType.REGVERS, "RegVers", "r"),
                SUBREGISTERS: RegisterDefinition(RegisterType.SUBREGS, "Subregs", "r"),
                REGISTER_DEFINITION: RegisterDefinition(RegisterType.REGDEF, "RegDef", "r"),
            }
            definition = introspection.get(register)
            if definition is None:
                definition = self._entries(node)[register].definition
            return encode_value(RegisterType.REGDEF, definition)
        entry = self._entries(address[:-1])[address[-1]]
        if entry.definition.is_node or "r" not in entry.definition.access:
            raise LookupError("not readable")
        return encode_value(entry.definition.type_id, entry.value)


def main() -> int:
    """Serve a simulated RRE until Ctrl-C, printing the port to use."""
    import signal

    with SimRre() as simulator:
        print(f"simulated RRE on {simulator.port} (LOCKED, tracker ACTIVE); Ctrl-C stops",
              flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
