"""The concentrator's pure core: validation, range assignment and the rendered text (no strongSwan needed here).

tests/test_concentrator_strongswan.py runs the same rendered text in real charon processes.
"""

from __future__ import annotations

import ast
import functools
import ipaddress
import itertools
import re
import sys
from pathlib import Path

import pytest

from orca_platform.vpn import (
    ClinicTunnel,
    Concentrator,
    propose_next,
    range_problems,
    render_firewall,
    render_secrets,
    render_swanctl,
)

INGRESS, DNS = "10.1.0.4/32", "10.1.0.10/32"


def clinic(cid: str, rng: str, *local: str) -> ClinicTunnel:
    return ClinicTunnel(cid, f"{cid}.vpn.example.jp", (rng,), tuple(local) or (INGRESS, DNS))


def conc(*clinics: ClinicTunnel, **kw: object) -> Concentrator:
    return Concentrator("concentrator.vpn.example.jp", tuple(clinics), **kw)  # type: ignore[arg-type]


A = clinic("clinic-a", "10.200.0.0/29", INGRESS, "10.1.0.21/32", DNS)
B = clinic("clinic-b", "10.200.0.8/29", INGRESS, "10.1.0.22/32", DNS)


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: conc(A, clinic("clinic-a", "10.200.0.16/29")), "'clinic-a' is listed twice"),
        (
            lambda: conc(A, ClinicTunnel("clinic-c", "clinic-a.vpn.example.jp", ("10.200.0.16/29",), (DNS,))),
            "identity 'clinic-a.vpn.example.jp' is already used by clinic 'clinic-a'",
        ),
        (
            lambda: conc(ClinicTunnel("clinic-c", "concentrator.vpn.example.jp", ("10.200.0.16/29",), (DNS,))),
            "already used by the concentrator itself",
        ),
        (lambda: conc(A, clinic("clinic-c", "10.200.0.0/28")), "overlaps clinic 'clinic-a'"),
        (lambda: conc(clinic("clinic-c", "10.200.0.0/24")), "10.200.0.0/24 is wider than /28"),
        (lambda: ClinicTunnel("clinic-c", "c.vpn.example.jp", ("10.200.0.0/29",), ()), "local_ts is empty"),
        (lambda: ClinicTunnel("clinic-c", "c.vpn.example.jp", (), (DNS,)), "remote_ts is empty"),
        (lambda: clinic("clinic-c", "10.200.0.0/29", "10.1.0.0/24"), "10.1.0.0/24 is a range"),
        (lambda: clinic("clinic-c", "10.200.0.1/29"), "no host bits set"),
        (lambda: clinic("clinic-c", "%any"), "not a network"),
        (lambda: clinic("clinic-c", "fd00::/64"), "IPv6"),
        (lambda: clinic("Clinic C", "10.200.0.0/29"), "DNS label"),
        (
            lambda: ClinicTunnel("clinic-c", "c } secrets {", ("10.200.0.0/29",), (DNS,)),
            "FQDN-style name",
        ),
        (lambda: conc(A, clinic("clinic-c", "10.200.0.16/29", "10.200.0.1/32")), "lies in clinic 'clinic-a'"),
        (lambda: conc(A, mss=1500), "mss 1500"),
        (lambda: clinic("clinic-c", "10.200.0.0/29", "10.1.0.4", "10.1.0.4/32"), "lists an entry twice"),
    ],
)
def test_bad_tunnels_are_refused_with_a_clear_message(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()  # type: ignore[operator]


def test_a_concentrator_of_a_thousand_clinics_validates_quickly() -> None:
    block = ipaddress.ip_network("10.200.0.0/16")
    clinics = [clinic(f"c{i:04d}", str(net)) for i, net in zip(range(1000), block.subnets(new_prefix=29), strict=False)]
    c = conc(*clinics)
    assert c.clinic("c0999").remote_ts == ("10.200.31.56/29",)
    with pytest.raises(KeyError, match="no clinic 'nope'"):
        c.clinic("nope")


# --- ranges -----------------------------------------------------------------------------------------------------


def test_propose_next_skips_assigned_retired_and_reserved_ranges() -> None:
    assigned = ["10.200.0.0/29", "10.200.0.16/29"]
    assert propose_next("10.200.0.0/16", 29, assigned) == "10.200.0.8/29"
    assert propose_next("10.200.0.0/16", 29, assigned, retired=["10.200.0.8/29"]) == "10.200.0.24/29"
    # A reserved range (a VNet carved out of the block by mistake) is never handed out, nor anything inside it.
    assert propose_next("10.200.0.0/16", 29, assigned, ["10.200.0.8/29"], ["10.200.0.24/30", "fd00::/8"]) == (
        "10.200.0.32/29"
    )
    # /28 alignment: the first free /28 past the taken /29s.
    assert propose_next("10.200.0.0/16", 28, assigned) == "10.200.0.32/28"


def test_propose_next_refuses_a_full_block_and_bad_prefixes() -> None:
    with pytest.raises(ValueError, match="no free /29 left"):
        propose_next("10.200.0.0/28", 29, ["10.200.0.0/29"], ["10.200.0.8/29"])
    with pytest.raises(ValueError, match="between /24 and /30"):
        propose_next("10.200.0.0/16", 16, [])


def test_propose_next_never_returns_a_taken_range_over_many_assignments() -> None:
    assigned: list[str] = []
    retired: list[str] = []
    for i in range(300):
        nxt = propose_next("10.200.0.0/20", 29, assigned, retired, ["10.200.4.0/24"])
        (retired if i % 7 == 0 else assigned).append(nxt)
    # Every proposal is a distinct /29 outside the reserved range: no two of them, and none of the pods, overlap.
    nets = sorted(ipaddress.ip_network(n) for n in [*assigned, *retired, "10.200.4.0/24"])
    assert all(a.broadcast_address < b.network_address for a, b in itertools.pairwise(nets))
    clinics = {f"c{i}": [r] for i, r in enumerate(assigned)}
    assert range_problems("10.200.0.0/20", 29, clinics, retired, {"pods": "10.200.4.0/24"}) == []


def test_range_problems_name_the_clinic_and_the_conflict() -> None:
    problems = range_problems(
        "10.200.0.0/16",
        29,
        {
            "clinic-a": ["10.200.0.0/29"],
            "clinic-b": ["10.200.0.0/28"],  # wider than /29 and overlapping clinic-a
            "clinic-c": ["10.201.0.0/29"],  # outside the block
            "clinic-d": ["10.200.1.0/29"],  # a retired range
            "clinic-e": ["10.200.2.0/29"],  # inside the pod range
            "clinic-f": ["10.200.3.1/29"],  # host bits
        },
        retired=["10.200.1.0/29"],
        reserved={"prod pods": "10.200.2.0/24"},
    )
    expected = [
        "clinic 'clinic-b': range 10.200.0.0/28 is wider than the clinics' /29",
        "clinic 'clinic-c': range 10.201.0.0/29 lies outside the clinic block 10.200.0.0/16",
        "clinic 'clinic-d': range 10.200.1.0/29 overlaps retired range 10.200.1.0/29",
        "clinic 'clinic-e': range 10.200.2.0/29 overlaps prod pods 10.200.2.0/24",
        "clinic 'clinic-f'",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert any("overlaps clinic 'clinic-" in p and "10.200.0.0/" in p for p in problems), problems
    assert len(problems) == 6
    assert range_problems("10.200.0.0/16", 29, {"clinic-a": ["10.200.0.0/29"]}) == []
    assert range_problems("10.200.0.0/16", 29, {}, retired=["nonsense"]) == [
        "retired range: 'nonsense' is not a network in CIDR form "
        "('nonsense' does not appear to be an IPv4 or IPv6 network)"
    ]


# --- rendering --------------------------------------------------------------------------------------------------


def _blocks(text: str, depth: int) -> dict[str, str]:
    """Top-level names at `depth` of a swanctl.conf text -> their bodies (enough for these flat files)."""
    out: dict[str, str] = {}
    indent = "    " * depth
    for m in re.finditer(rf"^{indent}(\S+) \{{\n(.*?)^{indent}\}}", text, re.M | re.S):
        out[m.group(1)] = m.group(2)
    return out


def test_swanctl_holds_one_ikev2_connection_per_clinic_with_exactly_its_selectors() -> None:
    text = render_swanctl(conc(B, A))
    conns = _blocks(text, 1)
    assert list(conns) == ["clinic-a", "clinic-b"]  # sorted, whatever the input order
    body = conns["clinic-a"]
    for line in (
        "version = 2",
        "remote_addrs = %any",
        "fragmentation = yes",
        "encap = yes",
        "dpd_delay = 30s",
        "id = concentrator.vpn.example.jp",
        "id = clinic-a.vpn.example.jp",
        "local_ts = 10.1.0.4/32, 10.1.0.10/32, 10.1.0.21/32",
        "remote_ts = 10.200.0.0/29",
    ):
        assert f" {line}\n" in body, line
    assert body.count("auth = psk") == 2
    assert not re.search(r"_ts = .*%any", text)
    assert "secret" not in text
    proposals = " ".join(re.findall(r"proposals = (.*)", text))
    assert not re.search(r"3des|md5|sha1\b|modp1024|modp1536", proposals), proposals
    assert render_swanctl(conc(A, B)) == text


def test_secrets_are_separate_complete_and_hex_encoded() -> None:
    c = conc(A, B)
    psks = {"clinic-a": "a-key-with } and # in it!", "clinic-b": "another-long-key-0123456789"}
    text = render_secrets(c, psks)
    entries = _blocks(text, 1)
    assert list(entries) == ["ike-clinic-a", "ike-clinic-b"]
    assert "id = clinic-a.vpn.example.jp" in entries["ike-clinic-a"]
    assert f"secret = 0x{psks['clinic-a'].encode().hex()}" in entries["ike-clinic-a"]
    assert "concentrator.vpn.example.jp" not in text  # an entry with the own id would match every clinic
    assert "a-key-with" not in text
    with pytest.raises(ValueError, match="no pre-shared key for clinic"):
        render_secrets(c, {"clinic-a": psks["clinic-a"]})
    with pytest.raises(ValueError, match="not on the concentrator: clinic-z"):
        render_secrets(c, {**psks, "clinic-z": "z" * 30})
    with pytest.raises(ValueError, match="fewer than 20"):
        render_secrets(c, {**psks, "clinic-b": "short"})
    with pytest.raises(ValueError, match="same as clinic 'clinic-a'"):
        render_secrets(c, {**psks, "clinic-b": psks["clinic-a"]})


def test_firewall_allows_each_clinic_only_its_own_reach() -> None:
    text = render_firewall(conc(A, B))
    reach = re.search(r"set clinic_reach \{.*?elements = \{ (.*?) \}", text, re.S)
    assert reach is not None
    pairs = {tuple(p.split(" . ")) for p in reach.group(1).split(", ")}
    assert pairs == {
        ("10.200.0.0/29", "10.1.0.4"),
        ("10.200.0.0/29", "10.1.0.10"),
        ("10.200.0.0/29", "10.1.0.21"),
        ("10.200.0.8/29", "10.1.0.4"),
        ("10.200.0.8/29", "10.1.0.10"),
        ("10.200.0.8/29", "10.1.0.22"),
    }
    assert "policy drop;" in text
    assert "meta ipsec missing counter drop" in text  # kernel datapath
    assert 'iifname != "ipsec0" counter drop' in render_firewall(conc(A, B, ipsec_interface="ipsec0"))
    assert "tcp option maxseg size set 1360" in text
    assert "maxseg size set 1300" in render_firewall(conc(A, mss=1300))
    assert render_firewall(conc(B, A)) == text
    assert "elements" not in render_firewall(conc())  # nft refuses an empty element list


def test_the_vpn_core_imports_only_the_standard_library_itself_and_the_conventions() -> None:
    for path in Path("orca_platform/vpn").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                top = name.split(".")[0]
                allowed = name.startswith("orca_platform.vpn") or name == "orca_platform.conventions"
                assert top in sys.stdlib_module_names or allowed, (path, name)


# --- router configurations (untested on devices: the text is checked here, not a router) -------------------------


@pytest.mark.parametrize("model", ["yamaha-rtx830", "yamaha-rtx1300", "nec-ix2215"])
def test_router_text_comes_from_the_same_tunnel_and_holds_no_key(model: str) -> None:
    from orca_platform.vpn import ROUTER_MODELS, render_router

    assert model in ROUTER_MODELS
    text = render_router(model, A, "203.0.113.10", "concentrator.vpn.example.jp")  # type: ignore[arg-type]
    assert "untested on devices" in text
    assert A.identity in text and "concentrator.vpn.example.jp" in text and "203.0.113.10" in text
    assert "10.200.0.1" in text  # the LAN is translated into the first host of the assigned range
    for addr in ("10.1.0.4", "10.1.0.10", "10.1.0.21"):
        assert f"{addr}/32" in text, addr  # a route into the tunnel for everything the clinic may reach
    assert "10.1.0.22" not in text
    assert "<PRE-SHARED KEY" in text
    with pytest.raises(ValueError, match="not one of"):
        render_router("cisco", A, "203.0.113.10", "c.example.jp")  # type: ignore[arg-type]


# --- reading the rendered configuration back: what the audit and the isolation check use -------------------------


@functools.cache
def _three_hundred() -> tuple[Concentrator, dict[str, list[str]]]:
    assigned: dict[str, list[str]] = {}
    taken: list[str] = []
    for i in range(300):
        taken.append(propose_next("10.200.0.0/16", 29, taken))
        assigned[f"c{i:03d}"] = [taken[-1]]
    clinics = tuple(ClinicTunnel(cid, f"{cid}.vpn.example.jp", tuple(r), (INGRESS, DNS)) for cid, r in assigned.items())
    return conc(*clinics), assigned


def test_three_hundred_rendered_connections_each_hold_exactly_their_clinics_range() -> None:
    from orca_platform.vpn import parse_connections, selector_problems

    c, assigned = _three_hundred()
    text = render_swanctl(c)
    parsed = parse_connections(text)
    assert len(parsed) == 300
    ranges = [ipaddress.ip_network(p.remote_ts[0]) for p in parsed.values()]
    assert len(set(ranges)) == 300
    ordered = sorted(ranges)
    assert all(a.broadcast_address < b.network_address for a, b in itertools.pairwise(ordered))
    assert all(p.remote_ts == tuple(assigned[name]) and p.remote_addrs == "%any" for name, p in parsed.items())
    identities = {t.clinic_id: t.identity for t in c.clinics}
    assert selector_problems(text, assigned, identities) == []


def test_selector_problems_name_every_connection_that_reaches_beyond_its_clinic() -> None:
    from orca_platform.vpn import selector_problems

    c, assigned = _three_hundred()
    text = render_swanctl(c)
    tampered = (
        text.replace("remote_ts = 10.200.0.8/29", "remote_ts = 10.200.0.0/16", 1)  # c001 widened
        .replace("remote_ts = 10.200.0.16/29", "remote_ts = 10.200.0.24/29", 1)  # c002 takes c003's range
        .replace("id = c004.vpn.example.jp", "id = c005.vpn.example.jp", 1)  # c004 answers to c005's identity
        .replace("remote_ts = 10.200.0.48/29", "remote_ts = %any", 1)  # c006
    )
    tampered = tampered.replace(
        "local_ts = 10.1.0.4/32, 10.1.0.10/32\n                remote_ts = 10.200.0.56/29",
        "local_ts = 10.1.0.0/24\n                remote_ts = 10.200.0.56/29",
        1,
    )  # c007 reaches a whole subnet
    identities = {t.clinic_id: t.identity for t in c.clinics}
    problems = selector_problems(tampered, assigned, identities)
    for text_part in (
        "connection 'c001': remote_ts 10.200.0.0/16 reaches beyond the clinic's range 10.200.0.8/29",
        "connection 'c002': remote_ts 10.200.0.24/29 reaches beyond the clinic's range 10.200.0.16/29",
        "connection 'c004': remote id 'c005.vpn.example.jp' is not the clinic's identity",
        "connection 'c006': remote_ts '%any' is not a range of its own",
        "connection 'c007': local_ts 10.1.0.0/24 is a range",
    ):
        assert any(text_part in p for p in problems), (text_part, problems)
    assert len(problems) == 5, problems
    assert selector_problems(text, {k: v for k, v in assigned.items() if k != "c299"})[-1] == (
        "connection 'c299': no clinic of that id has an assigned range"
    )
    into_a_clinic = text.replace(
        "local_ts = 10.1.0.4/32, 10.1.0.10/32\n                remote_ts = 10.200.0.64/29",
        "local_ts = 10.200.0.1/32\n                remote_ts = 10.200.0.64/29",
        1,
    )  # c008 reaches into c000's range
    assert selector_problems(into_a_clinic, assigned) == [
        "connection 'c008': local_ts 10.200.0.1/32 lies in clinic 'c000''s range 10.200.0.0/29"
    ]
    with pytest.raises(ValueError, match="line 2"):
        selector_problems("connections {\n  what is this\n}\n", assigned)


def test_the_strongswan_tests_name_why_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/test_concentrator_strongswan.py skips only with one of these reasons (pytest -rs prints and counts it)."""
    import strongswan_lab

    monkeypatch.setattr(strongswan_lab.os, "geteuid", lambda: 1000)
    assert strongswan_lab.unavailable_reason() == "needs root for network namespaces"
    monkeypatch.setattr(strongswan_lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(strongswan_lab.shutil, "which", lambda tool: None if tool == "swanctl" else "/usr/bin/" + tool)
    assert strongswan_lab.unavailable_reason() == "swanctl is not installed (make deb-strongswan)"
