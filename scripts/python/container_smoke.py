"""Runs docker-compose.yml's Celeriac services from a built image and checks they answer.

Called by scripts/container-smoke.sh once the image is built. There is no container engine
daemon here and `podman run` cannot start a container (crun fails to set RLIMIT_NPROC), so
each service runs with `buildah run` (chroot isolation, the host's network) from its own
container of the image, with the command, environment and user the compose file and the image
give it. The compose file's other services (redis, postgres, smtp: images no registry here
can give) run on the host instead, on free 127.0.0.1 ports, and the compose file's host names
and ports are pointed at them. Then:

- the gateway's healthcheck, run inside its container exactly as the compose file states it;
- an e-mail through `POST /emails` with the admin token: run to SUCCESS by a worker, received
  by the SMTP sink, archived into PostgreSQL by the archiver (found by `GET /tasks/{id}` with
  `source=archive`);
- beat still running, and the `celeriac` CLI of the image listing the queues as JSON.

    python scripts/python/container_smoke.py --image localhost/celeriac:latest --bin-dir target/debug
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml
from celeriac_stack import ROOT, free_port, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN_TOKEN = "container-smoke-admin-token-0123456789"


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, from `variables`."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        got = variables.get(name, "")
        if op == ":?" and not got:
            raise SystemExit(f"docker-compose.yml needs {name}: {arg}")
        return got if got or op != ":-" else arg

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def celeriac_services(compose: dict) -> dict[str, dict]:
    """The services run from the Celeriac image (those with the `x-celeriac` anchor merged
    in), the gateway first: the others are checked through it."""
    ours = {name: s for name, s in compose["services"].items() if s.get("image") == "celeriac:latest"}
    return dict(sorted(ours.items(), key=lambda item: item[0] != "api"))


def service_env(service: dict, variables: dict[str, str], hosts: dict[str, str]) -> dict[str, str]:
    """The service's environment, interpolated, with the compose network's host names (and the
    ports they serve on) replaced by the host's loopback servers."""
    env = {k: interpolate(str(v), variables) for k, v in (service.get("environment") or {}).items()}
    for k, v in env.items():
        for name_port, local in hosts.items():
            v = v.replace(name_port, local)
        env[k] = v
    return env


class Smoke:
    def __init__(self, image: str, bin_dir: Path, work: Path):
        self.image, self.bin_dir, self.work = image, bin_dir, work
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.containers: list[str] = []
        (work / "logs").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ the host's servers
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.work / "logs" / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.procs.append((name, proc))
        return proc

    def start_redis(self) -> int:
        port = free_port()
        (self.work / "redis").mkdir(exist_ok=True)
        self.spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.work / "redis")])
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], check=False, capture_output=True, text=True).stdout.strip() == "PONG", "redis-server")
        return port

    def start_postgres(self) -> int:
        """A PostgreSQL with the compose file's user and database (`celeriac`), run as the
        `postgres` user when this is root (the server refuses root)."""
        port, data = free_port(), self.work / "postgres"
        data.mkdir()
        as_pg: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            os.chmod(self.work, 0o755)
            as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data / "data"), "-U", "celeriac", "--auth=trust", "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
        self.pg_stop = [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "data"), "-m", "fast", "-w", "stop"]
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "postgres.log"), "-w", "-t", "30",
             "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
            check=True, capture_output=True,
        )
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "celeriac", "celeriac"], check=True)
        return port

    def start_smtp(self) -> int:
        port = free_port()
        self.spawn("smtp", [str(self.bin_dir / "celeriac-smtp-sink"), "--port", str(port), "--maildir", str(self.work / "mail")])
        return port

    # ------------------------------------------------------------------ the image's services
    def run_in_image(self, name: str, user: str, env: dict[str, str], argv: list[str], background: bool) -> subprocess.CompletedProcess | subprocess.Popen:
        """`argv` in a new container of the image, as `user`, with `env` on top of the image's."""
        container = f"celeriac-smoke-{name}-{os.getpid()}"
        subprocess.run(["buildah", "from", "--pull-never", "--name", container, self.image], check=True, capture_output=True)
        self.containers.append(container)
        command = ["buildah", "run", "--isolation", "chroot", "--user", user, container, "--", "env", *(f"{k}={v}" for k, v in env.items()), *argv]
        if background:
            return self.spawn(name, command)
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                print(f"container-smoke: {name} did not stop within 40 s; killed", file=sys.stderr)
                proc.kill()
                proc.wait()
        if getattr(self, "pg_stop", None):
            subprocess.run(self.pg_stop, check=False, capture_output=True)
        for container in self.containers:
            subprocess.run(["buildah", "rm", container], check=False, capture_output=True)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((self.work / "logs").glob("*.log")))


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def check(smoke: Smoke, compose: dict) -> None:
    redis_port, pg_port, smtp_port, http_port = smoke.start_redis(), smoke.start_postgres(), smoke.start_smtp(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    variables = {"CELERIAC_ADMIN_TOKEN": ADMIN_TOKEN, "POSTGRES_PASSWORD": "celeriac"}
    hosts = {"redis:6379": f"127.0.0.1:{redis_port}", "@postgres:5432/": f"@127.0.0.1:{pg_port}/"}
    user = image_user(smoke.image)
    services = celeriac_services(compose)
    assert {"api", "worker-1", "worker-2", "beat", "archiver"} <= services.keys(), f"the compose file's Celeriac services: {sorted(services)}"
    for name, service in services.items():
        env = service_env(service, variables, hosts)
        assert (env.get("CELERIAC__SMTP__HOST"), env.get("CELERIAC__SMTP__PORT")) == ("smtp", "1025"), f"{name}: the SMTP service moved"
        env |= {"CELERIAC__SMTP__HOST": "127.0.0.1", "CELERIAC__SMTP__PORT": str(smtp_port)}
        # The compose file publishes the gateway's 8000 on every address; here it stays on loopback.
        env["CELERIAC__HTTP__BIND"] = f"127.0.0.1:{http_port}"
        smoke.run_in_image(name, user, env, service["command"], background=True)
        if name == "api":
            wait_until(lambda: http("GET", url + "/readyz")[0] == 200, "the gateway (celeriac-api in the image)", timeout=60)
            healthcheck = service["healthcheck"]["test"]
            assert healthcheck[0] == "CMD", healthcheck
            probe = [part.replace("127.0.0.1/8000", f"127.0.0.1/{http_port}") for part in healthcheck[1:]]
            done = smoke.run_in_image("api-healthcheck", user, {}, probe, background=False)
            assert done.returncode == 0, f"the compose file's healthcheck failed in the image: {done.stderr}"
            print("container-smoke: the gateway answers, and the compose file's healthcheck passes in the image")
            uid = user.split(":")[0]
            owners = subprocess.run(["pgrep", "-u", uid, "-x", "celeriac-api"], check=False, capture_output=True, text=True).stdout.split()
            assert owners, f"no celeriac-api process of user {uid} (the image's USER)"
            first_line = (smoke.work / "logs" / "api.log").read_text().splitlines()[0]
            assert json.loads(first_line).get("level"), f"not the image's production settings (JSON logs): {first_line}"
            print(f"container-smoke: it runs as the image's user ({user}) with the image's production settings (JSON logs)")

    status, sent = http("POST", url + "/emails", {"to": "smoke@example.com", "subject": "from the image", "body": "hello"})
    assert status == 202, (status, sent)
    task_id = sent["task_id"]
    wait_until(lambda: http("GET", f"{url}/tasks/{task_id}")[1].get("state") == "SUCCESS", f"task {task_id} SUCCESS", timeout=60)
    wait_until(lambda: any("from the image" in p.read_text(errors="replace") for p in (smoke.work / "mail").rglob("*") if p.is_file()), "the e-mail at the SMTP sink")
    print(f"container-smoke: e-mail {task_id} run by a worker of the image, received by the SMTP sink")
    archived = lambda: any(t["task_id"] == task_id for t in http("GET", f"{url}/tasks?source=archive&task=send_email")[1]["tasks"])
    wait_until(archived, f"task {task_id} in the archive", timeout=60)
    print(f"container-smoke: task {task_id} archived into PostgreSQL by the image's archiver")

    for name, proc in smoke.procs:
        assert name not in services or proc.poll() is None, f"{name} exited ({proc.returncode}): see its log below"
    cli = smoke.run_in_image("cli", user, {"CELERIAC_URL": url, "CELERIAC_TOKEN": ADMIN_TOKEN}, ["celeriac", "queues", "--json"], background=False)
    assert cli.returncode == 0, f"celeriac queues --json in the image: {cli.stderr}"
    queues = json.loads(cli.stdout)["queues"]
    assert any(q.get("name") == "emails" for q in queues), cli.stdout
    print(f"container-smoke: all {len(services)} Celeriac services of the compose file run from the image ({', '.join(services)}); its CLI lists {len(queues)} queues")


def image_user(image: str) -> str:
    """The image's own user (the Dockerfile's USER), which every service runs as."""
    out = subprocess.run(["buildah", "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", image], capture_output=True, text=True, check=True)
    return out.stdout.strip() or "0:0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--bin-dir", type=Path, required=True, help="host binaries (the SMTP sink)")
    parser.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    args = parser.parse_args()
    compose = yaml.safe_load(args.compose.read_text())
    work = Path(tempfile.mkdtemp(prefix="celeriac-container-"))
    smoke = Smoke(args.image, args.bin_dir, work)
    try:
        check(smoke, compose)
    except BaseException:
        smoke.stop()
        print(smoke.logs(), file=sys.stderr)
        raise
    smoke.stop()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
