"""A change whose lookup names a row still on its way waits for it instead of being dead-lettered.

The referenced row's own change travels in another session; when its consumer is restarted or slow, the
change that refers to it can come first. It is retried for the lookup wait, and applied once the row is
there.
"""

from __future__ import annotations

import dataclasses

import pytest

from dualbus.shared.topology import Direction

from .conftest import TEST_RETRY
from .helpers import changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration

TO_DATAVERSE = Direction.TO_DATAVERSE


@pytest.mark.asyncio
async def test_a_customer_whose_group_comes_later_is_applied_once_the_group_is_there(pipeline):
    """The customer is retried (not dead-lettered) until its group's change, published later, is applied."""
    await seed(pipeline, TO_DATAVERSE)
    group = event(pipeline.maps["customer_groups"], "fo", 77, label="late")
    customer = event(pipeline.maps["customers"], "fo", 5, label="late")
    customer = customer.model_copy(
        update={"data": {**customer.data, "CustomerGroupId": group.key["CustomerGroupId"]}}
    )
    pipeline.publish([customer])
    published = False

    def group_sent_once_the_customer_waits_then_both_applied(metrics) -> bool:
        nonlocal published
        if not published and metrics.counts["retried"] >= 1:
            pipeline.publish([group])
            published = True
        return metrics.counts["applied"] >= 2 or metrics.counts["dead-lettered"] >= 1

    metrics = await pipeline.consume(
        "customer",
        TO_DATAVERSE,
        group_sent_once_the_customer_waits_then_both_applied,
        within=60.0,
        retry=dataclasses.replace(TEST_RETRY, lookup_wait_seconds=30.0),
    )
    assert published
    assert metrics.counts["dead-lettered"] == 0
    assert metrics.counts["applied"] == 2
    [change] = changes_of(pipeline, customer, TO_DATAVERSE)
    assert target_row(pipeline, change, TO_DATAVERSE) is not None
    assert pipeline.dead_letters("customer", TO_DATAVERSE) == []


@pytest.mark.asyncio
async def test_a_lookup_that_never_resolves_is_dead_lettered_after_the_lookup_wait(pipeline):
    """With no such group coming, the customer is dead-lettered as UnresolvedLookup once the wait ends."""
    await seed(pipeline, TO_DATAVERSE)
    customer = event(pipeline.maps["customers"], "fo", 6, label="never")
    customer = customer.model_copy(update={"data": {**customer.data, "CustomerGroupId": "NOSUCH"}})
    pipeline.publish([customer])
    metrics = await pipeline.consume(
        "customer",
        TO_DATAVERSE,
        lambda m: m.counts["dead-lettered"] >= 1,
        within=30.0,
        retry=dataclasses.replace(TEST_RETRY, lookup_wait_seconds=2.0),
    )
    assert metrics.counts["retried"] >= 1
    [letter] = pipeline.dead_letters("customer", TO_DATAVERSE)
    assert letter.dead_letter_reason == "UnresolvedLookup"
