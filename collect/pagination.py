"""Page-number pagination for the API, with answers in words.

DRF's ``PageNumberPagination`` answers both ``?page=abc`` and a page past the
end with a 404 "Invalid page.": a script cannot tell its own typo from the
end of the list. Here a value that is not a page number is a 400 on the
``page`` parameter, and a page past the end a 404 that says how many pages
there are.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.paginator import Paginator
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

# ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` refuses.
_NUMBER = re.compile(r"[0-9]+")


class NumberedPages(PageNumberPagination):
    """``?page=N`` (1 first, or ``last``) over ``PAGE_SIZE`` items; the REST_FRAMEWORK default.

    Raises ``ValidationError`` (400, ``{"page": [...]}``) when ``page`` is not a
    whole number from 1, and ``NotFound`` (404) when it is past the last page.
    """

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        raw = request.query_params.get(self.page_query_param, "").strip() or "1"  # DRF's too
        if raw.lower() in self.last_page_strings:
            return paginator.num_pages
        digits = raw.lstrip("0")
        if not _NUMBER.fullmatch(raw) or not digits:
            raise ValidationError(
                {self.page_query_param: [f"{raw[:40]!r} is not a page number: use 1, 2, 3…"]}
            )
        pages = paginator.num_pages
        # More digits than any page count has is past the end, without a giant int().
        if len(digits) > 18 or int(digits) > pages:
            asked = f"{int(digits):,}" if len(digits) <= 18 else digits[:24] + "…"
            if not paginator.count:
                raise NotFound(f"There is no page {asked}: the list is empty.")
            raise NotFound(
                f"There is no page {asked}: the list has {pages:,} "
                f"{'page' if pages == 1 else 'pages'}."
            )
        return int(digits)
