"""The web process restarted while jobs run: nothing is lost, and the pages show the truth.

The real ``collect web`` (gunicorn) runs as its own process next to a real
worker. An import is uploaded and an export started through HTTP; while they
run, the web process is killed (SIGKILL: no clean-up at all; or SIGTERM: a
graceful stop) and a new one is started on the same port. The jobs must go on
without any web process, end exactly, and the new web process must show what
the database says (the API, the job page and the job list), to the same
session that logged in on the old one.
"""

from __future__ import annotations

import contextlib
import functools
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from jobs.models import TERMINAL, Job, State
from responses.fake import create_responses
from responses.models import FormResponse
from tests.conftest import make_token
from tests.test_export_helpers import (
    END,
    START,
    attached_csv,
    expected,
    file_of,
    free_port,
    one_mail,
    parse,
)
from tests.test_import_helpers import expected_rows, fake_csv, rows_of
from tests.workers import ROOT, process_env, wait_for

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

IMPORT_ROWS, IMPORT_BATCH = 30_000, 100  # 300 batches with a 0.03 s rest: at least 9 s
EXPORT_ROWS = 20_000  # 200 batches of 100 with a 0.05 s rest: at least 10 s


class Web:
    """One ``collect web`` process (gunicorn master and workers, in their own process group)."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> Web:
        env = process_env()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collect", "web", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", "2"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

        def up() -> bool:
            assert self.alive, f"the web process exited:\n{self.log()}"
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=5) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_for(up, timeout=timeout, interval=0.2, what="the web server to answer")
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def end(self, how: signal.Signals, timeout: float = 60) -> int:
        """SIGKILL the whole group (master and workers), or SIGTERM the master and let it stop."""
        assert self.proc is not None
        if how == signal.SIGKILL:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(how)
        code = self.proc.wait(timeout=timeout)
        # No process of it is left, and nobody answers on its port.
        wait_for(
            lambda: subprocess.run(
                ["pgrep", "-g", str(self.proc.pid)] if self.proc else ["false"],
                capture_output=True, check=False,
            ).returncode == 1,
            timeout=30, what="the web server's processes to be gone",
        )  # fmt: skip
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(self.url("/accounts/login/"), timeout=5)
        return code

    def close(self) -> None:
        if self.proc is not None and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class Client:
    """A person's browser (a session cookie) and a script's token, over real HTTP."""

    def __init__(self, web: Web, token: str) -> None:
        self.web = web
        self.token = token
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        token: bool = False,
        **headers: str,
    ) -> tuple[int, str, str]:
        """(status, text, the URL it ended at after redirects)."""
        request = urllib.request.Request(self.web.url(path), data=body, method=method)
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        if token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), response.url
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.url

    def api(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        status, text, _ = self.send(
            method, path, body=body, token=True, Content_Type="application/json"
        )
        assert status in (200, 202), (status, text)
        return json.loads(text)

    def upload(self, path: Path) -> Any:
        boundary = uuid.uuid4().hex
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        )
        body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        status, text, _ = self.send(
            "POST", "/api/imports/teams/", body=body, token=True,
            Content_Type=f"multipart/form-data; boundary={boundary}",
        )  # fmt: skip
        assert status == 202, (status, text)
        return json.loads(text)

    def log_in(self, username: str, password: str) -> None:
        _, page, _ = self.send("GET", "/accounts/login/")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, page
        form = f"csrfmiddlewaretoken={found.group(1)}&username={username}&password={password}"
        status, _, url = self.send(
            "POST", "/accounts/login/", body=form.encode(),
            Content_Type="application/x-www-form-urlencoded",
        )  # fmt: skip
        assert status == 200 and url.endswith("/tasks/"), (status, url)

    def page(self, path: str) -> str:
        status, text, url = self.send("GET", path)
        assert status == 200 and url == self.web.url(path), (status, url)  # not the login page
        return text


@dataclass
class Shown:
    state: str
    processed: int


def on_api(client: Client, job_id: str) -> Shown:
    answer = client.api("GET", f"/api/tasks/{job_id}/")
    assert answer["task_id"] == job_id
    return Shown(answer["state"], answer["processed"])


def number(text: str) -> int:
    return int(text.replace(",", ""))


def in_html(html: str) -> Shown:
    """The state and the row count as the job's page, or its row in the list, shows them."""
    state = re.search(r'<span class="state state-(\w+)">', html)
    rows = re.search(
        r"([\d,]+) of [\d,]+ rows|([\d,]+) rows?</span>|([\d,]+) rows? (?:was|were) written"
        r"|(?:preparing|checking the file|waiting for a worker|before anything was written)()",
        html,
    )
    assert state and rows, html
    return Shown(state.group(1), number(next((g for g in rows.groups() if g), "0")))


def on_page(client: Client, job_id: str) -> Shown:
    html = client.page(f"/tasks/{job_id}/")
    assert f"<code>{job_id}</code>" in html
    return in_html(html)


def in_list(client: Client, job_id: str) -> Shown:
    html = client.page("/tasks/")
    row = re.search(rf'<tr id="job-{job_id}">(.*?)</tr>', html, re.S)
    assert row, f"job {job_id} is not in the list"
    return in_html(row.group(1))


def matches_the_database(job_id: str, show: Any) -> Shown:
    """What a page shows lies between what the database said just before and just after.

    Read while the job runs, the truth moves; read while it stands still, it must be equal.
    """
    before = Job.objects.get(id=job_id)
    shown = show()
    after = Job.objects.get(id=job_id)
    assert before.processed <= shown.processed <= after.processed, (before, shown, after)
    assert shown.state in {before.state, after.state}, (before.state, shown, after.state)
    if (before.state, before.processed) == (after.state, after.processed):
        assert shown == Shown(after.state, after.processed)
    return shown


def everywhere(client: Client, job_id: str) -> None:
    for show in (on_api, on_page, in_list):
        matches_the_database(job_id, functools.partial(show, client, job_id))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_restarted_web_process_loses_nothing_and_shows_the_truth(  # type: ignore[no-untyped-def]
    make_worker, smtp, inbox, user, tmp_path, how
):
    token = make_token(user)
    create_responses(EXPORT_ROWS, start=START, end=END, seed=61)
    path = fake_csv(tmp_path, IMPORT_ROWS, seed=62)
    worker = make_worker(
        env=smtp.env(
            COLLECT_IMPORT_BATCH_SIZE=str(IMPORT_BATCH),
            COLLECT_IMPORT_THROTTLE_SECONDS="0.03",
            COLLECT_EXPORT_BATCH_ROWS="100",
            COLLECT_EXPORT_THROTTLE_SECONDS="0.05",
        )
    )
    web = Web(free_port(), tmp_path / "web.log").start()
    try:
        client = Client(web, token)
        client.log_in("alice", "alice-password")
        export_id = client.api("POST", "/api/exports/responses/", {"email": "alice@example.com"})[
            "task_id"
        ]
        import_id = client.upload(path)["task_id"]
        ids = (import_id, export_id)

        def under_way() -> bool:
            shown = [on_api(client, job_id) for job_id in ids]
            return all(s.state == State.RUNNING and s.processed > 0 for s in shown)

        wait_for(under_way, timeout=120, interval=0.1, what="both jobs to run")

        code = web.end(how)
        if how == signal.SIGTERM:
            assert code == 0, web.log()  # a graceful stop
        # With no web process at all, the jobs go on.
        at_kill = {job_id: Job.objects.get(id=job_id).processed for job_id in ids}
        wait_for(
            lambda: Job.objects.get(id=export_id).processed >= at_kill[export_id] + 1_000,
            timeout=120, what="the export to go on without a web process",
        )  # fmt: skip

        down = {job_id: Job.objects.get(id=job_id) for job_id in ids}
        print(
            f"{how.name}: while the web was down the jobs went "
            + ", ".join(f"{at_kill[i]} -> {j.processed} ({j.state})" for i, j in down.items())
        )
        web.start()  # a new web process, on the same port
        # The same session and token work on it; it shows what the database says.
        for job_id in ids:
            everywhere(client, job_id)

        # Control through the new process: pause the export, see it paused everywhere.
        assert client.api("POST", f"/api/tasks/{export_id}/pause/")["state"] in {
            State.PAUSING,
            State.PAUSED,
        }
        wait_for(
            lambda: Job.objects.get(id=export_id).state == State.PAUSED,
            timeout=60, what="the export to pause",
        )  # fmt: skip
        paused = Job.objects.get(id=export_id)
        for show in (on_api, on_page, in_list):
            assert show(client, export_id) == Shown(State.PAUSED, paused.processed)
        assert client.api("POST", f"/api/tasks/{export_id}/resume/")["state"] in {
            State.QUEUED,
            State.RUNNING,
        }

        for job_id in ids:
            wait_for(
                lambda job_id=job_id: Job.objects.get(id=job_id).state in TERMINAL,
                timeout=180, what=f"job {job_id} to end",
            )  # fmt: skip
        imported = Job.objects.get(id=import_id)
        exported = Job.objects.get(id=export_id)
        assert (imported.state, exported.state) == (State.SUCCEEDED, State.SUCCEEDED), (
            imported.error,
            exported.error,
        )

        # Nothing was lost: the upload, the rows, the export file and its mail are exact.
        assert imported.processed == imported.total == IMPORT_ROWS
        with default_storage.open(imported.param("file"), "rb") as fh:
            assert fh.read() == path.read_bytes()
        assert rows_of(imported) == expected_rows(path)
        want = expected(FormResponse.objects.all())
        assert exported.processed == exported.total == EXPORT_ROWS == len(want) - 1
        assert parse(file_of(exported)) == want
        assert attached_csv(one_mail(inbox))[1] == file_of(exported)

        # And every view of the new process says so, exactly.
        for job_id in ids:
            truth = Job.objects.get(id=job_id)
            for show in (on_api, on_page, in_list):
                assert show(client, job_id) == Shown(State.SUCCEEDED, truth.processed)
            answer = client.api("GET", f"/api/tasks/{job_id}/")
            assert (answer["total"], answer["percent"]) == (truth.total, 100.0)
        listed = client.api("GET", "/api/tasks/")
        assert {job["task_id"]: job["state"] for job in listed["results"]} == {
            import_id: State.SUCCEEDED,
            export_id: State.SUCCEEDED,
        }
        assert worker.errors() == []
        assert "Traceback" not in web.log()
    finally:
        web.close()
