"""The files spreadsheets write (tests/data/spreadsheets/ and workbooks made here).

Each file is imported by the real engine and the real import kind, in the test
process (the outcome does not depend on a worker process): the exact rows
stored, or the exact message the user reads and no row written. A few imports
also run end to end through a real worker, including stop, pause and a killed
worker on a workbook (tests/test_spreadsheets_worker.py).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import engine
from jobs.models import Job, State
from teams.fake import fake_teams, write_fake_teams, write_fake_teams_xlsx
from teams.models import Team
from teams.services import teams_import_start

CORPUS = Path(__file__).parent / "data" / "spreadsheets"
HEADER = "name,description,manager,members"
FIX = "Download the error report, fix that row and upload the file again."
FIX_ROWS = "Download the error report, fix those rows and upload the file again."
MUST = (
    "The first row must name the column name and may name description, manager, members (in "
    "any order, any case)."
)
COMMAS = "CSV, UTF-8, values separated by commas"
FALCON = ("Falcon", "Birds", "kiri", "Kiri Tane")
OWL = ("Owl", "Night shift", "ana", "Ana Lima")

# file → (how the job page says it was read, the rows stored) or the message.
Rows = list[tuple[str, ...]]
GOOD: dict[str, tuple[str, Rows, dict[str, Any]]] = {
    "excel_cleared_rows.csv": (COMMAS, [FALCON, OWL], {"empty_rows": 3}),
    "excel_sep_hint_comma.csv": (COMMAS, [FALCON], {}),
    "excel_sep_hint_semicolon.csv": (
        "CSV, UTF-8, values separated by semicolons",
        [("Falcon", "Birds, mostly", "kiri", "Kiri Tane, Ana Lima")],
        {},
    ),
    "trailing_comma_every_line.csv": (COMMAS, [FALCON, OWL], {}),
    "blank_line_above_header.csv": (COMMAS, [FALCON], {}),
    "blank_lines_and_spaces_above_header.csv": (COMMAS, [FALCON], {}),
    "spaces_around_values.csv": (
        COMMAS,
        [FALCON, ("Owl", "Night  shift", "abcdefghijklmnopqrs", "Ana")],
        {},
    ),
    "german_excel_semicolons.csv": (
        "CSV, Windows-1252, values separated by semicolons",
        [
            ("Nordwind", "Segler", "jan", "Jan Roth"),
            ("Südwind", "Boote, Segel", "eva", "Eva Berg, Jan Roth"),
        ],
        {},
    ),
    "french_excel_utf8_bom_semicolons.csv": (
        "CSV, UTF-8, values separated by semicolons",
        [("Équipe Été", "Réseau, terrain", "rené", "René Côté")],
        {},
    ),
    "mac_cr_only.csv": (COMMAS, [FALCON, ("Owl", "Night\rshift", "ana", "Ana Lima")], {}),
    "mac_cr_only_semicolons.csv": ("CSV, UTF-8, values separated by semicolons", [FALCON], {}),
    "windows_1252.csv": (
        "CSV, Windows-1252, values separated by commas",
        [("Équipe Été", "Réseau", "René Côté", "René Côté,Zoë")],
        {},
    ),
    "windows_1252_euro_and_curly_quotes.csv": (
        "CSV, Windows-1252, values separated by commas",
        [("Budget", "“Saves” 5 € a day", "zoë", "Zoë Brûlé")],
        {},
    ),
    "windows_1251_cyrillic.csv": (
        "CSV, Windows-1251, values separated by commas",
        [("Север", "Команда севера", "Иван", "Иван Петров,Олег Сидоров")],
        {},
    ),
    "shift_jis.csv": (
        "CSV, Shift_JIS (Windows), values separated by commas",
        [("東京チーム", "営業部のチームです", "田中", "田中,鈴木")],
        {},
    ),
    "utf16_unicode_text.txt": (
        "CSV, UTF-16, values separated by tabs",
        [("Équipe Été", "Réseau, terrain", "rené", "René Côté"), ("東京", "営業", "田中", "田中")],
        {},
    ),
    "utf16_be_bom.csv": (
        "CSV, UTF-16, values separated by commas",
        [("Zürich", "Crew", "zoë", "Zoë")],
        {},
    ),
    "utf8_bom_excel.csv": (
        COMMAS,
        [("Platform", "Keeps the lights on", "ada", "Ada Lovelace,Grace Hopper")],
        {},
    ),
    "tab_delimited_trailing_tabs.tsv": (
        "CSV, UTF-8, values separated by tabs",
        [("Falcon", "Birds, mostly", "kiri", "Kiri Tane")],
        {},
    ),
    "pipe_delimited.csv": (
        "CSV, UTF-8, values separated by vertical bars",
        [("Falcon", "Birds, mostly", "kiri", "Kiri Tane")],
        {},
    ),
    "google_sheets_export.csv": (
        COMMAS,
        [
            ("Falcon", "Birds", "kiri", "Kiri Tane,Ana Lima"),
            ("Owl", 'Says "hoo"', "ana", "Ana Lima"),
        ],
        {},
    ),
    "libreoffice_all_quoted.csv": (COMMAS, [FALCON, ("Owl", "", "", "")], {}),
    "excel_leading_zeros.csv": (
        COMMAS,
        [("007", "Agents", "0042", "James"), ("2024", "Year team", "m", "")],
        {},
    ),
    "header_case_and_spaces.csv": (COMMAS, [FALCON], {}),
    "columns_in_another_order.csv": (COMMAS, [FALCON], {}),
    "excel_alt_enter_line_breaks.csv": (
        COMMAS,
        [("Falcon", "Line one\nLine two", "kiri", "Kiri Tane\nAna Lima")],
        {},
    ),
    "empty_rows_between.csv": (COMMAS, [FALCON, ("Owl", "Night", "ana", "Ana")], {"empty_rows": 4}),
    "title_row_above_header.csv": (COMMAS, [FALCON], {}),
    # Only name is required: a column left out is empty.
    "missing_column_semicolons.csv": (
        "CSV, UTF-8, values separated by semicolons",
        [("Falcon", "Birds", "kiri", "")],
        {},
    ),
    "semicolon_decimal_commas.csv": (
        "CSV, UTF-8, values separated by semicolons",
        [("Scale", "weighs 3,5 kg", "m", "x")],
        {},
    ),
}


def nothing(bad: str, where: str, message: str, hint: str = FIX) -> str:
    """The job's error: ``bad`` says how many rows of how many are bad, in words."""
    return f"Nothing was imported: {bad}. First problem: {where}: {message} {hint}"


BAD: dict[str, str] = {
    "unnamed_column_with_data.csv": nothing(
        "1 of 2 rows is bad",
        "Row 3, column E",
        "Column E has no name in the header but holds a value in this row. Delete the value, "
        "or the column.",
    ),
    "named_unknown_column.csv": (
        f'The header (row 1) has the unknown column "notes" (column E). {MUST}'
    ),
    "long_manager_after_trim.csv": nothing(
        "the only row is bad",
        "Row 2, column manager (C)",
        "The manager is 21 characters long; at most 20 are allowed.",
    ),
    "lf_unquoted_carriage_return.csv": nothing(
        "1 of 2 rows is bad",
        "Row 3, column name (A)",
        "A value holds a line break but is not in double quotes. Put the value in double "
        "quotes, or remove the line break.",
    ),
    "nul_in_description.csv": nothing(
        "1 of 3 rows is bad",
        "Row 3, column description (B)",
        # Said once: the job's message ends with what to do with the file.
        "The row contains a NUL byte (binary data). Remove it.",
    ),
    "semicolon_row_with_too_few.csv": nothing(
        "the only row is bad",
        "Row 2",
        "The row has 3 fields; expected 4 (name, description, manager, members). Fill in the "
        "missing values (members), or leave them empty: one separator for each.",
    ),
}


def import_now(user: Any, name: str, data: bytes, **options: Any) -> Job:
    """Start the import as the page does, and run it here with the real engine."""
    job = teams_import_start(file=SimpleUploadedFile(name, data), by=user, **options)
    engine.run(job.id, worker="test")
    job.refresh_from_db()
    return job


def stored(job: Job) -> Rows:
    fields = ("name", "description", "manager", "members")
    return list(Team.objects.filter(job=job).order_by("id").values_list(*fields))


def test_the_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir()}
    assert on_disk == set(GOOD) | set(BAD)
    assert len(on_disk) >= 30


# Rows stored byte for byte (Japanese, Cyrillic, accents): the database's
# character set decides, so these run on every database in CI. The messages and
# workbook readings below are the same on any database.
@pytest.mark.servers
@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_spreadsheet_file_is_imported_exactly(user, name):  # type: ignore[no-untyped-def]
    read_as, rows, extra = GOOD[name]
    job = import_now(user, name, (CORPUS / name).read_bytes())
    assert (job.state, job.error) == (State.SUCCEEDED, "")
    assert stored(job) == rows
    assert job.result == {
        "imported": len(rows),
        "created": len(rows),
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        **extra,
    }
    assert job.params["read_as"] == read_as


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_spreadsheet_file_gets_the_exact_message(user, name):  # type: ignore[no-untyped-def]
    job = import_now(user, name, (CORPUS / name).read_bytes())
    assert (job.state, job.error) == (State.FAILED, BAD[name])
    assert job.processed == 0
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    ("names", "said", "hint"),
    [
        ([""], "the only row is bad", FIX),
        (["", ""], "all 2 rows are bad", FIX_ROWS),
        ([""] + ["ok"] * 1_999, "1 of 2,000 rows is bad", FIX),
        (["", "", ""] + ["ok"] * 1_997, "3 of 2,000 rows are bad", FIX_ROWS),
    ],
    ids=["one of one", "two of two", "one of many", "three of many"],
)
def test_bad_rows_are_counted_in_english(user, names, said, hint):  # type: ignore[no-untyped-def]
    data = (HEADER + "\r\n" + "".join(f"{n},d,m,x\r\n" for n in names)).encode()
    job = import_now(user, "t.csv", data)
    assert job.error == nothing(
        said, "Row 2, column name (A)", "The name is empty; every team needs a name.", hint
    )


def test_a_cell_over_the_limit_is_measured_in_binary_units(user):  # type: ignore[no-untyped-def]
    # COLLECT_IMPORT_MAX_FIELD_BYTES is 1 MiB: 1,048,576 bytes, never "1.0 MB".
    data = f"{HEADER}\r\nOwl,{'d' * (1024 * 1024 + 1)},m,x\r\n".encode()
    job = import_now(user, "big.csv", data)
    assert job.error == nothing(
        "the only row is bad",
        "Row 2, column description (B)",
        "The value is larger than 1 MiB (1,048,576 bytes), the most a cell may hold. Shorten it.",
    )


def test_a_value_over_the_field_size_limit_names_row_and_column(user, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_IMPORT_MAX_FIELD_BYTES = 1000
    data = f"{HEADER}\r\nA,b,c,d\r\nB,{'x' * 1001},c,d\r\nC,{'y' * 10_000}\r\n".encode()
    job = import_now(user, "big.csv", data)
    limit = "The value is larger than 1,000 bytes, the most a cell may hold."
    assert job.error == nothing(
        "2 of 3 rows are bad", "Row 3, column description (B)", limit + " Shorten it.", FIX_ROWS
    )
    # The CSV reader's own words (teams/readers/csvfile.py) for a cell it could not read whole.
    reader_limit = "The value is larger than 1,000 bytes, the most a cell may hold."
    assert job.problems[1] == {
        "row": 4,
        "column": "description",
        "letter": "B",
        "value": "",
        "message": f"{reader_limit} Shorten it; if it should be short, look for a quote that is "
        "never closed.",
    }
    assert not Team.objects.exists()
    skipped = import_now(user, "big.csv", data, on_error="skip")
    assert stored(skipped) == [("A", "b", "c", "d")]
    assert skipped.result == {
        "imported": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "skipped": 2,
    }


@pytest.mark.servers  # "Café" stored as read: the database's character set
def test_an_encoding_can_be_chosen(user):  # type: ignore[no-untyped-def]
    data = f"{HEADER}\r\nCafé,x,y,z\r\n".encode("cp1252")
    job = import_now(user, "t.csv", data, encoding="latin-1")
    assert stored(job) == [("Café", "x", "y", "z")]
    assert job.params["read_as"] == "CSV, ISO-8859-1, values separated by commas"


def test_a_sheet_asked_of_a_csv_file_is_said_to_be_unused(user):  # type: ignore[no-untyped-def]
    job = import_now(user, "t.csv", f"{HEADER}\r\nA,x,y,z\r\n".encode(), sheet="Teams")
    assert stored(job) == [("A", "x", "y", "z")]
    assert job.params["read_as"] == (
        "CSV, UTF-8, values separated by commas "
        "(a CSV file has no sheets: the sheet option was not used)"
    )


# --- workbooks, made here with openpyxl ----------------------------------------------


def workbook(*sheets: tuple[str, list[list[Any]]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


TYPED = [
    ["Name", "Description", "Manager", "Members", None],
    [2024, 2.5, True, dt.datetime(2024, 5, 1), None],
    ["  Falcon ", dt.datetime(2024, 5, 1, 13, 45), None, 0.1 + 0.2, None],
    [None, None, None, None, None],
    ["007", dt.date(2026, 1, 31), "kiri", 1e20, None],
]


def test_a_workbook_is_imported_as_the_spreadsheet_shows_it(user):  # type: ignore[no-untyped-def]
    job = import_now(user, "teams.xlsx", workbook(("Teams", TYPED), ("Other", [["x"]])))
    assert (job.state, job.error) == (State.SUCCEEDED, "")
    assert stored(job) == [
        ("2024", "2.5", "TRUE", "2024-05-01"),
        ("Falcon", "2024-05-01T13:45:00", "", "0.3"),
        ("007", "2026-01-31", "kiri", "1E+20"),
    ]
    assert job.result == {
        "imported": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "empty_rows": 1,
    }
    assert job.params["read_as"] == 'Excel workbook, sheet "Teams"'


def test_a_workbook_with_only_name_and_manager_imports_with_the_others_empty(user):  # type: ignore[no-untyped-def]
    rows = [["Teams 2026"], ["Manager", "Name"], ["kiri", "Falcon"], [None, "Owl"], [2024, 7]]
    job = import_now(user, "teams.xlsx", workbook(("Sheet1", rows)))
    assert (job.state, job.error) == (State.SUCCEEDED, "")
    assert stored(job) == [("Falcon", "", "kiri", ""), ("Owl", "", "", ""), ("7", "", "2024", "")]
    bad = import_now(user, "teams.xlsx", workbook(("Sheet1", [["Manager"], ["kiri"]])))
    assert bad.error == f"The header (row 1) misses the column name. {MUST}"


def test_a_workbook_sheet_is_chosen_by_name(user):  # type: ignore[no-untyped-def]
    data = workbook(
        ("Notes", [["not", "teams"]]), ("Teams 2026", [HEADER.split(","), list(FALCON)])
    )
    job = import_now(user, "teams.xlsx", data, sheet="Teams 2026")
    assert stored(job) == [FALCON]
    assert job.params["read_as"] == 'Excel workbook, sheet "Teams 2026"'
    missing = import_now(user, "teams.xlsx", data, sheet="Teams")
    assert missing.error == (
        'The workbook has no sheet named "Teams". Its sheets are "Notes", "Teams 2026": choose '
        "one of them, or leave the sheet empty to import the first."
    )


def test_a_workbook_with_a_title_row_and_a_bad_row(user):  # type: ignore[no-untyped-def]
    rows = [["Teams of 2026"], [], HEADER.split(","), list(FALCON), ["Owl", "", "a" * 21, ""]]
    job = import_now(user, "teams.xlsx", workbook(("Sheet1", rows)))
    assert job.error == nothing(
        "1 of 2 rows is bad",
        "Row 5, column manager (C)",
        "The manager is 21 characters long; at most 20 are allowed.",
    )
    assert not Team.objects.exists()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


SAVE_AS = 'Save it as an Excel workbook (.xlsx) or as "CSV UTF-8" and upload it again.'
NOT_WORKBOOKS = {
    "teams.ods": (
        zip_of({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b""}),
        f"The file is an OpenDocument spreadsheet (.ods), which Collect cannot read. {SAVE_AS}",
    ),
    "teams.zip": (
        zip_of({"teams.csv": f"{HEADER}\r\n".encode()}),
        f"The file is a ZIP archive, not an Excel workbook. {SAVE_AS}",
    ),
    "teams.xls": (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504,
        "The file is an Excel 97-2003 workbook (.xls), not a CSV text file or an .xlsx workbook. "
        'Save it as "CSV UTF-8" or as an Excel workbook (.xlsx) and upload it again.',
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_WORKBOOKS))
def test_a_file_that_is_not_a_readable_workbook_is_named(user, name):  # type: ignore[no-untyped-def]
    data, message = NOT_WORKBOOKS[name]
    job = import_now(user, name, data)
    assert (job.state, job.error) == (State.FAILED, message)
    assert not Team.objects.exists()


def test_the_page_speaks_of_its_own_controls_not_api_parameters(user, browser_client):  # type: ignore[no-untyped-def]
    job = import_now(user, "t.csv", (CORPUS / "long_manager_after_trim.csv").read_bytes())
    page = browser_client.get(f"/tasks/{job.id}/").content.decode()
    said = (
        'Fix them in the file and import it again, or choose "Skip bad rows" to '
        "import the other rows without them."
    )
    assert said in page  # "import it again" said once
    assert "<td>2</td><td>manager (C)</td>" in page
    assert "on_error" not in page
    form = browser_client.get("/import_teams/").content.decode()
    # Each choice named, then said once what it does.
    assert "> Import nothing: show me the problems instead</label>" in form
    assert "> Skip bad rows: import the good rows and report the bad ones</label>" in form
    assert '<input type="text" name="sheet" id="id_sheet"' in form
    assert '<input type="text" name="encoding" id="id_encoding"' in form


def test_the_api_schema_documents_sheet_and_encoding(api):  # type: ignore[no-untyped-def]
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/imports/teams/"]["post"]["requestBody"]["content"]
    ref = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][ref]["properties"]
    assert set(fields) == {
        "file", "on_error", "encoding", "sheet", "mode", "key", "dry_run", "parallelism"
    }  # fmt: skip
    assert fields["sheet"]["description"] == (
        "Workbooks only: the name of the sheet to import. Empty: the first sheet."
    )
    assert fields["encoding"]["description"].startswith("CSV only: the encoding of a file")


@pytest.mark.parametrize("name", ["klingon", "utf\x008"])  # a NUL: Python's ValueError
def test_an_unknown_encoding_is_refused_before_anything_is_stored(api, name):  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile("t.csv", f"{HEADER}\r\nA,b,c,d\r\n".encode())
    answer = api.post("/api/imports/teams/", {"file": upload, "encoding": name}, format="multipart")
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": f'"{name}" is not an encoding Collect knows. Leave it empty to have it '
        "detected, or give one such as utf-8, cp1252 (Windows Western), cp1251, latin-1."
    }
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("text", "written_as", "read_as"),
    [
        # charset-normalizer ranks Big5 first here: "S緌 Paulo,A誽o,Jo緌".
        ("name,description,manager,members\nSão Paulo,Ação,João,\n", "cp1252", "cp1252"),
        ("name\nCoração,Açúcar\n", "cp1252", "cp1252"),
        ("name,description\n東京チーム,営業部のチームです,田中\n", "shift_jis", "cp932"),
        ("name\n台北隊,業務部\n", "big5", "big5"),
        ("name\nСевер,Команда севера\n", "cp1251", "cp1251"),  # noqa: RUF001
    ],
)
def test_short_accented_latin_text_is_not_taken_for_another_script(
    text: str, written_as: str, read_as: str
) -> None:
    from teams.readers.encodings import detect

    assert detect(text.encode(written_as)) == read_as


# --- text escapes: ECMA-376 Part 1, §22.9.2.19 (ST_Xstring) --------------------------
#
# A workbook stores a character XML cannot carry (CR, which XML turns into LF; most
# control characters) as ``_xHHHH_``, and the text ``_xHHHH_`` itself with its
# underscore escaped, ``_x005F_``. The files below are written by hand, so the XML
# holds exactly the escapes under test: as inline strings (what XlsxWriter's
# constant-memory mode, `collect fake-teams` and our XLSX export write), as shared
# strings (what Excel and openpyxl write), as rich text runs, and as the text a
# formula last gave. (An import trims each value, so no case ends in CR.)

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# (the <t> text as stored in the file, the text it stands for)
ESCAPED = [
    ("a_x000D_\nb", "a\r\nb"),
    ("tab_x0009_here", "tab\there"),
    ("_x005F_x000D_", "_x000D_"),  # the text _x000D_, escaped
    ("_x005F_x005F_x000D_end", "_x005F\rend"),  # left to right: _x005F_ is _, then _x000D_
    ("a_x005F_x0041_x005F_x0042_b", "a_x0041_x0042_b"),
    ("bell_x0007_", "bell\x07"),
    ("_x0041_ lower _x000d_ hex", "A lower \r hex"),
    ("_xD83D__xDE00_ pair", "\U0001f600 pair"),  # UTF-16 code units of one character
    ("_xD83D_ alone", "_xD83D_ alone"),  # half a pair is no character: left as written
    ("_x00D_ short", "_x00D_ short"),
    ("_xZZZZ_ not hex", "_xZZZZ_ not hex"),
    ("_X000D_ capital X", "_X000D_ capital X"),
    ("a x005F_ b _x000D", "a x005F_ b _x000D"),  # no escape: kept whole
]


def xlsx_by_hand(cells: list[str], shared: list[str] | None = None) -> bytes:
    """A workbook of one sheet, "Teams", whose rows are ``cells`` (``<c>`` elements, no
    ``r``), after a header row; ``shared`` are the ``<si>`` elements of its shared strings."""
    header = "".join(f'<c t="inlineStr"><is><t>{n}</t></is></c>' for n in ("name", "description"))
    rows = "".join(f"<row>{c}</row>" for c in [header, *cells])
    files = {
        "[Content_Types].xml": (
            f'{XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'{XML}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'{XML}<workbook xmlns="{NS}" xmlns:r="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships"><sheets><sheet name="Teams" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{XML}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'{XML}<worksheet xmlns="{NS}"><sheetData>{rows}</sheetData></worksheet>'
        ),
        "xl/sharedStrings.xml": f'{XML}<sst xmlns="{NS}">{"".join(shared or [])}</sst>',
    }
    return zip_of({name: text.encode() for name, text in files.items()})


def name_cell(i: int) -> str:
    return f'<c t="inlineStr"><is><t>Team {i}</t></is></c>'


def imported_descriptions(user: Any, data: bytes) -> list[str]:
    job = import_now(user, "teams.xlsx", data)
    assert (job.state, job.error) == (State.SUCCEEDED, "")
    return [description for _name, description, *_ in stored(job)]


def test_inline_strings_are_read_as_the_text_their_escapes_stand_for(user):  # type: ignore[no-untyped-def]
    cells = [
        name_cell(i) + f'<c t="inlineStr"><is><t xml:space="preserve">{stored}</t></is></c>'
        for i, (stored, _text) in enumerate(ESCAPED)
    ]
    assert imported_descriptions(user, xlsx_by_hand(cells)) == [text for _, text in ESCAPED]


def test_shared_strings_are_read_as_the_text_their_escapes_stand_for(user):  # type: ignore[no-untyped-def]
    cells = [name_cell(i) + f'<c t="s"><v>{i}</v></c>' for i in range(len(ESCAPED))]
    shared = [f'<si><t xml:space="preserve">{stored}</t></si>' for stored, _text in ESCAPED]
    assert imported_descriptions(user, xlsx_by_hand(cells, shared)) == [t for _, t in ESCAPED]


RICH = [
    # Each run's <t> is a string of its own: escapes are read run by run.
    (
        "<r><t>one_x000D_</t></r><r><rPr><b/></rPr><t>\ntwo_x005F_x0009_</t></r>",
        "one\r\ntwo_x0009_",
    ),
    ("<r><t>a_x00</t></r><r><t>0D_b</t></r>", "a_x000D_b"),  # no escape across runs
    # A phonetic reading (<rPh>, for East Asian text) is not part of the cell's text.
    ("<t>東_x000D_京</t><rPh sb='0' eb='2'><t>トウキョウ_x000D_</t></rPh>", "東\r京"),
]


@pytest.mark.parametrize("where", ["inline", "shared"])
def test_rich_text_runs_are_read_as_the_text_their_escapes_stand_for(user, where):  # type: ignore[no-untyped-def]
    if where == "inline":
        cells = [
            name_cell(i) + f'<c t="inlineStr"><is>{runs}</is></c>'
            for i, (runs, _) in enumerate(RICH)
        ]
        data = xlsx_by_hand(cells)
    else:
        cells = [name_cell(i) + f'<c t="s"><v>{i}</v></c>' for i in range(len(RICH))]
        data = xlsx_by_hand(cells, [f"<si>{runs}</si>" for runs, _ in RICH])
    assert imported_descriptions(user, data) == [text for _, text in RICH]


def test_the_text_a_formula_gave_is_read_as_its_escapes_stand_for(user):  # type: ignore[no-untyped-def]
    cells = [
        name_cell(0) + '<c t="str"><f>"a"&amp;CHAR(13)&amp;"b"</f><v>a_x000D_b</v></c>',
        name_cell(1) + '<c t="str"><f>"_x"&amp;"000D_"</f><v>_x005F_x000D_</v></c>',
    ]
    assert imported_descriptions(user, xlsx_by_hand(cells)) == ["a\rb", "_x000D_"]


def test_the_fake_teams_workbook_reads_as_its_csv_and_upserted_again_changes_nothing(  # type: ignore[no-untyped-def]
    user, tmp_path
):
    """README's block: teams.csv imported, then teams.xlsx (the same first 1,000 rows,
    as inline strings, CR written _x000D_) upserted: every row unchanged."""
    csv_path, xlsx_path = tmp_path / "teams.csv", tmp_path / "teams.xlsx"
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        write_fake_teams(out, 1000, seed=1)
    write_fake_teams_xlsx(xlsx_path, 1000, seed=1)
    assert b"_x000D_" in zipfile.ZipFile(xlsx_path).read("xl/worksheets/sheet1.xml")
    from_csv = import_now(user, "teams.csv", csv_path.read_bytes())
    assert from_csv.result["created"] == 1000
    again = import_now(user, "teams.xlsx", xlsx_path.read_bytes(), sheet="Teams", mode="upsert")
    assert (again.state, again.error) == (State.SUCCEEDED, "")
    assert {k: again.result[k] for k in ("created", "updated", "unchanged")} == {
        "created": 0,
        "updated": 0,
        "unchanged": 1000,
    }
    assert stored(from_csv) == [tuple(v.strip() for v in row) for row in fake_teams(1000, seed=1)]
