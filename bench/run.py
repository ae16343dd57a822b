"""`make bench`: time the offline run of the program for 10, 100 and 1,000 generated clinics against the SDK's floor.

Each measurement runs in a fresh interpreter, so peak memory (ru_maxrss) belongs to that run alone. Modules are
imported before the clock starts: what is timed is the program registering its resources under the mocks of
tools/offline/engine.py. The floor (bench/floor_program.py) registers, under the same mocks and recording monitor, as
many
plain ConfigMaps as the program registered Kubernetes objects. Figures go to stdout and to docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tools.offline.engine import PROJECT_DIR, reveal, run_program, stack_config
from tools.reports import generated_blocks

SIZES = (10, 100, 1000)
STACK = "dev"
REPORT = PROJECT_DIR / "docs" / "benchmark.md"
README = PROJECT_DIR / "README.md"
# The README's figures are the last run's, written by this tool between the markers of
# tools/reports/generated_blocks.py.
README_TARGET, README_BLOCK = "bench", "benchmark"
FLOOR_PROGRAM = Path(__file__).resolve().parent / "floor_program.py"
REPLAY_PROGRAM = Path(__file__).resolve().parent / "replay_program.py"
SOURCE_RANGE = "192.168.0.0/16"  # one VPN site wide enough for 2,048 clinics of a /27 each


def tenants(n: int) -> dict[str, Any]:
    """n valid clinics: unique ids, one /27 of the VPN site each, sizes and states mixed as in real stacks."""
    sizes = ("small", "small", "small", "medium")
    clinics = []
    for i in range(n):
        third, fourth = divmod(i * 32, 256)
        clinic: dict[str, Any] = {
            "id": f"bench-{i:04d}",
            "name": f"ベンチ診療所 {i}",
            "size": sizes[i % len(sizes)],
            "volumeSize": "32Gi",
            "sourceCidrs": [f"192.168.{third}.{fourth}/27"],
        }
        if i % 10 == 9:
            clinic["state"] = "suspended"
        clinics.append(clinic)
    return {"clinics": clinics}


def bench_config(tenants_file: Path, n: int) -> dict[str, str]:
    """The dev stack's config with room for n clinics: a wide VPN site and an ORCA pool that may grow."""
    base = stack_config(STACK)
    network = json.loads(base["orca-platform:network"])
    network["vpn"]["sites"] = [{"name": "bench-sites", "gatewayIp": "203.0.113.10", "addressSpaces": [SOURCE_RANGE]}]
    # One internal load balancer address per clinic: a /21 (10.40.8.0-10.40.15.255) holds 2,043.
    network["ilbSubnetCidr"] = "10.40.8.0/21"
    network["privateEndpointSubnetCidr"] = "10.40.16.0/26"
    network["dnsResolverSubnetCidr"] = "10.40.17.0/28"
    cluster = json.loads(base["orca-platform:cluster"])
    # 1,000 clinics need the larger node size: the pool's maxCount stops at 100.
    cluster["orcaPool"]["vmSize"] = "Standard_D16s_v5"
    cluster["orcaPool"]["maxCount"] = 100
    capacity = json.loads(base["orca-platform:capacity"])
    capacity["densityTarget"] = 10  # the planner refuses a pool below the target; the mix of sizes is not the point
    # 1,000 clinics cross the walls of one dev cell (orca_platform/plan/walls.py): ingress-only front doors (a ClusterIP
    # Service per clinic instead of a LoadBalancer one: the same number of resources), snapshots spread over their
    # 12-hour interval, and a checkpoint budget for 1,000 clinics' state.
    backup = json.loads(base["orca-platform:backup"])
    backup["snapshotStaggerMinutes"] = 720
    return stack_config(
        STACK,
        overrides={
            "orca-platform:tenantsFile": str(tenants_file),
            "orca-platform:network": network,
            "orca-platform:cluster": cluster,
            "orca-platform:capacity": capacity,
            "orca-platform:frontDoor": {"mode": "ingress-only"},
            "orca-platform:backup": backup,
            "orca-platform:scale": {"checkpointBudgetMib": 256},
        },
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_program(n: int) -> dict[str, Any]:
    # Imported here, before the clock and only in this child: what is timed is the registering, not the imports.
    import components  # noqa: F401, PLC0415
    import config  # noqa: F401, PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tenants.bench.yaml"
        path.write_text(yaml.safe_dump(tenants(n), allow_unicode=True), encoding="utf-8")
        cfg = bench_config(path, n)
        start = time.perf_counter()
        run = run_program(STACK, cfg)
        seconds = time.perf_counter() - start
    dump = os.environ.get("BENCH_REPLAY_FILE")
    if dump:  # what the replay floor re-registers: every custom resource with its recorded inputs
        custom = [{"type": r.type, "name": r.name, "inputs": reveal(r.inputs)} for r in run.resources if r.custom]
        Path(dump).write_text(json.dumps(custom), encoding="utf-8")
    return {
        "seconds": seconds,
        "rss_mib": peak_rss_mib(),
        "resources": len(run.resources),
        "kubernetes": sum(1 for r in run.resources if r.is_kubernetes),
        "components": sum(1 for r in run.resources if not r.custom),
    }


def child_floor(count: int) -> dict[str, Any]:
    import pulumi_kubernetes  # noqa: F401, PLC0415 - before the clock, as for the program

    os.environ["BENCH_FLOOR_RESOURCES"] = str(count)
    start = time.perf_counter()
    run = run_program(STACK, {}, main=FLOOR_PROGRAM)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mib": peak_rss_mib(), "resources": len(run.resources), "kubernetes": count}


def child_replay(count: int) -> dict[str, Any]:
    import pulumi  # noqa: F401, PLC0415 - before the clock, as for the program

    start = time.perf_counter()
    run = run_program(STACK, {}, main=REPLAY_PROGRAM)
    seconds = time.perf_counter() - start
    assert len(run.resources) == count
    return {"seconds": seconds, "rss_mib": peak_rss_mib(), "resources": count, "kubernetes": count}


def measure(kind: str, value: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.run", "--child", kind, "--value", str(value)]
    proc = subprocess.run(  # noqa: S603
        cmd, cwd=PROJECT_DIR, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench child {kind} {value} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| clinics | resources (Kubernetes) | program s | s per clinic | peak RSS MiB | ConfigMap floor s | "
        "program / floor | replay floor s | program / replay |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p, f, y = r["program"], r["floor"], r["replay"]
        lines.append(
            f"| {r['clinics']} | {p['resources']} ({p['kubernetes']}) | {p['seconds']:.2f} | "
            f"{p['seconds'] / r['clinics']:.4f} | {p['rss_mib']:.0f} | {f['seconds']:.2f} | "
            f"{p['seconds'] / f['seconds']:.2f} | {y['seconds']:.2f} | {p['seconds'] / y['seconds']:.2f} |"
        )
    return lines


def marginal(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """Seconds per extra clinic between the two largest sizes, for the program and each floor."""
    if len(rows) < 2:
        return None
    a, b = rows[-2], rows[-1]
    clinics = b["clinics"] - a["clinics"]
    return {k: (b[k]["seconds"] - a[k]["seconds"]) / clinics for k in ("program", "floor", "replay")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--no-report", action="store_true", help="print only; do not rewrite docs/benchmark.md")
    ap.add_argument("--child", choices=["program", "floor", "replay"], help=argparse.SUPPRESS)
    ap.add_argument("--value", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        children = {"program": child_program, "floor": child_floor, "replay": child_replay}
        print(json.dumps(children[args.child](args.value)))
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            dump = str(Path(tmp) / f"replay-{n}.json")
            program = measure("program", n, {"BENCH_REPLAY_FILE": dump})
            floor = measure("floor", program["kubernetes"])
            replay = measure("replay", program["resources"] - program["components"], {"BENCH_REPLAY_FILE": dump})
            rows.append({"clinics": n, "program": program, "floor": floor, "replay": replay})
            print(
                f"{n:>5} clinics: program {program['seconds']:7.2f} s ({program['seconds'] / n:.4f} s/clinic, "
                f"{program['rss_mib']:.0f} MiB peak); floor {floor['seconds']:7.2f} s for {floor['kubernetes']} "
                f"ConfigMaps, ratio {program['seconds'] / floor['seconds']:.2f}; replay {replay['seconds']:7.2f} s "
                f"for the same {replay['resources']} resources flat, "
                f"ratio {program['seconds'] / replay['seconds']:.2f}",
                flush=True,
            )
    slope = marginal(rows)
    if slope:
        print(
            f"marginal cost per clinic: program {slope['program'] * 1000:.1f} ms, ConfigMap floor "
            f"{slope['floor'] * 1000:.1f} ms (ratio {slope['program'] / slope['floor']:.2f}), replay floor "
            f"{slope['replay'] * 1000:.1f} ms (ratio {slope['program'] / slope['replay']:.2f})"
        )
    if not args.no_report:
        write_report(rows, slope)
    return 0


def write_report(rows: list[dict[str, Any]], slope: dict[str, float] | None) -> None:
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    lines = [
        "# Benchmark: the offline run per clinic",
        "",
        f"Measured {dt.date.today().isoformat()} by `make bench` (bench/run.py) on {machine}.",
        "",
        "Each figure is one run, in a fresh interpreter, of the real `__main__.py` under the mocks of",
        "tools/offline/engine.py: dev stack config with generated clinics (every tenth suspended; ingress-only front"
        " doors,",
        "since 1,000 load-balanced clinics would cross the 300-rule wall of one cluster), modules imported before",
        "the clock starts.",
        "",
        "- **ConfigMap floor** (bench/floor_program.py): as many plain ConfigMaps as the program registered",
        "  Kubernetes objects, through one provider, under the same mocks and recording monitor: the SDK's cost per",
        "  Kubernetes resource.",
        "- **replay floor** (bench/replay_program.py): every custom resource the program registered (Kubernetes,",
        "  Azure, random), re-registered flat with its recorded inputs: the SDK's cost for the program's own payload,",
        "  without components, parents, dependencies or applies.",
        "",
        *table(rows),
        "",
    ]
    if slope:
        lines += [
            "Marginal cost of one more clinic (between the two largest sizes): "
            f"program {slope['program'] * 1000:.1f} ms; ConfigMap floor {slope['floor'] * 1000:.1f} ms "
            f"(**{slope['program'] / slope['floor']:.2f}x**); replay floor {slope['replay'] * 1000:.1f} ms "
            f"(**{slope['program'] / slope['replay']:.2f}x**).",
            "",
        ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    existing = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    notes = existing.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in existing else "\n"
    REPORT.write_text("\n".join(lines) + "<!-- notes -->" + notes, encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    README.write_text(
        generated_blocks.replace_block(readme, README_TARGET, README_BLOCK, readme_block(rows, slope, machine)),
        encoding="utf-8",
    )
    print(f"wrote {REPORT.relative_to(PROJECT_DIR)} and the figures in {README.relative_to(PROJECT_DIR)}")


def _mib(value: float) -> str:
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def readme_block(rows: list[dict[str, Any]], slope: dict[str, float] | None, machine: str) -> str:
    """The README's short form of the run: program against the ConfigMap floor, and the marginal clinic."""
    lines = [
        f"Measured {dt.date.today().isoformat()} on {machine}:",
        "",
        "| clinics | resources | program s | s per clinic | peak RSS | ConfigMap floor s | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p, f = r["program"], r["floor"]
        lines.append(
            f"| {r['clinics']:,} | {p['resources']:,} | {p['seconds']:.2f} | {p['seconds'] / r['clinics']:.3f} | "
            f"{_mib(p['rss_mib'])} | {f['seconds']:.2f} | {p['seconds'] / f['seconds']:.2f} |"
        )
    if slope:
        lines += [
            "",
            f"One more clinic costs {slope['program'] * 1000:.0f} ms against {slope['floor'] * 1000:.0f} ms for the "
            f"same number of plain ConfigMaps (**{slope['program'] / slope['floor']:.1f}x**) and "
            f"{slope['replay'] * 1000:.0f} ms for the program's own resources registered flat "
            f"(**{slope['program'] / slope['replay']:.1f}x**).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
