"""Routes one Web API operation to its read or write inside a unit of work; refusals become responses."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse import definitions, keys, reads, writes
from dualbus.sandbox.dataverse.errors import DataverseApiError, no_http_resource, resource_not_found
from dualbus.sandbox.dataverse.messages import ApiRequest, ApiResponse, Context, error_response, json_response
from dualbus.sandbox.dataverse.odata import format_datetime, parse_entity_path
from dualbus.sandbox.dataverse.store import Store, UnitOfWork

__all__ = ["DataverseService"]


class DataverseService:
    """The Web API's table operations over one store, independent of how requests arrive (HTTP or batch)."""

    def __init__(
        self,
        *,
        tables: Mapping[str, DvTable],
        store: Store,
        clock: Callable[[], float] = time.time,
        untracked_tables: frozenset[str] = frozenset(),
    ) -> None:
        self.tables = tables
        self.store = store
        self._clock = clock
        self._untracked = untracked_tables

    def context(self, base_url: str) -> Context:
        """The context operations run in, for clients that reach the twin at ``base_url``."""
        return Context(
            tables=self.tables,
            store=self.store,
            now=self._now,
            base_url=base_url,
            untracked=self._untracked,
        )

    def handle(self, context: Context, request: ApiRequest) -> ApiResponse:
        """Run one operation in its own unit of work; a refusal becomes its error response."""
        try:
            with self.store.transaction() as work:
                return self.execute(context, request, work)
        except DataverseApiError as exc:
            return error_response(exc)

    def execute(self, context: Context, request: ApiRequest, work: UnitOfWork) -> ApiResponse:
        """Run one operation inside ``work``; raises DataverseApiError so that a change set can roll back."""
        work.writer = request.user_id
        keys_table = definitions.keys_table(request.path)
        if request.path in _SPECIAL_READS or keys_table is not None:
            if request.method != "GET":
                raise no_http_resource(context.api_url(request.path))
            if keys_table is not None:
                return definitions.keys_of(self.tables, context, request, keys_table)
            return _SPECIAL_READS[request.path](self, context, request)
        ref = parse_entity_path(request.path)
        table = self.tables.get(ref.entity_set)
        if table is None:
            raise resource_not_found(ref.entity_set)
        method = request.method
        if method in _ADDRESSING_BY_KEY:
            keys.check_addressable(table, ref)
        if method == "GET":
            return reads.get(context, request, table, ref)
        if method == "POST" and ref.is_collection:
            return writes.create(context, request, work, table)
        if method == "PATCH" and not ref.is_collection:
            return writes.upsert(context, request, work, table, ref)
        if method == "DELETE" and not ref.is_collection:
            return writes.delete(context, request, work, table, ref)
        raise DataverseApiError(
            405, "0x80060888", f"The requested resource does not support http method '{method}'."
        )

    def _now(self) -> str:
        return format_datetime(datetime.fromtimestamp(self._clock(), UTC))

    def service_document(self, context: Context, _request: ApiRequest) -> ApiResponse:
        """The entity sets the twin serves, as the Web API's service document lists them."""
        sets = [{"name": name, "kind": "EntitySet", "url": name} for name in sorted(self.tables)]
        return json_response(200, {"@odata.context": context.api_url("$metadata"), "value": sets})

    def who_am_i(self, context: Context, request: ApiRequest) -> ApiResponse:
        """The caller's user id, so a client can recognise its own writes by ``_modifiedby_value``.

        See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
        """
        body = {
            "@odata.context": context.api_url("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": _SANDBOX_BUSINESS_UNIT,
            "UserId": request.user_id,
            "OrganizationId": _SANDBOX_ORGANIZATION,
        }
        return json_response(200, body)


# The methods whose key segments keys.UNADDRESSABLE limits, as documented.
_ADDRESSING_BY_KEY = frozenset({"GET", "PATCH"})
# Fixed ids: the twin has one organisation and one business unit.
_SANDBOX_ORGANIZATION = "7d5c3b1a-0e2f-4a6b-9c8d-1e2f3a4b5c6d"
_SANDBOX_BUSINESS_UNIT = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
_SPECIAL_READS: dict[str, Callable[[DataverseService, Context, ApiRequest], ApiResponse]] = {
    "": DataverseService.service_document,
    "WhoAmI": DataverseService.who_am_i,
    "WhoAmI()": DataverseService.who_am_i,
}
