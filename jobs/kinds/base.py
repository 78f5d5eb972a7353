"""What a job kind implements, and what the engine gives it while it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from jobs.models import Job

if TYPE_CHECKING:
    from jobs.parts import Part


class JobFailed(Exception):
    """The job cannot succeed; the message is shown to the user as it is."""

    def __init__(
        self,
        message: str,
        *,
        problems: list[dict[str, Any]] | None = None,
        problem_count: int = 0,
        error_report_file: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.problem_count = problem_count
        self.error_report_file = error_report_file


class Interrupted(Exception):
    """Raised by ``RunContext.heartbeat`` when the user asked to pause or stop."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


@dataclass
class Batch:
    """One batch read by ``next_batch`` and written by ``write_batch``.

    ``count`` is how many units (rows) the batch adds to the progress;
    ``checkpoint`` is where the next batch starts once this one is committed.
    """

    count: int
    checkpoint: dict[str, Any]
    payload: Any = None


@dataclass
class RunContext:
    """The job as the worker runs it, with a way to check in during long steps."""

    job: Job
    heartbeat_fn: Callable[[], None] = field(repr=False)
    state: dict[str, Any] = field(default_factory=dict)

    def heartbeat(self) -> None:
        """Renew the lease; raise ``Interrupted`` if the user asked to pause or stop."""
        self.heartbeat_fn()

    def checked(self, *, done: int, total: int, unit: str = "bytes") -> None:
        """Report how far ``prepare`` has checked its input (``done`` of ``total`` ``unit``).

        Kept in memory; the next ``heartbeat`` stores it on the job row with
        the speed, so the job page shows the check's own progress.
        """
        self.state["checked"] = (done, total, unit)


class JobKind:
    """Base class of every job kind. Subclasses set ``name`` and override the steps."""

    name: ClassVar[str]
    verbose_name: ClassVar[str] = ""
    # What users call the file a finished job keeps ("export file"), if any;
    # the retention sweep deletes it with ``discard`` (see jobs/retention.py).
    kept_file: ClassVar[str] = ""
    # Parameters the kind keeps for itself on the job row: not shown by the API or the page.
    internal_params: ClassVar[frozenset[str]] = frozenset()
    # Whether the jobs page offers the kind in its filter (the engine's test kind is not).
    offered: ClassVar[bool] = True
    # A template the job page includes under the progress (with ``job``), e.g. a delivery note.
    detail_template: ClassVar[str] = ""

    def prepare(self, ctx: RunContext) -> int | None:
        """Validate and count, before anything is written; return the total or None.

        Long work calls ``ctx.heartbeat()`` now and then. Raise ``JobFailed`` to fail.
        """
        return None

    def initial_checkpoint(self, ctx: RunContext) -> dict[str, Any]:
        return {}

    def split(self, ctx: RunContext, parts: int) -> list[Part] | None:
        """Cut the work checked by ``prepare`` into at most ``parts`` ranges; None: one piece.

        Called after ``prepare`` (same run, same ``ctx``) when the job's
        ``parallelism`` parameter is above 1. Each ``Part`` holds the first
        checkpoint of a range, from which ``next_batch`` reads to the range's
        end, and its total. The engine runs each range as a job of its own
        (``jobs.parts``) that writes under its own job id; ``undo_chunk``,
        ``finish`` and ``write_batch`` are then called with the part's job.
        The default: the kind runs in one piece.
        """
        return None

    def resume(self, ctx: RunContext, checkpoint: dict[str, Any]) -> None:
        """Called once when a run continues from a committed checkpoint."""

    def next_batch(self, ctx: RunContext, checkpoint: dict[str, Any]) -> Batch | None:
        """Read the next batch outside any transaction; None when there is no more."""
        raise NotImplementedError

    def write_batch(self, ctx: RunContext, batch: Batch) -> None:
        """Write the batch; runs in the transaction that commits the checkpoint."""
        raise NotImplementedError

    def undo_chunk(self, ctx: RunContext) -> int:
        """Delete some of what the job wrote (in a transaction); return how much. 0 = done."""
        return 0

    def undone(self, job: Job) -> str:
        """What the undo of a stopped or failed ``job`` did, in words; "" for the engine's own.

        The engine's own sentence counts rows "written and removed"; a kind
        whose undo also puts rows back says so here, from the counts it kept.
        """
        return ""

    def discard(self, job: Job) -> None:
        """Remove files the job owns (upload, partial result) after a stop."""

    def kept_bytes(self, job: Job) -> int:
        """Bytes of storage the job's files take now (the user's quota counts them)."""
        return 0

    def finish(self, ctx: RunContext) -> dict[str, Any]:
        """Last step after the final batch (e.g. send the e-mail); returns the result."""
        return {}
