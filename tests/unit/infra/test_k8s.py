"""The AKS manifests: a Deployment per app, a ScaledObject per consumer on its own subscription."""

from __future__ import annotations

from typing import Any

import pytest

from dualbus.shared.render_infra import (
    K8S_NAMESPACE,
    PLACEHOLDERS,
    TRIGGER_AUTHENTICATION,
    consumer_apps,
    k8s_manifests,
    producer_apps,
    render_k8s_manifests,
)
from dualbus.shared.topology import default_topology


def _docs(kind: str) -> list[dict[str, Any]]:
    manifests = k8s_manifests(default_topology())
    return [doc for docs in manifests.values() for doc in docs if doc["kind"] == kind]


def test_one_scaled_object_per_route_on_its_own_subscription() -> None:
    """Each consumer's ScaledObject triggers on its own subscription and on its topic's unroutable one."""
    scaled = {doc["metadata"]["name"]: doc for doc in _docs("ScaledObject")}
    apps = consumer_apps(default_topology())
    assert sorted(scaled) == sorted(app.name for app in apps)
    for app in apps:
        spec = scaled[app.name]["spec"]
        own, unroutable = spec["triggers"]
        assert spec["scaleTargetRef"] == {"name": app.name}
        for trigger in (own, unroutable):
            assert trigger["type"] == "azure-servicebus"
            assert trigger["metadata"]["topicName"] == app.topic.name
            assert trigger["authenticationRef"] == {"name": TRIGGER_AUTHENTICATION}
        assert own["metadata"]["subscriptionName"] == app.subscription.name
        assert unroutable["metadata"]["subscriptionName"] == "unroutable"


def test_a_deployment_per_producer_and_consumer() -> None:
    """Every app has a Deployment; consumers leave the replica count to KEDA, producers run exactly one."""
    deployments = {doc["metadata"]["name"]: doc for doc in _docs("Deployment")}
    expected = [app.name for app in producer_apps()] + [app.name for app in consumer_apps(default_topology())]
    assert sorted(deployments) == sorted(expected)
    for producer in producer_apps():
        assert deployments[producer.name]["spec"]["replicas"] == 1
    for consumer in consumer_apps(default_topology()):
        assert "replicas" not in deployments[consumer.name]["spec"]
        (container,) = deployments[consumer.name]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == list(consumer.args)


def test_trigger_authentication_uses_workload_identity() -> None:
    """KEDA authenticates to Service Bus with Azure workload identity, not a connection string."""
    (auth,) = _docs("TriggerAuthentication")
    assert auth["metadata"] == {
        "name": TRIGGER_AUTHENTICATION,
        "namespace": K8S_NAMESPACE,
        "labels": {"app.kubernetes.io/part-of": "dualbus"},
    }
    assert auth["spec"]["podIdentity"]["provider"] == "azure-workload"


def test_pods_use_workload_identity_and_run_unprivileged() -> None:
    """Pods carry the workload identity label, a service account, and run as non-root."""
    for deployment in _docs("Deployment"):
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert pod["spec"]["serviceAccountName"] in {"dualbus-producer", "dualbus-consumer"}
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", ["base.yaml", "producers.yaml", "consumers.yaml"])
def test_yaml_text_holds_only_known_placeholders(name: str) -> None:
    """Every ${...} placeholder in the manifests is one docs/deploy.md tells the operator to set."""
    text = render_k8s_manifests(default_topology())[name]
    used = {part.split("}", 1)[0] for part in text.split("${")[1:]}
    assert used
    assert used <= set(PLACEHOLDERS)
