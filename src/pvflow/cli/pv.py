"""`pvflow get|put|monitor|info`: caget, caput, camonitor and cainfo over the Context.

Flags and output follow the EPICS tools, so habits carry over: enums show their choice (``-n``
for the number), ``-S`` shows char arrays as text, ``-w`` is the timeout, and options may come
anywhere among the names. ``--json`` prints one strict JSON object per name, failures included.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
from typing import Any

import numpy as np

from ..context import Context
from ..errors import PVFlowError
from ..reading import Reading
from . import display

CTRL = "ctrl"  # the form that carries an enum's choices


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-w", "--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds to wait for connection and answers (default 5)")
    common.add_argument("--json", action="store_true",
                        help="one JSON object per name (failures carry an `error` field)")
    values = argparse.ArgumentParser(add_help=False)
    values.add_argument("-S", "--as-string", action="store_true",
                        help="char arrays as text (long strings)")
    values.add_argument("-n", "--numbers", action="store_true",
                        help="enums as numbers (default: their choices)")

    get = subparsers.add_parser("get", parents=[common, values], help="read PVs (caget)")
    get.add_argument("names", nargs="+", metavar="NAME")
    get.add_argument("--form", choices=["value", "time", CTRL], default="value",
                     help="time: timestamp and alarm; ctrl: also units, limits, precision, "
                          "enum choices")
    get.set_defaults(run=run_get)

    put = subparsers.add_parser("put", parents=[common, values], help="write a PV (caput)")
    put.add_argument("name", metavar="NAME")
    put.add_argument("values", nargs="+", metavar="VALUE",
                     help="several values: an array; with -S: the text for a char array")
    put.add_argument("--no-wait", action="store_true", help="do not wait for completion")
    put.add_argument("--no-check", action="store_true",
                     help="do not fail when the read-back differs from the value written "
                          "(busy records, acquire buttons)")
    put.set_defaults(run=run_put)

    monitor = subparsers.add_parser("monitor", parents=[common, values],
                                    help="print updates (camonitor)")
    monitor.add_argument("names", nargs="+", metavar="NAME")
    monitor.add_argument("-c", "--count", type=int, default=0,
                         help="stop after this many updates in all (default: run until Ctrl-C)")
    monitor.set_defaults(run=run_monitor)

    info = subparsers.add_parser("info", parents=[common], help="where a PV lives (cainfo)")
    info.add_argument("names", nargs="+", metavar="NAME")
    info.set_defaults(run=run_info)

    for parser in (get, put, monitor, info):
        parser.intermixed = True


def open_context(args: argparse.Namespace) -> Context:
    """A Context, or one line about the bad setting (an EPICS_* or PVFLOW_* variable)."""
    try:
        return Context(timeout=args.timeout)
    except ValueError as exc:
        raise SystemExit(f"pvflow {args.command}: {exc}") from None


def error_text(name: str, error: BaseException) -> str:
    """The error's message, prefixed with the name unless it already says it."""
    message = str(error)
    pv = getattr(error, "pv", None)
    return message if name in message or (pv and pv in message) else f"{name}: {message}"


def show(name: str, result: Any, form: str, args: argparse.Namespace) -> None:
    """Print one result: JSON on stdout, or caget text (failures on stderr)."""
    if args.json:
        found = {"name": name, "error": error_text(name, result)} \
            if isinstance(result, BaseException) else display.record(name, result, form,
                                                                     args.numbers)
        print(display.dumps(found), flush=True)
    elif isinstance(result, BaseException):
        print(error_text(name, result), file=sys.stderr, flush=True)
    else:
        print(display.text(name, result, form, args.numbers), flush=True)


def run_get(args: argparse.Namespace) -> int:
    # enums are read with their choices unless numbers were asked for (or -S reads them as text)
    form = args.form if args.numbers or args.as_string else CTRL
    with open_context(args) as context:
        results = context.get_many(args.names, form=form, as_string=args.as_string)
    for name in dict.fromkeys(args.names):
        show(name, results[name], args.form, args)
    return 1 if any(isinstance(value, BaseException) for value in results.values()) else 0


def _parse_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def value_to_write(args: argparse.Namespace, old: Reading) -> Any:
    """The values as the PV takes them: several words for a string PV are one text, as caput
    joins them; several values for any other PV are an array."""
    if args.as_string:  # caput -S: the text as the codes of a char array, NUL-terminated
        return list(" ".join(args.values).encode("utf-8")) + [0]
    if isinstance(old.value, str):
        return " ".join(args.values)
    values = [_parse_value(text) for text in args.values]
    return values[0] if len(values) == 1 else values


def same(written: Any, reading: Reading, as_string: bool) -> bool:
    """Whether the read-back holds what was written (as a number, a choice or a text)."""
    if as_string:
        return bytes(written[:-1]).decode("utf-8", "replace") == reading.value
    if isinstance(written, str):
        return written in (str(reading.value), str(display.choice(reading)))
    if isinstance(written, list) and any(isinstance(item, str) for item in written):
        return [str(item) for item in written] == [str(item) for item in reading.value]
    try:
        wanted = np.asarray(written, dtype=np.float64).reshape(-1)
        found = np.asarray(reading.value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return False
    return wanted.shape == found.shape and bool(
        np.allclose(wanted, found, rtol=1e-6, atol=0.0, equal_nan=True))


def run_put(args: argparse.Namespace) -> int:
    with open_context(args) as context:
        try:
            old = context.get(args.name, form=CTRL, as_string=args.as_string)
            value = value_to_write(args, old)
            context.put(args.name, value, wait=not args.no_wait)
            new = context.get(args.name, form=CTRL, as_string=args.as_string)
        except (PVFlowError, ValueError) as exc:
            show(args.name, exc, "value", args)
            return 1
    problem = None
    if not (args.no_wait or args.no_check or same(value, new, args.as_string)):
        problem = (f"{args.name}: wrote {' '.join(args.values)} but it reads back "
                   f"{display.format_value(display.shown_value(new, args.numbers))} (the "
                   f"record refused, limited or changed the value)")
    if args.json:
        found = {"name": args.name,
                 "old": display.plain(display.shown_value(old, args.numbers)),
                 "new": display.plain(display.shown_value(new, args.numbers))}
        print(display.dumps({**found, "error": problem} if problem else found))
    else:
        print(f"Old : {display.text(args.name, old, 'value', args.numbers)}\n"
              f"New : {display.text(args.name, new, 'value', args.numbers)}")
        if problem:
            print(problem, file=sys.stderr)
    return 1 if problem else 0


class MonitorPrinter:
    """camonitor's output: every update of every name, ``*** Not connected`` for names that
    do not connect in time (they are shown once they do), ``*** disconnected`` on loss."""

    def __init__(self, context: Context, args: argparse.Namespace):
        self.context = context
        self.args = args
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.connected: set[str] = set()
        self.choices: dict[str, tuple[str, ...]] = {}
        self.seen = 0

    def start(self, name: str) -> Any:
        return self.context.subscribe(name, lambda reading: self.update(name, reading),
                                      connection_callback=lambda up: self.connection(name, up),
                                      as_string=self.args.as_string)

    def connection(self, name: str, connected: bool) -> None:
        with self.lock:
            if connected:
                self.connected.add(name)
            elif name in self.connected:
                self.connected.discard(name)
                self.notice(name, "*** disconnected")
        if connected and not (self.args.numbers or self.args.as_string):
            try:  # on the subscription's worker: its values wait until the choices are known
                self.choices[name] = self.context.get(name, form=CTRL).enum_strings
            except PVFlowError:
                self.choices[name] = ()

    def report_unconnected(self) -> None:
        with self.lock:
            for name in dict.fromkeys(self.args.names):
                if name not in self.connected:
                    self.notice(name, "*** Not connected (PV not found)")

    def notice(self, name: str, text: str) -> None:
        if self.args.json:
            print(display.dumps({"name": name, "error": text.strip("* ")}), flush=True)
        else:
            print(f"{name} {text}", flush=True)

    def update(self, name: str, reading: Reading) -> None:
        choices = self.choices.get(name)
        if choices:
            reading = dataclasses.replace(reading, enum_strings=choices)
        with self.lock:
            if self.args.count and self.seen >= self.args.count:
                return
            show(name, reading, "time", self.args)
            self.seen += 1
            if self.args.count and self.seen >= self.args.count:
                self.done.set()


def run_monitor(args: argparse.Namespace) -> int:
    with open_context(args) as context:
        printer = MonitorPrinter(context, args)
        subscriptions = [printer.start(name) for name in dict.fromkeys(args.names)]
        try:
            try:
                context.connect(args.names)
            except PVFlowError:
                printer.report_unconnected()
            while not printer.done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        for subscription in subscriptions:
            subscription.close()
    return 0


def run_info(args: argparse.Namespace) -> int:
    failed = 0
    with open_context(args) as context:
        for name in args.names:
            try:
                info = context.info(name)
            except PVFlowError as exc:
                failed += 1
                if args.json:
                    print(display.dumps({"name": name, "error": error_text(name, exc)}))
                else:
                    print(error_text(name, exc), file=sys.stderr)
                continue
            if args.json:
                print(display.dumps(info.__dict__))
            else:
                access = ("read" if info.read_access else "no read") + ", " + (
                    "write" if info.write_access else "no write")
                print(f"{info.name}\n    State:         {info.state}\n"
                      f"    Host:          {info.address}\n    Access:        {access}\n"
                      f"    Native type:   DBF_{info.native_type}\n"
                      f"    Element count: {info.element_count}")
    return 1 if failed else 0
