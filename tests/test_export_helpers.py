"""Shared by the export tests: a real SMTP server, mail parsing, the expected CSV, starting one."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import socket
import threading
import time
import zipfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from django.core.files.storage import default_storage

from jobs.models import Job
from responses.models import FormResponse
from responses.services import responses_export_start
from tests.workers import wait_for

UTC = dt.UTC
# The range of the fake responses the tests create.
START = dt.datetime(2017, 5, 15, tzinfo=UTC)
END = dt.datetime(2020, 5, 14, 23, 59, tzinfo=UTC)
# Exactly one year, both ends included.
YEAR_FROM = dt.datetime(2018, 5, 15, 0, 0, tzinfo=UTC)
YEAR_TO = dt.datetime(2019, 5, 15, 0, 0, tzinfo=UTC)

HEADER = [
    "id",
    "timestamp",
    "user",
    "name_of_respondent",
    "gender_of_respondent",
    "reading_books",
    "listening_music",
    "mobile_no",
    "record_latitude",
    "record_longitude",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps every accepted message; can refuse the next few with a 451."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.refused = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                self.refused += 1
                return "451 4.3.0 Try again later"
            msg = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            self.messages.append(msg)
        return "250 OK"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.refuse_next = 0
            self.refused = 0


class SMTPServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def env(self, **extra: str) -> dict[str, str]:
        """What a worker needs to send its mail here (and to give up quickly)."""
        return {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "10",
            "COLLECT_EXPORT_MAIL_ATTEMPTS": "3",
            "COLLECT_EXPORT_MAIL_BACKOFF_SECONDS": "0.2",
            **extra,
        }


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def attached_csv(msg: EmailMessage) -> tuple[str, bytes]:
    files = list(msg.iter_attachments())
    assert len(files) == 1, [f.get_filename() for f in files]
    name = files[0].get_filename() or ""
    data = files[0].get_payload(decode=True)  # bytes, whatever the part's type
    assert isinstance(data, bytes)
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            (inner,) = archive.namelist()
            assert name == inner + ".zip"
            return name, archive.read(inner)
    return name, data


def link_path(msg: EmailMessage) -> str:
    found = re.search(r"https?://[^/\s]+(/export_data/download/\S+)", body(msg))
    assert found, body(msg)
    return found.group(1)


BOM = b"\xef\xbb\xbf"


def parse(data: bytes) -> list[list[str]]:
    """The rows of an Excel CSV (which must start with the UTF-8 BOM)."""
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline="")))


def expected(qs: Any) -> list[list[str]]:
    """The CSV rows the export must produce, built here independently of the exporter."""
    names = dict(User.objects.values_list("id", "username"))
    rows = [HEADER]
    for r in qs.order_by("timestamp", "id"):
        rows.append(
            [
                str(r.id),
                r.timestamp.isoformat(timespec="microseconds"),  # TIME_ZONE is UTC in the tests
                names.get(r.user_id, "") if r.user_id else "",
                r.name_of_respondent,
                r.gender_of_respondent,
                "true" if r.reading_books else "false",
                "true" if r.listening_music else "false",
                r.mobile_no,
                f"{r.record_latitude:.6f}",
                f"{r.record_longitude:.6f}",
            ]
        )
    return rows


def all_rows() -> Any:
    return FormResponse.objects.all()


def start(user: Any, date_from: Any = YEAR_FROM, date_to: Any = YEAR_TO, **kw: Any) -> Job:
    """Start an export for ``user`` (mailed to alice@example.com) as the page would."""
    return responses_export_start(
        email="alice@example.com", date_from=date_from, date_to=date_to, by=user, **kw
    )


def one_mail(inbox: Any, timeout: float = 30) -> Any:
    wait_for(lambda: inbox.messages, timeout=timeout, what="the export e-mail")
    time.sleep(0.3)  # a second mail would be a bug: give it the chance to show up
    assert len(inbox.messages) == 1
    return inbox.messages[0]


def file_of(job: Job) -> bytes:
    """The export's file as it is in storage."""
    with default_storage.open(job.param("file"), "rb") as fh:
        data = fh.read()
    assert isinstance(data, bytes)
    return data
