"""``/responses/``: the form responses, newest first, in the export's date range.

Pages are keyset pages on ``(timestamp, id)``, the index the export reads
(``formresponse_ts_id``), walked backwards: a page is "the 50 rows before
this one", so the millionth row costs what the first does (no ``OFFSET``, no
``COUNT(*)``). The cursor is the last row's key, ``?before=`` for older rows
and ``?after=`` for newer ones.

The range is the export's own (``responses.forms.RangeForm``: same parsing,
same words), and "Export these" opens the export form with that range.

Listing responses shows personal data, so it needs the same permission as
exporting them: ``responses.export_responses`` (403 otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from responses import policy
from responses.forms import RangeForm, representable
from responses.models import FormResponse

PAGE_ROWS = 50
BAD_CURSOR = "This page link is damaged or cut short; the list starts again at the newest response."

Key = tuple[dt.datetime, int]


def _key(raw: str) -> Key | None:
    """Parse a cursor ``<ISO timestamp>,<id>``; None when it is not one."""
    stamp, _, ident = raw.rpartition(",")
    try:
        moment = dt.datetime.fromisoformat(stamp)
        number = int(ident)
    except ValueError:
        return None
    if moment.tzinfo is None or not representable(moment):
        return None  # e.g. 9999-12-31T23:59:59-12:00: past year 9999 in UTC
    return moment, number


def _cursor(row: FormResponse) -> str:
    return f"{row.timestamp.isoformat()},{row.pk}"


def newest_first_page(
    *, rows: QuerySet[FormResponse], before: Key | None = None, after: Key | None = None
) -> tuple[list[FormResponse], bool, bool]:
    """One keyset page of ``rows``, newest first: ``(page, has_newer, has_older)``.

    ``before`` gives the ``PAGE_ROWS`` rows just older than that key,
    ``after`` those just newer; neither gives the newest. Each is a range scan
    on the ``(timestamp, id)`` index, reading one row more than it shows.
    """
    if after is not None:
        ts, ident = after
        newer = rows.filter(timestamp__gte=ts).exclude(timestamp=ts, id__lte=ident)
        found = list(newer.order_by("timestamp", "id")[: PAGE_ROWS + 1])
        more = len(found) > PAGE_ROWS
        return list(reversed(found[:PAGE_ROWS])), more, True
    if before is not None:
        ts, ident = before
        rows = rows.filter(timestamp__lte=ts).exclude(timestamp=ts, id__gte=ident)
    found = list(rows.order_by("-timestamp", "-id")[: PAGE_ROWS + 1])
    return found[:PAGE_ROWS], before is not None, len(found) > PAGE_ROWS


def _link(params: dict[str, str], **cursor: str) -> str:
    return "?" + urlencode({**{k: v for k, v in params.items() if v}, **cursor})


@login_required
@require_GET
def response_list(request: HttpRequest) -> HttpResponse:
    """Query parameters: ``from``, ``to`` (as the export takes them), ``before`` or ``after``."""
    if not policy.may_export(request.user):
        return render(request, "403.html", {"exception": policy.LIST_NOT_ALLOWED}, status=403)
    form = RangeForm({"from": request.GET.get("from", ""), "to": request.GET.get("to", "")})
    context: dict[str, Any] = {"form": form, "responses": [], "cursor_error": ""}
    if not form.is_valid():
        return render(request, "responses/list.html", context, status=400)
    rows = FormResponse.objects.all()
    start, stop = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    if start:
        rows = rows.filter(timestamp__gte=start)
    if stop:
        rows = rows.filter(timestamp__lte=stop)
    keys: dict[str, Key | None] = {}
    for name in ("before", "after"):
        raw = request.GET.get(name, "")
        keys[name] = _key(raw) if raw else None
        if raw and keys[name] is None:
            context["cursor_error"] = BAD_CURSOR
    page, newer, older = newest_first_page(rows=rows, before=keys["before"], after=keys["after"])
    params = {"from": form.cleaned_data["from"], "to": form.cleaned_data["to"]}
    context.update(
        responses=page,
        filtered=bool(start or stop),
        range_query=_link(params),
        newer=_link(params, after=_cursor(page[0])) if page and newer else None,
        older=_link(params, before=_cursor(page[-1])) if page and older else None,
    )
    return render(request, "responses/list.html", context)
