"""Small in-memory stand-ins for the Dataverse Web API and F&O OData, for unit tests of one sink class.

They answer over httpx.MockTransport the few requests a sink sends (read, upsert, delete, WhoAmI) and record
every request, so a test can tell what was written and what was not. The twins (sandbox/) are the real
check; these only make a sink's decisions visible in milliseconds.
"""

from __future__ import annotations

import itertools
import re
from urllib.parse import unquote

import httpx
import orjson

from dualbus.d365 import fo_entities
from dualbus.shared.api import ApiClient

DUALBUS = "0a6f5f0e-1111-4c1e-9a6f-2b1d5e7c9a10"
SOMEONE = "5e1d9c1b-2222-4c1e-9a6f-2b1d5e7c9a10"
USMF_ID = "8f3c7a52-0d4b-4c1e-9a6f-2b1d5e7c9a10"
GROUP_ID = "3c2b1a09-3333-4c1e-9a6f-2b1d5e7c9a10"
USD_ID = "7e6d5c4b-4444-4c1e-9a6f-2b1d5e7c9a10"
TERMS_ID = "9a8b7c6d-5555-4c1e-9a6f-2b1d5e7c9a10"
ROOT = "/api/data/v9.2/"
_BIND = re.compile(r"^/?(?P<table>\w+)\((?P<id>[0-9a-fA-F-]{36})\)$")


class FixedToken:
    """A token provider that always gives the same token (the fakes do not check it)."""

    async def token(self, *, refresh: bool = False) -> str:  # noqa: ARG002 - nothing to refresh
        """The token."""
        return "tok"


def api_client(handler, url: str = "https://org.example") -> tuple[httpx.AsyncClient, ApiClient]:
    """An ApiClient whose requests are answered by ``handler``."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return http, ApiClient(url, FixedToken(), http)


def _token(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/token":
        return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
    return None


class FakeDataverse:
    """Rows by alternate-key path; lookup targets (company, group, currency, terms) already there."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, object]] = {
            "cdm_companies(cdm_companycode='USMF')": {"cdm_companyid": USMF_ID},
            f"msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='10')": {
                "msdyn_customergroupid": GROUP_ID
            },
            "transactioncurrencies(isocurrencycode='USD')": {"transactioncurrencyid": USD_ID},
            f"msdyn_paymentterms(_msdyn_company_value={USMF_ID},msdyn_name='Net30')": {
                "msdyn_paymenttermid": TERMS_ID
            },
        }
        self.requests: list[tuple[str, str, dict[str, object] | None]] = []
        self.written: list[tuple[str, str, dict[str, object] | None]] = []
        self.whoami_status = 200
        self._versions = itertools.count(1000)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if (token := _token(request)) is not None:
            return token
        path = unquote(request.url.path).removeprefix(ROOT)
        body = orjson.loads(request.content) if request.content else None
        self.requests.append((request.method, path, body))
        response = self._answer(request, path, body)
        if request.method in {"PATCH", "DELETE"} and response.is_success:
            self.written.append((request.method, path, body))
        return response

    def _answer(self, request: httpx.Request, path: str, body: dict[str, object] | None) -> httpx.Response:
        if path == "WhoAmI":
            return httpx.Response(self.whoami_status, json={"UserId": DUALBUS})
        if request.method == "GET":
            return self._get(path)
        if request.method not in {"PATCH", "DELETE"}:
            return httpx.Response(501, json={"error": {"message": f"{request.method} {path}"}})
        row = self.rows.get(path)
        if_match = request.headers.get("If-Match")
        if if_match and (row is None or if_match != _with_etag(row)["@odata.etag"]):
            return httpx.Response(412 if row else 404, json={"error": {"message": "moved on"}})
        if request.method == "DELETE":
            return httpx.Response(204) if self.rows.pop(path, None) is not None else _not_found()
        return self._patch(request, path, body or {})

    def writes(self) -> list[tuple[str, str, dict[str, object] | None]]:
        """The PATCH and DELETE requests that changed something, in order."""
        return list(self.written)

    def edit(self, path: str, by: str = SOMEONE, **values: object) -> None:
        """Change a row as another user (or dualbus, ``by=DUALBUS``) would, with a new row version."""
        self.rows[path].update(values, _modifiedby_value=by, versionnumber=next(self._versions))

    def _get(self, path: str) -> httpx.Response:
        row = self.rows.get(path)
        if row is None:
            return _not_found()
        return httpx.Response(200, json=_with_etag(row))

    def _patch(self, request: httpx.Request, path: str, body: dict[str, object]) -> httpx.Response:
        row = self.rows.get(path)
        if row is not None and request.headers.get("If-None-Match") == "*":
            return httpx.Response(412, json={"error": {"message": "exists"}})
        row = row if row is not None else {}
        for name, value in body.items():
            match = _BIND.match(str(value)) if name.endswith("@odata.bind") and value is not None else None
            if match and not any(match.group("id") in other.values() for other in self.rows.values()):
                # As Dataverse answers a bind to a row that is not there (ObjectDoesNotExist).
                return httpx.Response(
                    404, json={"error": {"code": "0x80040217", "message": "Does Not Exist"}}
                )
        for name, value in body.items():
            if name.endswith("@odata.bind"):
                match = _BIND.match(str(value)) if value is not None else None
                column = name.removesuffix("@odata.bind").lower()
                row[f"_{column}_value"] = match.group("id") if match else None
            else:
                row[name] = value
        self.rows[path] = row
        self.edit(path, by=DUALBUS)
        return httpx.Response(200, json=_with_etag(row))


def _with_etag(row: dict[str, object]) -> dict[str, object]:
    return {"@odata.etag": f'W/"{row.get("versionnumber", 0)}"', **row}


def _not_found() -> httpx.Response:
    return httpx.Response(404, json={"error": {"code": "0x80060891", "message": "not found"}})


class FakeFo:
    """F&O rows by entity path, with ETags; records every request and its query string."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, object]] = {}
        self.requests: list[tuple[str, str, dict[str, object] | None, str]] = []
        self.answers: list[int] = []
        # Set: writes to a key path get the web front's 404 for a path no route matches, as F&O answers
        # a key whose '/' came encoded once (d365/_fo_key_paths.py).
        self.unroutable = False
        # Set: the row another writer creates just before the next POST, which then finds its key taken
        # and is answered ``duplicate_status`` (F&O publishes none for it; the twin answers 409).
        self.created_meanwhile: dict[str, object] | None = None
        self.duplicate_status = 409
        self.refuse_posts: int | None = None  # set: every POST is refused with this status, storing nothing
        self._etags = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if (token := _token(request)) is not None:
            return token
        response = self._answer(request)
        self.answers.append(response.status_code)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path).removeprefix("/data/")
        body = orjson.loads(request.content) if request.content else None
        self.requests.append((request.method, path, body, str(request.url.query, "ascii")))
        row = self.rows.get(path)
        if request.method == "GET" and "$filter" in request.url.params:
            # A row named by its keys: "A eq 'x' and B eq 'y'", answered as a collection.
            named = dict(part.split(" eq ", 1) for part in request.url.params["$filter"].split(" and "))
            keyed = ",".join(f"{k}={named[k]}" for k in fo_entities()[path].keys)
            found = self.rows.get(f"{path}({keyed})")
            return httpx.Response(200, json={"value": [found] if found is not None else []})
        if request.method == "GET":
            return httpx.Response(200, json=row) if row is not None else httpx.Response(404)
        if request.method == "POST":
            return self._create(path, dict(body or {}))
        if self.unroutable:
            row = None  # the path reached no row: F&O's web front answered it
        if request.method == "PATCH" and row is not None:
            return self._store(path, {**row, **(body or {})}, 204)
        if request.method == "DELETE" and row is not None:
            del self.rows[path]
            return httpx.Response(204)
        return _no_route(request) if self.unroutable else httpx.Response(404)

    def _create(self, path: str, body: dict[str, object]) -> httpx.Response:
        if self.refuse_posts is not None:
            error = {"error": {"code": "", "message": "Write failed: a value is not valid."}}
            return httpx.Response(self.refuse_posts, json=error)
        key = ",".join(f"{k}='{body[k]}'" for k in fo_entities()[path].keys)
        if self.created_meanwhile is not None:
            self._store(f"{path}({key})", self.created_meanwhile, 201)
            self.created_meanwhile = None
        if f"{path}({key})" in self.rows:
            error = {"error": {"code": "", "message": "Write failed: the record already exists."}}
            return httpx.Response(self.duplicate_status, json=error)
        return self._store(f"{path}({key})", body, 201)

    def writes(self) -> list[tuple[str, str, dict[str, object] | None, str]]:
        """The POST, PATCH and DELETE requests received, in order."""
        return [r for r in self.requests if r[0] != "GET"]

    def edit(self, path: str, **values: object) -> None:
        """Change a row as an F&O user would: new values and ETag, the version mark untouched."""
        self._store(path, {**self.rows[path], **values}, 204)

    def _store(self, path: str, row: dict[str, object], status: int) -> httpx.Response:
        row["@odata.etag"] = f'W/"{next(self._etags)}"'
        self.rows[path] = row
        return httpx.Response(status, json=row) if status == 201 else httpx.Response(status)


def _no_route(request: httpx.Request) -> httpx.Response:
    """The web front's answer to a path no route matches (sandbox/fo/routing.py)."""
    message = f"No HTTP resource was found that matches the request URI '{unquote(str(request.url))}'."
    return httpx.Response(404, json={"Message": f"{message} No route data was found for this request."})


class BatchFront:
    """Takes OData ``$batch`` requests in front of a fake, answering each part as the fake answers it alone,
    and records each batch's parts as ``"METHOD path"`` (the path under the Web API root, decoded)."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.batches: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/$batch"):
            return self.fake(request)
        boundary = request.headers["Content-Type"].split("boundary=")[1]
        answers, parts = [], []
        for chunk in request.content.decode().split(f"--{boundary}")[1:-1]:
            _, _, http = chunk.partition("\r\n\r\n")
            head, _, body = http.partition("\r\n\r\n")
            line, *headers = head.split("\r\n")
            method, url, _ = line.split(" ")
            part = httpx.Request(
                method,
                url,
                headers=dict(header.split(": ", 1) for header in headers),
                content=body.removesuffix("\r\n").encode(),
            )
            parts.append(f"{method} {unquote(part.url.path).removeprefix(ROOT)}")
            answer = self.fake(part)
            answers.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 {answer.status_code} X\r\n"
                f"Content-Type: application/json\r\n\r\n{answer.text}\r\n"
            )
        self.batches.append(parts)
        content = "".join(answers) + f"--{boundary}--\r\n"
        return httpx.Response(
            200, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}, content=content
        )
