"""`make image-scan`: what can be learnt here about known vulnerabilities in the tools image, and what cannot.

Debian's vulnerability feed (the security tracker, which debsecan reads), PyPI's advisory data (pip-audit), npm's
advisory endpoint (npm audit) and the Go vulnerability database are not reachable from this machine kind. Debian's
archive is: inside a throw-away container of the image, `apt-get update` and the list of installed packages that
the archive has newer versions of. A newer version from `<suite>-security` is a fixed vulnerability the pins lag
behind (exit status 1); one from a point release is listed only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tools.images import build

_UPGRADABLE = re.compile(r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<new>\S+) \S+ \[upgradable from: (?P<old>[^\]]+)\]$")


@dataclass(frozen=True)
class Lagging:
    package: str
    installed: str
    available: str
    security: bool


def parse_upgradable(text: str) -> list[Lagging]:
    """`apt list --upgradable` lines -> what is behind, and whether a security suite carries the newer version."""
    found = []
    for line in text.splitlines():
        m = _UPGRADABLE.match(line.strip())
        if m:
            security = any(s.endswith("-security") for s in m["suites"].split(","))
            found.append(Lagging(m["name"], m["old"], m["new"], security))
    return found


def lagging(tag: str) -> list[Lagging]:
    with build.Container(tag) as container:
        result = container.run(
            ["/bin/sh", "-c", "apt-get update -qq >/dev/null && apt list --upgradable 2>/dev/null"], user="0:0"
        )
    if result.returncode != 0:
        raise build.BuildError(f"apt-get update in the image failed: {result.stderr.strip()[-2000:]}")
    return parse_upgradable(result.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n", 1)[0]).parse_args(argv)
    tag = build.inputs().tag
    if not build.image_exists(tag):
        print(f"error: {tag} is not built: run make image-tools", file=sys.stderr)
        return 2
    print(f"{tag}: {build.size(tag)}")
    try:
        behind = lagging(tag)
    except build.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in behind:
        kind = "SECURITY" if item.security else "update"
        print(f"  {kind:8} {item.package} {item.installed} -> {item.available}")
    security = [i for i in behind if i.security]
    print(
        f"Debian packages behind the archive: {len(behind)}, {len(security)} of them security updates"
        + (" (bump the pins: docs/tools-image.md, Bumping)" if security else "")
    )
    print(
        "not scanned here (no feed reachable): Debian's security tracker (debsecan), PyPI and npm advisories, the Go "
        "vulnerability database for kubectl and azcopy; CI scans the pushed image (docs/tools-image.md)"
    )
    return 1 if security else 0


if __name__ == "__main__":
    sys.exit(main())
