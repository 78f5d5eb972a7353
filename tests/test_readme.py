"""Every command the README shows works when pasted.

The README's shell lines are read from its code blocks and sorted: those a
newcomer pastes into a second terminal while ``make run`` runs (``.venv/bin/collect …``,
``curl …`` and the ``TOKEN=$(…)``-style assignments) are run here, in order, in
one shell, against a real ``collect serve`` (what ``make run`` starts) on a fresh
data folder; every other line must be one of the kinds listed in ``NOT_RUN_HERE``,
with the reason it is not, so that a new command cannot slip past this test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT, wait_for

README = ROOT / "README.md"
# The README's lines that pause and stop a running job from the command line.
CONTROLS = (".venv/bin/collect pause $TASK_ID", ".venv/bin/collect stop $TASK_ID")
RUN_HERE = re.compile(r"^(\.venv/bin/collect |curl |[A-Z_]+=\$\()")
# Lines shown in the README that this test does not run, and why.
NOT_RUN_HERE = {
    r"^make (run|worker)\b": "starts servers that run until Ctrl-C; `collect serve` runs here",
    r"^make (test|lint)\b": "what CI itself runs (.ci/run)",
    r"^make bench\b": "the benchmarks take minutes; run by hand",
    r"^DATABASE_URL=\S+ \\\n\s*CELERY_BROKER_URL=\S+ make test$": "CI's database runs (.ci/run)",
    r"^(DATABASE_URL|CELERY_BROKER_URL|SECRET_KEY|EMAIL_HOST|AWS_\w+)=": "production settings",
    r"^(cp \.env\.example|docker )": "Docker: no Docker engine on the test machine",
    r"^(queued|↘)": "the diagram of job states",
}


def readme_lines() -> list[str]:
    """The README's code-block lines, comments removed and ``\\`` continuations joined."""
    lines: list[str] = []
    for block in re.findall(r"(?:^    .*\n?)+", README.read_text(), flags=re.M):
        joined = block.replace("\\\n", "\\\0")
        for line in joined.splitlines():
            line = line[4:].replace("\\\0", "\\\n").strip()
            if not line or line.startswith("#"):
                continue
            lines.append(line)
    return lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def said_by_each(stdout: str, commands: list[str]) -> list[str]:
    """What each command printed, from the ``>>> i`` line echoed before it."""
    parts = re.split(r"^>>> (\d+) \d+\n", stdout, flags=re.M)
    said = dict(zip(map(int, parts[1::2]), parts[2::2], strict=True))
    return [said.get(i, "") for i in range(len(commands))]


def test_every_readme_line_is_run_here_or_has_a_reason_not_to_be() -> None:
    unexplained = [
        line
        for line in readme_lines()
        if not RUN_HERE.match(line) and not any(re.match(k, line) for k in NOT_RUN_HERE)
    ]
    assert unexplained == [], "README lines neither run by this test nor explained"


@pytest.mark.timeout(600)
def test_the_readme_commands_work_when_pasted(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "var"
    # What a newcomer's shell has: none of the test run's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECT_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    # Nothing that slows the jobs down (a throttle, small batches): the lines that pause
    # or stop a job must find it still running at the speed a newcomer's Collect has.
    env.update(
        COLLECT_DATA_DIR=str(data),
        COLLECT_BIND=f"127.0.0.1:{port}",
        COLLECT_BROKER_POLL_SECONDS="0.1",
    )
    # The commands run where a newcomer stands: a folder with the project's .venv.
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)
    commands = [line for line in readme_lines() if RUN_HERE.match(line)]
    assert any(c.startswith(".venv/bin/collect import-teams") for c in commands)
    # The "Command line" block: a job paused, then stopped, while it runs.
    for control in CONTROLS:
        assert control in commands, control
    # A refused request (4xx) fails the script, as a failing command does.
    prelude = 'set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; }\n'
    script = prelude + "\n".join(
        f'echo ">>> {i} $SECONDS"\n' + c.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for i, c in enumerate(commands)
    )
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "collect", "serve"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: "Collect is running" in (tmp_path / "serve.log").read_text(), timeout=120)
        done = subprocess.run(
            ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=400
        )
        ran = done.stdout.count(">>> ")
        failed_at = commands[ran - 1] if done.returncode else ""
        assert done.returncode == 0, f"{failed_at}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert ran == len(commands)
        # The curl lines reach the API: their JSON answers are in the output.
        assert '"task_id"' in done.stdout
        # `pause` and `stop` found the job running (else they exit 1: it succeeded).
        assert re.search(r"^[0-9a-f-]{36}: paus(ing|ed)$", done.stdout, flags=re.M), done.stdout
        assert re.search(r"^[0-9a-f-]{36}: stop(ping|ped)$", done.stdout, flags=re.M), done.stdout
        assert "teams created" in done.stdout and "Sent to admin@example.com" in done.stdout
        said = said_by_each(done.stdout, commands)
        # "the next line creates them, and the rest find every row unchanged": the
        # workbook holds the first 1,000 rows again (CR stored as _x000D_ in its XML).
        upserts = [
            said[i]
            for i, c in enumerate(commands)
            if c.startswith(".venv/bin/collect import-teams ")
            and "--mode upsert" in c
            and "--dry-run" not in c
        ]
        assert len(upserts) == 2, upserts
        assert ": 19,000 teams created, 0 updated, 1,000 unchanged, 0 rows skipped." in upserts[0]
        assert ": 0 teams created, 0 updated, 1,000 unchanged, 0 rows skipped." in upserts[1]
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
        log.close()
    assert "Collect stopped." in (tmp_path / "serve.log").read_text()
