"""The seed application (FastAPI + Celery, /work/shared/peers/fastapi_seed) done with Celeriac.

- `POST /emails` and `POST /reports/{user_id}` enqueue Celeriac's built-in tasks through the
  Python client (`celeriac.Client`), and answer the task id at once.
- `GET /tasks/{task_id}` reads a task's status, progress and result.
- `POST /activity/{user_id}/summary` enqueues `summarize_activity`, a task written in Python
  in this very application: `POST /celeriac/summarize_activity` is its code. Celeriac's worker
  calls it over HTTP (a remote task type, declared at start with `PUT /task-types/...`),
  signed; it reports progress to Celeriac, and a 503 it answers is retried by Celeriac under
  the task's retry policy. No Rust, and no worker process of this application's own.

    CELERIAC_URL=http://127.0.0.1:8000 APP_PUBLIC_URL=http://127.0.0.1:8001 \\
        uvicorn app:app --port 8001          # next to scripts/run.sh
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from typing import Any, Dict, Optional

import httpx
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from celeriac import Client, InvalidSignature, SIGNATURE_HEADER, verify_signature

CELERIAC_URL = os.environ.get("CELERIAC_URL", "http://127.0.0.1:8000")
CELERIAC_TOKEN = os.environ.get("CELERIAC_TOKEN") or None
# Where Celeriac's workers reach this application, for the remote task.
PUBLIC_URL = os.environ.get("APP_PUBLIC_URL", "http://127.0.0.1:8001")
# Signs Celeriac's calls of the remote task (16 characters or more; keep it out of git).
TASK_SECRET = os.environ.get("CELERIAC_TASK_SECRET", "example-secret-change-me")

celeriac = Client(CELERIAC_URL, token=CELERIAC_TOKEN)


@asynccontextmanager
async def lifespan(_: FastAPI):
    # Declares the Python task to Celeriac: every gateway and worker then knows it.
    celeriac.put_task_type(
        "summarize_activity",
        f"{PUBLIC_URL}/celeriac/summarize_activity",
        TASK_SECRET,
        queue="default",
        timeout=30,
        max_retries=3,
        retry_delay=0.5,
    )
    yield
    celeriac.close()


app = FastAPI(title="Seed application on Celeriac", lifespan=lifespan)


class Email(BaseModel):
    to: str
    subject: str
    body: str


class Report(BaseModel):
    format: str = "csv"


@app.post("/emails", status_code=202)
def create_email(e: Email) -> Dict[str, str]:
    return {"task_id": celeriac.send_email(e.to, e.subject, e.body).task_id}


@app.post("/reports/{user_id}", status_code=202)
def create_report(user_id: str, report: Optional[Report] = None) -> Dict[str, str]:
    return {"task_id": celeriac.generate_report(user_id, (report or Report()).format).task_id}


@app.post("/activity/{user_id}/summary", status_code=202)
def summarize(user_id: str, flaky: bool = False) -> Dict[str, str]:
    return {"task_id": celeriac.enqueue("summarize_activity", {"user_id": user_id, "flaky": flaky}).task_id}


@app.get("/tasks/{task_id}")
def task_status(task_id: str) -> Dict[str, Any]:
    record = celeriac.get(task_id)
    return {
        "task_id": task_id,
        "status": record["state"],
        "attempt": record["attempt"],
        "progress": record.get("progress"),
        "result": record.get("result"),
    }


@app.post("/celeriac/summarize_activity")
async def summarize_activity(request: Request) -> Dict[str, Any]:
    """The task's code, run by Celeriac: verifies the call, works, reports progress."""
    body = await request.body()
    try:
        verify_signature(TASK_SECRET, request.headers.get(SIGNATURE_HEADER), body)
    except InvalidSignature as e:
        raise HTTPException(401, str(e)) from None
    call = json.loads(body)  # {"id", "task", "args", "attempt", "delivery", "progress_url"}
    args = call["args"]
    if args.get("flaky") and call["attempt"] == 1:
        # A temporary failure: Celeriac retries it (408, 429, 5xx and timeouts are retryable).
        raise HTTPException(503, "the activity store is warming up")
    events = [{"day": d, "logins": (int(args["user_id"]) * 7 + d) % 5} for d in range(1, 8)]
    async with httpx.AsyncClient(timeout=5) as http:
        for done in (3, 7):
            if call.get("progress_url"):
                await http.post(call["progress_url"], json={"current": done, "total": 7, "message": f"day {done}"})
    return {"user_id": args["user_id"], "days": len(events), "logins": sum(e["logins"] for e in events), "attempt": call["attempt"]}
