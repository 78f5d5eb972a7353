"""What every export writer provides."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from responses.csvrows import Record


class Writer:
    """Bytes for one output format.

    ``header()`` starts the part file; ``encode(records, first=…)`` gives the
    bytes of one page (``first``: nothing was written after the header yet);
    ``finish(part, final, size, heartbeat)`` makes the final file from the
    complete part file of ``size`` bytes, and must give the same file when it
    is run again after a crash (the part stays until the final file is complete).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    extension: ClassVar[str]
    media_type: ClassVar[str]
    # The CSV flavour the database can build for this format (``responses.sqllines``), if any.
    sql_lines: ClassVar[str | None] = None

    def part_name(self, final: str) -> str:
        """The storage name appended to while the export runs (by default the file itself)."""
        return final

    def header(self) -> bytes:
        return b""

    def encode(self, records: list[Record], *, first: bool) -> bytes:
        raise NotImplementedError

    def finish(self, part: str, final: str, size: int, heartbeat: Callable[[], None]) -> None:
        """Complete ``final`` from the part file (both local paths); ``heartbeat`` now and then."""
