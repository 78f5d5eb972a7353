"""How big an export's batches are, and when its file is zipped for the e-mail."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.kinds import RunContext
from jobs.models import Job
from responses import mail
from responses.exporter import page_rows


def context() -> RunContext:
    return RunContext(job=Job(kind="export_responses"), heartbeat_fn=lambda: None)


@pytest.fixture
def sizing(settings: Any) -> Any:
    settings.COLLECT_EXPORT_BATCH_ROWS = 1000
    settings.COLLECT_EXPORT_BATCH_SECONDS = 0.2
    settings.COLLECT_EXPORT_BATCH_MAX_ROWS = 5000
    settings.COLLECT_EXPORT_THROTTLE_SECONDS = 0.0
    return settings


def test_it_starts_with_the_batch_rows_and_grows_at_most_twofold(sizing: Any) -> None:
    ctx = context()
    assert page_rows(ctx) == 1000
    sizes = []
    for _ in range(4):
        # The last batch took far less than the target: double, up to the most allowed.
        ctx.state["page"] = (time.monotonic() - 0.001, ctx.state["page"][1])
        sizes.append(page_rows(ctx))
    assert sizes == [2000, 4000, 5000, 5000]


def test_a_slow_batch_makes_the_next_one_smaller_but_never_below_the_batch_rows(
    sizing: Any,
) -> None:
    ctx = context()
    ctx.state["page"] = (time.monotonic() - 0.4, 4000)  # twice the target
    assert 1900 <= page_rows(ctx) <= 2000
    ctx.state["page"] = (time.monotonic() - 10, 4000)  # at most halved a step
    assert page_rows(ctx) == 2000
    ctx.state["page"] = (time.monotonic() - 10, 1200)
    assert page_rows(ctx) == 1000


@pytest.mark.parametrize(
    "change", [{"COLLECT_EXPORT_BATCH_SECONDS": 0.0}, {"COLLECT_EXPORT_THROTTLE_SECONDS": 0.05}]
)
def test_no_target_or_a_throttle_keeps_every_batch_at_the_batch_rows(
    sizing: Any, change: dict[str, float]
) -> None:
    for name, value in change.items():
        setattr(sizing, name, value)
    ctx = context()
    assert page_rows(ctx) == 1000
    ctx.state["page"] = (time.monotonic() - 0.001, 1000)
    assert page_rows(ctx) == 1000


def csv_bytes(size: int, seed: int) -> bytes:
    """CSV-like text that deflates about 4x, as an export does."""
    rng = random.Random(seed)
    names = [f"name{rng.randrange(10**6)}" for _ in range(500)]
    lines, total = [], 0
    while total < size:
        gender, mobile = rng.choice(["male", "female"]), rng.randrange(10**8)
        line = f"{total},{rng.choice(names)},{gender},+2547{mobile:08d}\r\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


@pytest.fixture
def stored() -> Any:
    names: list[str] = []

    def store(data: bytes) -> str:
        names.append(default_storage.save("exports/sizing-test/responses.csv", ContentFile(data)))
        return names[-1]

    yield store
    for name in names:
        default_storage.delete(name)


def test_a_big_file_that_zips_under_the_limit_is_attached_zipped(
    settings: Any, stored: Any
) -> None:
    data = csv_bytes(6 * 1024**2, seed=1)  # large enough to be judged from samples
    settings.COLLECT_EXPORT_ATTACH_MAX_BYTES = 3 * 1024**2
    name = stored(data)
    attached = mail.attachment(name, len(data), "text/csv")
    assert attached is not None
    filename, content, media_type = attached
    assert media_type == "application/zip" and filename == name.rsplit("/", 1)[-1] + ".zip"
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.read(filename[: -len(".zip")]) == data


def test_a_file_whose_samples_deflate_well_over_the_limit_gets_the_link(
    settings: Any, stored: Any
) -> None:
    data = os.urandom(6 * 1024**2)  # does not deflate at all
    settings.COLLECT_EXPORT_ATTACH_MAX_BYTES = 5 * 1024**2
    name = stored(data)
    assert mail._zipped_estimate(name, len(data)) > 1.1 * 5 * 1024**2
    assert mail.attachment(name, len(data), "text/csv") is None
