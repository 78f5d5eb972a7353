"""``make bench``: every benchmark at modest sizes, one table each.

Sizes can be raised for a real measurement, e.g.
``BENCH_IMPORT_ROWS=1000000 BENCH_EXPORT_ROWS=1000000 make bench``;
DATABASE_URL and CELERY_BROKER_URL choose the database and broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES = [
    ("bench_engine.py", [os.environ.get("BENCH_ENGINE_TRIALS", "10")]),
    ("bench_import.py", os.environ.get("BENCH_IMPORT_ROWS", "100000").split(",")),
    ("bench_upsert.py", os.environ.get("BENCH_UPSERT_ROWS", "100000").split(",")),
    ("bench_export.py", os.environ.get("BENCH_EXPORT_ROWS", "100000").split(",")),
    ("bench_rollback.py", [os.environ.get("BENCH_ROLLBACK_ROWS", "200000")]),
    ("bench_polling.py", os.environ.get("BENCH_POLLERS", "20 15 4").split()),
    ("bench_slow_clients.py", os.environ.get("BENCH_SLOW_CLIENTS", "40 10 5").split()),
    ("bench_pages.py", [os.environ.get("BENCH_PAGES_ROWS", "1000000")]),
]


def main() -> int:
    failed = 0
    for script, args in BENCHES:
        if not (HERE / script).exists():
            continue
        print(f"\n## {script} {' '.join(args)}", flush=True)
        result = subprocess.run(
            [sys.executable, str(HERE / script), *args],
            cwd=HERE.parent,
            check=False,
            stderr=subprocess.DEVNULL,
        )
        failed |= result.returncode != 0
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
