"""Kubernetes objects without a typed class in the SDK: custom resources and kinds whose fields sit beside `spec`."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from orca_platform.conventions import NAMESPACE_NAME_LABEL

_K8S_PLUGIN = version("pulumi_kubernetes")


class ApiObject(pulumi.CustomResource):
    """Any Kubernetes object, sent as written (apiVersion, kind, metadata and its top-level fields).

    The SDK's CustomResource only carries `spec`; a VolumeSnapshotClass keeps `driver` and `deletionPolicy` at the top.
    The type token is the one the Kubernetes provider derives for every kind, so the provider treats it as usual.
    """

    def __init__(
        self,
        name: str,
        api_version: str,
        kind: str,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        fields: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
        super().__init__(
            f"kubernetes:{api_version}:{kind}",
            name,
            props,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_K8S_PLUGIN)),
        )


# Builds an object's metadata in a component's namespace with its labels: (name, annotations) -> ObjectMetaArgs.
Meta = Callable[..., k8s.meta.v1.ObjectMetaArgs]


def dns_egress_rule() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the cluster's DNS (CoreDNS in kube-system) only: every policy that closes egress needs it."""
    np = k8s.networking.v1
    return np.NetworkPolicyEgressRuleArgs(
        to=[
            np.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: "kube-system"}),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[np.NetworkPolicyPortArgs(protocol="UDP", port=53), np.NetworkPolicyPortArgs(protocol="TCP", port=53)],
    )
