"""The HTTP client of a Celeriac gateway: enqueue, read and wait for tasks, follow their
progress over Server-Sent Events (resuming with Last-Event-ID after a dropped connection),
and start and read workflows. One `httpx.Client` per `Client`; close it, or use `with`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Union

import httpx

from .errors import CeleriacError, TaskFailed

TERMINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

# Call options the gateway reads beside a task's name and args (POST /tasks) or under
# `options` (POST /emails, /reports/{user_id}).
OPTION_NAMES = frozenset(
    {
        "queue", "partition_key", "countdown", "eta", "expires", "max_retries", "time_limit",
        "soft_time_limit", "retry_delay", "retry_backoff", "retry_delay_max", "retry_jitter",
        "priority", "unique_for", "unique_key", "unique_until", "debounce", "debounce_key",
        "limit_key", "tags", "callback_url",
    }
)


@dataclass(frozen=True)
class Accepted:
    """The gateway's answer to an enqueue (202)."""

    task_id: str
    state: str
    queue: str
    status_url: str


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a task: `snapshot` (the record), `state` or `progress`."""

    id: Optional[str]
    event: str
    data: Dict[str, Any]


def _options(options: Dict[str, Any]) -> Dict[str, Any]:
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown call option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTION_NAMES))}")
    return {k: v for k, v in options.items() if v is not None}


class Client:
    """A gateway at `base_url` (e.g. `http://127.0.0.1:8000`), with an optional bearer token."""

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 10.0, http: Optional[httpx.Client] = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests -------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, idempotency_key: Optional[str] = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _accepted(self, response: httpx.Response) -> Accepted:
        body = response.json()
        return Accepted(body["task_id"], body["state"], body["queue"], body["status_url"])

    # --- enqueue --------------------------------------------------------------------------

    def enqueue(self, task: str, args: Any = None, *, idempotency_key: Optional[str] = None, **options: Any) -> Accepted:
        """Enqueue any registered task (`POST /tasks`). `options`: queue, countdown, eta,
        expires, max_retries, time_limit, soft_time_limit, retry_delay, retry_backoff,
        retry_delay_max, retry_jitter."""
        body: Dict[str, Any] = {"task": task, "args": args, **_options(options)}
        return self._accepted(self._request("POST", "/tasks", json=body, idempotency_key=idempotency_key))

    def send_email(self, to: str, subject: str, body: str, *, idempotency_key: Optional[str] = None, **options: Any) -> Accepted:
        """Send an e-mail in the background (`POST /emails`)."""
        payload: Dict[str, Any] = {"to": to, "subject": subject, "body": body}
        if options:
            payload["options"] = _options(options)
        return self._accepted(self._request("POST", "/emails", json=payload, idempotency_key=idempotency_key))

    def generate_report(self, user_id: Union[str, int], format: str = "csv", *, idempotency_key: Optional[str] = None, **options: Any) -> Accepted:
        """Build a report in the background (`POST /reports/{user_id}`): `csv` or `pdf`. The
        user id is a path segment: a string, or an integer (sent as its decimal digits)."""
        payload: Dict[str, Any] = {"format": format}
        if options:
            payload["options"] = _options(options)
        return self._accepted(self._request("POST", f"/reports/{_quote(str(user_id))}", json=payload, idempotency_key=idempotency_key))

    def download_report(self, task_id: str) -> bytes:
        """The file of a finished report task."""
        return self._request("GET", f"/reports/{_quote(task_id)}/file").content

    # --- reading and waiting --------------------------------------------------------------

    def get(self, task_id: str, wait: Optional[float] = None) -> Dict[str, Any]:
        """A task's record; with `wait`, held up to that many seconds (at most 60) until it ends."""
        params = {"wait": wait} if wait is not None else None
        return self._request("GET", f"/tasks/{_quote(task_id)}", params=params, timeout=(wait or 0) + 10).json()

    def wait(self, task_id: str, timeout: float = 60.0) -> Dict[str, Any]:
        """The task's record once it has ended (SUCCESS, FAILURE or REVOKED); TimeoutError after
        `timeout` seconds. Long polls, so it sends about one request per minute of waiting."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            record = self.get(task_id, wait=max(0.0, min(left, 60.0)))
            if record["state"] in TERMINAL_STATES:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} is still {record['state']} after {timeout} s")

    def result(self, task_id: str, timeout: float = 60.0) -> Any:
        """The task's result once it succeeded; TaskFailed if it failed or was revoked."""
        record = self.wait(task_id, timeout)
        if record["state"] != "SUCCESS":
            raise TaskFailed(record)
        return record.get("result")

    def tasks(
        self,
        *,
        source: Optional[str] = None,
        state: Optional[str] = None,
        queue: Optional[str] = None,
        task: Optional[str] = None,
        tag: Optional[Dict[str, str]] = None,
        ended_from: Optional[str] = None,
        ended_before: Optional[str] = None,
        error: Optional[str] = None,
        args: Any = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """One page of tasks, newest first (`GET /tasks`): `{"tasks": [...], "next_cursor": ...,
        "source": ...}`; pass `next_cursor` back as `cursor` for the next page. `source` is
        `live` (Redis) or `archive` (the PostgreSQL history; the default once `ended_from`,
        `ended_before`, `error` or `args` is given). `tag`: one tag, `{"user_id": "42"}`;
        `ended_from` / `ended_before`: RFC 3339 times; `error`: words of the error; `args`: JSON
        the arguments contain, e.g. `{"to": "ada@example.com"}`."""
        if tag is not None and len(tag) != 1:
            raise TypeError(f"tag: one tag name and value, e.g. {{'user_id': '42'}}, got {len(tag)}")
        filters = {
            "source": source, "state": state, "queue": queue, "task": task,
            "tag": next(f"{name}:{value}" for name, value in tag.items()) if tag else None,
            "from": ended_from, "to": ended_before, "error": error,
            "args": json.dumps(args) if args is not None else None,
            "limit": limit, "cursor": cursor,
        }
        params = {name: value for name, value in filters.items() if value is not None}
        return self._request("GET", "/tasks", params=params).json()

    def revoke(self, task_id: str, terminate: bool = False) -> Dict[str, Any]:
        return self._request("POST", f"/tasks/{_quote(task_id)}/revoke", json={"terminate": terminate}).json()

    def retry(self, task_id: str) -> Dict[str, Any]:
        """Runs a failed or revoked task again under its id, with a fresh retry budget (an admin
        token's call); with an archive, also one whose Redis record has expired."""
        return self._request("POST", f"/tasks/{_quote(task_id)}/retry").json()

    def events(self, task_id: str, last_event_id: Optional[str] = None, reconnects: int = 5) -> Iterator[Event]:
        """The task's events (`snapshot`, then `state` and `progress`) until it ends. A dropped
        connection is resumed with `Last-Event-ID`, so no event is lost or repeated; pass
        `last_event_id` to resume a stream read earlier."""
        last = last_event_id
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            ended = False
            try:
                with self._http.stream("GET", f"/tasks/{_quote(task_id)}/events", headers=headers, timeout=httpx.Timeout(10.0, read=60.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error(response)
                    for event in _parse_sse(response.iter_lines()):
                        failures = 0
                        if event.id is not None:
                            last = event.id
                        yield event
                        if _is_terminal(event):
                            ended = True
                            return
                    # The server ends the stream after the terminal state, which may have been
                    # sent before a reconnect; a stream that ends otherwise is resumed.
                    if last is not None and self.get(task_id)["state"] in TERMINAL_STATES:
                        return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                if ended:
                    return
                failures += 1
                if failures > reconnects:
                    raise
                time.sleep(min(0.2 * 2**failures, 5.0))

    # --- remote task types (admin) -------------------------------------------------------

    def put_task_type(self, name: str, url: str, secret: str, *, queue: Optional[str] = None, timeout: Optional[float] = None, **options: Any) -> Dict[str, Any]:
        """Declares (or replaces) a remote task type: Celeriac runs task `name` by `POST`ing it,
        signed with `secret`, to `url` (`PUT /task-types/{name}`, an admin token). `options`:
        the retry policy and time limits of its tasks (max_retries, retry_delay, ...)."""
        body: Dict[str, Any] = {"url": url, "secret": secret, "options": {k: v for k, v in options.items() if v is not None}}
        if queue is not None:
            body["queue"] = queue
        if timeout is not None:
            body["timeout"] = timeout
        return self._request("PUT", f"/task-types/{_quote(name)}", json=body).json()

    # --- workflows ------------------------------------------------------------------------

    def start_workflow(self, spec: Dict[str, Any], *, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Start a workflow (`POST /workflows`): `{"chain": [...]}`, `{"group": [...]}`,
        `{"chord": {"group": [...], "callback": {...}}}`, or one `{"task": ...}`."""
        return self._request("POST", "/workflows", json=spec, idempotency_key=idempotency_key).json()

    def get_workflow(self, workflow_id: str) -> Dict[str, Any]:
        return self._request("GET", f"/workflows/{_quote(workflow_id)}").json()

    def wait_workflow(self, workflow_id: str, timeout: float = 60.0, poll: float = 0.1) -> Dict[str, Any]:
        """The workflow once it has ended; polls `GET /workflows/{id}`."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_workflow(workflow_id)
            if status.get("state") in TERMINAL_STATES:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"workflow {workflow_id} is still {status.get('state')} after {timeout} s")
            time.sleep(poll)


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


def _error(response: httpx.Response) -> CeleriacError:
    try:
        body = response.json()
        detail = body["error"]
        return CeleriacError(response.status_code, detail["code"], detail["message"], detail.get("field"), body)
    except (ValueError, KeyError, TypeError):
        return CeleriacError(response.status_code, "http_error", response.text[:500])


def _is_terminal(event: Event) -> bool:
    return event.data.get("state") in TERMINAL_STATES and event.event in ("snapshot", "state")


def _parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a stream of lines (comments and keep-alives skipped)."""
    event_id: Optional[str] = None
    kind = "message"
    data: list = []
    for line in lines:
        if line == "":
            if data:
                yield Event(event_id, kind, json.loads("\n".join(data)))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
