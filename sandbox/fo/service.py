"""The F&O twin's OData operations, independent of HTTP framing so that ``$batch`` reuses them.

Company scoping follows F&O: a query of a company-specific entity returns only the caller's default company
unless ``cross-company=true`` is in the query string; rows of other companies are then addressable too.
Server-driven paging answers at most ``page_size`` rows (10,000 on F&O) with an ``@odata.nextLink``.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

import orjson

from dualbus.d365 import FoEntity, fo_key_segment
from dualbus.sandbox.fo.blanks import Filled, filled_row, selected_fields
from dualbus.sandbox.fo.comparisons import check_comparison
from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.errors import (
    BadRequestError,
    NoRowToUpdateError,
    NotFoundError,
    ODataError,
    RefusedError,
)
from dualbus.sandbox.fo.key_filters import key_groups
from dualbus.sandbox.fo.literals import check_key_literal
from dualbus.sandbox.fo.query import (
    FO_FILTER,
    parse_filter,
    parse_key,
    parse_orderby,
    parse_select,
    sort_rows,
)
from dualbus.sandbox.fo.store import ETAG, FoStore, Row
from dualbus.sandbox.fo.validation import ODATA_EXCEPTION
from dualbus.sandbox.odata_filter import has_wildcard, literal, tokenize

__all__ = ["ODataRequest", "ODataService", "Reply", "error_body"]

_RESOURCE = re.compile(r"^(?P<set>[A-Za-z_]\w*)(?:\((?P<key>.*)\))?$", re.DOTALL)
_LINK_SAFE = "$',()="
_JSON = {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0"}
_GENERIC_MESSAGE = "An error has occurred."
# The requests F&O refuses with NoRowToUpdateError (400, sandbox/fo/errors.py), not 404, naming no row.
_ROW_WRITES = frozenset({"PATCH", "DELETE"})
# ODL's MetadataBinder_PropertyNotDeclared, for a query option naming a property the type lacks:
# https://github.com/OData/odata.net/blob/015837a4c188edd4d3f81550bb432c6527745b54/src/Microsoft.OData.Core/Microsoft.OData.Core.txt
_PROPERTY_NOT_DECLARED = "Could not find a property named '{1}' on type '{0}'."


@dataclass(frozen=True, slots=True)
class ODataRequest:
    """One OData request, as a route or a ``$batch`` part carries it; ``resource`` follows ``/data/``."""

    method: str
    resource: str
    params: Mapping[str, str]
    body: bytes
    caller: str
    base: str
    if_match: str | None = None

    @property
    def cross_company(self) -> bool:
        """True when the query string asks for all companies."""
        return self.params.get("cross-company", "").lower() == "true"


@dataclass(frozen=True, slots=True)
class Reply:
    """An OData response before HTTP framing."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def error_body(exc: ODataError) -> bytes:
    """The OData JSON error body F&O answers with (its generic outer message for what F&O itself refuses)."""
    if isinstance(exc, RefusedError):
        inner = {"message": str(exc), "type": exc.inner_type, "stacktrace": ""}
        return orjson.dumps({"error": {"code": "", "message": _GENERIC_MESSAGE, "innererror": inner}})
    inner = {"message": str(exc), "type": type(exc).__name__, "stacktrace": ""}
    return orjson.dumps({"error": {"code": "", "message": str(exc), "innererror": inner}})


@dataclass(slots=True)
class ODataService:
    """Executes one OData request against the store on behalf of a calling application."""

    store: FoStore
    page_size: int = 10_000
    default_company: str = "USMF"
    companies: Mapping[str, str] = field(default_factory=dict)
    # The entities requests are checked against: a tenant without dualbus's extension fields serves
    # UNPREPARED_ENTITIES (rows are stored alike either way).
    entities: Mapping[str, FoEntity] = field(default_factory=lambda: ENTITIES)

    def execute(self, request: ODataRequest) -> Reply:
        """Run one request; refusals become OData error replies."""
        try:
            return self._dispatch(request)
        except ODataError as exc:
            return Reply(exc.status, error_body(exc), _JSON)

    def company_of(self, caller: str) -> str:
        """The caller's default company (lower case, as F&O answers ``dataAreaId``)."""
        return self.companies.get(caller, self.default_company).lower()

    def _dispatch(self, request: ODataRequest) -> Reply:
        match = _RESOURCE.match(request.resource)
        definition = self.entities.get(match.group("set")) if match else None
        if match is None or definition is None:
            raise NotFoundError(f"no entity set at {request.resource!r}")
        if match.group("key") is None:
            return self._on_collection(definition, request)
        key = parse_key(match.group("key"), definition.keys, partial(check_key_literal, definition))
        if request.method in _ROW_WRITES:
            return self._write_row(definition, key, request)
        self._check_company(definition, key, request)
        return self._on_row(definition, key, request)

    def _write_row(self, definition: FoEntity, key: tuple[Any, ...], request: ODataRequest) -> Reply:
        """PATCH or DELETE one row; a row the request cannot see is refused with F&O's 400, not a 404."""
        try:
            # F&O looks for the row to update in the companies the request sees, so another company's row,
            # named without cross-company=true, is missing to it as well (an inference: no source shows it).
            self._check_company(definition, key, request)
            return self._on_row(definition, key, request)
        except NotFoundError as exc:
            raise NoRowToUpdateError from exc

    def _on_row(self, definition: FoEntity, key: tuple[Any, ...], request: ODataRequest) -> Reply:
        name, caller, if_match = definition.entity_set, request.caller, request.if_match
        if request.method == "GET":
            context = f"{request.base}/data/$metadata#{name}/$entity"
            row = filled_row(definition, self.store.get(name, key))
            return _json_reply(200, {"@odata.context": context, **row})
        if request.method == "PATCH":
            self.store.update(name, key, _json(request.body), modified_by=caller, if_match=if_match)
            return Reply(204)
        if request.method == "DELETE":
            self.store.delete(name, key, modified_by=caller, if_match=if_match)
            return Reply(204)
        raise BadRequestError(f"{request.method} is not supported on a single {name} row")

    def _on_collection(self, definition: FoEntity, request: ODataRequest) -> Reply:
        if request.method == "GET":
            return self._query(definition, request)
        if request.method == "POST":
            return self._create(definition, _json(request.body), request)
        raise BadRequestError(f"{request.method} needs a key: {definition.entity_set}(...)")

    def _check_company(self, definition: FoEntity, key: tuple[Any, ...], request: ODataRequest) -> None:
        # Without cross-company=true, rows of another company are invisible, as in F&O.
        company = self.company_of(request.caller)
        if definition.company_specific and not request.cross_company and str(key[0]).lower() != company:
            raise NotFoundError(f"no {definition.entity_set} row with key {key} in company {company}")

    def _query(self, definition: FoEntity, request: ODataRequest) -> Reply:
        params, base = request.params, request.base
        select = parse_select(params.get("$select"))
        for name in select or []:
            _check_property(definition, name)
        skip, top = _int_param(params, "$skip") or 0, _int_param(params, "$top")
        # Without $count, a query needs the rows up to the end of its page and one more (is there a next?).
        counted = params.get("$count", "").lower() == "true"
        needed = (
            None if counted else skip + min(self.page_size, top if top is not None else self.page_size) + 1
        )
        rows = self._matching(definition, request, needed)
        total = len(rows)
        wanted = rows[skip:] if top is None else rows[skip : skip + top]
        page = [dict(row) for row in wanted[: self.page_size]]  # the store's own rows are only read
        body: dict[str, Any] = {"@odata.context": f"{base}/data/$metadata#{definition.entity_set}"}
        if params.get("$count", "").lower() == "true":
            body["@odata.count"] = total
        body["value"] = _project(definition, page, select)
        if len(wanted) > len(page):
            remaining = None if top is None else top - len(page)
            collection = f"{base}/data/{definition.entity_set}"
            body["@odata.nextLink"] = _next_link(collection, params, skip + len(page), remaining)
        return _json_reply(200, body)

    def _matching(self, definition: FoEntity, request: ODataRequest, needed: int | None = None) -> list[Row]:
        """The rows the request's company scope and ``$filter`` let through, in ``$orderby`` order.

        With ``needed``, when the order asked for is the stored key order, the rows are read in that order
        and only the first ``needed`` that match are returned (a keyset page does not scan the whole table).
        """
        scoped = definition.company_specific and not request.cross_company
        company = self.company_of(request.caller) if scoped else None
        known = partial(_check_property, definition)
        text = request.params.get("$filter")
        predicate = parse_filter(text, on_field=known, check=partial(check_comparison, definition))
        order = parse_orderby(request.params.get("$orderby"))
        for name, _ in order:
            known(name)
        # An initial sync's keyset page of one company: read from its bound on, in the stored key order.
        bound = _keyset_bound(definition, text) if needed is not None and company is None else None
        pinned = bound is not None and _in_key_order(definition, order, scoped=True)

        def wanted(row: Row) -> bool:
            in_scope = company is None or str(row.get("dataAreaId", "")).lower() == company
            return in_scope and (predicate is None or predicate(Filled(definition, row)))

        keys = key_groups(definition, text)
        if keys is not None:
            rows = self.store.row_views_of(definition.entity_set, keys)
        else:
            if needed is not None and (pinned or _in_key_order(definition, order, scoped=scoped)):
                company_bound = bound[0] if pinned and bound else None
                # Read lazily: the page stops after ``needed`` rows, however many rows follow them.
                after = bound if pinned and bound else ()
                reading = self.store.iter_row_views_after(definition.entity_set, after)
                page = _first_wanted(reading, wanted, needed, keys=definition.keys, company=company_bound)
                if page is not None:
                    return page
            rows = self.store.row_views(definition.entity_set)
        if not order:
            return [row for row in rows if wanted(row)]
        # Only a query that orders its rows needs its enums' member order.
        fields = definition.fields.items()
        enums = {name: definition.enums[f.enum] for name, f in fields if f.enum is not None}
        # Sorted as F&O sorts them: a field never written by its empty value.
        views = sort_rows([Filled(definition, row) for row in rows if wanted(row)], order, enums)
        return [view.row for view in views]

    def _create(self, definition: FoEntity, values: dict[str, Any], request: ODataRequest) -> Reply:
        base = request.base
        if definition.company_specific and not values.get("dataAreaId"):
            values = {**values, "dataAreaId": self.company_of(request.caller)}
        row = self.store.insert(definition.entity_set, values, modified_by=request.caller)
        # The row's key path, each value a literal of its field's type, as a client would write it.
        key = fo_key_segment(definition, {k: row[k] for k in definition.keys})
        location = f"{base}/data/{definition.entity_set}({key})"
        context = f"{base}/data/$metadata#{definition.entity_set}/$entity"
        payload = {"@odata.context": context, **filled_row(definition, row)}
        return _json_reply(201, payload, {"Location": location})


def _first_wanted(
    rows: Iterable[Row],
    wanted: Callable[[Row], bool],
    needed: int,
    *,
    keys: Sequence[str],
    company: str | None,
) -> list[Row] | None:
    """The first ``needed`` wanted rows of ``rows``, read in the stored key order; with ``company``, the read
    stops past that company's rows (the rows after them are other companies'). None when a wanted row has a
    key that is not text: keys stored as text sort as text, and other values need the general sort."""
    found: list[Row] = []
    for row in rows:
        if company is not None and str(row.get("dataAreaId", "")).casefold() != company:
            break
        if wanted(row):
            if not all(isinstance(row.get(key), str) for key in keys):
                return None
            found.append(row)
            if len(found) >= needed:
                break
    return found


def _keyset_bound(definition: FoEntity, text: str | None) -> tuple[str, ...] | None:
    """The key the rows must come after, when ``$filter`` is exactly an initial sync's page of one company:
    ``(dataAreaId eq 'c')``, then optionally ``and ((<second key> gt 'v'))``; None for any other filter (a
    company with a ``*`` in it is a wildcard, no one company).

    Such a filter matches no row of another company and none at or before the key (c, v), compared as
    keys are (text, without regard to case), so reading may start there."""
    if text is None or not definition.company_specific or len(definition.keys) != _COMPANY_AND_KEY:
        return None
    tokens = tokenize(text, FO_FILTER)
    company = [("punct", "("), ("name", "dataAreaId"), ("name", "eq")]
    if (
        tokens[:3] != company
        or len(tokens) < _PINNED
        or tokens[3][0] != "string"
        or has_wildcard(tokens[3])
        or tokens[4] != ("punct", ")")
    ):
        return None
    pinned = str(literal(*tokens[3])).casefold()
    if len(tokens) == _PINNED:
        return (pinned,)
    after = [("name", "and"), ("punct", "("), ("punct", "("), ("name", definition.keys[1]), ("name", "gt")]
    rest = tokens[_PINNED:]
    closing = [("punct", ")"), ("punct", ")")]
    if len(rest) != len(after) + 3 or rest[: len(after)] != after or rest[-2:] != closing:
        return None
    if rest[len(after)][0] != "string":
        return None
    return (pinned, str(literal(*rest[len(after)])).casefold())


def _in_key_order(definition: FoEntity, order: list[tuple[str, bool]], *, scoped: bool) -> bool:
    """Whether ``$orderby`` asks for the store's own order: the key fields ascending (within one company,
    the company may be left out), none of them an enum (the store orders keys as text, F&O an enum by its
    value)."""
    fields = [name for name, descending in order if not descending]
    if len(fields) != len(order) or any(definition.fields[name].enum is not None for name in definition.keys):
        return False
    keys = list(definition.keys)
    return fields == keys or (scoped and definition.company_specific and fields == keys[1:])


_COMPANY_AND_KEY = 2  # keys (dataAreaId, one more): the shape a keyset page of one company is read by
_PINNED = 5  # the tokens of "(dataAreaId eq 'c')"


def _check_property(definition: FoEntity, name: str) -> None:
    if definition.field_named(name) is None:
        message = _PROPERTY_NOT_DECLARED.format(definition.qualified_type, name)
        raise RefusedError(message, inner_type=ODATA_EXCEPTION)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequestError("the body must be a JSON object")
    return value


def _json_reply(status: int, payload: dict[str, Any], extra: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, orjson.dumps(payload), {**_JSON, **(extra or {})})


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequestError(f"{name} must be a non-negative integer")
    return int(raw)


def _project(definition: FoEntity, rows: list[Row], select: list[str] | None) -> list[Row]:
    if select is None:
        return [filled_row(definition, row) for row in rows]
    # OData answers the ETag of each entity whatever $select names (no field: it has no empty value).
    return selected_fields(definition, rows, [ETAG, *select])


def _next_link(collection: str, params: Mapping[str, str], skip: int, top: int | None) -> str:
    following = {k: v for k, v in params.items() if k not in ("$skip", "$top")}
    if top is not None:
        following["$top"] = str(top)
    following["$skip"] = str(skip)
    return f"{collection}?{urlencode(following, safe=_LINK_SAFE)}"
