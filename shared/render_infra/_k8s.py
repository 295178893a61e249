"""Kubernetes manifests for AKS: a Deployment per producer and consumer, KEDA scaling via workload identity.

Values that differ per installation are ``${VARIABLE}`` placeholders for ``envsubst`` (see docs/deploy.md).
KEDA resources: https://keda.sh/docs/latest/reference/scaledobject-spec/ and the workload identity provider
https://keda.sh/docs/latest/authentication-providers/azure-ad-workload-identity/ ; pod side:
https://azure.github.io/azure-workload-identity/docs/topics/service-account-labels-and-annotations.html
"""

from __future__ import annotations

from typing import Any

from dualbus.shared.render_infra._apps import (
    SCALE_RULE_TYPE,
    ConsumerApp,
    ProducerApp,
    consumer_apps,
    producer_apps,
)
from dualbus.shared.render_infra._yaml import dump_documents
from dualbus.shared.topology import Topology

__all__ = [
    "K8S_NAMESPACE",
    "PLACEHOLDERS",
    "STATE_DIR",
    "TRIGGER_AUTHENTICATION",
    "k8s_manifests",
    "render_k8s_manifests",
]

K8S_NAMESPACE = "dualbus"
TRIGGER_AUTHENTICATION = "dualbus-servicebus"
STATE_DIR = "/var/lib/dualbus"
# A pod-private emptyDir: the root file system is read-only, and Python may want a temporary directory.
_TMP_DIR = "/tmp"  # noqa: S108 - a fresh emptyDir per pod, not a shared /tmp
_SB_NAMESPACE = "${DUALBUS_SERVICEBUS_NAMESPACE}"
_IMAGE = "${DUALBUS_IMAGE_REGISTRY}/dualbus-%s:${DUALBUS_IMAGE_TAG}"
PLACEHOLDERS = (
    "DUALBUS_SERVICEBUS_NAMESPACE",
    "DUALBUS_IMAGE_REGISTRY",
    "DUALBUS_IMAGE_TAG",
    "DUALBUS_PRODUCER_CLIENT_ID",
    "DUALBUS_CONSUMER_CLIENT_ID",
    "DUALBUS_SCALER_CLIENT_ID",
)


def k8s_manifests(topology: Topology) -> dict[str, list[dict[str, Any]]]:
    """The manifests as data by file name: base (namespace, accounts, KEDA auth), producers, consumers."""
    return {
        "base.yaml": _base(),
        "producers.yaml": [doc for app in producer_apps() for doc in _producer(app)],
        "consumers.yaml": [doc for app in consumer_apps(topology) for doc in _consumer(app)],
    }


def render_k8s_manifests(topology: Topology) -> dict[str, str]:
    """The manifests as YAML text by file name."""
    return {name: dump_documents(docs) for name, docs in k8s_manifests(topology).items()}


def _meta(name: str, component: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "dualbus"}
    if component is not None:
        labels |= {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
    return {"name": name, "namespace": K8S_NAMESPACE, "labels": labels}


def _service_account(role: str, client_id: str) -> dict[str, Any]:
    meta = _meta(f"dualbus-{role}")
    meta["annotations"] = {"azure.workload.identity/client-id": client_id}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def _base() -> list[dict[str, Any]]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": K8S_NAMESPACE}}
    # KEDA reads the subscription's message count with this identity, not the consumer's: reading runtime
    # properties needs the Manage right (Azure Service Bus Data Owner), which the consumer must not hold.
    # https://github.com/kedacore/keda/issues/806
    trigger_auth = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _meta(TRIGGER_AUTHENTICATION),
        "spec": {"podIdentity": {"provider": "azure-workload", "identityId": "${DUALBUS_SCALER_CLIENT_ID}"}},
    }
    return [
        namespace,
        _service_account("producer", "${DUALBUS_PRODUCER_CLIENT_ID}"),
        _service_account("consumer", "${DUALBUS_CONSUMER_CLIENT_ID}"),
        trigger_auth,
    ]


def _container(kind: str, args: tuple[str, ...], secret: str) -> dict[str, Any]:
    return {
        "name": kind,
        "image": _IMAGE % kind,
        "args": list(args),
        "env": [
            {"name": "DUALBUS_SERVICEBUS__NAMESPACE", "value": f"{_SB_NAMESPACE}.servicebus.windows.net"},
            {"name": "DUALBUS_STATE_DIR", "value": STATE_DIR},
        ],
        # The secret holds DUALBUS_<SYSTEM>__URL, __TENANT_ID, __CLIENT_ID and __CLIENT_SECRET.
        "envFrom": [{"secretRef": {"name": secret}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": _TMP_DIR}],
    }


def _pod(name: str, component: str, container: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    labels = _meta(name, component)["labels"] | {"azure.workload.identity/use": "true"}
    return {
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": f"dualbus-{component}",
            # The images run as this unprivileged user (infra/docker).
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
            },
            "containers": [container],
            "volumes": [{"name": "state", **state}, {"name": "tmp", "emptyDir": {}}],
        },
    }


def _deployment(name: str, component: str, spec: dict[str, Any]) -> dict[str, Any]:
    selector = {"matchLabels": {"app.kubernetes.io/name": name}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, component),
        "spec": {"selector": selector, **spec},
    }


def _producer(app: ProducerApp) -> list[dict[str, Any]]:
    claim = f"{app.name}-state"
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(claim),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    container = _container("producer", app.args, f"dualbus-{app.origin.value}")
    pod = _pod(app.name, "producer", container, {"persistentVolumeClaim": {"claimName": claim}})
    # One producer per source: its checkpoints live on one volume, and two at once would publish twice.
    spec = {"replicas": 1, "strategy": {"type": "Recreate"}, "template": pod}
    return [pvc, _deployment(app.name, "producer", spec)]


def _consumer(app: ConsumerApp) -> list[dict[str, Any]]:
    container = _container("consumer", app.args, f"dualbus-{app.target.value}")
    pod = _pod(app.name, "consumer", container, {"emptyDir": {}})
    pod["spec"]["terminationGracePeriodSeconds"] = app.shutdown_grace_seconds
    # No "replicas": the HPA that KEDA creates owns the count, and re-applying must not reset it.
    return [_deployment(app.name, "consumer", {"template": pod}), _scaled_object(app)]


def _scaled_object(app: ConsumerApp) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(app.name, "consumer"),
        "spec": {
            "scaleTargetRef": {"name": app.name},
            "minReplicaCount": 0,
            "maxReplicaCount": app.max_replicas,
            # Its own subscription, and the topic's unroutable one, which every consumer of the topic drains.
            "triggers": [
                {
                    "type": SCALE_RULE_TYPE,
                    "metadata": metadata,
                    "authenticationRef": {"name": TRIGGER_AUTHENTICATION},
                }
                for metadata in (
                    app.scale_metadata(namespace=_SB_NAMESPACE),
                    app.unroutable_scale_metadata(namespace=_SB_NAMESPACE),
                )
            ],
        },
    }
