"""A Python worker over Celeriac's pull protocol: it claims tasks of its queues with a long
poll (`POST /queues/{q}/claim`), runs the function registered for each task name, keeps the
run's lease alive with heartbeats while it runs, and ends the run with `complete` or `fail`
through the run's token. Leases, retries, time limits and crash recovery are the gateway's:
a worker that dies loses its lease and its tasks run again elsewhere.

    worker = Worker("http://127.0.0.1:8000", queues=["images"])

    @worker.task("resize")
    def resize(args, ctx):
        ctx.progress(1, 2, "halfway")
        return {"width": args["width"] // 2}

    worker.run()
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

import httpx

from .client import _error, _quote

Handler = Callable[[Any, "RunContext"], Any]


class PermanentError(Exception):
    """Raise from a task to fail it for good (no retry); any other exception is retryable."""


class RunLost(Exception):
    """The run no longer holds its task (its lease expired, or a newer run owns it): 409."""


class RunContext:
    """What a task function gets beside its args: its id, attempt, and progress reports."""

    def __init__(self, worker: "Worker", task: Dict[str, Any]):
        self._worker = worker
        self.task_id: str = task["id"]
        self.task: str = task["task"]
        self.queue: str = task["queue"]
        self.attempt: int = task["attempt"]
        self.token: str = task["token"]

    def progress(self, current: int, total: int, message: Optional[str] = None) -> None:
        body: Dict[str, Any] = {"current": current, "total": total}
        if message is not None:
            body["message"] = message
        self._worker._run_call("progress", self.token, body)


class Worker:
    """Runs the registered functions for tasks claimed from `queues`, `concurrency` at a time."""

    def __init__(
        self,
        base_url: str,
        queues: List[str],
        token: Optional[str] = None,
        concurrency: int = 1,
        worker_id: Optional[str] = None,
        wait: float = 5.0,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(10.0, read=wait + 20.0))
        self.queues = list(queues)
        self.concurrency = concurrency
        self.worker_id = worker_id
        self.wait = wait
        self.handlers: Dict[str, Handler] = {}
        self.processed = 0
        self.failed = 0
        self._stop = threading.Event()
        self._count_lock = threading.Lock()

    def task(self, name: str) -> Callable[[Handler], Handler]:
        """Registers `fn(args, ctx)` for tasks named `name`."""

        def register(fn: Handler) -> Handler:
            self.handlers[name] = fn
            return fn

        return register

    def stop(self) -> None:
        """Asks `run` to return once the running tasks have ended."""
        self._stop.set()

    def run(self, max_tasks: Optional[int] = None) -> None:
        """Claims and runs tasks until `stop()` (or until `max_tasks` have ended)."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            free = threading.Semaphore(self.concurrency)
            started = 0
            while not self._stop.is_set() and (max_tasks is None or started < max_tasks):
                free.acquire()
                if self._stop.is_set():
                    free.release()
                    break
                # Claims what the free slots can run, from each queue in turn.
                slots = 1
                while slots < self.concurrency and free.acquire(blocking=False):
                    slots += 1
                if max_tasks is not None:
                    slots = min(slots, max_tasks - started)
                tasks: List[Dict[str, Any]] = []
                for queue in self.queues:
                    tasks += self.claim(queue, slots - len(tasks), wait=self.wait if len(self.queues) == 1 else 0.5)
                    if tasks:
                        break
                for _ in range(slots - len(tasks)):
                    free.release()
                for task in tasks:
                    started += 1
                    future = pool.submit(self._execute, task)
                    future.add_done_callback(lambda _: free.release())

    def claim(self, queue: str, max: int = 1, wait: float = 0.0) -> List[Dict[str, Any]]:
        params: Dict[str, Any] = {"max": max, "wait": wait}
        if self.worker_id:
            params["worker"] = self.worker_id
        response = self._http.post(f"/queues/{_quote(queue)}/claim", params=params)
        if response.status_code >= 400:
            raise _error(response)
        body = response.json()
        self.worker_id = body["worker"]
        self._lease = float(body["lease_seconds"])
        return body["tasks"]

    def _run_call(self, action: str, token: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        response = self._http.post(f"/runs/{_quote(token)}/{action}", json=body if body is not None else {})
        if response.status_code == 409:
            raise RunLost(response.text)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def _execute(self, task: Dict[str, Any]) -> None:
        ctx = RunContext(self, task)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx.token, done), daemon=True)
        beat.start()
        try:
            handler = self.handlers.get(task["task"])
            if handler is None:
                raise PermanentError(f"this worker has no function for task {task['task']!r}")
            result = handler(task["args"], ctx)
            done.set()
            self._run_call("complete", ctx.token, {"result": result})
            with self._count_lock:
                self.processed += 1
        except RunLost:
            pass  # another run owns the task now; nothing of this one may be stored
        except Exception as e:  # noqa: BLE001 - every failure of a task is reported to Celeriac
            done.set()
            with self._count_lock:
                self.failed += 1
            body = {
                "message": f"{e}\n{traceback.format_exc(limit=5)}"[:4000],
                "retryable": not isinstance(e, PermanentError),
                "kind": type(e).__name__,
            }
            try:
                self._run_call("fail", ctx.token, body)
            except RunLost:
                pass
        finally:
            done.set()
            beat.join()

    def _heartbeat(self, token: str, done: threading.Event) -> None:
        every = max(getattr(self, "_lease", 30.0) / 3, 0.2)
        while not done.wait(every):
            try:
                self._run_call("heartbeat", token)
            except RunLost:
                return
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                continue

    def close(self) -> None:
        self._http.close()
