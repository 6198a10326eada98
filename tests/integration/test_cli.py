"""`pvflow get|put|monitor|info` as a user runs them: a subprocess with the EPICS variables,
against the C softIoc serving CA and pvAccess, judged by stdout, stderr and the exit code as
caget, caput and camonitor users read them."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.conftest import ACCESS_SECURITY, standard_db
from tests.servers import SoftIoc

# a put to T:busy.A completes only when the delayed output has run, seconds later
CLI_DB = standard_db("T:") + """
record(ao, "T:sink") {}
record(calcout, "T:busy") { field(CALC, "A") field(ODLY, "5") field(OUT, "T:sink PP") }
"""


@pytest.fixture(scope="module")
def softioc():
    ioc = SoftIoc(CLI_DB, pva=True, access_security=ACCESS_SECURITY)
    ioc.start()
    yield ioc
    ioc.close()


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pvflow", *arguments]


def pvflow(softioc, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*arguments), capture_output=True, text=True,
                          env={**os.environ, **softioc.env}, timeout=60)


def strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_get_json(softioc) -> None:
    result = pvflow(softioc, "get", "--json", "--form", "ctrl", "T:ai")
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert (reading["name"], reading["units"], reading["precision"]) == ("T:ai", "mm", 3)


def test_put_then_get(softioc) -> None:
    result = pvflow(softioc, "put", "T:long", "123")
    assert result.returncode == 0, result.stderr
    assert "New : T:long 123" in result.stdout
    assert pvflow(softioc, "get", "T:long").stdout.strip() == "T:long 123"


def test_put_array(softioc) -> None:
    assert pvflow(softioc, "put", "T:shorts", "1", "2", "3").returncode == 0
    assert pvflow(softioc, "get", "T:shorts").stdout.strip() == "T:shorts 3 1 2 3"


def test_monitor_prints_updates(softioc) -> None:
    result = pvflow(softioc, "monitor", "-c", "1", "--json", "T:string")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] == "hello"


def test_info(softioc) -> None:
    result = pvflow(softioc, "info", "T:wave")
    assert "Native type:   DBF_DOUBLE" in result.stdout and "Element count: 1000" in result.stdout


def test_errors_name_the_pv_and_exit_non_zero(softioc) -> None:
    result = pvflow(softioc, "get", "--timeout", "0.5", "T:ai", "T:nowhere")
    assert result.returncode == 1
    assert "T:ai 1.5" in result.stdout and "T:nowhere" in result.stderr
    bad = pvflow(softioc, "put", "T:long", "not-a-number")
    assert bad.returncode == 1 and "T:long" in bad.stderr and "not a number" in bad.stderr


def test_enums_show_their_choice_numbers_with_n_options_anywhere(softioc) -> None:
    result = pvflow(softioc, "get", "T:enum", "-w", "2", "pva://T:enum", "-n", "T:bool")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["T:enum 0", "pva://T:enum 0", "T:bool 0"]
    choices = pvflow(softioc, "get", "T:enum", "pva://T:enum", "T:bool")
    assert choices.stdout.splitlines() == ["T:enum zero", "pva://T:enum zero", "T:bool Off"]


def test_time_form_names_the_alarm_ctrl_form_shows_the_metadata(softioc) -> None:
    assert pvflow(softioc, "put", "T:ai", "9").returncode == 0
    timed = pvflow(softioc, "get", "--form", "time", "T:ai", "pva://T:ai")
    assert [line.split(" ", 3)[3] for line in timed.stdout.splitlines()] == \
        ["9.0 HIHI MAJOR"] * 2, timed.stdout
    ctrl = pvflow(softioc, "get", "T:ai", "T:enum", "--form", "ctrl")
    for shown in ("Precision:      3", "Units:          mm", "Alarm limits:   -8 .. 8",
                  "Warning limits: -6 .. 6", "Severity:       MAJOR", "Enums:          (3)",
                  "[ 2] two"):
        assert shown in ctrl.stdout, ctrl.stdout


def test_char_waveform_as_text_over_both_protocols(softioc) -> None:
    put = pvflow(softioc, "put", "pva://T:chars", "-S", "hello", "world")
    assert put.returncode == 0, put.stderr
    assert put.stdout.splitlines()[1] == "New : pva://T:chars hello world"
    got = pvflow(softioc, "get", "-S", "pva://T:chars", "T:chars")
    assert got.stdout.splitlines() == ["pva://T:chars hello world", "T:chars hello world"]
    watched = pvflow(softioc, "monitor", "pva://T:chars", "-S", "-c", "1")
    assert watched.stdout.rstrip().endswith(" hello world"), watched.stdout


def test_put_shows_choices_and_refused_values(softioc) -> None:
    put = pvflow(softioc, "put", "T:enum", "two")
    assert put.returncode == 0, put.stderr
    assert put.stdout.splitlines() == ["Old : T:enum zero", "New : T:enum two"]
    clamped = pvflow(softioc, "put", "T:ao", "1000")  # DRVH is 100
    assert clamped.returncode == 1 and "New : T:ao 100.0" in clamped.stdout
    assert "wrote 1000 but it reads back 100.0" in clamped.stderr
    assert pvflow(softioc, "put", "T:ao", "1000", "--no-check").returncode == 0


def test_put_timeout_says_completion_is_pending(softioc) -> None:
    result = pvflow(softioc, "put", "T:busy.A", "1", "-w", "0.5")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "has not reported its completion within 0.5 s" in message, message
    assert message.count("T:busy.A") == 1, message


def test_json_is_strict_with_one_object_per_name(softioc) -> None:
    assert pvflow(softioc, "put", "T:ao", "nan").returncode == 0
    result = pvflow(softioc, "get", "--json", "--form", "ctrl", "T:ao", "T:nowhere", "-w",
                    "0.5")
    assert result.returncode == 1
    found = [strict_json(line) for line in result.stdout.splitlines()]
    assert [item["name"] for item in found] == ["T:ao", "T:nowhere"]
    assert found[0]["value"] is None and "did not connect" in found[1]["error"]
    info = pvflow(softioc, "info", "--json", "T:nowhere", "-w", "0.5")
    assert "did not connect" in strict_json(info.stdout)["error"]
    refused = pvflow(softioc, "put", "--json", "T:ao", "1000")  # DRVH is 100
    assert refused.returncode == 1
    assert "reads back 100.0" in strict_json(refused.stdout)["error"]


class Lines:
    """The lines a running command prints, read on a thread so waits can time out."""

    def __init__(self, process: subprocess.Popen[str]):
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, wanted: str, timeout: float = 30.0) -> list[str]:
        seen = []
        while not seen or wanted not in seen[-1]:
            seen.append(self.lines.get(timeout=timeout))
        return seen


def test_monitor_shows_the_good_names_and_picks_up_a_late_one(softioc) -> None:
    late = SoftIoc('record(longout, "L:late") { field(VAL, "7") field(PINI, "YES") }')
    env = {**os.environ, **softioc.env}
    env["EPICS_CA_ADDR_LIST"] += f" 127.0.0.1:{late.ca_port}"
    process = subprocess.Popen(command("monitor", "T:string", "L:late", "T:enum", "-w", "1",
                                       "-c", "3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        lines = Lines(process)
        before = lines.until("L:late *** Not connected")
        assert any(line.startswith("T:string ") and line.endswith(" hello") for line in before)
        assert any(line.startswith("T:enum ") and {"zero", "one", "two"} & set(line.split())
                   for line in before), before
        late.start()
        assert lines.until("L:late ")[-1].endswith(" 7")
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        late.close()


def test_view_failures_are_one_line(softioc, tmp_path) -> None:
    missing = pvflow(softioc, "view", "NOPE:", "--save", str(tmp_path / "x.png"), "--timeout",
                     "0.5", "--protocol", "pva")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [missing.stderr.strip()], missing.stderr
    assert "pva://NOPE:channels did not connect within 0.5 s" in missing.stderr
    headless = {key: value for key, value in {**os.environ, **softioc.env}.items()
                if key not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    result = subprocess.run(command("view", "T:"), capture_output=True, text=True,
                            env=headless, timeout=60)
    assert result.returncode == 2
    assert "no display: use --save" in result.stderr


def test_view_panel_titles_say_channel_and_image() -> None:
    from matplotlib.figure import Figure

    from pvflow.cli.view import draw

    figure = Figure()
    frames = {"ch0": np.zeros((2, 4, 4)), "ch1": np.ones((2, 4, 4))}
    draw(figure, frames, "DET:", log_scale=False)
    assert sorted(axes.get_title() for axes in figure.axes) == \
        ["ch0 #0", "ch0 #1", "ch1 #0", "ch1 #1"]


def test_each_ioc_app_help_lists_its_variables() -> None:
    for app, variables in (("flyscan", ("FLYSCAN_PREFIX", "FLYSCAN_NELM")),
                           ("sync", ("SYNCSTER_PREFIX", "SYNCSTER_RRE_PORT")),
                           ("detector", ("DISS_EPICS_PREFIX", "DISS_DEVICE_BACKEND"))):
        result = subprocess.run(command("ioc", app, "-h"), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert all(variable in result.stdout for variable in variables), result.stdout


def test_the_io_loop_can_be_chosen_and_a_bad_choice_is_one_line(softioc) -> None:
    env = {**os.environ, **softioc.env}
    for loop in ("select", "selectors"):
        result = subprocess.run(command("get", "T:long", "pva://T:long"), capture_output=True,
                                text=True, env={**env, "PVFLOW_IO_LOOP": loop}, timeout=60)
        assert result.returncode == 0, result.stderr
        assert [line.split()[0] for line in result.stdout.splitlines()] == \
            ["T:long", "pva://T:long"]
    bad = subprocess.run(command("get", "T:long"), capture_output=True, text=True,
                         env={**env, "PVFLOW_IO_LOOP": "carrier-pigeon"}, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "pvflow get: PVFLOW_IO_LOOP='carrier-pigeon' is not " \
        "available on this system; use one of epoll, selectors, select, poll"


def test_put_joins_words_for_a_string_and_makes_arrays_otherwise(softioc) -> None:
    words = pvflow(softioc, "put", "T:string", "hello", "big", "world")
    assert words.returncode == 0, words.stderr
    assert words.stdout.splitlines()[1] == "New : T:string hello big world"
    array = pvflow(softioc, "put", "T:strings", "a", "b")
    assert array.returncode == 0, array.stderr
    assert array.stdout.splitlines()[1] == "New : T:strings 2 a b"
