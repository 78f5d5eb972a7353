"""The workbook text escapes on their own (ECMA-376 Part 1, §22.9.2.19, ST_Xstring).

The files that use them are tested in tests/test_spreadsheets.py (import) and
tests/test_export_writers.py (export).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collect.xlsxtext import ExactWorkbook, decode, encode

# Text made mostly of what escapes are made of, so that near-escapes, overlaps and
# control characters meet often.
NEAR_ESCAPES = [
    "_",
    "x",
    "X",
    "0",
    "5",
    "F",
    "D",
    "d",
    "_x",
    "_x0041",
    "_x005F",
    "x0042_",
    "_x000D_",
]
OTHERS = ["\r", "\n", "\t", "\x00", "\x07", "\x1f", "\ufffe", "\uffff", "é", "😀", "<r>", " "]
PIECES = st.sampled_from([*NEAR_ESCAPES, *OTHERS])
TEXTS = st.lists(PIECES | st.text(max_size=3), max_size=20).map("".join)
NOT_IN_XML = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def reference_reader(stored: str) -> str:
    """The rule read literally: each ``_xHHHH_``, left to right, is that character."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), stored)


@settings(max_examples=2000, deadline=None)
@given(TEXTS)
def test_encoded_text_reads_back_exactly_and_holds_only_what_xml_carries(text: str) -> None:
    stored = encode(text)
    assert decode(stored) == text
    assert reference_reader(stored) == text  # as Excel reads it
    assert not NOT_IN_XML.search(stored)


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        ("café_x000D_\n東京", "café\r\n東京"),
        ("_x0009_", "\t"),
        ("_x005F_x000D_", "_x000D_"),
        ("_x005F_x005F_x000D_", "_x005F\r"),
        ("_x005f_x000d_", "_x000d_"),
        ("_xD83D__xDE00_", "😀"),
        ("_xd83d__xde00_", "😀"),
        ("_xD83D_", "_xD83D_"),
        ("_xDE00__xD83D_", "_xDE00__xD83D_"),  # low before high: no pair
        ("_x00D_", "_x00D_"),
        ("_xZZZZ_", "_xZZZZ_"),
        ("_X000D_", "_X000D_"),
        ("_x000D", "_x000D"),
        ("ax005F_b", "ax005F_b"),
        ("", ""),
    ],
)
def test_decode(stored: str, text: str) -> None:
    assert decode(stored) == text


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("a\r\nb", "a_x000D_\nb"),
        ("\t\n", "\t\n"),
        ("_x000D_", "_x005F_x000D_"),
        ("_x0041_x0042_", "_x005F_x0041_x005F_x0042_"),
        ("a_x0041\r", "a_x005F_x0041_x000D_"),
        ("_x00D_ _xZZZZ_", "_x00D_ _xZZZZ_"),
    ],
)
def test_encode(text: str, stored: str) -> None:
    assert encode(text) == stored


def test_an_exact_workbook_is_written_in_constant_memory_mode_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="constant-memory"):
        ExactWorkbook(str(tmp_path / "x.xlsx"), {"in_memory": True})
