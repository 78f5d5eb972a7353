"""GeoJSON (RFC 7946): one Point feature per response, what a field team opens in a map."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar

from responses import csvrows
from responses.csvrows import Record
from responses.writers.base import Writer

_END = b"\n]}\n"


class GeoJsonWriter(Writer):
    """A FeatureCollection, one feature per line; the closing ``]}`` is added by ``finish``.

    Coordinates are ``[longitude, latitude]`` (RFC 7946, section 3.1.1) written
    with the stored decimals, so a reader that keeps decimals gets them back
    exactly; the other fields are the feature's properties, the response id
    also its ``id``.
    """

    name: ClassVar[str] = "geojson"
    label: ClassVar[str] = "GeoJSON (points for a map)"
    extension: ClassVar[str] = "geojson"
    media_type: ClassVar[str] = "application/geo+json"

    def header(self) -> bytes:
        return b'{"type":"FeatureCollection","features":[\n'

    def encode(self, records: list[Record], *, first: bool) -> bytes:
        dumps, stamp, number = json.dumps, csvrows.timestamp, csvrows.number
        features = [
            '{"type":"Feature","id":%d,"geometry":{"type":"Point","coordinates":[%s,%s]},'  # noqa: UP031
            '"properties":%s}'
            % (
                pk,
                number(lon),
                number(lat),
                dumps(
                    {
                        "id": pk,
                        "timestamp": stamp(ts),
                        "user": user,
                        "name_of_respondent": name,
                        "gender_of_respondent": gender,
                        "reading_books": books,
                        "listening_music": music,
                        "mobile_no": mobile,
                    },
                    ensure_ascii=False,
                ),
            )
            for pk, ts, user, name, gender, books, music, mobile, lat, lon in records
        ]
        return (("" if first else ",\n") + ",\n".join(features)).encode()

    def finish(self, part: str, final: str, size: int, heartbeat: Callable[[], None]) -> None:
        with open(final, "r+b") as fh:
            # At the committed end, so a second run writes the same file.
            fh.seek(size)
            fh.write(_END)
            fh.truncate()
