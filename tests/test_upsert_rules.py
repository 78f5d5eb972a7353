"""Who may upsert, what a dry run may be applied to, and what the pages say after an upsert."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from jobs import services
from jobs.models import Job, State
from teams.models import Team
from tests.conftest import grant, make_token
from tests.test_import_helpers import start
from tests.test_upsert import by_name, checksum, write_rows
from tests.workers import wait_processed, wait_state

NOT_ALLOWED = (
    'Updating existing teams (mode "upsert") needs the permission "Can change team" '
    "(teams.change_team), which your account does not have. Ask an administrator to grant "
    'it, or import with mode "create", which only adds new teams.'
)


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    return client


def text(html: str) -> str:
    """The page's words, without tags and with single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_upsert_needs_the_change_team_permission(other_user, client, tmp_path):  # type: ignore[no-untyped-def]
    path = write_rows(tmp_path / "t.csv", [("A", "", "", "")])
    api = token_client(other_user)
    for fields in ({"mode": "upsert"}, {"mode": "upsert", "dry_run": "true"}):
        with path.open("rb") as fh:
            answer = api.post("/api/imports/teams/", {"file": fh, **fields}, format="multipart")
        assert answer.status_code == 403, answer.content
        assert answer.json() == {"detail": NOT_ALLOWED}
    client.force_login(other_user)
    assert "needs the permission “Can change team”" in client.get("/import_teams/").content.decode()
    with path.open("rb") as fh:
        page = client.post("/import_teams/", {"file": fh, "mode": "upsert", "key": ""})
    assert page.status_code == 403
    assert NOT_ALLOWED.replace('"', "&quot;") in page.content.decode()
    with pytest.raises(CommandError, match=re.escape(NOT_ALLOWED)):
        call_command("import-teams", str(path), "--mode", "upsert", "--user", "bob")
    assert not Job.objects.exists()
    # A create import needs no permission; with it, an upsert is accepted.
    with path.open("rb") as fh:
        assert api.post("/api/imports/teams/", {"file": fh}, format="multipart").status_code == 202
    grant(other_user, "teams.change_team")
    with path.open("rb") as fh:
        answer = api.post("/api/imports/teams/", {"file": fh, "mode": "upsert"}, format="multipart")
    assert answer.status_code == 202


def test_a_key_without_upsert_is_refused(api, client, user, tmp_path):  # type: ignore[no-untyped-def]
    path = write_rows(tmp_path / "t.csv", [("A", "", "", "")])
    with path.open("rb") as fh:
        answer = api.post("/api/imports/teams/", {"file": fh, "key": "name"}, format="multipart")
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        'A key ("name") is used only by mode "upsert", to find the team a row updates; mode '
        '"create" adds every row as a new team. Leave the key out, or send mode "upsert".'
    )
    # The page's key list sends "" for its default (name): a create import from the page works.
    client.force_login(user)
    with path.open("rb") as fh:
        page = client.post("/import_teams/", {"file": fh, "mode": "create", "key": ""})
    assert page.status_code == 302
    assert Job.objects.get().param("mode") == "create"


def test_a_dry_run_is_applied_once_and_only_with_changes(worker, user, client, tmp_path, capsys):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "old", "", "")])), State.SUCCEEDED)
    same = wait_state(start(user, tmp_path / "a.csv", mode="upsert", dry_run=True), State.SUCCEEDED)
    client.force_login(user)
    page = text(client.get(same.get_absolute_url()).content.decode())
    assert "Nothing to change: every row is already stored as it is in the file." in page
    assert "Import these changes" not in page
    api = token_client(user)
    refused = api.post(f"/api/imports/teams/{same.id}/apply/")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "This dry run found nothing to change, so there is nothing to import."
    )

    call_command(
        "import-teams", str(tmp_path / "a.csv"), "--mode", "upsert", "--dry-run", "--wait",
        "--user", "alice",
    )  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "Nothing to change: every row is already stored as it is in the file."

    path = write_rows(tmp_path / "b.csv", [("A", "new", "", "")])
    dry = wait_state(start(user, path, mode="upsert", dry_run=True), State.SUCCEEDED)
    first = api.post(f"/api/imports/teams/{dry.id}/apply/")
    assert first.status_code == 202
    real = first.json()["task_id"]
    again = api.post(f"/api/imports/teams/{dry.id}/apply/")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"These changes were already imported (task id {real}). To import the file "
        "again, upload it for a new dry run.",
        "state": "succeeded",
        "applied_as": real,
    }
    on_page = client.post(f"/import_teams/{dry.id}/apply", follow=True)
    words = text(on_page.content.decode())
    assert f"These changes were already imported (task id {real})." in words
    assert f"These changes were imported: the import (task id {real} )." in words
    assert "Import these changes" not in words
    assert "excluded_rows" not in str(api.get(f"/api/tasks/{dry.id}/").json())
    wait_state(Job.objects.get(id=real), State.SUCCEEDED)
    assert Job.objects.filter(kind="import_teams").count() == 5
    assert by_name()["A"] == ("A", "new", "", "")


def test_skipped_keys_stay_out_of_the_api(worker, api, user, tmp_path):  # type: ignore[no-untyped-def]
    rows = [("A", "1", "", ""), ("A", "2", "", ""), ("B", "", "", "")]
    job = wait_state(
        start(user, write_rows(tmp_path / "t.csv", rows), mode="upsert", on_error="skip"),
        State.SUCCEEDED,
    )
    assert job.param("excluded_rows") == [2, 3]  # kept on the job row for the batches
    params = api.get(f"/api/tasks/{job.id}/").json()["params"]
    assert "excluded_rows" not in params and params["mode"] == "upsert"
    assert "excluded_rows" not in str(api.get("/api/tasks/").json())


@pytest.mark.servers
def test_the_pages_say_what_an_upsert_did_and_undid(worker, user, other_user, client, tmp_path):  # type: ignore[no-untyped-def]
    rows = [(f"T{i}", "old", "", "") for i in range(20_000)]
    first = wait_state(start(user, write_rows(tmp_path / "a.csv", rows)), State.SUCCEEDED)
    client.force_login(user)
    edited = [("T0", "new", "", ""), ("T1", "old", "", ""), ("N1", "", "", "")]
    done = wait_state(
        start(user, write_rows(tmp_path / "b.csv", edited), mode="upsert"), State.SUCCEEDED
    )
    page = text(client.get(done.get_absolute_url()).content.decode())
    assert (
        "See the 1 team this job created . The 1 team it updated keeps the import that created "
        "it, so is not in that list." in page
    )
    listed = client.get("/teams/", {"job": str(done.id)}).content.decode()
    assert "<td>N1</td>" in listed and "<td>T0</td>" not in listed
    assert "Only those created by" in text(listed)
    # Another person's import is a 404 here too, and its task id is not shown.
    client.force_login(other_user)
    assert client.get("/teams/", {"job": str(first.id)}).status_code == 404
    assert str(first.id)[:8] not in client.get("/teams/").content.decode()

    before = checksum()
    changed = [(f"New {i}", "", "", "") for i in range(300)]
    changed += [(f"T{i}", "v2", "", "") for i in range(20_000)]
    job = start(user, write_rows(tmp_path / "c.csv", changed), mode="upsert", batch_size=100)
    wait_processed(job, 600)
    services.job_stop(job=job, by=user)
    job = wait_state(job, State.STOPPED, timeout=60)
    assert checksum() == before
    undo = job.result["undo"]
    assert undo["deleted"] == 300 and undo["restored"] >= 300 and undo["left"] == 0
    expected = (
        f"Stopped: 300 teams created and removed, {undo['restored']:,} updated teams put back "
        "to their previous values; nothing was kept."
    )
    client.force_login(user)
    assert expected in text(client.get(job.get_absolute_url()).content.decode())
    assert Team.objects.filter(job=job).count() == 0


def test_a_dry_run_with_skipped_rows_does_not_call_them_stored(
    worker, user, client, tmp_path, capsys
):  # type: ignore[no-untyped-def]
    wait_state(start(user, write_rows(tmp_path / "a.csv", [("A", "old", "", "")])), State.SUCCEEDED)
    # "B" twice in the file: both rows are left out (a key must name one row).
    path = write_rows(
        tmp_path / "b.csv", [("A", "old", "", ""), ("B", "1", "", ""), ("B", "2", "", "")]
    )
    dry = wait_state(
        start(user, path, mode="upsert", dry_run=True, on_error="skip"), State.SUCCEEDED
    )
    assert (dry.result["unchanged"], dry.result["skipped"]) == (1, 2)
    said = (
        "Nothing to change in the rows that can be imported; 2 rows could not be and would be "
        "left out (see the problems)."
    )
    client.force_login(user)
    page = text(client.get(dry.get_absolute_url()).content.decode())
    assert said in page
    assert "every row is already stored" not in page
    call_command(
        "import-teams", str(path), "--mode", "upsert", "--dry-run", "--wait", "--on-error",
        "skip", "--user", "alice",
    )  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1] == said


@pytest.mark.django_db
def test_applying_what_is_not_a_finished_dry_run_is_refused_in_english(user):  # type: ignore[no-untyped-def]
    api = token_client(user)

    def refusal(**fields) -> str:  # type: ignore[no-untyped-def]
        job = Job.objects.create(owner=user, label="teams.csv", **fields)
        answer = api.post(f"/api/imports/teams/{job.id}/apply/")
        assert answer.status_code == 409
        return str(answer.json()["detail"])

    only = "Only a finished dry run of a team import can be imported for real; "
    assert refusal(kind="import_teams", state=State.SUCCEEDED, params={"mode": "create"}) == (
        only + "this import is not a dry run: it wrote its teams itself."
    )
    assert refusal(kind="import_teams", state=State.RUNNING, params={"dry_run": True}) == (
        only + "this dry run is running."
    )
    assert refusal(kind="import_teams", state=State.FAILED, params={"dry_run": True}) == (
        only + "this dry run has failed."
    )
    assert refusal(kind="export_responses", state=State.SUCCEEDED, params={}) == (
        only + "this job is not a team import."
    )
