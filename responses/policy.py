"""Who may export form responses, and where an export may be mailed.

Form responses are personal data (names, mobile numbers, GPS positions), so
an export is a disclosure. Three rules, checked by ``responses.services`` for
every way in (page, API, seed URL, command line):

1. **Permission**: the model permission ``responses.export_responses``
   (granted in the admin to users or groups; superusers have every
   permission). Without it: ``ExportNotAllowed`` (HTTP 403).
2. **Recipient**: the requester's own account address, or an address in a
   domain of ``COLLECT_EXPORT_RECIPIENT_DOMAINS``. IP-literal domains
   (``x@[127.0.0.1]``, RFC 5321 §4.1.3) and single-label ones (``localhost``)
   are always refused: they name no organisation. Otherwise
   ``RecipientRefused`` (HTTP 400 on the field ``email``).
3. **Daily cap**: at most ``COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY``
   export mails to one mailbox (``mailbox``: any case, any ``+tag``) in any
   24 hours, whoever asks: each export
   and each "Send again" of one (stopped exports, which send nothing, do not
   count). Otherwise ``RecipientCapReached`` (HTTP 429 with ``Retry-After``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import AuditAction, AuditEntry, Job, State
from jobs.services import TooManyRequests

EXPORT_PERMISSION = "responses.export_responses"
# The part before the @ of an address other than one's own (RFC 5321 allows
# far more; mail systems read it in different ways).
PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")
# "Send again" on one finished export, at most this many times (each also counts
# against the daily cap, as every mail of an export does).
MAX_SENDS_AGAIN = 3
EXPORT_KIND = "export_responses"

NOT_ALLOWED = (
    "You may not export form responses: they hold personal data. "
    "Ask an administrator to give your account (or one of its groups) the permission "
    "“Can export form responses” in the admin."
)
LIST_NOT_ALLOWED = (
    "You may not see the form responses: they hold personal data, and listing them "
    "needs the same right as exporting them. Ask an administrator to give your account "
    "(or one of its groups) the permission “Can export form responses” in the admin."
)
NO_OWN_ADDRESS = (
    "Your account has no e-mail address, and exports are sent only to their requester. "
    "Ask an administrator to add your address to your account, then try again."
)


class ExportNotAllowed(PermissionDenied):
    """The user lacks ``responses.export_responses`` (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__(NOT_ALLOWED)


class RecipientRefused(ValueError):
    """The address may not receive exports (HTTP 400 naming the field ``email``)."""


class RecipientCapReached(TooManyRequests):
    """The address had its daily share of exports (HTTP 429; ``retry_after`` in seconds)."""


def may_export(user: Any) -> bool:
    """Whether ``user`` may export (and list) form responses."""
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(EXPORT_PERMISSION))


def require_export_permission(user: Any) -> None:
    """Raise ``ExportNotAllowed`` unless ``user`` may export form responses."""
    if not may_export(user):
        raise ExportNotAllowed


def allowed_domains() -> list[str]:
    """The domains besides the requester's own address that may receive exports (lower case)."""
    return list(settings.COLLECT_EXPORT_RECIPIENT_DOMAINS)


def own_address(user: Any) -> str:
    """The user's account address, or "" when none is set."""
    return (getattr(user, "email", "") or "").strip()


def _domain_fault(domain: str) -> str | None:
    """Why a domain can never receive exports, or None."""
    bare = domain.strip("[]")
    if domain.startswith("[") or _is_ip(bare):
        return f"an address at an IP address ({domain}) names no organisation"
    if "." not in domain.rstrip("."):
        return f"“{domain}” is not a full domain name"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.removeprefix("IPv6:"))
    except ValueError:
        return False
    return True


def recipient_for(user: Any, requested: str) -> str:
    """The address an export for ``user`` goes to, given what they typed (may be empty).

    Empty means their own address. Their own address (compared without regard
    to case) is returned as stored on the account. Raises ``RecipientRefused``
    with the sentence users read.
    """
    own = own_address(user)
    wanted = requested.strip() or own
    if not wanted:
        raise RecipientRefused(NO_OWN_ADDRESS)
    local, _, domain = wanted.rpartition("@")
    domain = domain.lower().rstrip(".")
    fault = _domain_fault(domain)
    if fault:
        raise RecipientRefused(f"Exports cannot be sent to {wanted}: {fault}.")
    if own and wanted.casefold() == own.casefold():
        return own
    if not PLAIN_LOCAL_PART.fullmatch(local):
        # Quoted names, "%" routing and the like reach the same mailbox under
        # endless spellings (and past the daily cap), or another one entirely.
        raise RecipientRefused(
            f"Exports cannot be sent to {wanted}: use a plain address, with only letters, "
            "digits and . _ + - before the @."
        )
    domains = allowed_domains()
    if domain in domains:
        return f"{local}@{domain}"
    mine = f"your own address ({own})" if own else "your own address (your account has none)"
    if not domains:
        rule = f"exports are sent only to {mine}"
    else:
        rule = f"exports are sent only to {mine} or to addresses at {', '.join(domains)}"
    raise RecipientRefused(
        f"Exports cannot be sent to {wanted}: {rule}. "
        "Use your own address, or ask an administrator "
        "to allow that domain (COLLECT_EXPORT_RECIPIENT_DOMAINS)."
    )


def send_again_refusal(job: Job) -> str:
    """Why ``job`` cannot be sent again because of what it is, in words; "" for a finished export.

    Only exports are mailed: another kind of job (an import) has nothing to send.
    """
    from jobs.formatting import state_phrase
    from jobs.kinds import kinds

    if job.kind != EXPORT_KIND:
        kind = kinds().get(job.kind)
        name = str(kind.verbose_name) if kind is not None else job.kind
        return (
            f"Only exports are sent by e-mail; this job ({name}) sends nothing, so there is "
            "nothing to send again."
        )
    if job.state != State.SUCCEEDED:
        return f"Only a finished export can be sent again; this export {state_phrase(job.state)}."
    return ""


def mailbox(address: str) -> str:
    """The mailbox ``address`` reaches, as the daily cap counts it: lower case, no ``+tag``.

    ``team+1@example.org`` and ``Team+2@example.org`` reach ``team@example.org``
    on every mail system that supports subaddressing (RFC 5233; Microsoft 365,
    Google, Postfix's ``recipient_delimiter``), so they share one cap; where a
    system does not, two mailboxes share one: the cap errs on the strict side.
    """
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


@contextmanager
def recipient_locked(recipient: str) -> Iterator[None]:
    """A transaction holding ``recipient``'s ``MailRecipient`` row locked (``SELECT … FOR UPDATE``).

    Count (``check_daily_cap``) and record the new mail (its export job, or its
    "Send again" audit entry) inside it: a concurrent request for the same
    address then waits, and counts that mail. Take this lock before any other
    (the requester's or the job's row), so locks are always taken in one order.
    The row is made first, in a statement of its own (``ON CONFLICT DO
    NOTHING`` / ``INSERT IGNORE`` through Django's ``ignore_conflicts``): made
    inside the transaction, InnoDB's shared lock on the duplicate key then
    raised to an exclusive one deadlocked two first requests (MariaDB docs,
    "InnoDB Lock Modes").
    """
    from responses.models import MailRecipient

    address = mailbox(recipient)
    MailRecipient.objects.bulk_create([MailRecipient(address=address)], ignore_conflicts=True)
    with transaction.atomic():
        locked = MailRecipient.objects.select_for_update().filter(address=address)
        list(locked.values_list("pk", flat=True))
        yield


def check_daily_cap(recipient: str) -> None:
    """Raise ``RecipientCapReached`` if ``recipient`` had its exports for the last 24 hours.

    Counts what ``sent_times`` finds; call it inside ``recipient_locked(recipient)`` so
    that concurrent requests cannot each see the same count.
    """
    cap = settings.COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY
    if not cap:
        return
    times = sent_times(recipient, since=timezone.now() - timedelta(days=1))
    if len(times) < cap:
        return
    # A slot frees up when enough of the oldest have left the 24-hour window.
    free_at = times[len(times) - cap] + timedelta(days=1)
    wait = max(1, int((free_at - timezone.now()).total_seconds()) + 1)
    exports = "export" if cap == 1 else "exports"
    box = mailbox(recipient)
    who = recipient if box == recipient.strip().lower() else f"{recipient} (the mailbox {box})"
    raise RecipientCapReached(
        f"{who} has already been sent {cap:,} {exports} in the last 24 hours "
        "(“Send again” included), the most allowed. Try again after "
        f"{timezone.localtime(free_at):%Y-%m-%d %H:%M %Z}, or download a recent export from "
        "its job page.",
        retry_after=wait,
    )


def sent_times(recipient: str, *, since: datetime) -> list[datetime]:
    """When exports were mailed to ``recipient``'s ``mailbox`` since ``since``, oldest first.

    The daily cap's count: any spelling of the mailbox (case, ``+tag``) counts.

    Every mail of an export counts: its first (the export's creation; a stopped
    export, which sends nothing, does not count) and each "Send again" (the
    audit log's ``send_again`` entries, written when the mail is claimed, just
    before it is sent; a send that then fails still counts). At most about
    the cap's number of rows each, which the cap keeps so.
    """
    box = mailbox(recipient)
    local, _, domain = box.rpartition("@")
    tagged = Q(params__email__istartswith=f"{local}+", params__email__iendswith=f"@{domain}")
    exports = Job.objects.filter(Q(params__email__iexact=box) | tagged, kind=EXPORT_KIND)
    first = (
        exports.filter(created_at__gte=since)
        .exclude(state=State.STOPPED)
        .values_list("created_at", flat=True)
    )
    again = AuditEntry.objects.filter(
        action=AuditAction.SEND_AGAIN, at__gte=since, job_id__in=exports.values("id")
    ).values_list("at", flat=True)
    return sorted([*first, *again])
