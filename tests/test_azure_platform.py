"""Issue 3: the Azure side and the cluster plumbing, observed on the real program run, plus the pure address checks
and the kubeconfig conversion."""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml
from orca_test_support import (
    PROJECT_DIR,
    attempt,
    azure,
    k8s_named,
    load_settings,
    meta,
    only,
    program_config,
    provider_urn,
    raw_settings,
    settings_from,
    stack_file,
)

from orca_platform.kubeconfig import convert_kubeconfig
from orca_platform.model.ipnets import is_internal
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import load_tenants
from orca_platform.plan.addressing import network_problems
from tools.offline.engine import Registered, Run, is_secret, reveal

ILB_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
ILB_SUBNET = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"
ILB_IPV4 = "service.beta.kubernetes.io/azure-load-balancer-ipv4"


def settings_of(run: Run) -> Settings:
    return load_settings(run.stack)


def subnet_with_prefix(run: Run, cidr: str) -> Registered:
    return only([r for r in azure(run, "network:Subnet") if r.inputs["addressPrefix"] == cidr], f"subnet {cidr}")


def controller_values(run: Run) -> dict[str, Any]:
    release = only(run.by_type("kubernetes:helm.sh/v3:Release"), "ingress controller release")
    values: dict[str, Any] = release.inputs["values"]["controller"]
    return values


# --- ingress controller ---------------------------------------------------------------------------------------------


def test_ingress_controller_service_is_internal_on_its_fixed_ip(stack_run: Run) -> None:
    s = settings_of(stack_run)
    service = controller_values(stack_run)["service"]
    assert service["type"] == "LoadBalancer"
    annotations = service["annotations"]
    assert annotations[ILB_INTERNAL] == "true"
    assert annotations[ILB_IPV4] == s.ingress.private_ip
    ilb = subnet_with_prefix(stack_run, s.network.ilb_subnet_cidr)
    assert annotations[ILB_SUBNET] == ilb.inputs["subnetName"]
    assert ipaddress.IPv4Address(s.ingress.private_ip) in ipaddress.IPv4Network(s.network.ilb_subnet_cidr)
    # The clinics' own addresses must reach the controller unchanged for their allow-lists.
    assert service["externalTrafficPolicy"] == "Local"


def test_no_load_balancer_service_is_public(stack_run: Run) -> None:
    services = [r for r in stack_run.k8s("Service") if r.inputs["spec"].get("type") == "LoadBalancer"]
    assert services
    for svc in services:
        assert (meta(svc).get("annotations") or {}).get(ILB_INTERNAL) == "true", svc.urn


# --- Kubernetes provider --------------------------------------------------------------------------------------------


def test_every_kubernetes_resource_uses_the_explicit_provider(stack_run: Run) -> None:
    provider = only(stack_run.by_type("pulumi:providers:kubernetes"), "kubernetes provider")
    k8s_resources = [r for r in stack_run.resources if r.is_kubernetes]
    assert len(k8s_resources) > 10
    for res in k8s_resources:
        # An empty reference means the engine's default provider: the ambient ~/.kube/config, whatever cluster it is.
        assert provider_urn(res.provider) == provider.urn, f"{res.urn} uses provider {res.provider!r}"


def test_the_provider_kubeconfig_is_a_secret_for_a_non_interactive_login(stack_run: Run) -> None:
    provider = only(stack_run.by_type("pulumi:providers:kubernetes"), "kubernetes provider")
    kubeconfig = provider.inputs["kubeconfig"]
    assert is_secret(kubeconfig), "the kubeconfig must reach the engine as a secret"
    doc = yaml.safe_load(reveal(kubeconfig))
    mode = settings_of(stack_run).cluster.kubelogin_mode
    for user in doc["users"]:
        args = user["user"]["exec"]["args"]
        assert args[args.index("--login") + 1] == mode
        assert "devicecode" not in args
    # Objects must stay in state when the API server is unreachable (a private cluster seen from outside the VNet).
    assert provider.inputs["deleteUnreachable"] in (False, "false")


# --- public IP, VPN gateway, subnets --------------------------------------------------------------------------------


def test_exactly_one_public_ip_and_the_vpn_gateway_uses_it(stack_run: Run) -> None:
    pip = only(azure(stack_run, "network:PublicIPAddress"), "PublicIPAddress")
    gateway = only(azure(stack_run, "network:VirtualNetworkGateway"), "VirtualNetworkGateway")
    configs = gateway.inputs["ipConfigurations"]
    assert [c["publicIPAddress"]["id"] for c in configs] == [pip.id]
    gw_subnet = subnet_with_prefix(stack_run, settings_of(stack_run).network.gateway_subnet_cidr)
    assert [c["subnet"]["id"] for c in configs] == [gw_subnet.id]
    # And nothing else gets a public address: no node of either pool.
    aks = only(azure(stack_run, "containerservice:ManagedCluster"), "ManagedCluster")
    pool = only(azure(stack_run, "containerservice:AgentPool"), "AgentPool")
    for profile in [*aks.inputs["agentPoolProfiles"], pool.inputs]:
        assert profile.get("enableNodePublicIP") is False


def test_gateway_subnet_is_named_exactly_gatewaysubnet(stack_run: Run) -> None:
    s = settings_of(stack_run)
    subnet = subnet_with_prefix(stack_run, s.network.gateway_subnet_cidr)
    assert subnet.inputs["subnetName"] == "GatewaySubnet"
    assert ipaddress.IPv4Network(s.network.gateway_subnet_cidr).prefixlen <= 27
    # Azure does not support an NSG on the gateway subnet.
    assert not subnet.inputs.get("networkSecurityGroup")


def test_nsgs_end_in_an_explicit_deny_and_never_admit_the_internet(stack_run: Run) -> None:
    nsgs = azure(stack_run, "network:NetworkSecurityGroup")
    assert nsgs
    for nsg in nsgs:
        inbound = sorted(
            (r for r in nsg.inputs["securityRules"] if r["direction"] == "Inbound"), key=lambda r: r["priority"]
        )
        last = inbound[-1]
        assert last["access"] == "Deny", f"{nsg.name}: last inbound rule is {last['name']}"
        assert (last["sourceAddressPrefix"], last["destinationAddressPrefix"]) == ("*", "*")
        assert (last["protocol"], last["destinationPortRange"]) == ("*", "*")
        # Below Azure's own defaults (65000+), which would otherwise admit the whole VNet and peerings.
        assert last["priority"] <= 4096
        for rule in inbound[:-1]:
            if rule["access"] == "Allow":
                sources = [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
                assert not {"*", "Internet", "0.0.0.0/0"} & set(sources), f"{nsg.name}: {rule['name']}"
    # The subnets clinic traffic reaches carry one of them.
    s = settings_of(stack_run)
    nsg_ids = {n.id for n in nsgs}
    for cidr in (s.network.node_subnet_cidr, s.network.ilb_subnet_cidr):
        assert subnet_with_prefix(stack_run, cidr).inputs["networkSecurityGroup"]["id"] in nsg_ids


# --- DNS ------------------------------------------------------------------------------------------------------------


def test_one_a_record_per_clinic_points_at_the_ingress_ip(stack_run: Run) -> None:
    s = settings_of(stack_run)
    zone = s.network.dns_zone
    only([z for z in azure(stack_run, "privatedns:PrivateZone") if z.inputs["privateZoneName"] == zone], "zone")
    records = [r for r in azure(stack_run, "privatedns:PrivateRecordSet") if r.inputs["privateZoneName"] == zone]
    tenants = load_tenants(PROJECT_DIR / s.tenants_file)
    assert len(records) == len(tenants.clinics)
    for clinic in tenants.clinics:
        host = clinic.hostname or f"{clinic.id}.{zone}"
        relative = host.removesuffix(f".{zone}")
        record = only([r for r in records if r.inputs["relativeRecordSetName"] == relative], f"A record {host}")
        assert record.inputs["recordType"] == "A"
        assert [a["ipv4Address"] for a in record.inputs["aRecords"]] == [s.ingress.private_ip]
    assert controller_values(stack_run)["service"]["annotations"][ILB_IPV4] == s.ingress.private_ip


# --- prod versus dev ------------------------------------------------------------------------------------------------


def _aks(run: Run) -> dict[str, Any]:
    inputs: dict[str, Any] = only(azure(run, "containerservice:ManagedCluster"), "ManagedCluster").inputs
    return inputs


def test_prod_api_server_is_private_and_dev_is_limited_to_public_ranges(dev_run: Run, prod_run: Run) -> None:
    prod = _aks(prod_run)["apiServerAccessProfile"]
    assert prod["enablePrivateCluster"] is True
    assert not prod.get("authorizedIPRanges")
    dev = _aks(dev_run)["apiServerAccessProfile"]
    if not dev["enablePrivateCluster"]:
        ranges = dev["authorizedIPRanges"]
        # Public egress ranges (the sample uses documentation ranges, so no `is_global`): never an internal one.
        assert ranges and not [r for r in ranges if is_internal(r)]


def test_local_accounts_are_disabled(stack_run: Run) -> None:
    aks = _aks(stack_run)
    assert aks["disableLocalAccounts"] is True
    # With local accounts off, someone must still be able to administer the cluster through Entra ID.
    assert aks["aadProfile"]["managed"] is True
    assert aks["aadProfile"].get("adminGroupObjectIDs")


def test_prod_spreads_pools_and_gateway_address_over_zones(dev_run: Run, prod_run: Run) -> None:
    zones = ["1", "2", "3"]
    assert [p["availabilityZones"] for p in _aks(prod_run)["agentPoolProfiles"]] == [zones]
    assert only(azure(prod_run, "containerservice:AgentPool"), "pool").inputs["availabilityZones"] == zones
    assert only(azure(prod_run, "network:PublicIPAddress"), "pip").inputs["zones"] == zones
    # A zonal public address needs a zone-redundant gateway SKU.
    sku = only(azure(prod_run, "network:VirtualNetworkGateway"), "vgw").inputs["sku"]["name"]
    assert sku.endswith("AZ")
    # The uptime SLA is a paid tier.
    assert _aks(prod_run)["sku"]["tier"] != "Free"
    # dev stays in one place: nothing asks for zones it does not configure.
    assert not only(azure(dev_run, "containerservice:AgentPool"), "pool").inputs.get("availabilityZones")


def test_prod_clinic_volumes_are_zone_redundant(dev_run: Run, prod_run: Run) -> None:
    def skus(run: Run) -> set[str]:
        classes = [r for r in run.k8s("StorageClass") if (meta(r).get("labels") or {}).get("orca-platform.io/data")]
        assert classes
        return {r.inputs["parameters"]["skuName"] for r in classes}

    assert all(sku.endswith("_ZRS") for sku in skus(prod_run))
    assert all(sku.endswith("_LRS") for sku in skus(dev_run))
    for pvc in prod_run.k8s("PersistentVolumeClaim"):
        sc = k8s_named(prod_run, "StorageClass", None, pvc.inputs["spec"]["storageClassName"])
        assert sc.inputs["parameters"]["skuName"].endswith("_ZRS"), pvc.urn


# --- address plan checks (pure) -------------------------------------------------------------------------------------

NET = "orca-platform:network"


def _network(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["network"].update(changes)

    return mutate


def _first_site_adds(cidr: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["network"]["vpn"]["sites"][0]["addressSpaces"].append(cidr)

    return mutate


def _cluster(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["cluster"].update(changes)

    return mutate


# (change to Pulumi.dev.yaml, field the problem names, what it says). dev: vnet 10.40.0.0/16, nodes /22 at .0.0,
# ILB /24 at .8.0, endpoints /26 at .9.0, resolver /28 at .10.0, gateway /27 at .255.0, VPN sites 192.168.x.0/24.
ADDRESS_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "ilb-overlaps-nodes": (_network(ilbSubnetCidr="10.40.1.0/24"), f"{NET}.ilbSubnetCidr", "overlaps nodeSubnetCidr"),
    "subnet-outside-vnet": (
        _network(privateEndpointSubnetCidr="10.41.9.0/26"),
        f"{NET}.privateEndpointSubnetCidr",
        "not inside vnetCidr",
    ),
    "gateway-subnet-too-small": (_network(gatewaySubnetCidr="10.40.255.0/28"), f"{NET}.gatewaySubnetCidr", "/27"),
    "resolver-subnet-too-small": (
        _network(dnsResolverSubnetCidr="10.40.10.0/29"),
        f"{NET}.dnsResolverSubnetCidr",
        "/28",
    ),
    "pods-overlap-vnet": (_network(podCidr="10.40.128.0/17"), f"{NET}.podCidr", "overlaps vnetCidr"),
    "services-overlap-a-vpn-site": (
        _network(serviceCidr="192.168.0.0/16", dnsServiceIp="192.168.0.10"),
        f"{NET}.serviceCidr",
        "overlaps VPN range",
    ),
    "pods-overlap-services": (_network(podCidr="172.20.0.0/15"), f"{NET}.serviceCidr", "overlaps podCidr"),
    "dns-service-ip-outside": (_network(dnsServiceIp="172.30.0.10"), f"{NET}.dnsServiceIp", "serviceCidr"),
    "vpn-site-overlaps-vnet": (_first_site_adds("10.40.200.0/24"), f"{NET}.vpn", "overlaps vnetCidr"),
    "vpn-sites-overlap": (_first_site_adds("192.168.30.128/25"), f"{NET}.vpn", "overlap"),
    # /29: 8 - 5 Azure-reserved = 3 usable; dev's pools may reach 2 + 3 nodes plus surge.
    "node-subnet-too-small": (_network(nodeSubnetCidr="10.40.0.0/29"), f"{NET}.nodeSubnetCidr", "usable addresses"),
    "ingress-ip-outside-ilb": (
        lambda raw: raw["ingress"].update(privateIp="10.40.9.10"),
        "orca-platform:ingress.privateIp",
        "not an assignable address",
    ),
    "authorized-range-internal": (
        _cluster(privateApiServer=False, authorizedIpRanges=["10.0.0.0/8"]),
        "orca-platform:cluster.authorizedIpRanges",
        "internal",
    ),
}


def _problems(mutate: Callable[[dict[str, Any]], None], clinics: int = 3) -> list[Any]:
    raw = copy.deepcopy(raw_settings("dev"))
    mutate(raw)
    return network_problems(settings_from(raw), stack_file("dev"), clinics_with_ilb=clinics)


def test_the_dev_address_plan_is_clean() -> None:
    assert _problems(lambda raw: None) == []


@pytest.mark.parametrize(("mutate", "field", "says"), ADDRESS_CASES.values(), ids=list(ADDRESS_CASES))
def test_address_mistakes_are_named(mutate: Callable[[dict[str, Any]], None], field: str, says: str) -> None:
    problems = _problems(mutate)
    assert any(p.field == field and says in p.message and p.source == stack_file("dev") for p in problems), problems


def test_ilb_subnet_must_hold_every_clinic_and_the_ingress() -> None:
    small = _network(ilbSubnetCidr="10.40.8.0/28")  # 16 - 5 = 11 usable: 10 clinics and the ingress controller
    assert not [p for p in _problems(small, clinics=10) if p.field.endswith("ilbSubnetCidr")]
    problems = [p for p in _problems(small, clinics=11) if p.field.endswith("ilbSubnetCidr")]
    assert len(problems) == 1 and "12 are needed" in problems[0].message


def test_node_subnet_counts_the_configured_surge() -> None:
    # /28: 11 usable. Pools may reach 2 (system) + 7 (orca) nodes; upgrades add 1 (system) + 3 (surgeNodes) = 13.
    def mutate(raw: dict[str, Any]) -> None:
        raw["network"]["nodeSubnetCidr"] = "10.40.0.0/28"
        raw["cluster"]["orcaPool"]["maxCount"] = 7
        raw["capacity"]["surgeNodes"] = 3

    assert [p for p in _problems(mutate) if p.field == f"{NET}.nodeSubnetCidr"]


def test_an_address_mistake_stops_the_program_before_any_resource() -> None:
    network = copy.deepcopy(raw_settings("dev")["network"])
    network["gatewaySubnetCidr"] = "10.40.255.0/28"
    result = attempt("dev", program_config("dev", network=network))
    assert isinstance(result.error, pulumi.RunError)
    assert result.registered == []
    message = str(result.error)
    assert stack_file("dev") in message and f"field '{NET}.gatewaySubnetCidr'" in message and "/27" in message


# --- kubeconfig conversion (pure) -----------------------------------------------------------------------------------

SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


def aks_kubeconfig() -> dict[str, Any]:
    """What `listClusterUserCredentials(format=exec)` returns for an Entra ID cluster: kubelogin in device-code mode."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aks", "cluster": {"server": "https://aks.example.invalid:443"}}],
        "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "clusterUser"}}],
        "current-context": "aks",
        "users": [
            {
                "name": "clusterUser",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        "args": [
                            "get-token",
                            "--login",
                            "devicecode",
                            "--server-id",
                            SERVER_ID,
                            "--client-id",
                            "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                            "--tenant-id",
                            "11111111-1111-1111-1111-111111111111",
                            "--environment",
                            "AzurePublicCloud",
                        ],
                    }
                },
            },
            {"name": "token-user", "user": {"token": "not-touched"}},
        ],
    }


def encode(doc: dict[str, Any]) -> str:
    return base64.b64encode(yaml.safe_dump(doc).encode()).decode()


def test_kubeconfig_devicecode_becomes_azurecli() -> None:
    original = aks_kubeconfig()
    converted = yaml.safe_load(convert_kubeconfig(encode(original), "azurecli"))
    exec_ = converted["users"][0]["user"]["exec"]
    assert exec_["command"] == "kubelogin"
    args = exec_["args"]
    assert args[:3] == ["get-token", "--login", "azurecli"]
    assert "devicecode" not in args
    assert args[args.index("--server-id") + 1] == SERVER_ID
    assert args[args.index("--environment") + 1] == "AzurePublicCloud"
    # Everything else stays as AKS handed it out.
    assert converted["users"][1] == original["users"][1]
    assert converted["clusters"] == original["clusters"]
    assert converted["contexts"] == original["contexts"]
    assert converted["current-context"] == original["current-context"]


@pytest.mark.parametrize("mode", ["azurecli", "workloadidentity", "msi", "spn"])
def test_kubeconfig_conversion_is_idempotent(mode: str) -> None:
    once = convert_kubeconfig(encode(aks_kubeconfig()), mode)
    twice = convert_kubeconfig(base64.b64encode(once.encode()).decode(), mode)
    assert yaml.safe_load(once) == yaml.safe_load(twice)
    args = yaml.safe_load(once)["users"][0]["user"]["exec"]["args"]
    assert args.count("--login") == 1 and args[args.index("--login") + 1] == mode
