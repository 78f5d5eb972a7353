"""Template helpers for the job pages: numbers and durations people read, and the chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs import formatting
from jobs.formatting import done_to, duration, size, thousands, unattended_note
from jobs.kinds import kinds
from jobs.models import Job
from jobs.retention import files_deleted_message

register = template.Library()

# Parameters shown under these names; the rest under their own name.
PARAM_LABELS = {
    "filename": "File",
    "read_as": "Read as",
    "sheet": "Sheet",
    "encoding": "Encoding",
    "size": "File size",
    "on_error": "Bad rows",
    "mode": "Mode",
    "key": "Key",
    "dry_run": "Dry run",
    "batch_size": "Batch size",
    "email": "E-mail to",
    "from": "From",
    "to": "To",
    "n": "Rows",
    "batch": "Batch size",
    "delay": "Delay per batch (s)",
    "format": "Format",
}
# Internal details: a storage path when the file's own name is known, the site address.
HIDDEN_PARAMS = {"file", "site", "excluded_rows", "applied_as"}


register.filter(thousands)
register.filter(duration)
register.filter(unattended_note)
register.filter(done_to)
register.filter("files_deleted", files_deleted_message)


@register.filter
def kind_name(kind: str) -> str:
    """The kind's name for people (``Import teams``), or its code if it is not installed."""
    cls = kinds().get(kind)
    return str(cls.verbose_name) if cls is not None else kind


@register.filter
def kind_template(kind: str) -> str:
    """The kind's own part of the job page (``JobKind.detail_template``), or ''."""
    cls = kinds().get(kind)
    return cls.detail_template if cls is not None else ""


@register.filter
def shown_params(job: Job) -> list[tuple[str, Any]]:
    params = dict(job.params or {})
    hidden = (
        HIDDEN_PARAMS
        if "filename" in params or job.kind != "import_teams"
        else {"site", "applied_as"}
    )
    out: list[tuple[str, Any]] = []
    # A fixed order: known parameters as listed above, then the rest by name
    # (PostgreSQL's jsonb does not keep the order they were written in).
    order = {key: i for i, key in enumerate(PARAM_LABELS)}
    for key in sorted(params, key=lambda k: (order.get(k, len(order)), k)):
        value = params[key]
        if key in hidden or value is None or value == "":
            continue
        if key == "size" and isinstance(value, int):
            value = f"{value:,} bytes"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        out.append((PARAM_LABELS.get(key) or key, value))
    return out


def throughput(samples: list[list[float]]) -> list[tuple[float, float]]:
    """Rows per second between consecutive samples, at the end time of each interval."""
    points: list[tuple[float, float]] = []
    previous: tuple[float, float] = (0.0, 0.0)
    for sample in samples or []:
        if not isinstance(sample, list | tuple) or len(sample) < 2:
            continue
        t, done = float(sample[0]), float(sample[1])
        dt = t - previous[0]
        if dt > 0 and done >= previous[1]:
            points.append((t, (done - previous[1]) / dt))
        previous = (t, done)
    return points


@register.simple_tag
def throughput_chart(job: Job, width: int = 800, height: int = 180) -> SafeString:
    """A small line chart of rows per second over run time, as inline SVG (no script)."""
    points = throughput(job.samples)
    if len(points) < 2:
        if job.is_terminal:
            return format_html('<p class="muted">{}</p>', "The job ran too briefly to chart.")
        return format_html(
            '<p class="muted">{}</p>', "The chart appears after a few seconds of work."
        )
    pad_left, pad_bottom, pad_top = 64, 24, 10
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    t_max = points[-1][0] or 1.0
    r_max = max(rate for _, rate in points) or 1.0

    def xy(t: float, rate: float) -> str:
        x = pad_left + plot_w * t / t_max
        y = pad_top + plot_h * (1 - rate / r_max)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(t, r) for t, r in [(0.0, points[0][1]), *points])
    area = f"{pad_left},{pad_top + plot_h} {line} {pad_left + plot_w},{pad_top + plot_h}"
    mean = sum(r for _, r in points) / len(points)
    summary = (
        f"Throughput over {duration(t_max)} of work: on average {thousands(mean)} rows/s, "
        f"at most {thousands(r_max)} rows/s."
    )
    axis_y = pad_top + plot_h
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" class="{}">{}</text>',
        [
            (pad_left - 6, pad_top + 10, "tick end", f"{thousands(r_max)}/s"),
            (pad_left - 6, pad_top + plot_h / 2 + 4, "tick end", f"{thousands(r_max / 2)}/s"),
            (pad_left - 6, axis_y, "tick end", "0"),
            (pad_left, axis_y + 16, "tick", "0 s"),
            (pad_left + plot_w, axis_y + 16, "tick end", duration(t_max)),
        ],
    )
    return format_html(
        '<figure class="chart"><svg viewBox="0 0 {w} {h}" width="100%" role="img" '
        'aria-labelledby="chart-title" preserveAspectRatio="xMinYMin meet">'
        '<title id="chart-title">{summary}</title>'
        '<line x1="{l}" y1="{ay}" x2="{r}" y2="{ay}" class="axis"/>'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{ay}" class="axis"/>'
        '<line x1="{l}" y1="{mid}" x2="{r}" y2="{mid}" class="grid"/>'
        '<polygon points="{area}" class="area"/><polyline points="{line}" class="line"/>'
        "{labels}</svg><figcaption>{summary}</figcaption></figure>",
        w=width, h=height, l=pad_left, r=pad_left + plot_w, t=pad_top, ay=axis_y,
        mid=pad_top + plot_h / 2,
        area=area, line=line, labels=labels, summary=summary,
    )  # fmt: skip


@register.filter
def when(moment: datetime | None) -> str:
    """A time today as ``14:02:11``; an earlier one as ``3 Nov 2025, 14:02``."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return local.strftime("%H:%M:%S")
    return f"{local.day} {local.strftime('%b %Y, %H:%M')}"


@register.filter
def at_time(moment: datetime | None) -> str:
    """``at 14:02:11`` today; ``on 3 Nov 2025 at 14:02`` on another day."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return f"at {local:%H:%M:%S}"
    return f"on {local.day} {local:%b %Y} at {local:%H:%M}"


@register.filter
def worker_silence(job: Job) -> str:
    """A sentence when no worker runs ``job`` now (``Job.unattended``), else "".

    Its worker went silent, or handed it back when it was shut down; or, for a
    job made of parts, no running part has a worker.
    """
    if not job.unattended:
        return ""
    if job.has_parts:
        return (
            "No worker runs any of its parts now: each part waits for the next free worker, "
            "which carries on from that part's last saved batch."
        )
    if job.handed_back:
        return (
            f"Its worker ({job.worker}) was shut down {at_time(job.updated_at)} and handed "
            "the job back: the next free worker carries on from the last saved batch."
        )
    silent = job.silent_seconds
    said = f"No news from its worker ({job.worker}) for {duration(silent)}. "
    expires = job.lease_expires_at
    if expires is not None and expires > timezone.now():
        return said + (
            f"If that worker has stopped, another one carries on from the last saved "
            f"batch soon after {when(expires)}, when its lease runs out."
        )
    return said + (
        "Its lease has run out: the next free worker carries on from the last saved batch."
    )


@register.filter
def basename(path: str) -> str:
    return str(path or "").replace("\\", "/").rsplit("/", 1)[-1]


@register.filter
def undone_summary(job: Job) -> str:
    """What is left of a stopped or failed job: nothing, since its writes were removed."""
    return formatting.undone_summary(job)


def _checking(job_or_checking: Any) -> dict[str, Any]:
    value = getattr(job_or_checking, "checking", job_or_checking)
    return value if isinstance(value, dict) else {}


@register.filter
def checked_percent(checking: dict[str, Any]) -> float:
    """How much of the input the check has read, in percent (0 when unknown)."""
    c = _checking(checking)
    total = c.get("total") or 0
    return min(100.0, 100.0 * (c.get("done") or 0) / total) if total else 0.0


def _amount(value: float, unit: str) -> str:
    return size(value) if unit == "bytes" else f"{thousands(value)} rows"


@register.filter
def checked_amount(checking: dict[str, Any]) -> str:
    """``12.5 MiB of 40 MiB checked`` or ``1,200 of 9,000 rows checked``."""
    c = _checking(checking)
    unit = c.get("unit", "bytes")
    if unit == "bytes":
        return f"{size(c.get('done') or 0)} of {size(c.get('total') or 0)} checked"
    return f"{thousands(c.get('done') or 0)} of {thousands(c.get('total') or 0)} rows checked"


@register.filter
def checked_speed(checking: dict[str, Any]) -> str:
    """``8.1 MiB/s`` or ``12,000 rows/s``; "" before it is known."""
    c = _checking(checking)
    rate = c.get("rate") or 0
    if rate <= 0:
        return ""
    return f"{_amount(rate, c.get('unit', 'bytes'))}/s"


@register.filter
def checked_eta(checking: dict[str, Any]) -> float | None:
    """Seconds until the check ends at its current speed, or None."""
    c = _checking(checking)
    rate, total, done = c.get("rate") or 0, c.get("total") or 0, c.get("done") or 0
    if rate <= 0 or not total:
        return None
    return max(0.0, (total - done) / rate)
