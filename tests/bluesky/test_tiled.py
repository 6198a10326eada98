"""The Tiled target: embedded server (SQLite catalog, DuckDB tables) and PostgreSQL-backed."""

from __future__ import annotations

import logging
import os
import subprocess

import bluesky.plans as bp
import pytest

from pvflow.bluesky.targets.tiled import TiledTarget, connect
from pvflow.bluesky.writer import BackgroundWriter
from pvflow.demo.tiled_server import TiledServer
from tests.bluesky.paging_flyer import PagingFlyer
from tests.bluesky.postgres import PostgresCluster, find_initdb
from tests.bluesky.test_writer import engine_with, pvflow_command
from tests.bluesky.tiled_runs import check_stored, write_runs

pytest.importorskip("tiled")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    with TiledServer(tmp_path_factory.mktemp("tiled")) as server:
        yield connect(server.uri, server.api_key)


def test_embedded_tiled_stores_step_and_fly_scans(embedded, tmp_path) -> None:
    count_uid, fly_uid, _ = write_runs(embedded, tmp_path / "backup")
    check_stored(embedded, count_uid, fly_uid)


class DownAfterTheDescriptor(TiledTarget):
    def __call__(self, name: str, doc: dict) -> None:
        if name in ("event_page", "stop"):
            raise ConnectionError("Tiled unavailable")
        super().__call__(name, doc)


def test_a_run_backed_up_mid_way_replays_into_tiled_exactly_once(embedded, tmp_path,
                                                                  caplog) -> None:
    writer = BackgroundWriter(DownAfterTheDescriptor(embedded), backup_directory=tmp_path,
                              retries=1, backoff=0.001)
    engine, _ = engine_with(writer)
    with caplog.at_level(logging.ERROR, logger="pvflow.bluesky.writer"):
        (uid,) = engine(bp.fly([PagingFlyer(pages=2, rows=3)]))
        report = writer.close()
    assert set(report.spilled_runs) == {uid}
    assert "stop" not in embedded[uid].metadata  # Tiled holds half of the run

    # the command the writer logged, as a user would paste it (the key from the environment)
    hint = caplog.text.rsplit("send them on with: ", 1)[1].splitlines()[0]
    result = subprocess.run(pvflow_command(hint), capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TILED_API_KEY": embedded.context.api_key})
    assert result.returncode == 0, (hint, result.stderr)
    run = embedded[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    assert list(run["fly"].base["internal"].read()["seq_num"]) == list(range(1, 7))


@pytest.mark.skipif(find_initdb() is None, reason="PostgreSQL (initdb) is not installed")
@pytest.mark.timeout(300)
def test_tiled_on_postgresql(tmp_path) -> None:
    with PostgresCluster(("tiled_catalog", "tiled_tables")) as cluster, \
            TiledServer(tmp_path / "tiled", catalog=cluster.uri("tiled_catalog"),
                        tables=cluster.uri("tiled_tables")) as server:
        client = connect(server.uri, server.api_key)
        count_uid, fly_uid, _ = write_runs(client, tmp_path / "backup")
        check_stored(client, count_uid, fly_uid)
        assert "tables.duckdb" not in {path.name for path in (tmp_path / "tiled").iterdir()}
