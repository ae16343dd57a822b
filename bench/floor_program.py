"""The SDK's floor: a Pulumi program that registers N plain ConfigMaps through one Kubernetes provider, nothing else.

Run by bench/run.py under the same mocks and recording monitor as the real program (tools.offline.engine.run_program);
N comes from the environment so that the harness can run this file as it runs __main__.py.
"""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

count = int(os.environ["BENCH_FLOOR_RESOURCES"])
provider = k8s.Provider("k8s", kubeconfig="{}")
opts = pulumi.ResourceOptions(provider=provider)
for i in range(count):
    k8s.core.v1.ConfigMap(
        f"cm-{i}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"cm-{i}", namespace=f"ns-{i // 20}", labels={"bench": "floor"}),
        data={"key": "value"},
        opts=opts,
    )
