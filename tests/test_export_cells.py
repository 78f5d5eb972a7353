"""The export's cell rules and range rules, case by case (pure logic, no worker)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from responses import csvrows
from responses.forms import exact, parse_bound
from responses.writers import writer_for

UTC = dt.UTC


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        # Runs as a formula: neutralised with a leading quote.
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-A1", "'-A1"),
        (" =1+1", "' =1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r\n@x", "'\r\n@x"),
        # A number or number-like text: as stored.
        ("+254712345678", "+254712345678"),
        ("-", "-"),
        ("+", "+"),
        ("-0.5", "-0.5"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("-1,5", "-1,5"),
        ("(020) 555 0101", "(020) 555 0101"),
        ("0712345678", "0712345678"),
        # Text that only looks odd: as stored.
        ("\tTab", "\tTab"),
        ("\rCR", "\rCR"),
        ("O'Brien", "O'Brien"),
        ("a=b", "a=b"),
        ("x;=cmd|' /C calc'!A0", "x;=cmd|' /C calc'!A0"),
        ("", ""),
        ("José 😀", "José 😀"),
    ],
)
def test_it_neutralises_only_what_a_spreadsheet_would_run(stored: str, written: str) -> None:
    assert csvrows.safe_text(stored) == written
    assert csvrows.is_formula(stored) is (written != stored)


@pytest.mark.parametrize(
    ("stored", "cell"),
    [
        ("plain", "plain"),
        ("x;=cmd|' /C calc'!A0", "\"x;=cmd|' /C calc'!A0\""),
        ("O'Brien, Jr.", '"O\'Brien, Jr."'),
        ('say "hi"', '"say ""hi"""'),
        ("two\nlines", '"two\nlines"'),
        ("cr\rlf", '"cr\rlf"'),
        ("=1;2", '"\'=1;2"'),
        ("+254712345678", "+254712345678"),
        ("(020) 555 0101", "(020) 555 0101"),
    ],
)
def test_it_quotes_cells_a_comma_or_semicolon_locale_would_split(stored: str, cell: str) -> None:
    assert csvrows.excel_cell(stored) == cell


def test_it_writes_one_timestamp_format_on_every_row() -> None:
    def record(ts: dt.datetime) -> csvrows.Record:
        return (1, ts, None, "n", "Male", False, True, "", Decimal("0"), Decimal("-0.000001"))

    whole = dt.datetime(2020, 5, 15, 10, 0, tzinfo=UTC)
    data = writer_for("csv_raw").encode(
        [record(whole), record(whole.replace(microsecond=5))], first=True
    )
    assert data == (
        b"1,2020-05-15T10:00:00.000000+00:00,,n,Male,false,true,,0,-0.000001\r\n"
        b"1,2020-05-15T10:00:00.000005+00:00,,n,Male,false,true,,0,-0.000001\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "end", "instant"),
    [
        ("2020-05-15", False, "2020-05-15T00:00:00+00:00"),
        ("2020-05-15", True, "2020-05-15T23:59:59.999999+00:00"),
        ("2020-05-15 00:00", False, "2020-05-15T00:00:00+00:00"),
        ("2020-05-15 23:59", True, "2020-05-15T23:59:59.999999+00:00"),
        ("2020-05-15T10:30", True, "2020-05-15T10:30:59.999999+00:00"),
        ("2020-05-15 10:30:15", False, "2020-05-15T10:30:15+00:00"),
        ("2020-05-15 10:30:15", True, "2020-05-15T10:30:15.999999+00:00"),
        ("2020-05-15T10:30:15.5", True, "2020-05-15T10:30:15.599999+00:00"),
        ("2020-05-15T10:30:15.120", True, "2020-05-15T10:30:15.120999+00:00"),
        ("2020-05-15T10:30:15.123456", True, "2020-05-15T10:30:15.123456+00:00"),
        ("2020-05-15T10:30:15.5", False, "2020-05-15T10:30:15.500000+00:00"),
        ("2020-05-15T10:30+02:00", True, "2020-05-15T10:30:59.999999+02:00"),
        ("2020-05-15T10:30:15Z", True, "2020-05-15T10:30:15.999999+00:00"),
        ("2020-12-31 23:59", True, "2020-12-31T23:59:59.999999+00:00"),
    ],
)
def test_a_bound_is_inclusive_at_its_own_precision(raw: str, end: bool, instant: str) -> None:
    moment = parse_bound(raw, end=end)
    assert moment == dt.datetime.fromisoformat(instant)


def test_it_states_the_exact_instant_with_its_zone() -> None:
    moment = parse_bound("2020-05-15 23:59", end=True)
    assert exact(moment) == "2020-05-15 23:59:59.999999 +00:00 (UTC)"
    assert exact(None) == ""
