"""Fuzz the REST API from its own OpenAPI schema (``/api/schema/``) with schemathesis.

Every operation gets generated requests, valid and invalid, sent with a token
to the real Django application. No answer may be a 500 or differ from what
the schema promises (status codes, content types, bodies). The budget is
fixed and the generation derandomized, so CI runs the same cases each time.
Set ``COLLECT_FUZZ_EXAMPLES`` to fuzz harder locally.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from jobs.models import Job, State
from tests.conftest import make_token

# The outcome depends on the database and the broker: CI runs it on each.
pytestmark = pytest.mark.servers

EXAMPLES = int(os.environ.get("COLLECT_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def token(user: Any) -> str:
    # Some jobs to find: the fuzzer's ids then hit real rows too (see the explicit ids below).
    for state in (State.QUEUED, State.RUNNING, State.PAUSED, State.SUCCEEDED, State.FAILED):
        Job.objects.create(kind="count", owner=user, state=state, params={"n": 3}, total=3)
    return make_token(user)


@pytest.fixture
def wsgi_app(db: None) -> Iterator[Any]:
    """The project's WSGI application, whole middleware stack included.

    As Django's test client does, it keeps the database connection open at the
    end of each request: the test's data lives in the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app: Any, token: str) -> Any:
    return schemathesis.openapi.from_wsgi(
        "/api/schema/",
        wsgi_app,
        headers={"Authorization": f"Token {token}", "Accept": "application/json"},
    )


# "A request the schema allows is accepted" cannot hold for rules OpenAPI does not
# express: a date that does not exist (2021-02-30), 'from' after 'to', a multipart
# part that must carry a file name (generated parts have none). Those requests get
# a 400 with a message, which the other checks (documented status, body shape) cover.
LOOSE = [positive_data_acceptance]
# An empty filter (``?state=&page=``, what an HTML form sends) means "no filter"
# and page 1: accepted on purpose, though OpenAPI calls it invalid. Unknown states
# are refused (see test_an_unknown_state_or_kind_is_refused).
LOOSER = {("GET", "/api/tasks/"): [negative_data_rejection]}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


# Every operation of the schema (a new one must be added here, see the last test).
OPERATIONS = [
    ("GET", "/api/tasks/"),
    ("GET", "/api/tasks/{id}/"),
    ("POST", "/api/tasks/{id}/pause/"),
    ("POST", "/api/tasks/{id}/resume/"),
    ("POST", "/api/tasks/{id}/stop/"),
    ("POST", "/api/imports/teams/"),
    ("POST", "/api/exports/responses/"),
    ("POST", "/api/exports/responses/{task_id}/send-again/"),
    ("POST", "/api/imports/teams/{task_id}/apply/"),
]


def fuzz(operation: Any, mode: GenerationMode, token: str, loose: list[Any]) -> None:
    """Send ``EXAMPLES`` generated requests for one operation; every check must pass."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth(token), excluded_checks=loose)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_keeps_its_schema(
    api_schema: Any, token: str, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(api_schema[path][method], mode, token, LOOSE + LOOSER.get((method, path), []))


@pytest.mark.parametrize("action", ["pause", "resume", "stop"])
def test_real_job_ids_keep_the_schema_too(
    api_schema: Any, token: str, user: Any, action: str
) -> None:
    """The fuzzer's random ids miss every job: control real ones in every state."""
    operation = api_schema[f"/api/tasks/{{id}}/{action}/"]["POST"]
    ids = [str(job.id) for job in Job.objects.filter(owner=user)] + [str(uuid.uuid4())]
    for task_id in ids:
        case = operation.Case(path_parameters={"id": task_id})
        case.call_and_validate(headers=auth(token))


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


def test_an_unknown_state_or_kind_is_refused(api: Any) -> None:
    answer = api.get("/api/tasks/", {"state": "done"})
    assert answer.status_code == 400
    assert answer.json() == {
        "state": [
            "Unknown state 'done'; use one of queued, running, pausing, paused, stopping, "
            "stopped, succeeded, failed."
        ]
    }
    assert api.get("/api/tasks/", {"state": ""}).status_code == 200
    # PostgreSQL refuses NUL in text: the fuzzer's "\x00" once made this a 500 there.
    answer = api.get("/api/tasks/", {"kind": "\x00"})
    assert answer.status_code == 400
    assert answer.json() == {
        "kind": ["Unknown kind '\\x00'; use one of count, export_responses, import_teams."]
    }


NOT_FOUND = {
    "detail": "There is nothing at this address, or it belongs to someone else. Check the "
    "task id: GET /api/tasks/ lists your jobs."
}


def test_an_api_path_that_matches_nothing_is_a_json_404(api: Any) -> None:
    answer = api.get("/api/tasks/not-a-uuid/")
    assert answer.status_code == 404
    assert answer.json() == NOT_FOUND


@pytest.mark.parametrize(
    "url", ["/api/tasks/{}/", "/api/tasks/{}/stop/", "/stop_task/{}", "/tasks/{}/frobnicate/"]
)
def test_every_404_of_the_api_is_a_sentence(api: Any, url: str) -> None:
    # An unknown job (Django's "No Job matches the given query.") and an unknown
    # action (DRF's "Not found.") say what the unmatched path says.
    method = api.post if url.endswith("/stop/") else api.get
    answer = method(url.format(uuid.uuid4()), HTTP_ACCEPT="application/json")
    assert answer.status_code == 404
    assert answer.json() == NOT_FOUND
