"""The Kubernetes provider's clusterIdentifier (issue 16, item 4): set, plain, and blind to the kubeconfig.

pulumi-kubernetes replaces its provider, and so every object it manages, when the kubeconfig's active cluster block
changes (a rotated CA after `az aks rotate-certs`), unless clusterIdentifier is set and unchanged
(provider/pkg/provider/provider.go, DiffConfig). These tests run the real program and read the provider it registers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tools.offline import engine as offline
from tools.offline.engine import Registered, Run, is_secret, reveal, run_program


def _only(items: list[Registered]) -> Registered:
    assert len(items) == 1, [r.urn for r in items]
    return items[0]


def _provider(run: Run) -> Registered:
    return _only(run.by_type("pulumi:providers:kubernetes"))


def _cluster_block(provider: Registered) -> dict[str, Any]:
    doc = yaml.safe_load(reveal(provider.inputs["kubeconfig"]))
    cluster: dict[str, Any] = doc["clusters"][0]["cluster"]
    return cluster


def test_the_provider_is_identified_by_the_clusters_group_and_name(stack_run: Run) -> None:
    provider = _provider(stack_run)
    aks = _only(stack_run.by_type("azure-native:containerservice:ManagedCluster"))
    identifier = provider.inputs.get("clusterIdentifier")
    # A plain string (DiffConfig compares it as a value; a secret or unknown one would count as changed).
    assert isinstance(identifier, str)
    assert not is_secret(identifier)
    assert identifier == f"{aks.inputs['resourceGroupName']}/{aks.inputs['resourceName']}"


def test_dev_and_prod_name_different_clusters(dev_run: Run, prod_run: Run) -> None:
    assert _provider(dev_run).inputs["clusterIdentifier"] != _provider(prod_run).inputs["clusterIdentifier"]


_ORIGINAL_KUBECONFIG = offline._kubeconfig


def _rotated_kubeconfig() -> str:
    """What AKS hands out after `az aks rotate-certs`: the same user, a new CA (and here a new API endpoint)."""
    doc = yaml.safe_load(base64.b64decode(_ORIGINAL_KUBECONFIG()))
    doc["clusters"][0]["cluster"] = {
        "server": "https://aks-rotated.example.invalid:443",
        "certificate-authority-data": base64.b64encode(b"rotated CA").decode(),
    }
    return base64.b64encode(yaml.safe_dump(doc).encode()).decode()


@pytest.fixture
def rotated_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setattr(offline, "_kubeconfig", _rotated_kubeconfig)
    yield run_program("dev")


def test_a_rotated_kubeconfig_keeps_the_identifier(dev_run: Run, rotated_run: Run) -> None:
    before, after = _provider(dev_run), _provider(rotated_run)
    # The change really reached the provider's inputs: its active cluster block differs ...
    assert _cluster_block(before) != _cluster_block(after)
    assert _cluster_block(after)["server"] == "https://aks-rotated.example.invalid:443"
    # ... and the identifier, the only thing DiffConfig then replaces on, does not.
    assert after.inputs["clusterIdentifier"] == before.inputs["clusterIdentifier"]
