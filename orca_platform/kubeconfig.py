"""Rewrite an AKS Entra ID kubeconfig for a non-interactive kubelogin mode, as `kubelogin convert-kubeconfig` does."""

from __future__ import annotations

import base64
from typing import Any

import yaml


def _value_after(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


def convert_kubeconfig(encoded: str, login_mode: str) -> str:
    """Take the base64 kubeconfig AKS returns (exec format) and make its kubelogin use `login_mode`.

    AKS hands out `--login devicecode`, which waits for a person at a browser; `pulumi up` on a workstation uses the
    Azure CLI's login and CI uses workload identity. Only the server id and cloud environment are kept from the
    original arguments: the rest belongs to the device-code flow.
    """
    doc: dict[str, Any] = yaml.safe_load(base64.b64decode(encoded).decode("utf-8"))
    for user in doc.get("users") or []:
        exec_ = (user.get("user") or {}).get("exec")
        if not exec_:
            continue
        args = [str(a) for a in exec_.get("args") or []]
        server_id = _value_after(args, "--server-id")
        environment = _value_after(args, "--environment")
        new_args = ["get-token", "--login", login_mode]
        if environment:
            new_args += ["--environment", environment]
        if server_id:
            new_args += ["--server-id", server_id]
        exec_["args"] = new_args
        exec_["command"] = "kubelogin"
    return yaml.safe_dump(doc, sort_keys=False)
