"""Tiny typed readers for settings that come from the environment.

A value can also come from a file named by ``<NAME>_FILE`` (Docker secrets).
Nonsense raises ``ImproperlyConfigured`` at start-up, not at first use.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    """The variable ``name``, or the text of the file ``<name>_FILE``, stripped; else ``default``.

    A variable (or file) holding nothing but blanks counts as not set, as in
    the other readers: ``DATABASE_URL=`` from an env file or a CI matrix means
    the default database, not a URL nobody can parse (and ``COLLECT_DATA_DIR=``
    the default folder, not the current one). Surrounding blanks are dropped,
    as from a file: ``TIME_ZONE=" UTC"`` is ``UTC``. Raises
    ``ImproperlyConfigured`` when ``<name>_FILE`` cannot be read.
    """
    file_path = os.environ.get(f"{name}_FILE", "").strip()
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as fh:
                value = fh.read()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    else:
        value = os.environ.get(name, "")
    return value.strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    raw = env_str(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from exc


def env_float(name: str, default: float) -> float:
    raw = env_str(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name, "")
    if not raw.strip():
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]
