"""JSON bodies must be objects: every JSON endpoint reads named fields from one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}


def json_kind(value: Any) -> str:
    """How a user would name a JSON value's type ("an array", "a number", ...)."""
    for python_type, name in JSON_KINDS.items():
        if isinstance(value, python_type):
            return name
    return "a number"


class ObjectJSONParser(JSONParser):
    """DRF's JSON parser that refuses anything but an object with a 400 (RFC 8259 names)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, Mapping):
            raise ParseError(
                "The request body must be a JSON object with named fields, such as "
                f'{{"email": "you@example.com"}}; this one is {json_kind(data)}.'
            )
        return data
