"""Reading a rendered swanctl.conf back, and what an audit of it refuses (issue 23, item 9).

The audit rules and the cross-clinic isolation check see the concentrator's configuration as text (a stack export,
`make synth`'s build/synth/<stack>/vpn/): this reads the `connections` section of the strongswan settings syntax
(strongswan.conf(5): sections `name { ... }`, `key = value`, `#` comments) and names every connection whose
selectors reach beyond its clinic's own range. Standard library only, so the policy pack's rules may import it.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Section = dict[str, "str | Section"]


@dataclass(frozen=True)
class ParsedConnection:
    """One connection of a swanctl.conf as written: its first child's selectors and the remote identity."""

    name: str
    version: str
    remote_addrs: str
    remote_id: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    children: int


def _parse(text: str) -> Section:
    root: Section = {}
    stack: list[Section] = [root]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("include "):
            continue
        if line == "}":
            if len(stack) == 1:
                raise ValueError(f"line {number}: '}}' without an open section")
            stack.pop()
        elif line.endswith("{"):
            section: Section = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            stack[-1][key] = value
        else:
            raise ValueError(f"line {number}: {raw.strip()!r} is neither a section nor key = value")
    if len(stack) != 1:
        raise ValueError("a section is not closed")
    return root


def _get(section: Section, key: str) -> str:
    value = section.get(key, "")
    return value if isinstance(value, str) else ""


def _sub(section: Section, key: str) -> Section:
    value = section.get(key, {})
    return value if isinstance(value, dict) else {}


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_connections(text: str) -> dict[str, ParsedConnection]:
    """The connections of a swanctl.conf text by name; ValueError names the line that does not parse."""
    out: dict[str, ParsedConnection] = {}
    for name, body in _sub(_parse(text), "connections").items():
        if not isinstance(body, dict):
            continue
        children = {k: v for k, v in _sub(body, "children").items() if isinstance(v, dict)}
        first = next(iter(children.values()), {})
        out[name] = ParsedConnection(
            name=name,
            version=_get(body, "version"),
            remote_addrs=_get(body, "remote_addrs"),
            remote_id=_get(_sub(body, "remote"), "id"),
            local_ts=_list(_get(first, "local_ts")),
            remote_ts=_list(_get(first, "remote_ts")),
            children=len(children),
        )
    return out


_Span = tuple[int, int, str, str]


def _remote_ts_problems(where: str, conn: ParsedConnection, own_ranges: Sequence[str]) -> list[str]:
    own = [ipaddress.ip_network(r) for r in own_ranges]
    problems = []
    for ts in conn.remote_ts:
        try:
            net = ipaddress.ip_network(ts)
        except ValueError:
            problems.append(f"{where}: remote_ts {ts!r} is not a range of its own (%any or a name)")
            continue
        if not any(net.version == o.version and net.subnet_of(o) for o in own):  # type: ignore[arg-type]
            problems.append(f"{where}: remote_ts {ts} reaches beyond the clinic's range {', '.join(own_ranges)}")
    return problems


def _local_ts_problems(where: str, conn: ParsedConnection, spans: list[_Span], starts: list[int]) -> list[str]:
    problems = []
    for ts in conn.local_ts:
        try:
            net = ipaddress.ip_network(ts)
        except ValueError:
            problems.append(f"{where}: local_ts {ts!r} is not an address (%any or a name)")
            continue
        if net.num_addresses != 1:
            problems.append(f"{where}: local_ts {ts} is a range; a clinic reaches single addresses only")
        if net.version == 4 and (i := bisect.bisect_right(starts, int(net.network_address)) - 1) >= 0:
            first, last, cid, r = spans[i]
            if first <= int(net.network_address) <= last:
                problems.append(f"{where}: local_ts {ts} lies in clinic {cid!r}'s range {r}")
    return problems


def selector_problems(
    text: str, assigned: Mapping[str, Sequence[str]], identities: Mapping[str, str] | None = None
) -> list[str]:
    """Every connection that reaches beyond its clinic: `assigned` is clinic id -> its ranges, `identities` (when
    given) clinic id -> its IKE identity. A connection is named after its clinic (render_swanctl does so)."""
    problems: list[str] = []
    # Every clinic range as (first, last, clinic, range), sorted: one bisection per local_ts address.
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address), cid, str(n))
        for cid, ranges in assigned.items()
        for n in map(ipaddress.ip_network, ranges)
        if n.version == 4
    )
    starts = [span[0] for span in spans]
    for name, conn in sorted(parse_connections(text).items()):
        where = f"connection {name!r}"
        if name not in assigned:
            problems.append(f"{where}: no clinic of that id has an assigned range")
            continue
        if conn.version != "2":
            problems.append(f"{where}: version {conn.version or '(unset)'}; the concentrator speaks IKEv2 only")
        if conn.children != 1:
            problems.append(f"{where}: {conn.children} children; a clinic has exactly one")
        if identities is not None and conn.remote_id != identities.get(name):
            problems.append(f"{where}: remote id {conn.remote_id!r} is not the clinic's identity")
        if not conn.local_ts or not conn.remote_ts:
            problems.append(f"{where}: a traffic selector is missing (an empty one means %any)")
        problems += _remote_ts_problems(where, conn, assigned[name])
        problems += _local_ts_problems(where, conn, spans, starts)
    return problems
