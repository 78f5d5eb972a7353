"""Slow clients cannot stall the real ``collect web``.

40 connections send their headers one line every 2 s and 10 more send their
bodies one byte every 2 s (to a form and to the import upload), and stay
open; meanwhile ordinary requests must still be answered. The time each took is
printed (bench/bench_slow_clients.py measures it properly); the test asks only
that every one is answered, within a generous 10 s.
"""

from __future__ import annotations

from pathlib import Path

from tests.slowclients import SlowClients, timed_get
from tests.test_export_helpers import free_port
from tests.test_web_restart import Web


def test_it_answers_while_slow_clients_hold_connections(
    transactional_db: None, tmp_path: Path
) -> None:
    web = Web(free_port(), tmp_path / "web.log").start()
    slow = SlowClients("127.0.0.1", web.port, headers=40, bodies=10)
    try:
        slow.start()
        assert slow.wait_open() == 50
        times = []
        for _ in range(5):
            status, seconds = timed_get("127.0.0.1", web.port, "/accounts/login/", timeout=10)
            assert status == 200
            times.append(seconds)
        print(f"answered in {', '.join(f'{t:.3f}' for t in times)} s with 50 slow clients")
        assert web.alive
        assert slow.opened == 50
    finally:
        slow.stop()
        web.close()
    assert "Traceback" not in web.log()
