"""``count``: a tiny built-in kind that writes numbered rows.

It exercises the engine on its own (pause, stop, crash, resume) with a result
that is easy to check exactly: rows 0..n-1, each once.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from jobs.kinds.base import Batch, JobFailed, JobKind, RunContext
from jobs.models import CountRow
from jobs.parts import Part


class CountKind(JobKind):
    name = "count"
    verbose_name = "Count"
    offered = False  # a kind for testing the engine, not something people start

    def prepare(self, ctx: RunContext) -> int:
        n = int(ctx.job.param("n", 100))
        if n < 0:
            raise JobFailed("n must be 0 or more.")
        return n

    def initial_checkpoint(self, ctx: RunContext) -> dict[str, Any]:
        return {"next": 0}

    def split(self, ctx: RunContext, parts: int) -> list[Part] | None:
        """Ranges ``[next, end)`` of about equal size (``jobs.parts``)."""
        n = int(ctx.job.param("n", 100))
        cuts = sorted({n * i // parts for i in range(parts)} | {n})
        return [
            Part(checkpoint={"next": a, "end": b}, total=b - a) for a, b in itertools.pairwise(cuts)
        ]

    def next_batch(self, ctx: RunContext, checkpoint: dict[str, Any]) -> Batch | None:
        n = int(checkpoint.get("end", ctx.job.param("n", 100)))
        start = int(checkpoint["next"])
        if start >= n:
            return None
        fail_at = ctx.job.param("fail_at")
        if fail_at is not None and start >= int(fail_at):
            raise JobFailed(f"Asked to fail at row {fail_at}.")
        delay = float(ctx.job.param("delay", 0))
        if delay:
            time.sleep(delay)
        end = min(n, start + int(ctx.job.param("batch", 10)))
        checkpoint = {**checkpoint, "next": end}
        return Batch(count=end - start, checkpoint=checkpoint, payload=range(start, end))

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
        # ``write_delay``: seconds spent inside the batch's transaction, holding the job
        # row's lock (the tests freeze a worker there).
        write_delay = float(ctx.job.param("write_delay", 0))
        if write_delay:
            time.sleep(write_delay)
        CountRow.objects.bulk_create(CountRow(job_id=ctx.job.id, n=i) for i in batch.payload)

    def undo_chunk(self, ctx: RunContext) -> int:
        ids = list(CountRow.objects.filter(job_id=ctx.job.id).values_list("id", flat=True)[:5000])
        if not ids:
            return 0
        CountRow.objects.filter(id__in=ids).delete()
        return len(ids)
