"""Load a dataset into the twins: F&O over ``$batch`` (or straight into its store), Dataverse over HTTP.

``$batch`` change sets carry up to ``batch_size`` creates each, so a seed of thousands of rows takes a few
dozen requests. The multipart/mixed framing follows OData v4:
https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part1-protocol.html#sec_BatchRequests
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from dualbus.sandbox.fo.store import FoStore
from dualbus.sandbox.workload.errors import WorkloadError
from dualbus.sandbox.workload.generate import Dataset
from dualbus.shared.api import parse_retry_after
from dualbus.shared.errors import ThrottledError
from dualbus.shared.retry import RetryPolicy

__all__ = ["WorkloadError", "batch_body", "load_dataverse", "load_fo", "load_fo_store"]

Row = dict[str, Any]
# Dataverse's service protection limits may answer 429 during a large seed: waited out (Retry-After
# honoured) by the shared retry policy, a few times.
_THROTTLED_RETRY = RetryPolicy(on=(ThrottledError,), attempts=5)


def batch_body(entity: str, rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, str]:
    """A ``$batch`` body with one change set that creates ``rows`` in ``entity``; also its Content-Type."""
    batch, change_set = f"batch_{uuid.uuid4().hex}", f"changeset_{uuid.uuid4().hex}"
    parts = [
        f"--{change_set}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {index}\r\n\r\nPOST {entity} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{orjson.dumps(row).decode()}\r\n"
        for index, row in enumerate(rows, start=1)
    ]
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={change_set}\r\n\r\n"
        + "".join(parts)
        + f"--{change_set}--\r\n--{batch}--\r\n"
    )
    return body.encode(), f"multipart/mixed; boundary={batch}"


def _chunks(rows: Sequence[Row], size: int) -> Iterable[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def load_fo(client: httpx.Client, dataset: Dataset, *, batch_size: int = 200) -> int:
    """Create every row of ``dataset`` through the F&O twin's ``$batch``; return how many were created."""
    created = 0
    for entity, rows in dataset.rows.items():
        for chunk in _chunks(rows, batch_size):
            body, content_type = batch_body(entity, chunk)
            try:
                response = client.post("/data/$batch", content=body, headers={"Content-Type": content_type})
            except httpx.HTTPError as exc:
                raise WorkloadError(f"$batch to F&O failed: {exc}") from exc
            failed = response.status_code != httpx.codes.OK or " 201 Created" not in response.text
            if failed:
                raise WorkloadError(
                    f"$batch of {entity} refused: {response.status_code} {response.text[:300]}"
                )
            created += len(chunk)
    return created


def load_fo_store(store: FoStore, dataset: Dataset, *, modified_by: str = "workload") -> int:
    """Write ``dataset`` straight into an F&O twin's store in one transaction (fast for large seeds)."""
    with store.transaction():
        for entity, rows in dataset.rows.items():
            for row in rows:
                store.insert(entity, row, modified_by=modified_by)
    return dataset.count()


def load_dataverse(
    client: httpx.Client, tables: Mapping[str, Sequence[Row]], *, batch_size: int = 500
) -> int:
    """Create the rows through the Dataverse Web API's ``$batch`` (``client.base_url`` is the API root).

    One change set per ``batch_size`` rows (a batch takes at most 1,000 requests); return how many were made.
    See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
    """
    created = 0
    for entity_set, rows in tables.items():
        for chunk in _chunks(list(rows), batch_size):
            body, content_type = batch_body(entity_set, chunk)
            response = _post_honouring_retry_after(client, "$batch", body, content_type)
            failed = response.status_code != httpx.codes.OK or re.search(r"HTTP/1.1 [45]\d\d", response.text)
            if failed:
                raise WorkloadError(
                    f"Dataverse refused {entity_set}: {response.status_code} {response.text[:300]}"
                )
            created += len(chunk)
    return created


def _post_honouring_retry_after(
    client: httpx.Client, url: str, body: bytes, content_type: str
) -> httpx.Response:
    try:
        return _THROTTLED_RETRY.call_blocking(lambda: _post(client, url, body, content_type))
    except ThrottledError as exc:
        raise WorkloadError(f"Dataverse kept throttling POST {url}") from exc


def _post(client: httpx.Client, url: str, body: bytes, content_type: str) -> httpx.Response:
    try:
        response = client.post(url, content=body, headers={"Content-Type": content_type})
    except httpx.HTTPError as exc:
        raise WorkloadError(f"POST {url} to Dataverse failed: {exc}") from exc
    if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise ThrottledError(f"Dataverse throttled POST {url}", retry_after=retry_after)
    return response
