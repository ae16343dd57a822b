"""The rendered concentrator configuration, run in real strongSwan (charon 5.9, Debian) inside network namespaces.

USERSPACE DATAPATH: this machine's kernel has XFRM but no ESP, so every charon here runs strongSwan's kernel-libipsec
(ESP in charon, decrypted packets through a TUN device, ipsec0) and the firewall is rendered for that interface.
Azure's VMs use the kernel datapath; docs/vpn.md says what only Azure can prove.

Lab (all namespaces made and deleted by this module; traffic never leaves them):

    clinic A 198.51.100.2 ──┐                        ┌── concentrator 198.51.100.1 ── 10.1.0.1 ── server 10.1.0.4
    NAT 198.51.100.3 ───────┼── "internet" bridge ───┘   (charon + rendered           (+ .10 DNS, .21 A's LB,
      └─ clinic B 192.168.100.2 (masqueraded)             swanctl, secrets, nft)        .22 B's LB)
    clinic C 198.51.100.4 ──┘  (the misbehaving clinic)

What the concentrator runs comes from render_swanctl / render_secrets / render_firewall, never written by hand; the
clinics' side is written here, standing in for their routers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from strongswan_lab import SERVER, Charon, Lab, child_keys, run, server_seen, unavailable_reason, wait_for

from orca_platform.vpn import ClinicTunnel, Concentrator, render_firewall, render_secrets, render_swanctl

REASON = unavailable_reason()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"real strongSwan tests skipped: {REASON}"),
    # One worker runs them in order on one lab (make unit's --dist loadgroup), instead of a lab per worker.
    pytest.mark.xdist_group("strongswan"),
]

CONC_ID = "concentrator.orca.example.jp"
CONC_PUB = "198.51.100.1"
SERVER_IP, DNS_IP = "10.1.0.4", "10.1.0.10"
A = ClinicTunnel("clinic-a", "clinic-a.orca.example.jp", ("10.200.0.0/29",), (SERVER_IP, "10.1.0.21", DNS_IP))
B = ClinicTunnel("clinic-b", "clinic-b.orca.example.jp", ("10.200.0.8/29",), (SERVER_IP, "10.1.0.22", DNS_IP))
C = ClinicTunnel("clinic-c", "clinic-c.orca.example.jp", ("10.200.0.16/29",), (SERVER_IP, DNS_IP))
A_HOST, B_HOST, C_HOST = "10.200.0.1", "10.200.0.9", "10.200.0.17"
PSKS = {c.clinic_id: f"test-only-key-{c.clinic_id}-0123456789" for c in (A, B, C)}


def _fix(t: ClinicTunnel) -> ClinicTunnel:
    return ClinicTunnel(t.clinic_id, t.identity, t.remote_ts, tuple(f"{a}/32" for a in t.local_ts))


A, B, C = _fix(A), _fix(B), _fix(C)


def concentrator(*extra: ClinicTunnel) -> Concentrator:
    return Concentrator(CONC_ID, (A, B, C, *extra), ipsec_interface="ipsec0")


def clinic_side(name: str, identity: str, local_ts: str, remote_ts: str, psk: str, remote_id: str = CONC_ID) -> str:
    """A clinic router's side in swanctl terms: IKEv2 initiator, NAT-T, PSK, the translated range as local_ts."""
    return f"""connections {{
    {name} {{
        version = 2
        remote_addrs = {CONC_PUB}
        proposals = aes256gcm16-prfsha256-ecp256
        encap = yes
        local {{
            auth = psk
            id = {identity}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{
            {name} {{
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = aes256gcm16-ecp256
            }}
        }}
    }}
}}
secrets {{
    ike-{name} {{
        id = {identity}
        secret = "{psk}"
    }}
}}
"""


def _libipsec_route_workaround(lab: Lab, ns: str, local_ts: list[str]) -> None:
    """Debian's 5.9.8 kernel-libipsec refuses a CHILD_SA whose local_ts holds no address of this host: it installs a
    route with a source address from local_ts, fails without one, and answers TS_UNACCEPTABLE (kernel_libipsec_ipsec.c
    install_route; fixed in 5.9.12, which Azure's VMs run, and the kernel datapath installs no such route at all).

    So the concentrator namespace holds the local_ts addresses on an interface that stays down, with their local
    routes moved from the local table (traffic to them is still forwarded to the server) into table 220, charon's
    route table, where they make the source address valid for the route libipsec installs; table 220's rule is removed
    after charon starts, so nothing is routed by it. The rendered configuration is not touched.
    """
    lab.sh(ns, "ip link add tsa type veth peer name tsb")
    for ts in local_ts:
        addr = ts.split("/")[0]
        lab.sh(
            ns,
            f"ip addr add {addr}/32 dev tsa && ip route del local {addr} dev tsa table local && "
            f"ip route add local {addr} dev lo table 220",
        )


NAT_RULES = """table ip nat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "pub" masquerade
    }
}
"""


@dataclass
class World:
    lab: Lab
    conc: Charon
    a: Charon
    b: Charon
    c: Charon
    ns: dict[str, str]
    server_log: str


def _build(lab: Lab) -> World:
    ns = {n: lab.ns(n) for n in ("inet", "conc", "srv", "clina", "nat", "clinb", "clinc")}
    lab.sh(ns["inet"], "ip link add br0 type bridge && ip link set br0 up")
    for i, (who, addr) in enumerate(
        (("conc", CONC_PUB), ("clina", "198.51.100.2"), ("nat", "198.51.100.3"), ("clinc", "198.51.100.4"))
    ):
        lab.veth(ns[who], "pub", ns["inet"], f"p{i}")
        lab.sh(ns["inet"], f"ip link set p{i} master br0")
        lab.sh(ns[who], f"ip addr add {addr}/24 dev pub")
    lab.veth(ns["conc"], "srv", ns["srv"], "eth0")
    lab.sh(ns["conc"], "ip addr add 10.1.0.1/24 dev srv && sysctl -qw net.ipv4.ip_forward=1")
    lab.sh(
        ns["srv"],
        "ip addr add 10.1.0.4/24 dev eth0 && ip addr add 10.1.0.10/32 dev eth0 && "
        "ip addr add 10.1.0.21/32 dev eth0 && ip addr add 10.1.0.22/32 dev eth0 && ip route add default via 10.1.0.1",
    )
    # Clinic B sits behind a masquerading NAT, as a clinic on an IPoE line behind the carrier's or its own NAT.
    lab.veth(ns["nat"], "lan", ns["clinb"], "lan")
    lab.sh(ns["nat"], "ip addr add 192.168.100.1/24 dev lan && sysctl -qw net.ipv4.ip_forward=1")
    run(
        "ip", "netns", "exec", ns["nat"], "nft", "-f", "-",
        stdin=NAT_RULES,
    )  # fmt: skip
    lab.sh(ns["clinb"], "ip addr add 192.168.100.2/24 dev lan && ip route add default via 192.168.100.1")
    # Each clinic's translated LAN address inside its assigned range (the router's NAT target).
    for who, host in (("clina", A_HOST), ("clinb", B_HOST), ("clinc", C_HOST)):
        lab.sh(ns[who], f"ip addr add {host}/32 dev lo")

    server_log = str(lab.root / "server-udp.log")
    (lab.root / "server.py").write_text(SERVER)
    srv = lab.spawn(ns["srv"], sys.executable, str(lab.root / "server.py"), server_log, log=lab.root / "server.out")
    wait_for("the test server", lambda: "ready" in (lab.root / "server.out").read_text() or srv.poll() is not None)

    _libipsec_route_workaround(lab, ns["conc"], sorted({a for t in (A, B, C) for a in t.local_ts}))
    conc = lab.charon(ns["conc"])
    # Table 220 only exists to satisfy libipsec (above): nothing may be routed by it.
    lab.sh(ns["conc"], "while ip rule del pref 220 2>/dev/null; do :; done")
    c = concentrator()
    conc.load({"connections.conf": render_swanctl(c), "secrets.conf": render_secrets(c, PSKS)})
    run("ip", "netns", "exec", ns["conc"], "nft", "-f", "-", stdin=render_firewall(c))
    # libipsec: decrypted packets leave charon through ipsec0; packets for the clinics go back in through it.
    lab.sh(ns["conc"], "ip route add 10.200.0.0/16 dev ipsec0")

    clinics = {}
    # Only clinic A logs its CHILD_SA keys: it is the attacker of the spoofing test.
    for who, host, keys in (("clina", A_HOST, True), ("clinb", B_HOST, False), ("clinc", C_HOST, False)):
        ch = lab.charon(ns[who], chd_keys=keys)
        lab.sh(ns[who], f"ip route add 10.1.0.0/24 dev ipsec0 src {host}")
        clinics[who] = ch
    return World(lab, conc, clinics["clina"], clinics["clinb"], clinics["clinc"], ns, server_log)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    lab = Lab(prefix=f"orca{os.getpid() % 100000}-", root=tmp_path_factory.mktemp("strongswan"))
    started = time.monotonic()
    try:
        w = _build(lab)
        yield w
    finally:
        lab.close()
        print(f"\nstrongSwan lab: {time.monotonic() - started:.1f} s including setup and teardown")
    # Nothing of the lab may remain.
    left = [n for n in run("ip", "netns", "list").split() if n.startswith(lab.prefix)]
    assert not left, f"namespaces left behind: {left}"


def _clear(ch: Charon) -> None:
    """Close every IKE_SA of a clinic's charon: charon would otherwise carry a new child on an existing IKE_SA whose
    (equal) peer config it reuses, already authenticated, and a test of authentication would prove nothing."""
    raw = ch.swanctl("--list-sas", "--raw")
    for ike_id in re.findall(r"list-sa event \{\S+ \{uniqueid=(\d+) ", raw):
        ch.swanctl("--terminate", "--ike-id", ike_id, "--timeout", "10", check=False, timeout=15)


def _up(ch: Charon, name: str, identity: str, local_ts: str, remote_ts: str, psk: str, **kw: str) -> str:
    """Bring up a clinic's connection on a fresh IKE_SA; returns swanctl's output (the IKE exchange's log)."""
    _clear(ch)
    ch.load({"clinic.conf": clinic_side(name, identity, local_ts, remote_ts, psk, **kw)})
    return ch.swanctl("--initiate", "--child", name, "--timeout", "15", check=False, timeout=20)


def test_two_clinics_reach_the_server_with_their_own_source_addresses(world: World) -> None:
    out_a = _up(world.a, "a", A.identity, A.remote_ts[0], "10.1.0.4/32, 10.1.0.21/32, 10.1.0.10/32", PSKS["clinic-a"])
    assert re.search(r"CHILD_SA a\{\d+\} established", out_a), out_a
    out_b = _up(world.b, "b", B.identity, B.remote_ts[0], "10.1.0.4/32, 10.1.0.22/32, 10.1.0.10/32", PSKS["clinic-b"])
    assert re.search(r"CHILD_SA b\{\d+\} established", out_b), out_b
    assert server_seen(world.lab, world.ns["clina"], A_HOST, SERVER_IP).split()[0] == A_HOST
    assert server_seen(world.lab, world.ns["clinb"], B_HOST, SERVER_IP).split()[0] == B_HOST
    assert server_seen(world.lab, world.ns["clina"], A_HOST, "10.1.0.21").split()[0] == A_HOST
    # B came through the NAT: the concentrator knows it by identity, at the NAT's address.
    sas = world.conc.swanctl("--list-sas")
    assert re.search(
        r"clinic-b: #\d+, ESTABLISHED, IKEv2.*\n.*\n\s+remote 'clinic-b.orca.example.jp' @ 198.51.100.3", sas
    ), sas


def test_a_clinic_proposing_another_clinics_range_is_refused(world: World) -> None:
    # Clinic C authenticates correctly but asks for clinic B's range as its own.
    out = _up(world.c, "steal", C.identity, B.remote_ts[0], "10.1.0.4/32", PSKS["clinic-c"])
    assert "received TS_UNACCEPTABLE notify, no CHILD_SA built" in out, out
    assert not re.search(r"CHILD_SA steal\{\d+\} established", out), out
    assert not re.search(r"CHILD_SA clinic-c\{\d+\} established .* 10\.200\.0\.8/29", world.conc.log)
    # Narrowing never widens: C asking for the whole clinic block gets its own /29 only.
    out = _up(world.c, "wide", C.identity, "10.200.0.0/16", "10.1.0.4/32", PSKS["clinic-c"])
    assert re.search(r"CHILD_SA wide\{\d+\} established .* TS 10\.200\.0\.16/29 === 10\.1\.0\.4/32", out), out
    _clear(world.c)


def test_a_clinic_presenting_another_clinics_identity_is_refused(world: World) -> None:
    # Clinic C claims clinic A's identity with its own key: the concentrator checks A's key and refuses.
    out = _up(world.c, "impostor", A.identity, C.remote_ts[0], "10.1.0.4/32", PSKS["clinic-c"])
    assert "received AUTHENTICATION_FAILED notify error" in out, out
    # An identity the concentrator does not know at all gets no connection either.
    out = _up(world.c, "stranger", "stranger.orca.example.jp", C.remote_ts[0], "10.1.0.4/32", PSKS["clinic-c"])
    assert "received AUTHENTICATION_FAILED notify error" in out, out
    sas = world.conc.swanctl("--list-sas")
    assert "clinic-a.orca.example.jp' @ 198.51.100.4" not in sas and "stranger" not in sas, sas


def _esp_udp(spi: int, seq: int, key: bytes, inner: bytes) -> bytes:
    """One ESP packet (RFC 4303) with AES-GCM-16 (RFC 4106): key = 32-byte key + 4-byte salt, as IKEv2 derives it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    pad_len = (-(len(inner) + 2)) % 4
    plain = inner + bytes(range(1, pad_len + 1)) + bytes([pad_len, 4])  # next header 4: IPv4 in tunnel mode
    iv = os.urandom(8)
    header = struct.pack("!II", spi, seq)
    return header + iv + AESGCM(key[:32]).encrypt(key[32:] + iv, plain, header)


def _ipv4_udp(src: str, dst: str, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, 9999, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    words = sum(struct.unpack("!10H", header))
    while words > 0xFFFF:
        words = (words & 0xFFFF) + (words >> 16)
    return header[:10] + struct.pack("!H", ~words & 0xFFFF) + header[12:] + udp


SEND_ESP = """
import socket, sys
# Send the given ESP packets over UDP 4500 (NAT-T encapsulation, RFC 3948) to the concentrator, spaced a little.
import time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.51.100.2", 0))
for hexpkt in sys.argv[2:]:
    s.sendto(bytes.fromhex(hexpkt), (sys.argv[1], 4500)); time.sleep(0.2)
"""


def test_a_packet_inside_a_valid_sa_with_another_clinics_source_is_dropped(world: World) -> None:
    if "CHILD_SA" not in world.a.swanctl("--list-sas", "--ike", "a"):
        _up(world.a, "a", A.identity, A.remote_ts[0], "10.1.0.4/32, 10.1.0.21/32, 10.1.0.10/32", PSKS["clinic-a"])
    raw = world.a.swanctl("--list-sas", "--ike", "a", "--raw")
    spi_out = int(re.findall(r"spi-out=([0-9a-f]+)", raw)[-1], 16)
    key_i, _ = child_keys(world.a.log)
    assert len(key_i) == 36, len(key_i)
    # The attacker is clinic A itself: encrypted with A's own SA keys, so only the source address is wrong.
    # seq far above what the SA used so far, inside the replay window's forward side.
    nonce = os.urandom(4).hex()
    control = _esp_udp(spi_out, 1_000_000, key_i, _ipv4_udp(A_HOST, SERVER_IP, f"control-{nonce}".encode()))
    spoof = _esp_udp(spi_out, 1_000_001, key_i, _ipv4_udp(B_HOST, SERVER_IP, f"spoof-{nonce}".encode()))
    (world.lab.root / "send_esp.py").write_text(SEND_ESP)
    run("ip", "netns", "exec", world.ns["clina"], sys.executable, str(world.lab.root / "send_esp.py"), CONC_PUB,
        control.hex(), spoof.hex())  # fmt: skip
    wait_for("the control packet at the server", lambda: f"control-{nonce}" in Path(world.server_log).read_text(), 10)
    seen = Path(world.server_log).read_text()
    assert f"{A_HOST} control-{nonce}" in seen, seen
    assert f"spoof-{nonce}" not in seen, seen
    wait_for("the concentrator's drop", lambda: f"discarding inbound IP packet {B_HOST}" in world.conc.log, 5)
    # Sequence numbers past 1,000,000 moved the concentrator's replay window: A's own router would now be dropped as
    # a replay, so this SA is closed (the next test brings A up again).
    _clear(world.a)


def test_a_thousand_clinics_load_and_a_reload_adding_one_keeps_the_established_sas(world: World) -> None:
    for ch, name, t, reach in ((world.a, "a", A, "10.1.0.4/32, 10.1.0.21/32, 10.1.0.10/32"),
                               (world.b, "b", B, "10.1.0.4/32, 10.1.0.22/32, 10.1.0.10/32")):  # fmt: skip
        if "CHILD_SA" not in ch.swanctl("--list-sas", "--ike", name):
            _up(ch, name, t.identity, t.remote_ts[0], reach, PSKS[t.clinic_id])

    def spis() -> dict[str, str]:
        raw = world.conc.swanctl("--list-sas", "--raw")
        return dict(
            re.findall(
                r"\{(clinic-[ab])-\d+ \{name=\S+ uniqueid=\d+ reqid=\d+ state=INSTALLED .*?spi-in=([0-9a-f]+)", raw
            )
        )

    before = spis()
    assert set(before) == {"clinic-a", "clinic-b"}, world.conc.swanctl("--list-sas", "--raw")
    block = list(ipaddress.ip_network("10.201.0.0/16").subnets(new_prefix=29))
    many = tuple(
        ClinicTunnel(
            f"gen-{i:04d}", f"gen-{i:04d}.orca.example.jp", (str(block[i]),), (f"{SERVER_IP}/32", f"{DNS_IP}/32")
        )
        for i in range(1001)
    )
    psks = {**PSKS, **{t.clinic_id: f"generated-test-key-{t.clinic_id}-xyz" for t in many}}

    def load(n: int) -> tuple[float, float]:
        c = Concentrator(CONC_ID, (A, B, C, *many[:n]), ipsec_interface="ipsec0")
        ids = {t.clinic_id for t in c.clinics}
        swan = world.conc.load(
            {
                "connections.conf": render_swanctl(c),
                "secrets.conf": render_secrets(c, {k: v for k, v in psks.items() if k in ids}),
            }
        )
        # The firewall for the same clinics, replaced atomically (one nft transaction); conntrack is kept.
        started = time.monotonic()
        run("ip", "netns", "exec", world.ns["conc"], "nft", "-f", "-", stdin=render_firewall(c))
        return swan, time.monotonic() - started

    first = load(1000)
    conns = world.conc.swanctl("--list-conns", timeout=60)
    assert conns.count("IKEv2") == 1003, conns.count("IKEv2")
    assert spis() == before
    second = load(1001)
    assert "gen-1000:" in world.conc.swanctl("--list-conns", timeout=60)
    assert spis() == before  # the same CHILD_SAs, not re-established ones
    assert server_seen(world.lab, world.ns["clina"], A_HOST, SERVER_IP).split()[0] == A_HOST
    assert server_seen(world.lab, world.ns["clinb"], B_HOST, SERVER_IP).split()[0] == B_HOST
    print(
        f"\n1,003 connections loaded in {first[0]:.2f} s (firewall {first[1]:.2f} s); "
        f"reload adding one in {second[0]:.2f} s (firewall {second[1]:.2f} s)"
    )
    assert max(first + second) < 30


def test_the_kernel_datapath_firewall_is_accepted_by_nftables(world: World) -> None:
    # Azure's VMs run the kernel datapath: the same ruleset with `meta ipsec` instead of the TUN device. nft checks it
    # against this kernel without applying it (nft -c); no traffic can exercise it here (no ESP in this kernel).
    kernel = Concentrator(CONC_ID, (A, B, C))
    text = render_firewall(kernel)
    assert "meta ipsec missing" in text
    run("ip", "netns", "exec", world.ns["srv"], "nft", "-c", "-f", "-", stdin=text)


# --- the firewall alone: the second check holds even where strongSwan's own policy would not stop a packet -----------

SEND_UDP = """
import socket, sys
# One UDP datagram from a given source address: how a test offers the firewall a packet it must judge.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0))
s.sendto(sys.argv[4].encode(), (sys.argv[2], int(sys.argv[3])))
"""


def _counters(lab: Lab, ns: str) -> dict[str, int]:
    listing = run("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "orca_vpn")
    return {
        m.group(2): int(m.group(1))
        for m in re.finditer(r'counter packets (\d+) bytes \d+ drop comment "([^"]+)"', listing)
    }


def _udp(lab: Lab, ns: str, src: str, dst: str, port: int, payload: str) -> None:
    (lab.root / "send_udp.py").write_text(SEND_UDP)
    run("ip", "netns", "exec", ns, sys.executable, str(lab.root / "send_udp.py"), src, dst, str(port), payload)


def test_the_firewall_alone_keeps_each_clinic_to_its_own_reach(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No charon here: a veth named like the IPsec interface stands in for decrypted traffic, so the firewall's own
    per-clinic check is what is tested, with packets strongSwan's selectors would never let through."""
    lab = Lab(prefix=f"orcafw{os.getpid() % 100000}-", root=tmp_path_factory.mktemp("firewall"))
    try:
        fw, snd, oth, srv = (lab.ns(n) for n in ("fw", "snd", "oth", "srv"))
        lab.veth(fw, "tunx", snd, "tunx")  # "out of IPsec" for this ruleset
        lab.veth(fw, "pub", oth, "eth")  # anything else: the Internet side
        lab.veth(fw, "srv", srv, "eth0")
        lab.sh(fw, "ip addr add 10.255.0.1/30 dev tunx && ip addr add 10.255.1.1/30 dev pub && "
               "ip addr add 10.1.0.1/24 dev srv && ip route add 10.200.0.0/16 via 10.255.0.2 && "
               "sysctl -qw net.ipv4.ip_forward=1")  # fmt: skip
        lab.sh(snd, f"ip addr add 10.255.0.2/30 dev tunx && ip addr add {A_HOST}/32 dev lo && "
               f"ip route add 10.1.0.0/24 via 10.255.0.1 src {A_HOST}")  # fmt: skip
        # A host on the Internet side forging an address of clinic A's range.
        lab.sh(oth, "ip addr add 10.255.1.2/30 dev eth && ip addr add 10.200.0.2/32 dev lo && "
               "ip route add 10.1.0.0/24 via 10.255.1.1 src 10.200.0.2")  # fmt: skip
        lab.sh(srv, "ip addr add 10.1.0.4/24 dev eth0 && ip addr add 10.1.0.21/32 dev eth0 && "
               "ip addr add 10.1.0.22/32 dev eth0 && ip route add default via 10.1.0.1")  # fmt: skip
        log = lab.root / "server-udp.log"
        (lab.root / "server.py").write_text(SERVER)
        lab.spawn(srv, sys.executable, str(lab.root / "server.py"), str(log), log=lab.root / "server.out")
        wait_for("the test server", lambda: "ready" in (lab.root / "server.out").read_text())
        rules = render_firewall(Concentrator(CONC_ID, (A, B, C), ipsec_interface="tunx"))
        run("ip", "netns", "exec", fw, "nft", "-f", "-", stdin=rules)

        # A to its own load balancer: through, with its own source, and the SYN's MSS clamped to 1360 (the server's
        # TCP_MAXSEG is that less the 12 bytes of timestamps; unclamped this 1500-byte path would give 1448).
        src, mss = server_seen(lab, snd, A_HOST, "10.1.0.21").split()
        assert src == A_HOST
        assert int(mss) <= 1360, mss
        # A to clinic B's load balancer, and the Internet side forging A's range: both dropped, each by its rule.
        nonce = os.urandom(4).hex()
        _udp(lab, snd, A_HOST, "10.1.0.22", 9999, f"beyond-{nonce}")
        _udp(lab, oth, "10.200.0.2", SERVER_IP, 9999, f"forged-{nonce}")
        _udp(lab, snd, A_HOST, SERVER_IP, 9999, f"control-{nonce}")
        wait_for("the control datagram", lambda: f"control-{nonce}" in log.read_text(), 5)
        seen = log.read_text()
        assert f"beyond-{nonce}" not in seen and f"forged-{nonce}" not in seen, seen
        # The server opening a connection to a clinic: not a reply, dropped.
        _udp(lab, srv, SERVER_IP, A_HOST, 7777, "unasked")
        # A clinic addressing the concentrator itself (its address towards the servers): dropped on input.
        _udp(lab, snd, A_HOST, "10.1.0.1", 9999, "to-the-concentrator")
        counters = _counters(lab, fw)
        assert counters["a clinic beyond its reach"] >= 1, counters
        assert counters["clinic source not out of IPsec"] >= 1, counters
        assert counters["not a reply to the clinic"] >= 1, counters
        assert counters["clinics reach services, not the concentrator"] >= 1, counters
    finally:
        lab.close()
    assert not [n for n in run("ip", "netns", "list").split() if n.startswith(lab.prefix)]


# --- operations: rotating a clinic's key, removing a clinic (what the runbooks rely on) -----------------------------

A_REACH = "10.1.0.4/32, 10.1.0.21/32, 10.1.0.10/32"
B_REACH = "10.1.0.4/32, 10.1.0.22/32, 10.1.0.10/32"


def _load_conc(world: World, clinics: tuple[ClinicTunnel, ...], psks: dict[str, str]) -> None:
    c = Concentrator(CONC_ID, clinics, ipsec_interface="ipsec0")
    keys = {k: v for k, v in psks.items() if k in {t.clinic_id for t in clinics}}
    world.conc.load({"connections.conf": render_swanctl(c), "secrets.conf": render_secrets(c, keys)})


def _child_spis(world: World, clinic_id: str) -> set[str]:
    raw = world.conc.swanctl("--list-sas", "--raw")
    pattern = rf"\{{{clinic_id}-\d+ \{{name=\S+ uniqueid=\d+ reqid=\d+ state=INSTALLED .*?spi-in=([0-9a-f]+)"
    return set(re.findall(pattern, raw))


def test_a_key_rotation_keeps_the_sa_and_only_the_new_key_opens_a_new_one(world: World) -> None:
    _load_conc(world, (A, B, C), PSKS)
    out = _up(world.c, "c", C.identity, C.remote_ts[0], "10.1.0.4/32", PSKS["clinic-c"])
    assert re.search(r"CHILD_SA c\{\d+\} established", out), out
    before = _child_spis(world, "clinic-c")
    assert before
    rotated = {**PSKS, "clinic-c": "rotated-test-key-clinic-c-0123456789"}
    try:
        _load_conc(world, (A, B, C), rotated)
        assert _child_spis(world, "clinic-c") == before  # reloading the secrets touched no SA
        old = _up(world.c, "c", C.identity, C.remote_ts[0], "10.1.0.4/32", PSKS["clinic-c"])
        assert "received AUTHENTICATION_FAILED notify error" in old, old
        new = _up(world.c, "c", C.identity, C.remote_ts[0], "10.1.0.4/32", rotated["clinic-c"])
        assert re.search(r"CHILD_SA c\{\d+\} established", new), new
    finally:
        _load_conc(world, (A, B, C), PSKS)
        _clear(world.c)


def test_removing_a_clinic_takes_a_reload_and_a_terminate(world: World) -> None:
    _load_conc(world, (A, B, C), PSKS)
    if not _child_spis(world, "clinic-b"):
        _up(world.b, "b", B.identity, B.remote_ts[0], B_REACH, PSKS["clinic-b"])
    assert _child_spis(world, "clinic-b")
    try:
        _load_conc(world, (A, C), PSKS)
        # Unloading a connection leaves its established SA up: removal must also terminate it (docs/vpn.md).
        assert _child_spis(world, "clinic-b"), "the SA of an unloaded connection went away by itself"
        world.conc.swanctl("--terminate", "--ike", "clinic-b", "--timeout", "10", check=False, timeout=15)
        wait_for("clinic B's SA to close", lambda: not _child_spis(world, "clinic-b"), 10)
        again = _up(world.b, "b", B.identity, B.remote_ts[0], B_REACH, PSKS["clinic-b"])
        assert "received AUTHENTICATION_FAILED notify error" in again, again
    finally:
        _load_conc(world, (A, B, C), PSKS)
