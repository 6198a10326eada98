"""BackgroundWriter: the RunEngine never waits for the store; nothing is lost or reordered."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import threading

import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from event_model import unpack_event_page
from ophyd.sim import det, motor

from pvflow.bluesky.targets.jsonl import JsonLinesTarget, encode, read_documents
from pvflow.bluesky.targets.replay import replay
from pvflow.bluesky.writer import BackgroundWriter
from tests.bluesky.documents import validate_run
from tests.bluesky.paging_flyer import PagingFlyer


class BlockedTarget:
    """Stores documents only once ``release`` is set; ``entered`` tells it has been called."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.documents: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.entered.set()
        assert self.release.wait(60), "the test never released the target"
        self.documents.append((name, doc))


class FailingTarget:
    """Raises on the documents ``fails(name, doc)`` picks (``times`` times each, or always)."""

    def __init__(self, fails, times: int | None = None) -> None:
        self.fails = fails
        self.times = times
        self.failures = 0
        self.documents: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        if self.fails(name, doc) and (self.times is None or self.failures < self.times):
            self.failures += 1
            raise ConnectionError(f"store unavailable ({name})")
        self.documents.append((name, doc))


def rows(documents) -> list[tuple[str, dict]]:
    """Documents with every page unpacked into events: what a store must hold, row by row."""
    flat = []
    for name, doc in documents:
        if name == "event_page":
            flat.extend(("event", event) for event in unpack_event_page(doc))
        else:
            flat.append((name, doc))
    return flat


def engine_with(writer) -> tuple[RunEngine, list]:
    engine = RunEngine({})
    emitted: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: emitted.append((name, doc)))
    engine.subscribe(writer)
    return engine, emitted


def test_runengine_finishes_while_the_target_is_blocked(tmp_path) -> None:
    target = BlockedTarget()
    writer = BackgroundWriter(target, backup_directory=tmp_path)
    engine, emitted = engine_with(writer)
    engine(bp.count([det], num=5))
    engine(bp.fly([PagingFlyer(pages=6, rows=4)]))
    # Both runs are over, yet the target has not stored a single document: it is blocked
    # in its first call. The RunEngine did not wait for it.
    assert target.entered.is_set() and target.documents == []
    assert writer.pending == len(emitted)
    target.release.set()
    assert writer.flush(60)
    report = writer.close()
    assert rows(target.documents) == rows(emitted), "every row, in order"
    # the pages queued behind the blocked call went out merged into one
    pages = [doc for name, doc in target.documents if name == "event_page"]
    assert len(pages) == 1 and len(pages[0]["seq_num"]) == 24
    assert writer.merged_pages == 5
    assert report.spilled_runs == {} and report.retries == 0
    for run_start in [index for index, (name, _) in enumerate(target.documents)
                      if name == "start"]:
        run = target.documents[run_start:]
        validate_run(run[:next(i for i, (name, _) in enumerate(run) if name == "stop") + 1])


def test_retries_keep_order(tmp_path) -> None:
    target = FailingTarget(lambda name, doc: name in ("descriptor", "event"), times=3)
    writer = BackgroundWriter(target, backup_directory=tmp_path, backoff=0.001)
    engine, emitted = engine_with(writer)
    engine(bp.scan([det], motor, 0, 1, 4))
    report = writer.close()
    assert target.documents == emitted
    assert report.retries == 3 and report.spilled_runs == {}
    assert list(tmp_path.iterdir()) == []


def test_a_failing_run_goes_whole_to_the_backup_and_replays(tmp_path, caplog) -> None:
    backup = tmp_path / "backup"
    target = FailingTarget(lambda name, doc: name == "event_page")  # refuses the fly pages
    writer = BackgroundWriter(target, backup_directory=backup, retries=2, backoff=0.001)
    engine, emitted = engine_with(writer)
    with caplog.at_level(logging.ERROR, logger="pvflow.bluesky.writer"):
        (fly_uid,) = engine(bp.fly([PagingFlyer(pages=3, rows=5)]))
        (count_uid,) = engine(bp.count([det], num=3))
        report = writer.close()
    assert set(report.spilled_runs) == {fly_uid}
    assert "pvflow replay" in caplog.text and str(backup) in caplog.text
    # the run that did not fail went to the target; the other is whole in its backup file
    assert {doc["uid"] for name, doc in target.documents if name == "start"} == {fly_uid,
                                                                                  count_uid}
    fly_documents = [(name, doc) for name, doc in emitted
                     if run_of(emitted, name, doc) == fly_uid]
    backed_up = list(read_documents(report.spilled_runs[fly_uid]))
    assert rows(backed_up) == rows(fly_documents)

    store = tmp_path / "store"
    result = replay(backup, JsonLinesTarget(store))
    assert result.failed == {} and result.documents == len(backed_up)
    replayed = list(read_documents(store / f"{fly_uid}.jsonl"))
    assert rows(replayed) == rows(fly_documents)
    validate_run(replayed)
    assert list(backup.glob("*.jsonl")) == [], "a replayed file is renamed, not replayed twice"


def run_of(documents, name: str, doc: dict) -> str:
    if name in ("start",):
        return doc["uid"]
    if name in ("stop", "descriptor"):
        return doc["run_start"]
    descriptors = {d["uid"]: d["run_start"] for n, d in documents if n == "descriptor"}
    return descriptors[doc["descriptor"]]


def test_jsonl_target_writes_one_file_per_run(tmp_path) -> None:
    with BackgroundWriter(JsonLinesTarget(tmp_path), backup_directory=tmp_path / "b") as writer:
        engine, emitted = engine_with(writer)
        uids = engine(bp.count([det], num=2)) + engine(bp.count([det], num=3))
    assert sorted(path.stem for path in tmp_path.glob("*.jsonl")) == sorted(uids)
    for uid in uids:
        validate_run(list(read_documents(tmp_path / f"{uid}.jsonl")))


def test_closed_writer_refuses_documents(tmp_path) -> None:
    writer = BackgroundWriter(JsonLinesTarget(tmp_path), backup_directory=tmp_path)
    writer.close()
    with pytest.raises(RuntimeError, match="closed, cannot take the start document"):
        writer("start", {"uid": "x", "time": 0})


def test_replay_command(tmp_path, capsys) -> None:
    from pvflow.cli.main import main

    writer = BackgroundWriter(FailingTarget(lambda name, doc: True),
                              backup_directory=tmp_path / "b", retries=0)
    engine, emitted = engine_with(writer)
    (uid,) = engine(bp.count([det], num=2))
    writer.close()
    assert main(["replay", str(tmp_path / "b"), "--jsonl", str(tmp_path / "store")]) == 0
    assert "5 documents from 1 file(s); 0 file(s) failed" in capsys.readouterr().out
    stored = [json.loads(encode(name, doc)) for name, doc in
              read_documents(tmp_path / "store" / f"{uid}.jsonl")]
    assert stored == [json.loads(encode(name, doc)) for name, doc in emitted]  # JSON's types
    assert main(["replay", str(tmp_path / "missing"), "--jsonl", str(tmp_path)]) == 2


def test_report_counts_as_delivered_only_what_the_store_confirmed(tmp_path) -> None:
    """A store that takes a run's rows and then fails at its stop (Tiled's writer buffers
    rows until then) has stored none of it: all of the run is in the backup, and the report
    says so, document for document."""
    backup = tmp_path / "backup"
    target = FailingTarget(lambda name, doc: name == "stop" and doc["num_events"])
    writer = BackgroundWriter(target, backup_directory=backup, retries=1, backoff=0.001)
    engine, emitted = engine_with(writer)
    (failed_uid,) = engine(bp.count([det], num=4))
    report = writer.close()
    backed_up = list(read_documents(report.spilled_runs[failed_uid]))
    assert report.spilled_documents == len(backed_up) == len(emitted)
    assert report.delivered == 0 and report.awaiting_stop == 0


def test_documents_of_an_open_run_await_its_stop(tmp_path) -> None:
    target = FailingTarget(lambda name, doc: False)
    writer = BackgroundWriter(target, backup_directory=tmp_path)
    start = {"uid": "u1", "time": 0.0}
    writer("start", start)
    writer("descriptor", {"uid": "d1", "run_start": "u1", "time": 0.0, "data_keys": {}})
    assert writer.flush(10)
    assert (writer.report.delivered, writer.report.awaiting_stop) == (0, 2)
    writer("stop", {"uid": "s1", "run_start": "u1", "time": 0.0, "exit_status": "success"})
    report = writer.close()
    assert (report.delivered, report.awaiting_stop, report.spilled_documents) == (3, 0, 0)


class BrokenStore(JsonLinesTarget):
    """A JSON lines store whose disk fails: the writer backs its runs up."""

    def __call__(self, name: str, doc: dict) -> None:
        raise OSError("no space left on device")


def pvflow_command(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "pvflow"
    return [sys.executable, "-m", "pvflow", *words[1:]]


def test_the_logged_replay_hint_is_a_command_that_works(tmp_path, caplog) -> None:
    store = tmp_path / "the store"
    writer = BackgroundWriter(BrokenStore(store), backup_directory=tmp_path / "b", retries=0)
    engine, _ = engine_with(writer)
    with caplog.at_level(logging.ERROR, logger="pvflow.bluesky.writer"):
        (uid,) = engine(bp.count([det], num=2))
        writer.close()
    hint = caplog.text.rsplit("send them on with: ", 1)[1].splitlines()[0]
    result = subprocess.run(pvflow_command(hint), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (hint, result.stderr)
    assert len(list(read_documents(store / f"{uid}.jsonl"))) == 5


def test_replay_to_an_unreachable_tiled_says_so_in_one_line(tmp_path) -> None:
    backup = tmp_path / "b"
    backup.mkdir()
    result = subprocess.run(pvflow_command(f"pvflow replay {backup} --tiled http://127.0.0.1:1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("pvflow replay: cannot reach Tiled at http://127.0.0.1:1")
    assert len(result.stderr.splitlines()) == 1, result.stderr
