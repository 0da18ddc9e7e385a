"""Starts a real Celeriac system for the Python tests: redis-server, the SMTP sink, the gateway
and a worker, on free 127.0.0.1 ports, from the binaries in CELERIAC_BIN_DIR (default
target/debug); with `archive=True` also a PostgreSQL of its own and celeriac-archiver (the
archive and the outbox's relay). Used by the API tester (scripts/python/api_check.py), the
client's pytest suite and the examples' tests, so all of them start the system one way.

    with Stack.start() as stack:
        stack.url  # http://127.0.0.1:PORT

Nothing here is mocked: the processes are the ones `scripts/run.sh` starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    return Path(os.environ.get("CELERIAC_BIN_DIR", ROOT / "target" / "debug"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 20.0) -> None:
    """Polls `check()` until it is true, or fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet (refused, reset, an error answer...)
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as answer:
        return answer.status == 200


@dataclass
class Postgres:
    """A throwaway PostgreSQL with a `celeriac` database, started by the testkit's
    `celeriac-test-postgres` (the one recipe every harness uses: a free loopback port, run as
    the `postgres` user when root); `stop()` stops it, which removes it."""

    proc: subprocess.Popen
    url: str

    @classmethod
    def start(cls) -> "Postgres":
        proc = subprocess.Popen([str(bin_dir() / "celeriac-test-postgres")], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = proc.stdout.readline().strip()
        if not url:
            proc.wait()
            raise RuntimeError(f"celeriac-test-postgres exited ({proc.returncode}): {proc.stderr.read()}")
        return cls(proc, url)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()


@dataclass
class Stack:
    dir: Path
    redis_port: int
    http_port: int
    smtp_port: int
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    worker: subprocess.Popen | None = None
    postgres: Postgres | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    @property
    def mail_dir(self) -> Path:
        return self.dir / "mail"

    @classmethod
    def start(
        cls,
        worker: bool = True,
        extra_env: dict[str, str] | None = None,
        worker_queues: str = "emails,reports,default",
        progress_urls: bool = False,
        archive: bool = False,
    ) -> "Stack":
        """`progress_urls`: the worker tells remote task endpoints the gateway's address
        (`worker.gateway_url`), so they can report progress. `archive`: a PostgreSQL of its
        own (`stack.postgres.url`), the archive on in every process (the gateway applies the
        migrations) and celeriac-archiver, whose relay moves the outbox's rows to Redis."""
        tmp = Path(tempfile.mkdtemp(prefix="celeriac-py-"))
        for sub in ("redis", "mail", "reports", "logs"):
            (tmp / sub).mkdir()
        stack = cls(tmp, free_port(), free_port(), free_port(), {})
        stack.env = {
            **os.environ,
            "CELERIAC_ENV": "test",
            "CELERIAC__REDIS__URL": stack.redis_url,
            "CELERIAC__REDIS__NAMESPACE": "celeriac",
            "CELERIAC__HTTP__BIND": f"127.0.0.1:{stack.http_port}",
            "CELERIAC__SMTP__HOST": "127.0.0.1",
            "CELERIAC__SMTP__PORT": str(stack.smtp_port),
            "CELERIAC__REPORTS__DIR": str(tmp / "reports"),
            "CELERIAC__LOG__FILTER": "warn",
            **({"CELERIAC__WORKER__GATEWAY_URL": f"http://127.0.0.1:{stack.http_port}"} if progress_urls else {}),
            **(extra_env or {}),
        }
        try:
            if archive:
                stack.postgres = Postgres.start()
                stack.env.update({"CELERIAC__ARCHIVE__ENABLED": "true", "CELERIAC__ARCHIVE__DATABASE_URL": stack.postgres.url})
            redis = shutil.which("redis-server") or "/usr/bin/redis-server"
            stack._spawn("redis", [redis, "--port", str(stack.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp / "redis")])
            wait_until(lambda: socket.create_connection(("127.0.0.1", stack.redis_port), timeout=1).close() is None, "redis-server")
            stack._spawn("smtp", [str(bin_dir() / "celeriac-smtp-sink"), "--port", str(stack.smtp_port), "--maildir", str(tmp / "mail")])
            stack._spawn("api", [str(bin_dir() / "celeriac-api")])
            wait_until(lambda: _http_ok(stack.url + "/readyz"), "celeriac-api")
            if archive:
                stack._spawn("archiver", [str(bin_dir() / "celeriac-archiver")])
            if worker:
                stack.worker = stack._spawn("worker", [str(bin_dir() / "celeriac-worker"), "--queues", worker_queues])
        except BaseException:
            stack.stop()
            raise
        return stack

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.dir / "logs" / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self.postgres:
            self.postgres.stop()
            self.postgres = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
