"""Helpers for the Dataverse twin's tests: tokens, clients, batch bodies and batch responses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from dualbus.sandbox.dataverse import RunningDataverse, ServiceProtectionLimits, start_dataverse

CLIENTS = {"dualbus": "pipeline-secret", "maker": "maker-secret"}

Operation = tuple[str, str, dict[str, Any] | None]


def token_for(twin: RunningDataverse, client_id: str, *, scope: str | None = None) -> str:
    """A bearer token from the twin's token endpoint for one of the registered clients."""
    response = httpx.post(
        twin.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": CLIENTS[client_id],
            "scope": scope or twin.scope,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def client_for(twin: RunningDataverse, client_id: str = "dualbus") -> httpx.Client:
    """An httpx client on the Web API root, carrying a token for ``client_id``."""
    return httpx.Client(
        base_url=twin.api_url,
        headers={"Authorization": f"Bearer {token_for(twin, client_id)}", "Accept": "application/json"},
        timeout=30,
    )


def start(**kwargs: Any) -> RunningDataverse:
    """A twin with the test clients registered."""
    return start_dataverse(clients=CLIENTS, **kwargs)


def entity_id(response: httpx.Response) -> str:
    """The GUID at the end of a write's OData-EntityId header."""
    match = re.search(r"\(([0-9a-f-]{36})\)$", response.headers["OData-EntityId"])
    assert match is not None
    return match.group(1)


def _request_part(method: str, url: str, body: dict[str, Any] | None, content_id: int | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1", "Content-Type: application/json; type=entry", ""]
    lines.append(orjson.dumps(body).decode() if body is not None else "")
    return "\r\n".join(lines)


def batch_body(items: Sequence[Operation | list[Operation]]) -> tuple[str, bytes]:
    """A multipart/mixed batch: a tuple is a request on its own, a list of tuples is a change set."""
    boundary = f"batch_{uuid.uuid4()}"
    chunks = []
    for item in items:
        if isinstance(item, list):
            change = f"changeset_{uuid.uuid4()}"
            inner = [f"--{change}\r\n" + _request_part(*op, i + 1) for i, op in enumerate(item)]
            chunks.append(
                f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={change}\r\n\r\n"
                + "\r\n".join(inner)
                + f"\r\n--{change}--\r\n"
            )
        else:
            chunks.append(f"--{boundary}\r\n" + _request_part(*item, None) + "\r\n")
    body = "".join(chunks) + f"--{boundary}--\r\n"
    return f'multipart/mixed; boundary="{boundary}"', body.encode()


def post_batch(
    client: httpx.Client, items: Sequence[Operation | list[Operation]], *, prefer: str | None = None
) -> httpx.Response:
    """Send a batch and return the raw response."""
    content_type, body = batch_body(items)
    headers = {"Content-Type": content_type, **({"Prefer": prefer} if prefer else {})}
    return client.post("$batch", content=body, headers=headers)


def part_statuses(response: httpx.Response) -> list[int]:
    """The status of each response part, in order."""
    return [int(code) for code in re.findall(r"^HTTP/1\.1 (\d{3})", response.text, flags=re.MULTILINE)]


def limits(**overrides: Any) -> ServiceProtectionLimits:
    """Service protection limits with some facets made tiny."""
    return ServiceProtectionLimits(**overrides)


def account_url(company: str, number: str) -> str:
    """An account's URL by its alternate key, the company written as its lookup property (documented form)."""
    return f"accounts(_msdyn_company_value={company},accountnumber='{number}')"


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """A refusal's status, Web API error code and message."""
    error = response.json()["error"]
    return response.status_code, str(error["code"]), str(error["message"])
