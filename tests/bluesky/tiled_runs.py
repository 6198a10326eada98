"""Write runs into a Tiled server through the BackgroundWriter and read them back."""

from __future__ import annotations

import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import det

from pvflow.bluesky.targets.tiled import TiledTarget
from pvflow.bluesky.writer import BackgroundWriter
from tests.bluesky.paging_flyer import PagingFlyer


def write_runs(client, backup) -> tuple[str, str, list]:
    """A step scan and a three-page fly scan; the uids and the emitted documents."""
    writer = BackgroundWriter(TiledTarget(client), backup_directory=backup)
    engine = RunEngine({})
    emitted: list = []
    engine.subscribe(lambda name, doc: emitted.append((name, doc)))
    engine.subscribe(writer)
    (count_uid,) = engine(bp.count([det], num=4))
    (fly_uid,) = engine(bp.fly([PagingFlyer(pages=3, rows=5, columns=2)]))
    report = writer.close()
    assert report.spilled_runs == {}
    return count_uid, fly_uid, emitted


def check_stored(client, count_uid: str, fly_uid: str) -> None:
    count = client[count_uid]
    assert count.metadata["stop"]["exit_status"] == "success"
    assert list(count["primary"].base["internal"].read()["det"]) == [1.0] * 4
    fly = client[fly_uid]["fly"].base["internal"].read()
    assert list(fly["pager_c0"]) == [float(row) for row in range(15)]
    assert list(fly["seq_num"]) == list(range(1, 16))
