"""Text in an .xlsx workbook, exactly: the ``_xHHHH_`` escapes of ECMA-376 Part 1, §22.9.2.19.

A workbook's text is of the simple type ST_Xstring (ECMA-376 Part 1,
§22.9.2.19): a character that XML 1.0 cannot carry is written ``_x`` + its
UTF-16 code in four hex digits + ``_`` (the bell, U+0007, is ``_x0007_``), and
text that merely reads like such an escape has its first underscore escaped as
``_x005F_`` (the text ``_x0007_`` is stored ``_x005F_x0007_``). A carriage
return is escaped too (``_x000D_``): XML would carry it, but every XML parser
turns it into a line feed (XML 1.0, §2.11). So a reader takes each
``_xHHHH_``, left to right, for the character it names; anything else
(``_x00D_``, ``_xZZZZ_``, ``_X000D_``) is plain text.

The cell texts of a sheet are all such strings: shared strings (``<si>``),
inline strings (``<is>``), each run of rich text (``<r><t>``) and the text a
formula gave (``<v>`` of a ``t="str"`` cell). ``decode`` is the one reading of
the rule (teams/readers/celltext.py applies it to each); ``encode`` and
``ExactWorkbook`` the one writing of it (the XLSX export, ``collect fake-teams``).

Neither library here gets it right on its own. openpyxl 3.1 decodes no
``_xHHHH_`` in cell text: it deletes every ``x005F_`` in shared strings and
rich text runs (so ``ax005F_b`` loses text) and leaves inline strings as stored.
Its ``openpyxl.utils.escape.unescape`` follows the rule but turns the UTF-16
pair ``_xD83D__xDE00_`` into two lone surrogates, which no database stores
(and its ``escape`` skips U+0000, U+001A to U+001F and ``_x005F_``). XlsxWriter 3.3
escapes escape-like text without looking at overlaps (``_x0041_x0042_`` comes
back ``_x0041B``) and writes text that starts with ``<r>`` and ends with
``</r>`` into the XML unescaped, taking it for rich text it made itself.
"""

from __future__ import annotations

import re
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

HEX4 = "[0-9A-Fa-f]{4}"
ESCAPE = re.compile(
    r"_x([Dd][89ABab][0-9A-Fa-f]{2})__x([Dd][C-Fc-f][0-9A-Fa-f]{2})_"  # a UTF-16 pair first
    rf"|_x({HEX4})_"  # else any one escape
)
# What a workbook cannot hold as it is: characters XML 1.0 does not allow (§2.2,
# Char), and CR, which an XML parser reads as LF.
UNSAFE = "\x00-\x08\x0b-\x1f\ufffe\uffff"
UNSAFE_CHAR = re.compile(f"[{UNSAFE}]")
# An underscore a reader would take for the start of an escape: one followed by x,
# four hex digits and an underscore, or a character that is written as an escape
# (whose own underscore would close it).
LITERAL_UNDERSCORE = re.compile(f"_(?=x{HEX4}[_{UNSAFE}])")


def _character(match: re.Match[str]) -> str:
    high, low, code = match.groups()
    if high:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
    value = int(code, 16)
    if 0xD800 <= value <= 0xDFFF:
        return match[0]  # half of a UTF-16 pair names no character: kept as written
    return chr(value)


def decode(stored: str) -> str:
    """The text an ST_Xstring stands for (ECMA-376 Part 1, §22.9.2.19).

    Each ``_xHHHH_`` is the UTF-16 code unit HHHH, read left to right, so
    ``_x005F_x000D_`` is the text ``_x000D_``; two escapes that form a UTF-16
    pair are one character. Nothing else changes: ``_x00D_`` and ``_xZZZZ_``
    stay as they are, and so does the escape of half a pair (no character).
    """
    if "_x" not in stored:
        return stored
    return ESCAPE.sub(_character, stored)


def encode(text: str) -> str:
    """``text`` as an ST_Xstring (ECMA-376 Part 1, §22.9.2.19): ``decode`` gives it back.

    An underscore that would start an escape is written ``_x005F_``; a character
    XML cannot carry, and CR, is written ``_xHHHH_``. Tab and LF stay as they are.
    """
    text = LITERAL_UNDERSCORE.sub("_x005F_", text)
    return UNSAFE_CHAR.sub(lambda m: f"_x{ord(m[0]):04X}_", text)


class ExactWorksheet(Worksheet):
    """XlsxWriter's worksheet whose text cells read back as exactly the text written.

    For ``ExactWorkbook``: in constant-memory mode every text cell is an inline
    string, escaped here (XlsxWriter's shared strings table has its own escaping).
    """

    @staticmethod
    def _escape_control_characters(data: Any) -> Any:
        # XlsxWriter calls this on every text cell before writing it (and on other
        # element text, after escaping & < >: then no "<" is left to find below).
        if not isinstance(data, str):
            return data
        stored = encode(data)
        if stored.startswith("<r>") and stored.endswith("</r>"):
            # XlsxWriter would write it unescaped, as rich text: escape its "<".
            stored = "_x003C_" + stored[1:]
        return stored


class ExactWorkbook(xlsxwriter.Workbook):
    """An XlsxWriter workbook in constant-memory mode (each row goes to disk as it is
    written, text as inline strings) whose text cells hold exactly the text written."""

    worksheet_class = ExactWorksheet

    def __init__(self, filename: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(filename, {**(options or {}), "constant_memory": True})
        if not self.constant_memory:  # in_memory turns it off: shared strings, not escaped here
            raise ValueError("ExactWorkbook writes in constant-memory mode only")
