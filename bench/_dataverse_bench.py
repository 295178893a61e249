"""Dataverse twin throughput: upserts per second through ``$batch`` and through single PATCHes, limits off.

The twin runs in a child process (so client and server do not share one interpreter lock), a few threads
each drive their own httpx client, and every run is bounded in count and in time.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from dualbus.sandbox.dataverse import start_dataverse

__all__ = ["run_dataverse_bench"]

_CLIENT_ID, _SECRET = "bench", "bench-secret"
_API = "/api/data/v9.2/"
_TIME_LIMIT_SECONDS = 60.0


def _serve(conn: Connection, database: str | None) -> None:
    """Child process: run the twin until the parent says stop."""
    twin = start_dataverse(
        clients={_CLIENT_ID: _SECRET}, limits=None, database=Path(database) if database else None
    )
    conn.send((twin.url, twin.token_url, twin.scope))
    conn.recv()
    twin.stop()


def _token(token_url: str, scope: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": _CLIENT_ID,
        "client_secret": _SECRET,
        "scope": scope,
    }
    return str(httpx.post(token_url, data=form).json()["access_token"])


def _batch_body(company: str, numbers: range) -> tuple[str, bytes]:
    boundary = f"batch_{uuid.uuid4()}"
    parts = []
    for number in numbers:
        url = f"{_API}accounts(msdyn_company={company},accountnumber='B-{number:07}')"
        body = orjson.dumps(
            {"name": f"Customer {number}", "creditlimit": number % 10_000, "address1_city": "Oslo"}
        )
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"PATCH {url} HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{body.decode()}\r\n"
        )
    return f"multipart/mixed; boundary={boundary}", ("".join(parts) + f"--{boundary}--\r\n").encode()


def _drive(
    clients: list[httpx.Client], jobs: list[Any], send: Callable[[httpx.Client, Any], int], deadline: float
) -> int:
    """Spread ``jobs`` over the clients' threads; returns how many upserts were acknowledged in time."""

    def worker(index: int) -> int:
        done = 0
        for job in jobs[index :: len(clients)]:
            if time.monotonic() > deadline:
                break
            done += send(clients[index], job)
        return done

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return sum(pool.map(worker, range(len(clients))))


def _send_batch(company: str, batch_size: int) -> Callable[[httpx.Client, Any], int]:
    def send(client: httpx.Client, start: int) -> int:
        content_type, body = _batch_body(company, range(start, start + batch_size))
        response = client.post("$batch", content=body, headers={"Content-Type": content_type})
        response.raise_for_status()
        return response.text.count("HTTP/1.1 204")

    return send


def _send_patch(company: str) -> Callable[[httpx.Client, Any], int]:
    def send(client: httpx.Client, number: int) -> int:
        url = f"accounts(msdyn_company={company},accountnumber='S-{number:07}')"
        response = client.patch(url, json={"name": f"Customer {number}", "creditlimit": number % 10_000})
        return 1 if response.status_code == httpx.codes.NO_CONTENT else 0

    return send


def _measure(
    clients: list[httpx.Client], jobs: list[Any], send: Callable[[httpx.Client, Any], int]
) -> dict[str, Any]:
    started = time.perf_counter()
    upserts = _drive(clients, jobs, send, time.monotonic() + _TIME_LIMIT_SECONDS)
    seconds = time.perf_counter() - started
    return {
        "upserts": upserts,
        "seconds": round(seconds, 3),
        "upserts_per_second": round(upserts / seconds, 1),
    }


def _run_against(
    database: str | None, *, batches: int, batch_size: int, singles: int, workers: int
) -> dict[str, Any]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, database), daemon=True)
    process.start()
    try:
        url, token_url, scope = parent.recv()
        headers = {"Authorization": f"Bearer {_token(token_url, scope)}"}
        clients = [httpx.Client(base_url=url + _API, headers=headers, timeout=60) for _ in range(workers)]
        company_response = clients[0].post("cdm_companies", json={"cdm_companycode": "BENCH"})
        company = company_response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        figures = {
            "batch": {
                "batch_size": batch_size,
                **_measure(
                    clients, [i * batch_size for i in range(batches)], _send_batch(company, batch_size)
                ),
            },
            "single_patch": _measure(clients, list(range(singles)), _send_patch(company)),
        }
        for client in clients:
            client.close()
        return figures
    finally:
        parent.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def run_dataverse_bench(
    *, batches: int = 200, batch_size: int = 100, singles: int = 3000, workers: int = 4
) -> dict[str, Any]:
    """Measure the twin in memory and with SQLite persistence; returns the JSON-ready figures."""
    in_memory = _run_against(None, batches=batches, batch_size=batch_size, singles=singles, workers=workers)
    with tempfile.TemporaryDirectory() as folder:
        on_disk = _run_against(
            str(Path(folder) / "dataverse.sqlite"),
            batches=batches,
            batch_size=batch_size,
            singles=singles,
            workers=workers,
        )
    return {
        "clients": workers,
        "limits": "off",
        "in_memory": in_memory,
        "sqlite": on_disk,
        "target_batch_upserts_per_second": 2000,
        "meets_target": in_memory["batch"]["upserts_per_second"] >= 2000,
    }
