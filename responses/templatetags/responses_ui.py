"""Template helpers for the export's part of the job page."""

from __future__ import annotations

from typing import Any

from django import template

from responses.mail import delivery_text

register = template.Library()


@register.filter
def delivery(result: dict[str, Any]) -> str:
    """Where the export went (``mail.delivery_text``); '' for a result without a delivery."""
    try:
        return delivery_text(result)
    except (KeyError, TypeError, ValueError):
        return ""


@register.filter
def recipient(job: Any) -> str:
    """Where the export was (or will be) mailed: the result's address, else the requested one."""
    return str((job.result or {}).get("email") or (job.params or {}).get("email") or "")
