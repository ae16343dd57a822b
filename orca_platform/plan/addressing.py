"""Address plan checks: subnets, overlaps, fixed IPs and VPN reachability. Pure functions returning Problems."""

from __future__ import annotations

import ipaddress
from itertools import combinations

from orca_platform.model.errors import Problem
from orca_platform.model.ipnets import is_internal
from orca_platform.model.settings import Network, Settings
from orca_platform.model.tenants import TenantsFile

Net = ipaddress.IPv4Network

# Azure keeps the first four addresses and the last one of every subnet.
AZURE_RESERVED_PER_SUBNET = 5
KEY = "orca-platform:network"


def _net(text: str) -> Net:
    return ipaddress.IPv4Network(text)


def usable_hosts(net: Net) -> int:
    return max(net.num_addresses - AZURE_RESERVED_PER_SUBNET, 0)


def assignable(net: Net, ip: ipaddress.IPv4Address) -> bool:
    """True if Azure lets a frontend use this address (inside, not among the reserved ones)."""
    if ip not in net:
        return False
    offset = int(ip) - int(net.network_address)
    return 4 <= offset < net.num_addresses - 1


def vpn_ranges(network: Network) -> list[Net]:
    """The on-premises ranges of every VPN site and the point-to-site pool."""
    vpn = network.vpn
    ranges = [_net(c) for site in vpn.sites for c in site.address_spaces]
    if vpn.point_to_site:
        ranges.append(_net(vpn.point_to_site.address_pool))
    return ranges


def _subnets(n: Network) -> dict[str, Net]:
    return {
        "nodeSubnetCidr": _net(n.node_subnet_cidr),
        "ilbSubnetCidr": _net(n.ilb_subnet_cidr),
        "gatewaySubnetCidr": _net(n.gateway_subnet_cidr),
        "dnsResolverSubnetCidr": _net(n.dns_resolver_subnet_cidr),
        "privateEndpointSubnetCidr": _net(n.private_endpoint_subnet_cidr),
    }


def _layout_problems(n: Network, source: str) -> list[Problem]:
    """Subnets inside the VNet, apart from each other, and large enough for what Azure requires of them."""
    vnet = _net(n.vnet_cidr)
    subnets = _subnets(n)
    problems = [
        Problem(source, f"{KEY}.{name}", f"{sub} is not inside vnetCidr {vnet}")
        for name, sub in subnets.items()
        if not sub.subnet_of(vnet)
    ]
    problems += [
        Problem(source, f"{KEY}.{b}", f"{nb} overlaps {a} {na}")
        for (a, na), (b, nb) in combinations(subnets.items(), 2)
        if na.overlaps(nb)
    ]
    if subnets["gatewaySubnetCidr"].prefixlen > 27:
        problems.append(Problem(source, f"{KEY}.gatewaySubnetCidr", "GatewaySubnet must be /27 or larger"))
    if subnets["dnsResolverSubnetCidr"].prefixlen > 28:
        problems.append(Problem(source, f"{KEY}.dnsResolverSubnetCidr", "a DNS resolver endpoint needs /28 or larger"))
    return problems


def _routing_problems(n: Network, source: str) -> list[Problem]:
    """With Azure CNI Overlay, pod and service ranges are virtual but must not collide with anything routed."""
    vnet = _net(n.vnet_cidr)
    onprem = vpn_ranges(n)
    virtual = {"podCidr": _net(n.pod_cidr), "serviceCidr": _net(n.service_cidr)}
    routed = [("vnetCidr", vnet)] + [(f"VPN range {r}", r) for r in onprem]
    problems = [
        Problem(source, f"{KEY}.{name}", f"{net} overlaps {other_name} {other}")
        for name, net in virtual.items()
        for other_name, other in routed
        if net.overlaps(other)
    ]
    if virtual["podCidr"].overlaps(virtual["serviceCidr"]):
        problems.append(Problem(source, f"{KEY}.serviceCidr", "overlaps podCidr"))
    problems += [
        Problem(source, f"{KEY}.vpn", f"on-premises range {r} overlaps vnetCidr {vnet}")
        for r in onprem
        if r.overlaps(vnet)
    ]
    problems += [
        Problem(source, f"{KEY}.vpn", f"on-premises ranges {a} and {b} overlap")
        for a, b in combinations(onprem, 2)
        if a.overlaps(b)
    ]
    if ipaddress.ip_address(n.dns_service_ip) not in virtual["serviceCidr"]:
        problems.append(Problem(source, f"{KEY}.dnsServiceIp", f"{n.dns_service_ip} is not inside serviceCidr"))
    return problems


def _capacity_problems(settings: Settings, source: str, clinics_with_ilb: int) -> list[Problem]:
    """Enough addresses for every node the pools may reach and for every internal frontend."""
    subnets = _subnets(settings.network)
    c = settings.cluster
    problems: list[Problem] = []
    # Overlay: only nodes take subnet addresses; count every node the pools may reach plus their upgrade surge
    # (one for the system pool, capacity.surgeNodes for the ORCA pool).
    nodes = c.system_pool.max_count + c.orca_pool.max_count + 1 + settings.capacity.surge_nodes
    node_net = subnets["nodeSubnetCidr"]
    if usable_hosts(node_net) < nodes:
        problems.append(
            Problem(
                source,
                f"{KEY}.nodeSubnetCidr",
                f"{node_net} has {usable_hosts(node_net)} usable addresses; "
                f"the pools may need {nodes} (maxCount of both pools plus surge)",
            )
        )
    ilb_net = subnets["ilbSubnetCidr"]
    needed = clinics_with_ilb + 1  # each clinic's ILB frontend plus the ingress controller
    if usable_hosts(ilb_net) < needed:
        problems.append(
            Problem(
                source,
                f"{KEY}.ilbSubnetCidr",
                f"{ilb_net} has {usable_hosts(ilb_net)} usable addresses; "
                f"{needed} are needed (one per clinic plus the ingress controller)",
            )
        )
    ingress_ip = ipaddress.IPv4Address(settings.ingress.private_ip)
    if not assignable(ilb_net, ingress_ip):
        problems.append(
            Problem(
                source, "orca-platform:ingress.privateIp", f"{ingress_ip} is not an assignable address of ilbSubnetCidr"
            )
        )
    problems += [
        Problem(source, "orca-platform:cluster.authorizedIpRanges", f"{cidr} is internal: list public egress ranges")
        for cidr in c.authorized_ip_ranges
        if is_internal(cidr)
    ]
    return problems


def network_problems(settings: Settings, source: str, clinics_with_ilb: int) -> list[Problem]:
    n = settings.network
    return (
        _layout_problems(n, source)
        + _routing_problems(n, source)
        + _capacity_problems(settings, source, clinics_with_ilb)
    )


def tenant_address_problems(settings: Settings, tenants: TenantsFile, source: str) -> list[Problem]:
    problems: list[Problem] = []
    ilb = _net(settings.network.ilb_subnet_cidr)
    zone = settings.network.dns_zone
    reachable = vpn_ranges(settings.network)
    for clinic in tenants.clinics:
        if clinic.private_ip is not None:
            ip = ipaddress.IPv4Address(clinic.private_ip)
            if not assignable(ilb, ip):
                problems.append(
                    Problem(
                        source, "privateIp", f"{ip} is not an assignable address of the ILB subnet {ilb}", clinic.id
                    )
                )
            elif clinic.private_ip == settings.ingress.private_ip:
                problems.append(Problem(source, "privateIp", f"{ip} is the ingress controller's address", clinic.id))
        if clinic.hostname is not None and not clinic.hostname.endswith("." + zone):
            problems.append(
                Problem(source, "hostname", f"{clinic.hostname} is outside the private DNS zone {zone}", clinic.id)
            )
        for cidr in clinic.source_cidrs:
            net = _net(cidr)
            if not any(net.subnet_of(r) for r in reachable):
                problems.append(
                    Problem(
                        source,
                        "sourceCidrs",
                        f"{cidr} is not inside any VPN site range or the point-to-site pool, so it could never connect",
                        clinic.id,
                    )
                )
    return problems
