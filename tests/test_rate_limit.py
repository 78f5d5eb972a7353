"""Job creation is rate-limited per user (COLLECT_JOBS_PER_MINUTE)."""

from __future__ import annotations

import pytest

from jobs import services
from jobs.models import Job


@pytest.mark.django_db
def test_it_refuses_a_job_over_the_limit(user, other_user, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_JOBS_PER_MINUTE = 2
    for _ in range(2):
        services.job_create(kind="count", owner=user, params={"n": 1})
    with pytest.raises(services.JobRateLimited) as caught:
        services.job_create(kind="count", owner=user, params={"n": 1})
    assert str(caught.value) == (
        "You started 2 jobs in the last minute, the most allowed. "
        "Wait a minute and try again, or stop jobs you do not need."
    )
    assert Job.objects.filter(owner=user).count() == 2
    # Another user is not affected.
    services.job_create(kind="count", owner=other_user, params={"n": 1})


@pytest.mark.django_db
def test_the_limit_can_be_switched_off(user, settings):  # type: ignore[no-untyped-def]
    settings.COLLECT_JOBS_PER_MINUTE = 0
    for _ in range(5):
        services.job_create(kind="count", owner=user, params={"n": 1})
    assert Job.objects.filter(owner=user).count() == 5
