"""A consumer needs Listen and nothing more, a publisher Send: what Azure's Data Receiver and Data Sender
roles grant (docs/deploy.md, "Identities and roles"), here as keys with only that right (the emulator
refuses an operation a key's rights lack, as Service Bus does: sandbox/servicebus/sas.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dualbus.producers.publisher import Publisher
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.bus import async_bus_client
from dualbus.shared.envelope import Operation
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings
from dualbus.shared.topology import Direction

from .conftest import TOPOLOGY
from .helpers import changes_of, target_row
from .samples import event

pytestmark = pytest.mark.integration

# The first key is the one the harness's own calls use (dead-letter peeks); the others hold one right each.
_KEYS = {
    "root": SecretStr("root-key"),
    "publisher": SecretStr("send-key"),
    "consumer": SecretStr("listen-key"),
}
_RIGHTS = {"publisher": {"Send"}, "consumer": {"Listen"}}


@pytest.fixture
def bus():
    """The pipeline's emulator, with a key per role."""
    config = load_config(render_emulator_config(TOPOLOGY))
    with start_in_process(config=config, keys=_KEYS, key_rights=_RIGHTS) as handle:
        yield handle


def _with_key(connection_string: str, name: str) -> ServiceBusSettings:
    named = connection_string.replace("SharedAccessKeyName=root;", f"SharedAccessKeyName={name};")
    keyed = named.replace("SharedAccessKey=root-key;", f"SharedAccessKey={_KEYS[name].get_secret_value()};")
    assert f"SharedAccessKeyName={name};" in keyed, keyed  # not the root key by a missed replacement
    return ServiceBusSettings(connection_string=SecretStr(keyed))


@pytest.mark.asyncio
async def test_a_listen_only_consumer_applies_deletes_and_dead_letters_what_a_send_only_key_published(
    pipeline,
):
    """Receiving sessions, their tombstones in session state, completing and dead-lettering: Listen only."""
    currency = pipeline.maps["currency"]
    kept = event(currency, "fo", 3, version=1)
    created, deleted = event(currency, "fo", 4, version=1), event(currency, "fo", 4, version=2)
    deleted = deleted.model_copy(update={"operation": Operation.DELETE, "data": {}})
    unknown = event(currency, "fo", 5, version=1)
    unknown = unknown.model_copy(update={"data": {**unknown.data, "NoSuchField": "x"}})
    async with async_bus_client(_with_key(pipeline.bus.connection_string, "publisher")) as client:
        publisher = Publisher(client, TOPOLOGY)
        assert await publisher.publish([kept, created, deleted, unknown]) == 4
        await publisher.close()
    settings = pipeline.settings().model_copy(
        update={"servicebus": _with_key(pipeline.bus.connection_string, "consumer")}
    )
    metrics = await pipeline.consume(
        "currency", Direction.TO_DATAVERSE, lambda m: sum(m.counts.values()) >= 4, settings=settings
    )
    assert (metrics.counts["applied"], metrics.counts["dead-lettered"]) == (3, 1), dict(metrics.counts)
    [letter] = pipeline.dead_letters("currency", Direction.TO_DATAVERSE)
    assert str(letter.dead_letter_reason) == "UnknownField"
    [change] = changes_of(pipeline, kept, Direction.TO_DATAVERSE)
    assert target_row(pipeline, change, Direction.TO_DATAVERSE) is not None
    [change] = changes_of(pipeline, created, Direction.TO_DATAVERSE)
    assert target_row(pipeline, change, Direction.TO_DATAVERSE) is None
