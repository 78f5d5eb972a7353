"""One writer per export format, registered by name; the export kind picks one by ``format``.

A writer turns records (``csvrows.Record``) into bytes that are appended to a
*part* file, page after page; the export kind keeps the part file's size in
its checkpoint and cuts the file back to it when it resumes. So a writer's
resumable state is two numbers (rows and bytes written) and nothing in memory.
``finish`` turns the complete part into the final file (often the part itself).
"""

from __future__ import annotations

from responses.writers.base import Writer
from responses.writers.csv import ExcelCsvWriter, RawCsvWriter
from responses.writers.geojson import GeoJsonWriter
from responses.writers.xlsx import XlsxWriter

WRITERS: dict[str, type[Writer]] = {
    w.name: w for w in (ExcelCsvWriter, RawCsvWriter, XlsxWriter, GeoJsonWriter)
}
DEFAULT = ExcelCsvWriter.name
CHOICES = [(name, w.label) for name, w in WRITERS.items()]


def writer_for(name: str | None) -> Writer:
    """The writer registered as ``name`` (``KeyError`` if none); None means the default."""
    return WRITERS[name or DEFAULT]()


__all__ = ["CHOICES", "DEFAULT", "WRITERS", "Writer", "writer_for"]
