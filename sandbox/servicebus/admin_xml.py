"""The administration API's Atom documents: request bodies read into definitions, and entries written.

Element names and namespaces are the SDK's serializer's (azure-servicebus 7.15,
``azure/servicebus/management/_generated/models/_models.py``: ``QueueDescription``, ``TopicDescription``,
``SubscriptionDescription``, ``RuleDescription``, ``NamespaceInfo``, ``CountDetails``; ``_constants.py`` and
``_utils.py`` for ``KeyValueOfstringanyType``) and the REST reference,
https://learn.microsoft.com/rest/api/servicebus/create-queue (and create-topic, create-subscription,
create-rule, get-entity, list-entities). The SDK finds elements by name, so order is not significant to it;
descriptions are written in its attribute order anyway, which is Azure's.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from dualbus.sandbox.servicebus.catalog import Definition
from dualbus.sandbox.servicebus.errors import BrokerError

__all__ = [
    "ATOM",
    "Runtime",
    "entity_entry",
    "feed",
    "namespace_entry",
    "parse_entity",
    "parse_rule",
    "rule_entry",
]

ATOM = "http://www.w3.org/2005/Atom"
SB = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
_D2 = "http://schemas.microsoft.com/netservices/2011/06/servicebus"
_NEVER = "0001-01-01T00:00:00Z"
_MAX_TIMESPAN = "P10675199DT2H48M5.4775807S"
_BAD = "com.microsoft:argument-error"

_BOOLEANS = {"RequiresSession", "RequiresDuplicateDetection", "DeadLetteringOnMessageExpiration"}
_HONOURED = {
    "QueueDescription": (
        "LockDuration",
        "RequiresDuplicateDetection",
        "RequiresSession",
        "DefaultMessageTimeToLive",
        "DeadLetteringOnMessageExpiration",
        "DuplicateDetectionHistoryTimeWindow",
        "MaxDeliveryCount",
        "ForwardTo",
        "ForwardDeadLetteredMessagesTo",
    ),
    "TopicDescription": (
        "DefaultMessageTimeToLive",
        "RequiresDuplicateDetection",
        "DuplicateDetectionHistoryTimeWindow",
    ),
    "SubscriptionDescription": (
        "LockDuration",
        "RequiresSession",
        "DefaultMessageTimeToLive",
        "DeadLetteringOnMessageExpiration",
        "MaxDeliveryCount",
        "ForwardTo",
        "ForwardDeadLetteredMessagesTo",
    ),
}
# Elements the service computes: ignored in a request, written from the live entity in an answer.
_COMPUTED = {
    "SizeInBytes",
    "MessageCount",
    "CountDetails",
    "CreatedAt",
    "UpdatedAt",
    "AccessedAt",
    "EntityAvailabilityStatus",
    "SubscriptionCount",
    "SqlFilterCount",
    "CorrelationFilterCount",
    "AuthorizationRules",
    "DefaultRuleDescription",
}
# Stored and echoed but not acted on, with what Azure answers when they were never set.
_KEPT_DEFAULTS = {
    "QueueDescription": {
        "MaxSizeInMegabytes": "1024",
        "EnableBatchedOperations": "true",
        "IsAnonymousAccessible": "false",
        "Status": "Active",
        "UserMetadata": "",
        "SupportOrdering": "true",
        "AutoDeleteOnIdle": _MAX_TIMESPAN,
        "EnablePartitioning": "false",
        "EnableExpress": "false",
    },
    "TopicDescription": {
        "MaxSizeInMegabytes": "1024",
        "EnableBatchedOperations": "true",
        "FilteringMessagesBeforePublishing": "false",
        "IsAnonymousAccessible": "false",
        "Status": "Active",
        "SupportOrdering": "true",
        "AutoDeleteOnIdle": _MAX_TIMESPAN,
        "EnablePartitioning": "false",
        "EnableSubscriptionPartitioning": "false",
        "EnableExpress": "false",
        "UserMetadata": "",
    },
    "SubscriptionDescription": {
        "DeadLetteringOnFilterEvaluationExceptions": "true",
        "EnableBatchedOperations": "true",
        "Status": "Active",
        "UserMetadata": "",
        "AutoDeleteOnIdle": _MAX_TIMESPAN,
    },
}
# Correlation filter system properties (CorrelationFilter's attribute map) in the SDK's order.
_CORRELATION = (
    "CorrelationId",
    "MessageId",
    "To",
    "ReplyTo",
    "Label",
    "SessionId",
    "ReplyToSessionId",
    "ContentType",
)


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the live entity adds to its description."""

    active: int = 0
    dead_lettered: int = 0
    scheduled: int = 0
    subscriptions: int = 0
    accessed_at_ms: int | None = None


# -- reading requests --------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _description(body: bytes) -> ElementTree.Element:
    """The description element inside an Atom entry's content."""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - the emulator's own clients, on loopback
    except ElementTree.ParseError as exc:
        raise BrokerError(_BAD, f"The request body is not XML: {exc}", status=400) from exc
    for element in root.iter():
        if _local(element.tag) == "content" and len(element):
            return element[0]
    raise BrokerError(_BAD, "The request body has no Atom content with a description.", status=400)


def parse_entity(body: bytes) -> tuple[str, dict[str, Any], dict[str, str], ElementTree.Element]:
    """A create or update body: the description's kind, its Config.json properties, the kept elements, and
    the description element itself (for a subscription's DefaultRuleDescription)."""
    description = _description(body)
    kind = _local(description.tag)
    honoured = _HONOURED.get(kind)
    if honoured is None:
        raise BrokerError(_BAD, f"Unexpected description {kind!r}.", status=400)
    properties: dict[str, Any] = {}
    kept: dict[str, str] = {}
    for child in description:
        name, text = _local(child.tag), (child.text or "").strip()
        if name in _COMPUTED or child.get(f"{{{XSI}}}nil") == "true":
            continue
        if name in honoured:
            if text:
                properties[name] = _typed(name, text)
        elif name in _KEPT_DEFAULTS[kind]:
            kept[name] = text
    return kind, properties, kept, description


def _typed(name: str, text: str) -> object:
    if name in _BOOLEANS:
        if text not in {"true", "false"}:
            raise BrokerError(_BAD, f"{name}: expected true or false, got {text!r}.", status=400)
        return text == "true"
    if name == "MaxDeliveryCount":
        try:
            return int(text)
        except ValueError as exc:
            raise BrokerError(_BAD, f"{name}: expected an integer, got {text!r}.", status=400) from exc
    if name.startswith("Forward"):
        # The SDK sends a full address (sb://host/name); the entity is its path.
        return urlparse(text).path.strip("/") if "://" in text else text
    return text


def parse_rule(body: bytes, name: str) -> Definition:
    """A rule create or update body."""
    return rule_from_element(_description(body), name)


def rule_from_element(description: ElementTree.Element, name: str) -> Definition:
    """A ``RuleDescription`` element (or a subscription's ``DefaultRuleDescription``) as a definition."""
    filter_element = _child(description, "Filter")
    action_element = _child(description, "Action")
    parameters: dict[str, list[str]] = {}
    properties: dict[str, Any]
    kind = filter_element.get(f"{{{XSI}}}type", "") if filter_element is not None else "TrueFilter"
    kind = kind.rsplit(":", 1)[-1]
    if filter_element is None or kind == "TrueFilter":
        properties = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"}}
    elif kind == "FalseFilter":
        properties = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=0"}}
    elif kind == "SqlFilter":
        properties = {
            "FilterType": "Sql",
            "SqlFilter": {"SqlExpression": _text(filter_element, "SqlExpression")},
        }
        parameters.update(_key_values(_child(filter_element, "Parameters")))
    elif kind == "CorrelationFilter":
        properties = {"FilterType": "Correlation", "CorrelationFilter": _correlation(filter_element)}
    else:
        raise BrokerError(_BAD, f"Unknown rule filter type {kind!r}.", status=400)
    if action_element is not None and action_element.get(f"{{{XSI}}}type", "").endswith("SqlRuleAction"):
        properties["Action"] = {"SqlExpression": _text(action_element, "SqlExpression")}
        parameters.update(_key_values(_child(action_element, "Parameters")))
    return Definition(name, properties, {}, parameters)


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ElementTree.Element, name: str) -> str:
    child = _child(element, name)
    return (child.text or "") if child is not None else ""


def _key_values(parent: ElementTree.Element | None) -> dict[str, list[str]]:
    """``KeyValueOfstringanyType`` items: key -> [xml schema type, text]."""
    out: dict[str, list[str]] = {}
    for item in parent if parent is not None else []:
        value = _child(item, "Value")
        kind = (value.get(f"{{{XSI}}}type", "string") if value is not None else "string").rsplit(":", 1)[-1]
        out[_text(item, "Key")] = [kind, (value.text or "") if value is not None else ""]
    return out


def _correlation(element: ElementTree.Element) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for name in _CORRELATION:
        child = _child(element, name)
        if child is not None and child.text is not None and child.get(f"{{{XSI}}}nil") != "true":
            node[name] = child.text
    user: dict[str, Any] = {}
    for key, (kind, text) in _key_values(_child(element, "Properties")).items():
        user[key] = _scalar(kind, text, key)
    if user:
        node["Properties"] = user
    return node


def _scalar(kind: str, text: str, key: str) -> str | int | float | bool:
    if kind in {"int", "long"}:
        return int(text)
    if kind == "double":
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "string":
        return text
    raise BrokerError(
        _BAD,
        f"Correlation property {key!r}: values of type {kind} are not supported by the emulator.",
        status=400,
    )


# -- writing answers ---------------------------------------------------------------------------


def _time(at_ms: int | None) -> str:
    if at_ms is None:
        return _NEVER
    moment = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _element(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def _entry(base: str, path: str, described: Definition, content: str) -> str:
    href = escape(f"{base}/{path}?api-version=2021-05")
    return (
        f'<entry xmlns="{ATOM}"><id>{href}</id><title type="text">{escape(described.name)}</title>'
        f"<published>{_time(described.created_ms)}</published><updated>{_time(described.updated_ms)}</updated>"
        f'<link rel="self" href="{href}"/><content type="application/xml">{content}</content></entry>'
    )


def entity_entry(base: str, path: str, kind: str, definition: Definition, runtime: Runtime) -> str:
    """The entry of a queue, topic or subscription, with its counts."""
    parts = [
        _element(name, definition.properties[name])
        for name in _HONOURED[kind]
        if name in definition.properties
    ]
    kept = {**_KEPT_DEFAULTS[kind], **definition.extras}
    parts += [_element(name, value) for name, value in kept.items()]
    if kind != "TopicDescription":
        total = runtime.active + runtime.dead_lettered + runtime.scheduled
        parts.append(_element("MessageCount", total))
    parts += [
        _element("SizeInBytes", 0),
        _element("CreatedAt", _time(definition.created_ms)),
        _element("UpdatedAt", _time(definition.updated_ms)),
        _element("AccessedAt", _time(runtime.accessed_at_ms)),
        _count_details(runtime),
        _element("EntityAvailabilityStatus", "Available"),
    ]
    if kind == "TopicDescription":
        parts.append(_element("SubscriptionCount", runtime.subscriptions))
    content = f'<{kind} xmlns="{SB}" xmlns:i="{XSI}">{"".join(parts)}</{kind}>'
    return _entry(base, path, definition, content)


def _count_details(runtime: Runtime) -> str:
    return (
        f'<CountDetails xmlns:d2p1="{_D2}">'
        f"<d2p1:ActiveMessageCount>{runtime.active}</d2p1:ActiveMessageCount>"
        f"<d2p1:DeadLetterMessageCount>{runtime.dead_lettered}</d2p1:DeadLetterMessageCount>"
        f"<d2p1:ScheduledMessageCount>{runtime.scheduled}</d2p1:ScheduledMessageCount>"
        "<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>"
        "<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>"
        "</CountDetails>"
    )


def rule_entry(base: str, path: str, rule: Definition) -> str:
    """The entry of a rule."""
    content = f'<RuleDescription xmlns="{SB}" xmlns:i="{XSI}">{rule_description_body(rule)}</RuleDescription>'
    return _entry(base, path, rule, content)


def rule_description_body(rule: Definition) -> str:
    """A RuleDescription's children: Filter, Action, CreatedAt, Name."""
    props = rule.properties
    if props["FilterType"] == "Sql":
        expression = props["SqlFilter"]["SqlExpression"]
        kind = {"1=1": "TrueFilter", "1=0": "FalseFilter"}.get(expression.replace(" ", ""), "SqlFilter")
        filter_xml = (
            f'<Filter i:type="{kind}">{_element("SqlExpression", expression)}'
            f"{_parameters(rule.parameters)}<CompatibilityLevel>20</CompatibilityLevel></Filter>"
        )
    else:
        node = props["CorrelationFilter"]
        fields = "".join(_element(name, node[name]) for name in _CORRELATION if name in node)
        filter_xml = (
            f'<Filter i:type="CorrelationFilter">{fields}'
            f"<Properties>{_key_value_items(node.get('Properties', {}))}</Properties></Filter>"
        )
    if "Action" in props:
        action_xml = (
            f'<Action i:type="SqlRuleAction">{_element("SqlExpression", props["Action"]["SqlExpression"])}'
            "<CompatibilityLevel>20</CompatibilityLevel></Action>"
        )
    else:
        action_xml = '<Action i:type="EmptyRuleAction"/>'
    created = _element("CreatedAt", _time(rule.created_ms))
    return f"{filter_xml}{action_xml}{created}{_element('Name', rule.name)}"


def _parameters(parameters: Mapping[str, list[str]]) -> str:
    if not parameters:
        return ""
    items = "".join(_key_value(key, kind, text) for key, (kind, text) in parameters.items())
    return f"<Parameters>{items}</Parameters>"


def _key_value_items(values: Mapping[str, Any]) -> str:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            out.append(_key_value(key, "boolean", "true" if value else "false"))
        elif isinstance(value, int):
            out.append(_key_value(key, "int" if -(2**31) <= value < 2**31 else "long", str(value)))
        elif isinstance(value, float):
            out.append(_key_value(key, "double", repr(value)))
        else:
            out.append(_key_value(key, "string", str(value)))
    return "".join(out)


def _key_value(key: str, kind: str, text: str) -> str:
    return (
        f"<KeyValueOfstringanyType><Key>{escape(key)}</Key>"
        f'<Value xmlns:d6p1="{XSD}" i:type="d6p1:{kind}">{escape(text)}</Value></KeyValueOfstringanyType>'
    )


def feed(base: str, path: str, title: str, entries: Iterable[str], next_href: str | None) -> str:
    """A feed of entries; a second ``link`` (the next page) when there are more."""
    href = f"{base}/{path}"
    links = f'<link rel="self" href={quoteattr(href)}/>'
    if next_href is not None:
        links += f'<link rel="next" href={quoteattr(next_href)}/>'
    now = _time(int(datetime.datetime.now(datetime.UTC).timestamp() * 1000))
    return (
        f'<feed xmlns="{ATOM}"><title type="text">{escape(title)}</title><id>{escape(href)}</id>'
        f"<updated>{now}</updated>{links}{''.join(entries)}</feed>"
    )


def namespace_entry(base: str, name: str, created_ms: int) -> str:
    """The namespace's properties (``NamespaceInfo``)."""
    content = (
        f'<NamespaceInfo xmlns="{SB}" xmlns:i="{XSI}">{_element("Alias", name)}'
        f"{_element('CreatedTime', _time(created_ms))}{_element('MessagingSKU', 'Standard')}"
        f"{_element('MessagingUnits', 1)}{_element('ModifiedTime', _time(created_ms))}"
        f"{_element('Name', name)}{_element('NamespaceType', 'Messaging')}</NamespaceInfo>"
    )
    return _entry(
        base, "$namespaceinfo", Definition(name, {}, created_ms=created_ms, updated_ms=created_ms), content
    )
