"""Network: resource group, VNet and subnets, NSGs, the VPN gateway and the private DNS zone clinics resolve."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import dnsresolver, network, privatedns, resources

from orca_platform.conventions import GLSERVER_PORT, PUSH_PORT
from orca_platform.model import settings as model
from orca_platform.plan.addressing import vpn_ranges


@dataclass(frozen=True)
class NetworkArgs:
    settings: model.Network
    location: str
    names: dict[str, str]  # kind -> Azure name (rg, vnet, vgw...)
    tags: dict[str, str]
    # (relative record name, IPv4) for every clinic FQDN: they all resolve to the internal ingress.
    dns_records: list[tuple[str, str]]
    # A private API server's endpoint sits in the node subnet; its NSG admits the operators to it.
    private_api_server: bool


class Network(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    node_subnet_id: pulumi.Output[str]
    ilb_subnet_name: str
    private_endpoint_subnet_id: pulumi.Output[str]
    vpn_public_ip: pulumi.Output[str]
    dns_resolver_ip: pulumi.Output[str]
    dns_zone: str

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orca:platform:Network", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        tags = args.tags

        rg = resources.ResourceGroup(
            "rg", resource_group_name=args.names["rg"], location=args.location, tags=tags, opts=child
        )
        self.resource_group_name = rg.name

        onprem = [str(r) for r in vpn_ranges(s)]
        operators = list(s.operator_cidrs) or onprem

        # Rule name -> priority: the NSG lists its rules in priority order.
        priorities: dict[str, int] = {"allow-azure-lb": 110, "deny-all-else": 4096}

        def rule(name: str, priority: int, sources: list[str], ports: list[str], why: str) -> network.SecurityRuleArgs:
            priorities[name] = priority
            return network.SecurityRuleArgs(
                name=name,
                priority=priority,
                direction="Inbound",
                access="Allow",
                protocol="*" if ports == ["*"] else "Tcp",
                source_address_prefixes=sources,
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range="*" if ports == ["*"] else None,
                destination_port_ranges=None if ports == ["*"] else ports,
                description=why,
            )

        # Admit only what has a reason to get in: the VNet itself, the pod overlay (AKS requires it on the node
        # subnet), the Azure load balancer's probes and the VPN ranges. Everything else, the Internet above all, meets
        # the explicit deny; Azure's implicit rules would otherwise admit any peered network.
        def nsg(
            label: str, allowed: list[network.SecurityRuleArgs], probes: bool = True
        ) -> network.NetworkSecurityGroup:
            rules: list[network.SecurityRuleArgs] = list(allowed)
            if probes:
                rules.append(
                    network.SecurityRuleArgs(
                        name="allow-azure-lb",
                        priority=110,
                        direction="Inbound",
                        access="Allow",
                        protocol="*",
                        source_address_prefix="AzureLoadBalancer",
                        source_port_range="*",
                        destination_address_prefix="*",
                        destination_port_range="*",
                        description="Load balancer health probes",
                    )
                )
            rules.append(
                network.SecurityRuleArgs(
                    name="deny-all-else",
                    priority=4096,
                    direction="Inbound",
                    access="Deny",
                    protocol="*",
                    source_address_prefix="*",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range="*",
                    description="Nothing else reaches clinic workloads; in particular nothing from the Internet",
                )
            )
            rules.sort(key=lambda r: priorities[str(r.name)])
            return network.NetworkSecurityGroup(
                f"nsg-{label}",
                resource_group_name=rg.name,
                location=args.location,
                security_rules=rules,
                tags=tags,
                opts=child,
            )

        vnet_rule = rule(
            "allow-vnet",
            100,
            [s.vnet_cidr, s.pod_cidr],
            ["*"],
            "VNet-internal traffic (nodes, ingress, private endpoints)",
        )
        clinics = (
            [
                rule(
                    "allow-vpn-sites",
                    105,
                    onprem,
                    ["80", str(GLSERVER_PORT), str(PUSH_PORT)],
                    f"Clinics over VPN: ingress (80), glserver ({GLSERVER_PORT}), PUSH ({PUSH_PORT})",
                )
            ]
            if onprem
            else []
        )
        node_rules = [vnet_rule, *clinics]
        if args.private_api_server:
            # AKS puts the API server's private endpoint in the first node pool's subnet (MS docs "Create a private
            # AKS cluster"): operators and runners on the VPN reach it on 443, nobody else from outside the VNet.
            node_rules.append(
                rule("allow-api-operators", 120, operators, ["443"], "Private API server, from operators")
            )
        nodes_nsg = nsg("nodes", node_rules)
        ilb_nsg = nsg("ilb", [vnet_rule, *clinics])
        # The backup account's blob endpoint: HTTPS from the backup jobs (nodes, or the pod overlay) and from the
        # operators who list and fetch dumps (restore runbook); no probes, no other port, nothing else.
        endpoints_nsg = nsg(
            "private-endpoints",
            [
                rule(
                    "allow-blob-clients",
                    100,
                    [s.node_subnet_cidr, s.pod_cidr, *operators],
                    ["443"],
                    "Backup blob endpoint: backup jobs and operators",
                )
            ],
            probes=False,
        )

        vnet = network.VirtualNetwork(
            "vnet",
            virtual_network_name=args.names["vnet"],
            resource_group_name=rg.name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[s.vnet_cidr]),
            tags=tags,
            # Subnets are their own resources below; the VNet must not claim (and so delete) them.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        self.vnet_id = vnet.id

        # Azure rejects concurrent writes to subnets of one VNet (AnotherOperationInProgress): chain them.
        previous: list[pulumi.Resource] = []

        def subnet(
            label: str,
            azure_name: str,
            cidr: str,
            nsg_: network.NetworkSecurityGroup | None = None,
            delegation: str | None = None,
        ) -> network.Subnet:
            created = network.Subnet(
                f"snet-{label}",
                subnet_name=azure_name,
                resource_group_name=rg.name,
                virtual_network_name=vnet.name,
                address_prefix=cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg_.id) if nsg_ else None,
                delegations=[network.DelegationArgs(name=label, service_name=delegation)] if delegation else None,
                # No implicit Internet egress from these subnets; AKS egress goes through its own load balancer.
                default_outbound_access=False if label != "gateway" else None,
                # Private endpoints obey the subnet's NSG only with this on; the SDK's default is Disabled. The Files
                # driver keeps an explicit value on the node subnet, where it puts each NFS share's endpoint
                # (cloud-provider-azure azure_storageaccount.go createPrivateEndpoint: it overrides only an unset one).
                private_endpoint_network_policies="Enabled" if nsg_ else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)),
            )
            previous[:] = [created]
            return created

        nodes = subnet("nodes", "snet-nodes", s.node_subnet_cidr, nodes_nsg)
        self.ilb_subnet_name = "snet-ilb"
        subnet("ilb", self.ilb_subnet_name, s.ilb_subnet_cidr, ilb_nsg)
        gateway = subnet("gateway", "GatewaySubnet", s.gateway_subnet_cidr)
        resolver_subnet = subnet(
            "dns-resolver", "snet-dns-inbound", s.dns_resolver_subnet_cidr, delegation="Microsoft.Network/dnsResolvers"
        )
        endpoints = subnet("private-endpoints", "snet-private-endpoints", s.private_endpoint_subnet_cidr, endpoints_nsg)
        self.node_subnet_id = nodes.id
        self.private_endpoint_subnet_id = endpoints.id

        # The VPN gateway's address is the only public IP of the platform: IPsec needs a reachable peer.
        pip = network.PublicIPAddress(
            "pip-vpn",
            public_ip_address_name=args.names["pip-vpn"],
            resource_group_name=rg.name,
            location=args.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            # The AZ gateway SKUs (the only ones Azure still creates) take a zone-redundant Standard address
            # (MS docs "Create a zone-redundant virtual network gateway"), in dev as in prod.
            zones=["1", "2", "3"],
            tags=tags,
            opts=child,
        )
        self.vpn_public_ip = pip.ip_address.apply(lambda ip: ip or "")

        p2s = s.vpn.point_to_site
        gw = network.VirtualNetworkGateway(
            "vgw",
            virtual_network_gateway_name=args.names["vgw"],
            resource_group_name=rg.name,
            location=args.location,
            gateway_type="Vpn",
            vpn_type="RouteBased",
            sku=network.VirtualNetworkGatewaySkuArgs(name=s.vpn.sku, tier=s.vpn.sku),
            vpn_gateway_generation=s.vpn.generation,
            active_active=False,
            enable_bgp=False,
            ip_configurations=[
                network.VirtualNetworkGatewayIPConfigurationArgs(
                    name="default",
                    private_ip_allocation_method="Dynamic",
                    subnet=network.SubResourceArgs(id=gateway.id),
                    public_ip_address=network.SubResourceArgs(id=pip.id),
                )
            ],
            vpn_client_configuration=network.VpnClientConfigurationArgs(
                vpn_client_address_pool=network.AddressSpaceArgs(address_prefixes=[p2s.address_pool]),
                vpn_client_protocols=["OpenVPN", "IkeV2"],
                vpn_authentication_types=["Certificate"],
                vpn_client_root_certificates=[
                    network.VpnClientRootCertificateArgs(
                        name=p2s.root_certificate_name, public_cert_data=p2s.root_certificate_data
                    )
                ],
            )
            if p2s
            else None,
            tags=tags,
            opts=child,
        )

        for site in s.vpn.sites:
            lng = network.LocalNetworkGateway(
                f"lgw-{site.name}",
                local_network_gateway_name=f"lgw-{site.name}",
                resource_group_name=rg.name,
                location=args.location,
                gateway_ip_address=site.gateway_ip,
                local_network_address_space=network.AddressSpaceArgs(address_prefixes=site.address_spaces),
                tags=tags,
                opts=child,
            )
            # Generated, never written down; the site's router gets it from `az network vpn-connection shared-key show`
            # (make clinic-card prints the command). It is no stack output.
            psk = random.RandomPassword(
                f"psk-{site.name}", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            network.VirtualNetworkGatewayConnection(
                f"cn-{site.name}",
                virtual_network_gateway_connection_name=f"cn-{site.name}",
                resource_group_name=rg.name,
                location=args.location,
                connection_type="IPsec",
                connection_protocol="IKEv2",
                virtual_network_gateway1=network.VirtualNetworkGatewayArgs(id=gw.id),
                local_network_gateway2=network.LocalNetworkGatewayArgs(id=lng.id),
                shared_key=psk.result,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["sharedKey"]),
            )

        zone = privatedns.PrivateZone(
            "dns-zone",
            private_zone_name=s.dns_zone,
            resource_group_name=rg.name,
            location="global",
            tags=tags,
            opts=child,
        )
        self.dns_zone = s.dns_zone
        privatedns.VirtualNetworkLink(
            "dns-link",
            private_zone_name=zone.name,
            resource_group_name=rg.name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            registration_enabled=False,
            tags=tags,
            opts=child,
        )
        for record, ip in args.dns_records:
            privatedns.PrivateRecordSet(
                f"dns-{record}",
                private_zone_name=zone.name,
                resource_group_name=rg.name,
                record_type="A",
                relative_record_set_name=record,
                ttl=300,
                a_records=[privatedns.ARecordArgs(ipv4_address=ip)],
                opts=child,
            )

        # Azure-provided DNS is not reachable from on-premises: the resolver's inbound endpoint is the address
        # clinics' DNS servers forward the zone to (and the DNS server of the point-to-site client profile).
        resolver = dnsresolver.DnsResolver(
            "dns-resolver",
            dns_resolver_name=args.names["dnspr"],
            resource_group_name=rg.name,
            location=args.location,
            virtual_network=dnsresolver.SubResourceArgs(id=vnet.id),
            tags=tags,
            opts=child,
        )
        inbound = dnsresolver.InboundEndpoint(
            "dns-inbound",
            dns_resolver_name=resolver.name,
            inbound_endpoint_name="inbound",
            resource_group_name=rg.name,
            location=args.location,
            ip_configurations=[
                dnsresolver.IpConfigurationArgs(
                    subnet=dnsresolver.SubResourceArgs(id=resolver_subnet.id), private_ip_allocation_method="Dynamic"
                )
            ],
            tags=tags,
            opts=child,
        )
        self.dns_resolver_ip = inbound.ip_configurations.apply(
            lambda cfgs: (cfgs[0].private_ip_address or "") if cfgs else ""
        )

        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "vnetId": self.vnet_id,
                "vpnPublicIp": self.vpn_public_ip,
                "dnsResolverIp": self.dns_resolver_ip,
            }
        )
