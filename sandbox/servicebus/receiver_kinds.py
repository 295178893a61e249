"""Which receivers an entity takes: session receivers where it requires sessions, plain ones elsewhere.

A receiver says it wants a session by the ``com.microsoft:session-filter`` of its source. Azure refuses the
attach of one that does not match its entity, with ``amqp:not-allowed``:

- a plain receiver on a queue or subscription that requires sessions: "It is not possible for an entity that
  requires sessions to create a non-sessionful message receiver." The Go SDK's live test asserts the
  condition and this text, both for a receive and for a peek, since its peek attaches the receiver first
  (Azure/azure-sdk-for-go sdk/messaging/azservicebus/session_receiver_test.go,
  TestSessionReceiver_nonSessionReceiver, commit b026074f5df986f90817616c372392d117d63fbc). The Python SDK
  attaches its receiver before a peek too, so both raise there as well; a client that only sends a peek
  over ``$management``, as the .NET SDK's regular receiver does, may still browse every session ("You can
  use a regular ServiceBusReceiver to peek across all sessions", MicrosoftDocs/azure-docs
  articles/service-bus-messaging/service-bus-troubleshooting-guide.md, commit
  58b493b78bfe005cfe2d06d9998ad63d5b290f3f), so the ``$management`` peek itself stays open to them.
- a session receiver on one that does not: "A sessionful message receiver cannot be created on an entity
  that does not require sessions. Ensure RequiresSession is set to true when creating a Queue or
  Subscription to enable sessionful behavior." (as Azure's answer was logged in
  https://github.com/danielgerlag/workflow-core/issues/1217).
- a session receiver on a dead-letter sub-queue, which never requires sessions, even under an entity that
  does: "Cannot create a MessageSession for a sub-queue." (as logged in
  https://github.com/Azure/azure-sdk-for-java/issues/10662). That client raised UnsupportedOperationException,
  its mapping of both ``amqp:not-allowed`` and ``amqp:not-implemented``, so the thread does not tell which of
  the two Azure sends; the emulator sends ``amqp:not-allowed`` as for the other two, and the Python SDK
  raises ServiceBusError for either. A plain receiver reads such a sub-queue: the .NET SDK's live tests
  DeadLetterMessages and DeadLetterMessagesSubscription read the dead letters of a session queue and a
  session subscription that way (Azure/azure-sdk-for-net
  sdk/servicebus/Azure.Messaging.ServiceBus/tests/Receiver/SessionReceiverLiveTests.cs, commit
  724e7448e8531d4ffad1dfb4423cb090a561a4b1).

The Python SDK raises ServiceBusError for ``amqp:not-allowed`` and does not retry it (azure-servicebus
7.15: ``_ERROR_CODE_TO_ERROR_MAPPING`` in azure/servicebus/_transport/_pyamqp_transport.py,
``RetryPolicy.no_retry`` in azure/servicebus/_pyamqp/error.py). The refusal is an attach with a null source
and then the detach with the error (``refuse_receiver``), so the SDK raises it from opening the receiver.
"""

from __future__ import annotations

from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.topology import DEAD_LETTER_SUFFIX

__all__ = ["NOT_ALLOWED", "check_receiver_kind"]

NOT_ALLOWED = "amqp:not-allowed"
_SESSIONS_REQUIRED = (
    "It is not possible for an entity that requires sessions to create a non-sessionful message receiver."
)
_SESSIONS_NOT_REQUIRED = (
    "A sessionful message receiver cannot be created on an entity that does not require sessions. Ensure"
    " RequiresSession is set to true when creating a Queue or Subscription to enable sessionful behavior."
)
_SUB_QUEUE = "Cannot create a MessageSession for a sub-queue."


def check_receiver_kind(entity: Entity, *, wants_session: bool) -> None:
    """Raise BrokerError, as Azure refuses the attach, unless a receiver that does (or does not) want a
    session is the kind ``entity`` takes."""
    if entity.sessionful == wants_session:
        return
    if entity.sessionful:
        description = _SESSIONS_REQUIRED
    elif entity.path.endswith(DEAD_LETTER_SUFFIX):
        description = _SUB_QUEUE
    else:
        description = _SESSIONS_NOT_REQUIRED
    raise BrokerError(NOT_ALLOWED, description)
