"""Settings for the test run: the project's own, with short leases and a test queue.

The worker processes the tests start use these settings too (they inherit the
environment set here), pointed at the test database by ``DATABASE_URL``.
"""

import os
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("COLLECT_DATA_DIR", str(_root / "var" / "test"))
os.environ.setdefault("COLLECT_QUEUE", "collect-test")
# Short, so that takeover tests run fast; long enough that a batch on a busy CI
# machine (three suites at once on two cores) does not outlast it.
os.environ.setdefault("COLLECT_JOB_LEASE_SECONDS", "5")
os.environ.setdefault("COLLECT_SWEEP_SECONDS", "0.5")
# A frozen worker's transaction ends soon enough for its takeover to be tested.
os.environ.setdefault("COLLECT_DB_IDLE_IN_TRANSACTION_SECONDS", "20")
os.environ.setdefault("COLLECT_REQUEUE_QUEUED_SECONDS", "5")
os.environ.setdefault("COLLECT_BROKER_POLL_SECONDS", "0.05")
os.environ.setdefault("COLLECT_JOBS_PER_MINUTE", "1000")
# The tests' organisation: exports may go to any address at example.com; the
# recipient rules themselves are tested with their own settings (test_access.py).
os.environ.setdefault("COLLECT_EXPORT_RECIPIENT_DOMAINS", "example.com")
os.environ.setdefault("COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY", "1000")
os.environ.setdefault("COLLECT_API_USER_RATE", "100000/minute")
os.environ.setdefault("COLLECT_API_ANON_RATE", "100000/minute")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright + live_server

from collect.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each test process counts password resets and API requests on its own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
