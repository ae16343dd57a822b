"""Helpers for the OrcaTenant, Azure-side and density tests (issues 2, 3 and 4).

Everything here reads the stack files and the program's recorded resources; nothing here decides what is correct.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orca_platform.model import config_file
from orca_platform.model.settings import Settings, parse_settings
from orca_platform.plan.addressing import vpn_ranges
from tools.offline import engine as offline
from tools.offline.engine import Registered, Run

PROJECT_DIR = Path(__file__).resolve().parent.parent
TENANTS_KEY = "orca-platform:tenantsFile"
PREFIX = "orca-platform:"


# --- stack settings -------------------------------------------------------------------------------------------------


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def raw_settings(stack: str) -> dict[str, Any]:
    """The `orca-platform:*` keys of Pulumi.<stack>.yaml without the prefix, as plain (mutable) data, read by the
    program's own strict reader."""
    return copy.deepcopy(config_file.raw_settings(offline.stack_config(stack), stack_file(stack)))


def settings_from(raw: dict[str, Any], stack: str = "dev") -> Settings:
    return parse_settings(raw, stack_file(stack))


def load_settings(stack: str) -> Settings:
    return settings_from(raw_settings(stack), stack)


def program_config(stack: str, tenants: Path | None = None, **sections: Any) -> dict[str, str]:
    """The config the CLI would hand the program, with whole `orca-platform:<section>` values replaced."""
    overrides: dict[str, Any] = {f"{PREFIX}{k}": v for k, v in sections.items()}
    if tenants is not None:
        overrides[TENANTS_KEY] = str(tenants)
    return offline.stack_config(stack, overrides=overrides)


# --- tenants files --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPlan:
    """Addresses of a stack that clinics may (or may not) use, derived from its settings."""

    zone: str
    ingress_ip: str
    free_ips: tuple[str, ...]  # assignable in the ILB subnet, not the ingress controller's
    reserved_ilb_ip: str  # inside the ILB subnet but among Azure's reserved addresses
    outside_ilb_ip: str  # in the node subnet
    vpn_cidrs: tuple[str, ...]  # /24s inside the VPN ranges
    unreachable_cidr: str  # inside no VPN range


def address_plan(settings: Settings) -> AddressPlan:
    net = settings.network
    ilb = ipaddress.IPv4Network(net.ilb_subnet_cidr)
    ingress_ip = settings.ingress.private_ip
    free = tuple(str(ip) for ip in list(ilb.hosts())[30:60] if str(ip) != ingress_ip)
    cidrs: list[str] = []
    for r in vpn_ranges(net):
        cidrs.extend(str(s) for s in (r.subnets(new_prefix=24) if r.prefixlen < 24 else [r]))
    unreachable = next(
        str(c)
        for c in ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=24)
        if not any(c.overlaps(r) for r in vpn_ranges(net))
    )
    return AddressPlan(
        zone=net.dns_zone,
        ingress_ip=ingress_ip,
        free_ips=free,
        reserved_ilb_ip=str(ilb.network_address + 1),
        outside_ilb_ip=str(ipaddress.IPv4Network(net.node_subnet_cidr).network_address + 40),
        vpn_cidrs=tuple(cidrs),
        unreachable_cidr=unreachable,
    )


def clinic_doc(cid: str, size: str = "small", volume: str = "32Gi", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": cid, "name": f"テスト {cid}", "size": size, "volumeSize": volume}
    doc.update(fields)
    return doc


def site_clinic(addr: AddressPlan, site: int, cid: str, volume: str, **fields: Any) -> dict[str, Any]:
    """A small clinic on VPN site `site` with that site's own private IP. A fixed privateIp belongs to a clinic's own
    load balancer: pinned, since prod's default front door is ingress-only."""
    return clinic_doc(
        cid,
        "small",
        volume,
        sourceCidrs=[addr.vpn_cidrs[site]],
        privateIp=addr.free_ips[site],
        frontDoor="loadbalancer",
        **fields,
    )


def two_clinics(addr: AddressPlan) -> dict[str, Any]:
    """A small, valid tenants document for the stack whose addresses are `addr` (two small clinics: a larger mix would
    miss the dev stack's density target of 20 per node, which is not what these tests are about)."""
    return {
        "clinics": [
            site_clinic(addr, 0, "alpha-naika", "32Gi"),
            site_clinic(addr, 1, "beta-geka", "64Gi", hostname=f"beta.{addr.zone}"),
        ],
        "retiredClinicIds": ["gamma-old"],
    }


def write_yaml(path: Path, doc: Any) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- running the program --------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One run of the real program: what it returned or raised, and everything the monitor saw registered."""

    run: Run | None
    error: BaseException | None
    registered: list[Registered]


@contextmanager
def _capturing_monitor() -> Iterator[list[offline.RecordingMonitor]]:
    """Swap tools.offline.engine's monitor class for one that remembers its instances, so a failed run can be
    inspected."""
    original = offline.RecordingMonitor
    seen: list[offline.RecordingMonitor] = []

    class Capturing(original):  # type: ignore[misc, valid-type]
        def __init__(self, mocks_: Any) -> None:
            super().__init__(mocks_)
            seen.append(self)

    offline.RecordingMonitor = Capturing  # type: ignore[misc]
    try:
        yield seen
    finally:
        offline.RecordingMonitor = original  # type: ignore[misc]


def attempt(
    stack: str,
    config: dict[str, str],
    world: offline.World | None = None,
    previous_outputs: offline.StackOutputs | None = None,
) -> Attempt:
    """One run; `previous_outputs` is what the StackReference to the stack itself answers (None: a first update)."""
    with _capturing_monitor() as seen:
        try:
            run: Run | None = offline.run_program(stack, config, previous_outputs=previous_outputs, world=world)
            error: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - the tests inspect whatever the program raised
            run, error = None, exc
    assert len(seen) == 1, "run_program should create exactly one monitor"
    return Attempt(run=run, error=error, registered=list(seen[0].registered))


# --- selecting recorded resources -----------------------------------------------------------------------------------


def only(items: list[Registered], what: str) -> Registered:
    assert len(items) == 1, f"expected exactly one {what}, found {[r.urn for r in items]}"
    return items[0]


def meta(res: Registered) -> dict[str, Any]:
    return dict(res.inputs.get("metadata") or {})


def k8s_named(run: Run, kind: str, namespace: str | None, name: str) -> Registered:
    return only([r for r in run.k8s(kind, namespace) if meta(r).get("name") == name], f"{kind} {namespace}/{name}")


def azure(run: Run, type_suffix: str) -> list[Registered]:
    return run.by_type(f"azure-native:{type_suffix}")


def provider_urn(ref: str) -> str:
    """A provider reference is '<urn>::<id>'; the URN itself contains '::'."""
    return ref.rsplit("::", 1)[0] if ref else ""


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """matchLabels semantics (the program uses no matchExpressions); an empty selector selects every pod."""
    selector = selector or {}
    assert not selector.get("matchExpressions"), "matchExpressions not modelled by this helper"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
