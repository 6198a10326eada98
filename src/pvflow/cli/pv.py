"""`pvflow get|put|monitor|info`: caget, caput, camonitor and cainfo over the Context."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import threading
from typing import Any

import numpy as np

from ..context import Context
from ..errors import PVFlowError
from ..reading import Reading


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    common.add_argument("--json", action="store_true", help="one JSON object per line")

    get = subparsers.add_parser("get", parents=[common], help="read PVs (caget)")
    get.add_argument("names", nargs="+", metavar="NAME")
    get.add_argument("--form", choices=["value", "time", "ctrl"], default="value")
    get.add_argument("-S", "--as-string", action="store_true",
                     help="enums as their strings, char arrays as text")
    get.set_defaults(run=run_get)

    put = subparsers.add_parser("put", parents=[common], help="write a PV (caput)")
    put.add_argument("name", metavar="NAME")
    put.add_argument("values", nargs="+", metavar="VALUE", help="several values: an array")
    put.add_argument("--no-wait", action="store_true", help="do not wait for completion")
    put.set_defaults(run=run_put)

    monitor = subparsers.add_parser("monitor", parents=[common], help="print updates (camonitor)")
    monitor.add_argument("names", nargs="+", metavar="NAME")
    monitor.add_argument("-n", "--count", type=int, default=0,
                         help="stop after this many updates in all (default: run until Ctrl-C)")
    monitor.set_defaults(run=run_monitor)

    info = subparsers.add_parser("info", parents=[common], help="where a PV lives (cainfo)")
    info.add_argument("names", nargs="+", metavar="NAME")
    info.set_defaults(run=run_info)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _reading_dict(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Reading):
        fields = {key: _plain(getattr(value, key)) for key in value.__dataclass_fields__}
        return {"name": name, **{k: v for k, v in fields.items() if v not in (None, ())}}
    return {"name": name, "value": _plain(value)}


def _text(name: str, value: Any) -> str:
    if isinstance(value, Reading):
        stamp = ""
        if value.timestamp is not None:
            stamp = datetime.datetime.fromtimestamp(value.timestamp).isoformat(sep=" ") + " "
        extra = f" {value.units}" if value.units else ""
        alarm = f" (severity {value.severity}, status {value.status})" if value.severity else ""
        return f"{name} {stamp}{_format_value(value.value)}{extra}{alarm}"
    return f"{name} {_format_value(value)}"


def _format_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.size} " + " ".join(str(item) for item in value.tolist())
    return str(value)


def _emit(name: str, value: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_reading_dict(name, value), default=str), flush=True)
    else:
        print(_text(name, value), flush=True)


def run_get(args: argparse.Namespace) -> int:
    with Context(timeout=args.timeout) as context:
        results = context.get_many(args.names, form=args.form, as_string=args.as_string)
    failed = 0
    for name in args.names:
        value = results[name]
        if isinstance(value, BaseException):
            print(f"{name}: {value}", file=sys.stderr)
            failed += 1
        else:
            _emit(name, value, args.json)
    return 1 if failed else 0


def _parse_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def run_put(args: argparse.Namespace) -> int:
    values = [_parse_value(text) for text in args.values]
    value = values[0] if len(values) == 1 else values
    with Context(timeout=args.timeout) as context:
        try:
            old = context.get(args.name)
            context.put(args.name, value, wait=not args.no_wait)
            new = context.get(args.name)
        except (PVFlowError, ValueError) as exc:
            print(f"{args.name}: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"name": args.name, "old": _plain(old), "new": _plain(new)}))
    else:
        print(f"Old : {_text(args.name, old)}\nNew : {_text(args.name, new)}")
    return 0


def run_monitor(args: argparse.Namespace) -> int:
    done = threading.Event()
    lock = threading.Lock()
    seen = [0]

    def printer(name: str) -> Any:
        def show(reading: Reading) -> None:
            with lock:
                if args.count and seen[0] >= args.count:
                    return
                _emit(name, reading, args.json)
                seen[0] += 1
                if args.count and seen[0] >= args.count:
                    done.set()
        return show

    def connection(name: str) -> Any:
        return lambda connected: None if connected else print(f"{name} *** disconnected",
                                                              file=sys.stderr, flush=True)

    with Context(timeout=args.timeout) as context:
        try:
            context.connect(args.names)
        except PVFlowError as exc:
            print(exc, file=sys.stderr)
            return 1
        subscriptions = [context.subscribe(name, printer(name),
                                           connection_callback=connection(name))
                         for name in args.names]
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        for subscription in subscriptions:
            subscription.close()
    return 0


def run_info(args: argparse.Namespace) -> int:
    failed = 0
    with Context(timeout=args.timeout) as context:
        for name in args.names:
            try:
                info = context.info(name)
            except PVFlowError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if args.json:
                print(json.dumps(info.__dict__))
            else:
                access = ("read" if info.read_access else "no read") + ", " + (
                    "write" if info.write_access else "no write")
                print(f"{info.name}\n    State:         {info.state}\n"
                      f"    Host:          {info.address}\n    Access:        {access}\n"
                      f"    Native type:   DBF_{info.native_type}\n"
                      f"    Element count: {info.element_count}")
    return 1 if failed else 0
