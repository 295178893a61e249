"""The ``x-ms-ratelimit-*`` response headers: what is left of a user's service protection limits.

Dataverse reports, on its Web API responses (a 200 in the documentation's example, not only on a 429), the
requests and the combined execution time the user has left in the current 5-minute sliding window. The twin
sends both on every Web API response to an authenticated caller, its 429s included (the documentation does not
single 429s out; a refusal is where a client most wants to see the budget at 0), with what its own
``ServiceProtection`` counts:

- requests left, the request being answered already counted (a first request reads 5999 of 6000);
- execution seconds left, written as the service writes them (``1,200.00``). The request being answered has
  not finished, so its own time is not yet spent: like the example, a first request reads the whole limit.

Dataverse counts the requests "for this connection" (per web server, reset on another server once the affinity
cookie is dropped) and the time "for all connections using the same user account"; the twin is a single web
server, so both are simply per user.

With service protection off (``limits=None``) the twin sends neither header: there is no limit whose remainder
to report. The documentation says nothing about that case, since the real service cannot switch them off.
"""

from __future__ import annotations

from dualbus.sandbox.dataverse.limits import RemainingBudget

__all__ = ["REQUESTS_REMAINING_HEADER", "TIME_REMAINING_HEADER", "ratelimit_headers"]

# Names and meanings: "Service protection API limits", section "HTTP response headers",
# https://learn.microsoft.com/power-apps/developer/data-platform/api-limits#http-response-headers
# (powerapps-docs/developer/data-platform/api-limits.md at MicrosoftDocs/powerapps-docs
# 05cfff5341d4db7cec326318fdd63b9618e9c206): "The remaining number of requests for this connection" and
# "The remaining combined duration for all connections using the same user account".
REQUESTS_REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_REMAINING_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests"
# Value formats, from a captured WhoAmI 200 response ("x-ms-ratelimit-time-remaining-xrm-requests: 1,200.00",
# "x-ms-ratelimit-burst-remaining-xrm-requests: 5999"):
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/use-ps-and-vscode-web-api
# (powerapps-docs/developer/data-platform/webapi/use-ps-and-vscode-web-api.md at
# d2174f86bc2371f700a5f23db8e3e57a053755a4): whole requests, and seconds grouped by thousands to 2 decimals.


def ratelimit_headers(budget: RemainingBudget) -> dict[str, str]:
    """The two headers reporting ``budget``, formatted as the service formats them."""
    return {
        REQUESTS_REMAINING_HEADER: str(budget.requests),
        TIME_REMAINING_HEADER: f"{budget.execution_seconds:,.2f}",
    }
