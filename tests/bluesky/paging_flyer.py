"""A flyer without hardware that yields several EventPages: for writer tests."""

from __future__ import annotations

import time
from typing import Any

from ophyd.status import Status


class PagingFlyer:
    """Yields ``pages`` pages of ``rows`` rows with ``columns`` numeric columns each."""

    def __init__(self, name: str = "pager", pages: int = 5, rows: int = 10, columns: int = 2):
        self.name, self.parent = name, None
        self.pages, self.rows, self.columns = pages, rows, columns

    def kickoff(self) -> Status:
        status = Status(obj=self)
        status.set_finished()
        return status

    def complete(self) -> Status:
        return self.kickoff()

    def _keys(self) -> list[str]:
        return [f"{self.name}_c{index}" for index in range(self.columns)]

    def describe_collect(self) -> dict[str, Any]:
        return {"fly": {key: {"source": "sim", "dtype": "number", "shape": [],
                              "dtype_numpy": "<f8"} for key in self._keys()}}

    def collect_pages(self):
        for page in range(self.pages):
            stamps = [time.time()] * self.rows
            first = page * self.rows
            yield {"time": stamps,
                   "data": {key: [float(first + row + column) for row in range(self.rows)]
                            for column, key in enumerate(self._keys())},
                   "timestamps": {key: stamps for key in self._keys()}}
