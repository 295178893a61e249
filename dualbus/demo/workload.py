"""The live change stream of the demo, made over HTTP against the twins as their users would make it.

The twins seeded ``generate(seed, ...)``; the same call here yields the same dataset (it is deterministic),
so the stream updates and deletes records that exist. Edits are made as a workload application (``workload``
unless told), not as dualbus, so the producers publish them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from dualbus.demo.environment import WORKLOAD_CLIENT, Endpoints
from dualbus.demo.errors import DemoError
from dualbus.sandbox.workload import StreamConfig, StreamSummary, generate, run_change_stream
from dualbus.shared.http import HttpClient, HttpError, http_client, request

__all__ = ["DataSize", "StreamThread", "api_client"]

_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class DataSize:
    """How much master data the twins are seeded with."""

    customers: int = 100
    vendors: int = 20
    products: int = 50


def api_client(twin: Mapping[str, str], base_url: str, client_id: str, secret: str) -> HttpClient:
    """An httpx client for a twin, with a bearer token from its token endpoint (client credentials)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": twin["scope"],
    }
    try:
        response = request("POST", twin["token_url"], data=form, timeout=_TIMEOUT_SECONDS)
    except HttpError as exc:
        raise DemoError(f"no token from {twin['token_url']}: {exc}") from exc
    if not response.is_success:
        raise DemoError(f"no token from {twin['token_url']}: it answered {response.status_code}")
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return http_client(base_url=base_url, headers=headers, timeout=_TIMEOUT_SECONDS)


class StreamThread:
    """Runs the change stream on a background thread; ``join`` returns its summary or raises its error."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        seed: int,
        size: DataSize,
        config: StreamConfig,
        client_id: str = WORKLOAD_CLIENT,
    ) -> None:
        """DemoError when ``client_id`` is no client of the sandbox's (the stream could not sign in)."""
        if client_id not in endpoints.clients:
            known = ", ".join(sorted(endpoints.clients)) or "none"
            raise DemoError(
                f"the sandbox has no client {client_id!r} for the change stream (it has: {known})"
            )
        self._endpoints = endpoints
        self._client_id = client_id
        self._seed = seed
        self._size = size
        self._config = config
        self._summary: StreamSummary | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-stream", daemon=True)

    def start(self) -> None:
        """Begin making changes."""
        self._thread.start()

    def running(self) -> bool:
        """Whether changes are still being made."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> StreamSummary:
        """Wait for the stream's end; DemoError when it failed or overran ``timeout``."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise DemoError(f"the change stream did not end within {timeout:.0f} s")
        if self._error is not None:
            raise DemoError(f"the change stream failed: {self._error}") from self._error
        assert self._summary is not None  # noqa: S101 - set whenever the thread ended without error
        return self._summary

    def _run(self) -> None:
        dataset = generate(
            self._seed,
            customers=self._size.customers,
            vendors=self._size.vendors,
            products=self._size.products,
        )
        client, secret = self._client_id, self._endpoints.clients[self._client_id]
        fo_twin, dv_twin = self._endpoints.fo, self._endpoints.dataverse
        try:
            with (
                api_client(fo_twin, fo_twin["url"], client, secret) as fo,
                api_client(dv_twin, dv_twin["api_url"], client, secret) as dataverse,
            ):
                self._summary = run_change_stream(fo, dataset, self._config, dataverse=dataverse)
        except Exception as exc:  # noqa: BLE001 - handed to the caller by join()
            self._error = exc
