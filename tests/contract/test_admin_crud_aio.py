"""The asyncio administration client (``azure.servicebus.aio.management``) against the emulator."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.management import CorrelationRuleFilter

from dualbus.sandbox.servicebus.launcher import start_in_process

pytestmark = pytest.mark.contract


@pytest.mark.asyncio
async def test_async_client_manages_every_entity_kind():
    """Queues, topics, subscriptions and rules: create, get, update, list with paging, delete."""
    with start_in_process() as emulator:
        async with ServiceBusAdministrationClient.from_connection_string(
            emulator.connection_string, connection_verify=False
        ) as admin:
            await admin.create_queue("aio-queue", max_delivery_count=5)
            with pytest.raises(ResourceExistsError):
                await admin.create_queue("aio-queue")
            queue = await admin.get_queue("aio-queue")
            await admin.update_queue(queue, max_delivery_count=9)
            assert (await admin.get_queue("aio-queue")).max_delivery_count == 9
            for index in range(3):
                await admin.create_topic(f"aio-topic-{index}")
            names = [topic.name async for topic in admin.list_topics(max_page_size=2)]
            assert names == ["aio-topic-0", "aio-topic-1", "aio-topic-2"]
            await admin.create_subscription("aio-topic-0", "sub", requires_session=True)
            subscription = await admin.get_subscription("aio-topic-0", "sub")
            assert subscription.requires_session is True
            await admin.create_rule("aio-topic-0", "sub", "by-label", filter=CorrelationRuleFilter(label="x"))
            rules = [rule.name async for rule in admin.list_rules("aio-topic-0", "sub")]
            assert rules == ["$Default", "by-label"]
            runtime = await admin.get_topic_runtime_properties("aio-topic-0")
            assert runtime.subscription_count == 1
            await admin.delete_topic("aio-topic-0")
            with pytest.raises(ResourceNotFoundError):
                await admin.get_subscription("aio-topic-0", "sub")
            await admin.delete_queue("aio-queue")
            assert [q.name async for q in admin.list_queues()] == []
