"""The picture of dualbus's flow (docs/flow.svg), drawn from the topology so that it cannot go stale.

F&O sits on the left and Dataverse on the right; each producer publishes into the Service Bus namespace in
the middle, where every area topic fans out to its subscriptions, each read by its own consumer that
writes to the other side.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from dualbus.shared.render_infra._apps import ConsumerApp, consumer_apps, producer_apps
from dualbus.shared.topology import Direction, Topology

__all__ = ["render_flow_svg"]

_WIDTH = 1110
_ROW = 56
_TOP = 150
_BOX_H = 36
# (x, width) of each column, left to right.
_SYSTEM_L = (20, 100)
_CONSUMER_L = (150, 190)
_SUB_L = (360, 100)
_TOPIC = (475, 160)
_SUB_R = (650, 100)
_CONSUMER_R = (770, 190)
_SYSTEM_R = (990, 100)
_NAMESPACE = (350, 410)
_STYLE = """
text { font-family: Helvetica, Arial, sans-serif; font-size: 12px; fill: #1f2933; }
.title { font-size: 16px; font-weight: bold; }
.note { font-size: 11px; fill: #52606d; }
.system { fill: #e4e7eb; stroke: #3e4c59; }
.producer { fill: #d9f2e6; stroke: #2f855a; }
.namespace { fill: #f0f4f8; stroke: #829ab1; stroke-dasharray: 6 4; }
.topic { fill: #fff3c4; stroke: #b7791f; }
.sub { fill: #ffffff; stroke: #b7791f; }
.consumer { fill: #dbeafe; stroke: #2b6cb0; }
.flow { stroke: #3e4c59; stroke-width: 1.4; fill: none; marker-end: url(#arrow); }
"""


def render_flow_svg(topology: Topology) -> str:
    """The flow picture as an SVG document, one row per area topic."""
    # One row per topic, and one more for the control queue.
    rows = len(topology.topics) + 1
    height = _TOP + rows * _ROW + 70
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
            f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="dualbus flow">'
        ),
        "<title>dualbus: F&amp;O and Dataverse kept in step through Service Bus</title>",
        f"<style>{_STYLE}</style>",
        (
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#3e4c59"/>'
            "</marker></defs>"
        ),
        _text(
            _WIDTH // 2,
            28,
            "dualbus: one topic per area, one subscription and consumer per direction",
            "title",
        ),
        *_frame(height, rows),
        *[part for app in consumer_apps(topology) for part in _route(topology, app)],
        *_topics(topology),
        *_control_queue(topology),
        _text(_WIDTH // 2, height - 20, _FOOTNOTE, "note"),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


_FOOTNOTE = (
    "Each subscription has its own dead-letter queue; "
    "`dualbus dlq` inspects it and replays to that subscription only."
)


def _text(x: int, y: int, content: str, css: str | None = None) -> str:
    cls = f' class="{css}"' if css else ""
    return f'<text x="{x}" y="{y}" text-anchor="middle"{cls}>{escape(content)}</text>'


def _rect(x: int, y: int, width: int, height: int, css: str) -> str:
    return f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" class="{css}"/>'


def _box(column: tuple[int, int], y: int, label: str, css: str, height: int = _BOX_H) -> list[str]:
    x, width = column
    return [
        _rect(x, y, width, height, css),
        _text(x + width // 2, y + height // 2 + 4, label),
    ]


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return f'<path d="M{x1},{y1} L{x2},{y2}" class="flow"/>'


def _frame(height: int, rows: int) -> list[str]:
    span = height - _TOP - 50
    fo, dataverse = producer_apps()
    ns_x, ns_w = _NAMESPACE
    return [
        *_box(_SYSTEM_L, 60, "F&O", "system", span + _TOP - 60),
        *_box(_SYSTEM_R, 60, "Dataverse", "system", span + _TOP - 60),
        *_box(_CONSUMER_L, 60, fo.name, "producer"),
        *_box(_CONSUMER_R, 60, dataverse.name, "producer"),
        _arrow(_SYSTEM_L[0] + _SYSTEM_L[1], 78, _CONSUMER_L[0], 78),
        _arrow(_SYSTEM_R[0], 78, _CONSUMER_R[0] + _CONSUMER_R[1], 78),
        _rect(ns_x, _TOP - 40, ns_w, rows * _ROW + 40, "namespace"),
        _text(ns_x + ns_w // 2, _TOP - 22, "Service Bus namespace", "note"),
        _arrow(_CONSUMER_L[0] + _CONSUMER_L[1], 78, ns_x + 40, _TOP - 40),
        _arrow(_CONSUMER_R[0], 78, ns_x + ns_w - 40, _TOP - 40),
    ]


def _row_y(index: int) -> int:
    return _TOP + index * _ROW


def _topics(topology: Topology) -> list[str]:
    return [part for i, t in enumerate(topology.topics) for part in _box(_TOPIC, _row_y(i), t.name, "topic")]


def _control_queue(topology: Topology) -> list[str]:
    x = _SUB_L[0]
    width = _SUB_R[0] + _SUB_R[1] - x
    label = f"{topology.control_queue} queue: pause and resume for consumers"
    return _box((x, width), _row_y(len(topology.topics)), label, "sub")


def _route(topology: Topology, app: ConsumerApp) -> list[str]:
    y = _row_y(topology.areas.index(app.area))
    mid = y + _BOX_H // 2
    to_fo = app.subscription.direction is Direction.TO_FO
    sub_col, consumer_col = (_SUB_L, _CONSUMER_L) if to_fo else (_SUB_R, _CONSUMER_R)
    target_edge = _SYSTEM_L[0] + _SYSTEM_L[1] if to_fo else _SYSTEM_R[0]
    if to_fo:
        topic_edge, sub_near, sub_far = _TOPIC[0], sub_col[0] + sub_col[1], sub_col[0]
        consumer_near, consumer_far = consumer_col[0] + consumer_col[1], consumer_col[0]
    else:
        topic_edge, sub_near, sub_far = _TOPIC[0] + _TOPIC[1], sub_col[0], sub_col[0] + sub_col[1]
        consumer_near, consumer_far = consumer_col[0], consumer_col[0] + consumer_col[1]
    return [
        *_box(sub_col, y + 4, app.subscription.name, "sub", _BOX_H - 8),
        *_box(consumer_col, y, app.name, "consumer"),
        _arrow(topic_edge, mid, sub_near, mid),
        _arrow(sub_far, mid, consumer_near, mid),
        _arrow(consumer_far, mid, target_edge, mid),
    ]
