"""Deployment files rendered from the one topology: Bicep parameters, KEDA scale rules, manifests, picture.

Pure functions: each takes a ``Topology`` and returns data or text. ``infra_files`` and ``docs_files``
gather every file ``dualbus infra render`` writes, by path relative to its directory, so that a test can
compare them with the checked-in copies.
"""

from __future__ import annotations

import orjson

from dualbus.shared.render import render_emulator_config
from dualbus.shared.render_infra._apps import (
    APP_PREFIX,
    MAX_REPLICAS,
    MESSAGES_PER_REPLICA,
    SCALE_RULE_TYPE,
    ConsumerApp,
    ProducerApp,
    consumer_apps,
    producer_apps,
)
from dualbus.shared.render_infra._bicep import render_bicep_parameters
from dualbus.shared.render_infra._k8s import (
    K8S_NAMESPACE,
    PLACEHOLDERS,
    TRIGGER_AUTHENTICATION,
    k8s_manifests,
    render_k8s_manifests,
)
from dualbus.shared.render_infra._svg import render_flow_svg
from dualbus.shared.render_infra._yaml import dump_documents, dump_yaml
from dualbus.shared.topology import Topology

__all__ = [
    "APP_PREFIX",
    "K8S_NAMESPACE",
    "MAX_REPLICAS",
    "MESSAGES_PER_REPLICA",
    "PLACEHOLDERS",
    "SCALE_RULE_TYPE",
    "TRIGGER_AUTHENTICATION",
    "ConsumerApp",
    "ProducerApp",
    "consumer_apps",
    "docs_files",
    "dump_documents",
    "dump_json",
    "dump_yaml",
    "infra_files",
    "k8s_manifests",
    "producer_apps",
    "render_bicep_parameters",
    "render_flow_svg",
    "render_k8s_manifests",
]


def dump_json(document: object) -> str:
    """JSON as the checked-in files hold it: two-space indent, keys in order, a final newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def infra_files(topology: Topology) -> dict[str, str]:
    """Every rendered file of ``infra/``, by path relative to that directory."""
    files = {
        "topology.parameters.json": dump_json(render_bicep_parameters(topology)),
        "emulator/Config.json": dump_json(render_emulator_config(topology)),
    }
    files |= {f"k8s/{name}": text for name, text in render_k8s_manifests(topology).items()}
    return files


def docs_files(topology: Topology) -> dict[str, str]:
    """Every rendered file of ``docs/``, by path relative to that directory."""
    return {"flow.svg": render_flow_svg(topology)}
