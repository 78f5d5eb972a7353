"""Who may export personal data, where it may go, who may touch others' jobs, and the audit log.

Each rule is tried through the API, the seed URL (token and session) and the
page; the mail itself goes through a real worker to a real SMTP server.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import AuditEntry, Job, State
from responses import mail, policy
from responses.fake import create_responses
from tests.conftest import grant, make_token
from tests.test_export_helpers import END, START, one_mail
from tests.workers import wait_processed, wait_state

EXPORT = "/api/exports/responses/"
SEED = "/export_data/"


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user)}")
    return client


def session(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refusals() -> list[str]:
    return list(AuditEntry.objects.filter(action="refused").values_list("detail", flat=True))


# --- 1. Who may export ------------------------------------------------------------


@pytest.mark.django_db
def test_without_the_permission_every_way_in_is_a_403_and_no_job(other_user) -> None:  # type: ignore[no-untyped-def]
    api = token_client(other_user)
    answer = api.post(EXPORT, {"email": "bob@example.com"}, format="json")
    assert (answer.status_code, answer.json()) == (403, {"detail": policy.NOT_ALLOWED})
    # The seed URL with a token (a script), with a session (a browser), and its page.
    assert api.post(SEED, {"email": "bob@example.com"}, format="json").status_code == 403
    browser = session(other_user)
    posted = browser.post(SEED, {"email": "bob@example.com"})
    assert posted.status_code == 403
    page = browser.get(SEED + "?email=bob@example.com")
    assert page.status_code == 403
    html = page.content.decode()
    assert "Ask an administrator to give your account" in html
    assert "“Can export form responses”" in html
    assert 'href="/export_data/"' not in html  # no export link in the navigation
    assert not Job.objects.exists()
    assert len(refusals()) == 3  # the three POSTs; showing the page is not an attempt


@pytest.mark.django_db
def test_the_export_link_shows_only_to_those_who_may_export(user, other_user) -> None:  # type: ignore[no-untyped-def]
    assert 'href="/export_data/"' in session(user).get("/tasks/").content.decode()
    assert 'href="/export_data/"' not in session(other_user).get("/tasks/").content.decode()


@pytest.mark.django_db
def test_the_permission_can_come_from_a_group(other_user) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, Permission

    analysts = Group.objects.create(name="analysts")
    analysts.permissions.add(Permission.objects.get(codename="export_responses"))
    other_user.groups.add(analysts)
    answer = token_client(other_user).post(EXPORT, {"email": "bob@example.com"}, format="json")
    assert answer.status_code == 202
    assert Job.objects.get().params["email"] == "bob@example.com"


# --- 3. Where exports go ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "message"),
    [
        (
            "attacker@evil.example",
            "Exports cannot be sent to attacker@evil.example: exports are sent only to your "
            "own address (alice@example.com). Use your own address, or "
            "ask an administrator to allow that domain (COLLECT_EXPORT_RECIPIENT_DOMAINS).",
        ),
        (
            "x@[127.0.0.1]",
            "Exports cannot be sent to x@[127.0.0.1]: an address at an IP address "
            "([127.0.0.1]) names no organisation.",
        ),
        (
            "root@localhost",
            "Exports cannot be sent to root@localhost: “localhost” is not a full domain name.",
        ),
    ],
)
def test_only_the_own_address_by_default(user, settings, email, message) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    api = token_client(user)
    answer = api.post(EXPORT, {"email": email}, format="json")
    assert (answer.status_code, answer.json()) == (400, {"email": [message]})
    seed = api.post(SEED, {"email": email}, format="json")
    assert (seed.status_code, seed.json()) == (400, {"email": [message]})
    page = session(user).post(SEED, {"email": email})
    assert page.status_code == 400
    assert message.replace("“", "&ldquo;")[:30] in page.content.decode().replace("“", "&ldquo;")
    assert not Job.objects.exists()
    assert len(refusals()) == 3


@pytest.mark.django_db
def test_an_ip_or_single_label_domain_is_refused_even_when_allowed(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = ["localhost", "[127.0.0.1]", "127.0.0.1"]
    for email in ("root@localhost", "x@[127.0.0.1]"):
        answer = token_client(user).post(EXPORT, {"email": email}, format="json")
        assert answer.status_code == 400, email
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_the_own_address_in_any_case_and_an_allowed_domain(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = ["field.example.org"]
    api = token_client(user)
    for typed, stored in (
        ("ALICE@Example.com", "alice@example.com"),
        ("ana@FIELD.example.org", "ana@field.example.org"),
    ):
        answer = api.post(EXPORT, {"email": typed}, format="json")
        assert answer.status_code == 202, answer.json()
        assert Job.objects.get(id=answer.json()["task_id"]).params["email"] == stored
    # A sub-domain of an allowed domain is not the allowed domain.
    assert api.post(EXPORT, {"email": "a@x.field.example.org"}, format="json").status_code == 400


@pytest.mark.django_db
def test_a_user_without_an_address_is_told_to_get_one(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    User.objects.filter(id=user.id).update(email="")
    answer = token_client(user).post(EXPORT, {"email": "alice@example.com"}, format="json")
    assert answer.json() == {
        "email": [
            "Exports cannot be sent to alice@example.com: exports are sent only to your own "
            "address (your account has none). Use your own address, or "
            "ask an administrator to allow that domain (COLLECT_EXPORT_RECIPIENT_DOMAINS)."
        ]
    }
    page = session(user).get(SEED).content.decode()
    assert "Your account has no e-mail address." in page
    with pytest.raises(CommandError) as cli:
        call_command("export-responses", "--user", "alice")
    assert str(cli.value) == f"--email: {policy.NO_OWN_ADDRESS}"


@pytest.mark.django_db
def test_the_page_says_who_receives_the_file_and_warns_about_a_foreign_prefill(
    user, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    browser = session(user)
    own = browser.get(SEED).content.decode()
    assert "The file will be sent to <strong>alice@example.com</strong>." in own
    lured = browser.get(SEED + "?email=attacker@evil.example&from=2017-05-15").content.decode()
    assert "Exports cannot be sent to attacker@evil.example" in lured


@pytest.mark.servers  # a JSON key lookup, which each database does its own way
@pytest.mark.django_db
def test_a_daily_cap_per_recipient_answers_429_with_when(user, manager_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 2
    grant(manager_user, "responses.export_responses")
    api = token_client(user)
    first = api.post(EXPORT, {"email": "victim@example.com"}, format="json")
    assert first.status_code == 202
    # Another sender counts against the same recipient; the case of the address does not matter.
    manager = token_client(User.objects.get(id=manager_user.id))
    assert manager.post(EXPORT, {"email": "Victim@example.com"}, format="json").status_code == 202
    third = api.post(EXPORT, {"email": "victim@example.com"}, format="json")
    assert third.status_code == 429
    assert 86000 < int(third["Retry-After"]) <= 86401
    assert third.json()["detail"].startswith(
        "victim@example.com has already been sent 2 exports in the last 24 hours "
        "(“Send again” included), the most allowed. Try again after "
    )
    # A stopped export sent nothing: it frees its place. Older than a day: not counted.
    Job.objects.filter(id=first.json()["task_id"]).update(state=State.STOPPED)
    assert api.post(EXPORT, {"email": "victim@example.com"}, format="json").status_code == 202
    Job.objects.update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert api.post(EXPORT, {"email": "victim@example.com"}, format="json").status_code == 202
    assert Job.objects.count() == 4
    assert any("has already been sent 2 exports" in d for d in refusals())


@pytest.mark.servers  # JSON key lookups with LIKE, which each database does its own way
@pytest.mark.django_db
def test_tagged_spellings_of_one_mailbox_share_its_cap(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 2
    api = token_client(user)

    def export(address: str) -> int:
        return int(api.post(EXPORT, {"email": address}, format="json").status_code)

    assert [export("team+a@example.com"), export("Team+B@example.com")] == [202, 202]
    refused = api.post(EXPORT, {"email": "team@example.com"}, format="json")
    assert refused.status_code == 429
    assert export("team+c@example.com") == 429
    tagged = api.post(EXPORT, {"email": "team+d@example.com"}, format="json").json()["detail"]
    assert tagged.startswith("team+d@example.com (the mailbox team@example.com) has already")
    # Other mailboxes, however alike, have their own.
    assert [export(a) for a in ("team_x@example.com", "teamx@example.com")] == [202, 202]
    assert export("team@other.example.com") == 400  # not an allowed domain at all


@pytest.mark.servers  # a JSON key lookup, which each database does its own way
@pytest.mark.django_db
def test_send_again_counts_against_the_daily_cap_as_every_mail_does(  # type: ignore[no-untyped-def]
    user, settings, mailoutbox
):
    """README: "Send again" follows the same rules: each mail of an export is one of the cap's."""
    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 3
    api = token_client(user)
    export = _finished_export(user)  # its own mail: 1 of 3
    again = f"/api/exports/responses/{export.id}/send-again/"
    assert [api.post(again).status_code for _ in range(2)] == [200, 200]  # 2 and 3 of 3
    assert [m.to for m in mailoutbox] == [["alice@example.com"]] * 2
    said = (
        "alice@example.com has already been sent 3 exports in the last 24 hours "
        "(“Send again” included), the most allowed. Try again after "
    )
    for refused in (
        api.post(EXPORT, {"email": "alice@example.com"}, format="json"),
        api.post(again),
    ):
        assert refused.status_code == 429
        assert refused.json()["detail"].startswith(said)
        assert 86000 < int(refused["Retry-After"]) <= 86401
    assert len(mailoutbox) == 2 and Job.objects.count() == 1
    # Another address is not concerned; a mail sent again more than a day ago no longer counts.
    assert api.post(EXPORT, {"email": "team@example.com"}, format="json").status_code == 202
    AuditEntry.objects.filter(action="send_again").update(at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert api.post(EXPORT, {"email": "alice@example.com"}, format="json").status_code == 202


def test_a_permitted_export_reaches_the_own_address_and_nothing_else(  # type: ignore[no-untyped-def]
    make_worker, smtp, inbox, user, settings
):
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    create_responses(50, start=START, end=END, seed=3)
    make_worker(env=smtp.env())
    api = token_client(user)
    assert api.post(EXPORT, {"email": "attacker@evil.example"}, format="json").status_code == 400
    answer = api.post(
        SEED,
        {"email": "alice@example.com", "from": "2017-05-15", "to": "2020-05-15"},
        format="json",
    )
    assert answer.status_code == 202
    job = wait_state(Job.objects.get(id=answer.json()["task_id"]), "succeeded")
    msg = one_mail(inbox)
    assert msg["To"] == "alice@example.com"
    assert job.result["email"] == "alice@example.com"


# --- 2. Other people's jobs -------------------------------------------------------


def _finished_export(owner: User) -> Job:
    name = f"exports/test-{owner.username}/responses.csv"
    default_storage.save(name, ContentFile(b"id\r\n"))
    return Job.objects.create(
        kind="export_responses",
        owner=owner,
        state=State.SUCCEEDED,
        params={"email": owner.email, "file": name},
        result_file=name,
        error_report_file=name,
    )


def _everywhere(job: Job) -> list[tuple[str, str]]:
    """Every URL that reaches one job, with its method."""
    link = f"/export_data/download/{mail.download_token(job)}"
    return [
        ("get", f"/api/tasks/{job.id}/"),
        ("post", f"/api/tasks/{job.id}/pause/"),
        ("post", f"/api/tasks/{job.id}/stop/"),
        ("get", f"/tasks/{job.id}/"),
        ("get", f"/tasks/{job.id}/fragment/"),
        ("get", f"/tasks/{job.id}/result"),
        ("get", f"/tasks/{job.id}/errors.csv"),
        ("get", f"/stop_task/{job.id}"),
        ("post", f"/stop_task/{job.id}"),
        ("get", link),
    ]


@pytest.mark.django_db
def test_is_staff_alone_does_not_reach_others_jobs_anywhere(user, staff_user, manager_user) -> None:  # type: ignore[no-untyped-def]
    job = _finished_export(user)
    for who, expected in ((staff_user, 404), (manager_user, None)):
        browser = session(who)
        api = token_client(who)
        for method, url in _everywhere(job):
            client = api if url.startswith("/api/") else browser
            status = getattr(client, method)(url).status_code
            if expected == 404:
                assert status == 404, (who, method, url)
            else:
                # Stopping a finished job is a 409 (it exists and may be controlled).
                assert status in {200, 302, 409}, (who, method, url, status)
    # The admin: the changelist and the actions select through the same rule.
    staff = session(staff_user)
    grant(staff_user, "jobs.view_job", "jobs.change_job")
    listing = staff.get("/admin/jobs/job/").content.decode()
    assert str(job.id) not in listing
    # Another user's job is a 404 in the admin too (not its redirect to the index).
    for view in ("change", "history", "delete"):
        answer = staff.get(f"/admin/jobs/job/{job.id}/{view}/")
        assert answer.status_code == 404, view
        assert "There is nothing at this address, or it belongs to someone else." in (
            answer.content.decode()
        ), view
    assert staff.get(f"/admin/jobs/job/{uuid.uuid4()}/change/").status_code == 404
    own = Job.objects.create(kind="count", owner=staff_user, state=State.SUCCEEDED)
    assert staff.get(f"/admin/jobs/job/{own.id}/change/").status_code == 200
    running = Job.objects.create(kind="count", owner=user, state=State.RUNNING)
    staff.post("/admin/jobs/job/", {"action": "stop", "_selected_action": [str(running.id)]})
    running.refresh_from_db()
    assert running.state == State.RUNNING
    grant(staff_user, "jobs.manage_all_jobs")
    staff = session(User.objects.get(id=staff_user.id))
    assert str(job.id) in staff.get("/admin/jobs/job/").content.decode()
    staff.post("/admin/jobs/job/", {"action": "stop", "_selected_action": [str(running.id)]})
    running.refresh_from_db()
    assert running.state == State.STOPPING


# --- 4. The audit log -------------------------------------------------------------


@pytest.mark.servers
def test_every_action_is_recorded_once_even_across_a_worker_crash(  # type: ignore[no-untyped-def]
    make_worker, user
):
    first = make_worker()
    api = token_client(user)
    job = Job.objects.create(kind="count", owner=user, params={"n": 4000, "delay": 0.05})
    from jobs.services import enqueue_now

    enqueue_now(job.id)
    wait_processed(job, 20)
    first.kill()  # a crash mid-job: the next worker takes the job over
    make_worker()
    assert api.post(f"/api/tasks/{job.id}/pause/").json()["state"] in {"pausing", "paused"}
    wait_state(job, "paused", timeout=60)
    browser = session(user)
    assert browser.post(f"/tasks/{job.id}/resume/").status_code == 302
    wait_state(job, "running")
    call_command("stop", str(job.id))
    wait_state(job, "stopped")
    export = _finished_export(user)
    assert browser.get(f"/tasks/{export.id}/result").status_code == 200
    assert (
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code
        == 200
    )

    entries = list(AuditEntry.objects.order_by("at", "id"))
    got = [(e.action, e.username, e.job_id, e.client_address) for e in entries]
    assert got == [
        ("pause", "alice", job.id, "127.0.0.1"),
        ("resume", "alice", job.id, "127.0.0.1"),
        ("stop", "command line", job.id, None),
        ("download", "alice", export.id, "127.0.0.1"),
        ("login_failed", "alice", None, "127.0.0.1"),
    ]
    assert entries[0].user == user and entries[-1].user is None
    # The job page shows its history.
    page = browser.get(f"/tasks/{job.id}/").content.decode()
    assert "asked to pause (now paus" in page and "asked to stop (now stopp" in page


@pytest.mark.django_db
def test_a_started_job_and_its_page_history(user) -> None:  # type: ignore[no-untyped-def]
    answer = token_client(user).post(
        EXPORT, {"email": "alice@example.com"}, format="json", REMOTE_ADDR="192.0.2.7"
    )
    job_id = answer.json()["task_id"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.username, str(entry.job_id), entry.client_address) == (
        "start",
        "alice",
        job_id,
        "192.0.2.7",
    )
    page = session(user).get(f"/tasks/{job_id}/").content.decode()
    assert "started (Responses from the start to the end, csv, for alice@example.com)" in page


@pytest.mark.django_db
def test_the_audit_log_is_read_only_in_the_admin(user) -> None:  # type: ignore[no-untyped-def]
    admin = User.objects.create_superuser("root", "root@example.com", "root-password-long")
    token_client(user).post(EXPORT, {"email": "x@evil.example"}, format="json")
    browser = session(admin)
    listing = browser.get("/admin/jobs/auditentry/?action=refused")
    assert listing.status_code == 200
    assert "x@evil.example" in listing.content.decode()
    entry = AuditEntry.objects.get()
    assert browser.get(f"/admin/jobs/auditentry/{entry.id}/delete/").status_code == 403
    assert browser.get("/admin/jobs/auditentry/add/").status_code == 403
    browser.post(f"/admin/jobs/auditentry/{entry.id}/change/", {"detail": "nothing happened"})
    entry.refresh_from_db()
    assert "x@evil.example" in entry.detail


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "at__year=9999",  # "before 10000-01-01"
        "at__year=9999&at__month=12",
        "at__year=9999&at__month=12&at__day=31",
        "at__year=99999999999999999999",
        "at__gte=9999-12-31T23:59:59-12:00",  # 10000 in UTC
        "at__lt=0001-01-01T00:00:00%2B14:00",  # year 0 in UTC
    ],
)
def test_an_audit_log_date_filter_out_of_range_shows_the_list_unfiltered(query) -> None:  # type: ignore[no-untyped-def]
    admin = User.objects.create_superuser("root", "root@example.com", "root-password-long")
    browser = session(admin)
    answer = browser.get(f"/admin/jobs/auditentry/?{query}", follow=True)
    assert answer.redirect_chain == [("/admin/jobs/auditentry/?e=1", 302)]
    assert answer.status_code == 200
    assert (
        "This list cannot be filtered by that date: it is at or past the edge of the years 1 "
        "to 9999 (in UTC). The list is shown without its filters; choose the dates again."
    ) in answer.content.decode()
    # A day the hierarchy can step past is a filter as before.
    assert (
        browser.get("/admin/jobs/auditentry/?at__year=9999&at__month=12&at__day=30").status_code
        == 200
    )


@pytest.mark.django_db
def test_an_audit_failure_never_fails_the_action(user, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the audit table is unavailable")

    # No real part can make only this one INSERT fail, so this one is a stand-in.
    monkeypatch.setattr(AuditEntry.objects, "create", broken)
    answer = token_client(user).post(EXPORT, {"email": "alice@example.com"}, format="json")
    assert answer.status_code == 202
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_the_command_line_follows_the_same_rules(user, other_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    with pytest.raises(CommandError) as refused:
        call_command("export-responses", "--user", "bob")
    assert str(refused.value) == policy.NOT_ALLOWED
    with pytest.raises(CommandError) as outside:
        call_command("export-responses", "--user", "alice", "--email", "x@evil.example")
    assert str(outside.value).startswith("--email: Exports cannot be sent to x@evil.example:")
    call_command("export-responses", "--user", "alice")
    assert Job.objects.get().params["email"] == "alice@example.com"
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["refused", "refused", "start"]


@pytest.mark.django_db
def test_send_again_follows_the_rules_and_is_bounded(user, other_user, settings) -> None:  # type: ignore[no-untyped-def]
    bobs = _finished_export(other_user)  # Bob may not export (any more): no mail
    refused = session(other_user).post(f"/export_data/{bobs.id}/send-again")
    assert refused.status_code == 403
    assert "You may not export form responses" in refused.content.decode()
    settings.COLLECT_EXPORT_RECIPIENT_DOMAINS = []
    mine = _finished_export(user)
    Job.objects.filter(id=mine.id).update(
        params={**mine.params, "email": "old@example.com"}, result={"sends_again": 0}
    )
    moved = token_client(user).post(f"/api/exports/responses/{mine.id}/send-again/")
    assert moved.status_code == 409
    assert moved.json()["detail"].startswith("Exports cannot be sent to old@example.com:")
    Job.objects.filter(id=mine.id).update(params=mine.params, result={"sends_again": 3})
    worn = token_client(user).post(f"/api/exports/responses/{mine.id}/send-again/")
    assert worn.json()["detail"] == (
        "This export was already sent again 3 times, the most allowed. "
        "Download it from this page, or start a new export."
    )
    assert [e.detail[:11] for e in AuditEntry.objects.filter(action="refused")] == [
        "send again:"
    ] * 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "email", ['"alice"@example.com', "x%evil.example@example.com", "a..b@example.com"]
)
def test_only_plain_addresses_at_an_allowed_domain(user, email) -> None:  # type: ignore[no-untyped-def]
    answer = token_client(user).post(EXPORT, {"email": email}, format="json")
    assert answer.status_code == 400
    assert (
        answer.json()["email"][0].endswith(
            ": use a plain address, with only letters, digits and . _ + - before the @."
        )
        or "Enter a valid e-mail address" in answer.json()["email"][0]
    )
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_no_permission_wins_over_a_bad_form(other_user) -> None:  # type: ignore[no-untyped-def]
    api = token_client(other_user)
    assert api.post(EXPORT, {"email": "nope", "from": "x"}, format="json").status_code == 403
    assert api.get(SEED + "?email=bad").status_code == 403
    assert len(refusals()) == 2


@pytest.mark.django_db
def test_a_prefilled_address_that_is_not_ones_own_is_pointed_out(user) -> None:  # type: ignore[no-untyped-def]
    page = session(user).get(SEED + "?email=ceo@example.com").content.decode()
    assert "This page was opened with the address ceo@example.com, which is not your own" in page
    refused = session(user).get(SEED + "?email=x@evil.example").content.decode()
    assert "The file will be sent to" not in refused


@pytest.mark.django_db
def test_a_script_at_the_cap_gets_json(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 1
    api = token_client(user)
    assert api.get(SEED + "?email=alice@example.com").status_code == 202
    capped = api.get(SEED + "?email=alice@example.com")
    assert capped.status_code == 429
    assert capped["Content-Type"] == "application/json"
    assert "has already been sent 1 export in the last 24 hours" in capped.json()["detail"]


@pytest.mark.servers  # how concurrent transactions see each other is the database's
def test_concurrent_requests_cannot_pass_the_cap(transactional_db, user, settings) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    from responses.services import responses_export_start

    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 3
    gate = Barrier(8)

    def one(_: int) -> str:
        try:
            gate.wait()
            responses_export_start(email="", date_from=None, date_to=None, by=user)
            return "started"
        except policy.RecipientCapReached:
            return "capped"
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(one, range(8)))
    assert outcomes == ["capped"] * 5 + ["started"] * 3
    assert Job.objects.count() == 3


@pytest.mark.servers  # how concurrent transactions see each other is the database's
def test_concurrent_mails_to_one_address_cannot_pass_the_cap(  # type: ignore[no-untyped-def]
    transactional_db, user, manager_user, settings, mailoutbox
) -> None:
    """Four "Send again" and four new exports by another user, at once, to one address."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    from responses.services import (
        SendAgainRefused,
        responses_export_send_again,
        responses_export_start,
    )

    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 3
    grant(manager_user, "responses.export_responses")
    exports = [_finished_export(user) for _ in range(4)]
    # Their own first mails are older than a day: nothing counts yet.
    Job.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    gate = Barrier(8)

    def one(n: int) -> str:
        try:
            gate.wait()
            if n < 4:
                responses_export_send_again(job=exports[n], by=user)
            else:
                responses_export_start(
                    email="Alice@example.com", date_from=None, date_to=None, by=manager_user
                )
            return "sent"
        except policy.RecipientCapReached:
            return "capped"
        except SendAgainRefused as exc:  # not expected: shows what went wrong
            return str(exc)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(one, range(8)))
    assert outcomes == ["capped"] * 5 + ["sent"] * 3
    sent_again = AuditEntry.objects.filter(action="send_again").count()
    assert sent_again == len(mailoutbox) and sent_again + Job.objects.count() - 4 == 3
    day = timezone.now() - dt.timedelta(days=1)
    assert len(policy.sent_times("alice@example.com", since=day)) == 3


@pytest.mark.django_db
def test_the_mail_writes_counts_as_people_read_them(user, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    export = _finished_export(user)
    Job.objects.filter(id=export.id).update(checkpoint={"rows": 200_000})
    export.refresh_from_db()
    result, reason = mail.send(export)
    assert reason == "" and result["rows"] == 200_000
    (sent,) = mailoutbox
    assert sent.subject == "Collect: your export of form responses (200,000 rows)"
    assert "It has 200,000 rows." in sent.body


@pytest.mark.servers  # how concurrent transactions see each other is the database's
def test_a_slow_send_again_cannot_give_back_a_send(  # type: ignore[no-untyped-def]
    transactional_db, user, settings, mailoutbox, monkeypatch
) -> None:
    """Two clicks overlap and the first one's mail is slower: three sends in all, never four."""
    import threading
    import time

    from django.db import connection

    from responses.services import SendAgainRefused, responses_export_send_again

    settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = 100
    export = _finished_export(user)
    real_send, second_done = mail.send, threading.Event()

    def send(job: Job) -> object:
        if threading.current_thread().name == "slow":
            second_done.wait(30)  # the other click's whole send happens meanwhile
        return real_send(job)

    monkeypatch.setattr(mail, "send", send)

    def slow() -> None:
        try:
            responses_export_send_again(job=export, by=user)
        finally:
            connection.close()

    first = threading.Thread(target=slow, name="slow")
    first.start()
    deadline = time.monotonic() + 30
    while (Job.objects.get(id=export.id).result or {}).get("sends_again") != 1:
        assert time.monotonic() < deadline, "the first click never claimed its send"
        time.sleep(0.02)
    responses_export_send_again(job=export, by=user)
    second_done.set()
    first.join(30)
    assert Job.objects.get(id=export.id).result["sends_again"] == 2
    responses_export_send_again(job=export, by=user)
    with pytest.raises(SendAgainRefused, match="already sent again 3 times"):
        responses_export_send_again(job=export, by=user)
    assert len(mailoutbox) == 3
