"""`make image-tools`: build images/tools/Containerfile with buildah where no registry serves base images.

The Containerfile's base (its `ARG DEBIAN_BASE`, a Debian point-release tag) is made with mmdebstrap from Debian's
archive and stored under that very name, so `buildah bud --pull=never` finds it and the Containerfile stays the one
CI builds with a pulled base. Storage is vfs (no overlay mount needed) and RUN steps use chroot isolation (no
runtime, no user namespaces), both machine-wide under IMAGE_STORE so every clone and CI run reuses one build.

The image's tag is a digest of everything in images/tools/ (Containerfile, requirements.txt, package.json,
package-lock.json, .npmrc): an image with that tag is what these inputs build, and the build is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONTEXT = PROJECT_DIR / "images" / "tools"
CONTAINERFILE = CONTEXT / "Containerfile"
REPOSITORY = "localhost/orca-platform/tools"
STORE = Path(os.environ.get("IMAGE_STORE", "/var/lib/orca-platform/containers"))
# Debian's code names by major release: the base's tag names the point release, mmdebstrap wants the suite.
SUITES = {"12": "bookworm", "13": "trixie"}
# What Debian's -slim images leave out (debuerreotype/debuerreotype scripts/.slimify-excludes and
# .slimify-includes): documentation but the copyright files, manual pages and translations.
SLIM_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
# mmdebstrap keeps these options in the base's apt and dpkg configuration, as the official images' minimizing
# config does (debuerreotype scripts/debuerreotype-minimizing-config: docker-no-languages, docker-apt-speedup): no
# translations, and dpkg without fsync (a build's layers are rebuilt, never recovered; the packages' own unpacking
# was most of the cold build's time).
BASE_OPTIONS = (
    "--variant=apt",
    '--aptopt=Acquire::Languages "none"',
    "--dpkgopt=force-unsafe-io",
    *(f"--dpkgopt={rule}" for rule in SLIM_EXCLUDES),
)
# A base made by another recipe is made again, and the tools image's key changes with it.
BASE_RECIPE = hashlib.sha256("\n".join(BASE_OPTIONS).encode()).hexdigest()[:16]
RECIPE_LABEL = "io.orca-platform.base-recipe"


class BuildError(Exception):
    """A step failed in a way the operator can fix: the message says how."""


@dataclass(frozen=True)
class Inputs:
    digest: str  # sha256 over every file of the build context
    base: str  # the Containerfile's DEBIAN_BASE default

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.digest[:16]}"


def base_image(containerfile: Path = CONTAINERFILE) -> str:
    match = re.search(r"^ARG DEBIAN_BASE=(\S+)$", containerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise BuildError(f"{containerfile}: no `ARG DEBIAN_BASE=<image>` line: the base image must be named there")
    return match[1]


def point_release(base: str) -> str:
    """'docker.io/library/debian:13.8-slim' -> '13.8'."""
    match = re.fullmatch(r"[^:]+:(?P<release>[0-9]+\.[0-9]+)(?:-slim)?", base)
    if match is None or match["release"].split(".")[0] not in SUITES:
        raise BuildError(
            f"DEBIAN_BASE {base!r}: name a Debian point release the build knows ({', '.join(SUITES)}), "
            "e.g. docker.io/library/debian:13.8-slim"
        )
    return match["release"]


def inputs(context: Path = CONTEXT) -> Inputs:
    digest = hashlib.sha256(BASE_RECIPE.encode())
    # Everything the build could read, but what a local `npm install` or Python may leave in the directory.
    files = (p for p in context.rglob("*") if p.is_file() and not {"node_modules", "__pycache__"} & set(p.parts))
    for path in sorted(files):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return Inputs(digest.hexdigest(), base_image(context / "Containerfile"))


def buildah_args(store: Path = STORE) -> list[str]:
    return ["buildah", "--root", str(store / "root"), "--runroot", str(store / "run"), "--storage-driver", "vfs"]


def _run(argv: Sequence[str], env: dict[str, str] | None = None, stream: bool = False) -> str:
    """argv's standard output; `stream`: its output goes to the terminal as it comes (a long build)."""
    proc = subprocess.run(list(argv), text=True, capture_output=not stream, check=False, env=env)  # noqa: S603
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(argv[:8])} ... failed ({proc.returncode}):\n{(proc.stderr or '').strip()[-3000:]}")
    return proc.stdout or ""


def image_exists(name: str, store: Path = STORE) -> bool:
    probe = subprocess.run(  # noqa: S603
        [*buildah_args(store), "inspect", "--type", "image", "--format", "{{.FromImageID}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def base_current(base: str, store: Path = STORE) -> bool:
    """Whether `base` exists and was made by this recipe."""
    probe = subprocess.run(  # noqa: S603
        [
            *buildah_args(store),
            "inspect",
            "--type",
            "image",
            "--format",
            f'{{{{index .OCIv1.Config.Labels "{RECIPE_LABEL}"}}}}',
            base,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == BASE_RECIPE


def make_base(base: str, store: Path = STORE) -> None:
    """The Debian point release `base` names, from Debian's archive by mmdebstrap, stored as `base`."""
    release = point_release(base)
    suite = SUITES[release.split(".")[0]]
    with tempfile.TemporaryDirectory(prefix="orca-base-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _run(
            ["mmdebstrap", "--mode=root", "--format=tar", *BASE_OPTIONS, suite, str(rootfs)],
            env={**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0")},
        )
        found = _run(["tar", "-xOf", str(rootfs), "./etc/debian_version"]).strip()
        if found != release:
            raise BuildError(
                f"Debian's archive serves {suite} {found}, the Containerfile names {release} ({base}): bump "
                "DEBIAN_BASE and the package pins in images/tools/Containerfile (docs/tools-image.md, Bumping)"
            )
        buildah = buildah_args(store)
        ctr = _run([*buildah, "from", "--pull=never", "scratch"]).strip()
        try:
            _run([*buildah, "add", ctr, str(rootfs), "/"])
            _run(
                [
                    *buildah,
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--cmd",
                    "bash",
                    "--label",
                    f"io.orca-platform.base=mmdebstrap {suite} {release}",
                    "--label",
                    f"{RECIPE_LABEL}={BASE_RECIPE}",
                    ctr,
                ]
            )
            _run([*buildah, "commit", "--rm", ctr, base])
        except BuildError:
            subprocess.run([*buildah, "rm", ctr], capture_output=True, check=False)  # noqa: S603 - our arguments
            raise


def ca_bundle() -> str | None:
    """The CA bundle the build's downloads trust: a TLS-inspecting proxy's CA is in it where there is one."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def source_commit() -> str:
    proc = subprocess.run(  # noqa: S603 - git with fixed arguments
        ["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


# buildah 1.24 brought RUN --mount=type=secret (the proxy CA); mmdebstrap 1.0 the option set used here.
MINIMUM = {"buildah": (1, 24), "mmdebstrap": (1, 0)}


def check_tools() -> None:
    if os.geteuid() != 0:
        raise BuildError("needs root: mmdebstrap's root mode and buildah's machine-wide store (CI runs as root)")
    for tool, least in MINIMUM.items():
        proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
        found = re.search(r"([0-9]+)\.([0-9]+)", proc.stdout)
        if proc.returncode != 0 or found is None or (int(found[1]), int(found[2])) < least:
            raise BuildError(f"{tool} {'.'.join(map(str, least))} or newer is needed (make deb-buildah)")


def prune(keep: str, store: Path = STORE) -> None:
    """Drop the tools images of earlier inputs and bases of earlier recipes (left untagged): each is a full copy
    under vfs."""
    listing = _run([*buildah_args(store), "images", "--format", "{{.Name}}:{{.Tag}}", "--noheading"])
    for name in listing.split():
        if name.startswith(f"{REPOSITORY}:") and name != keep:
            _run([*buildah_args(store), "rmi", name])
    _run([*buildah_args(store), "rmi", "--prune"])


def build(store: Path = STORE, context: Path = CONTEXT) -> str:
    """Build the image unless one from these inputs exists; its tag."""
    found = inputs(context)
    if image_exists(found.tag, store):
        print(f"{found.tag}: up to date (built from these inputs)")
        return found.tag
    check_tools()
    began = time.monotonic()
    if not base_current(found.base, store):
        make_base(found.base, store)
        print(f"{found.base}: made with mmdebstrap in {time.monotonic() - began:.0f} s")
    secret = ca_bundle()
    _run(
        [
            *buildah_args(store),
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "--layers=false",
            "--file",
            str(context / "Containerfile"),
            "--build-arg",
            f"SOURCE_COMMIT={source_commit()}",
            "--build-arg",
            f"INPUTS_DIGEST={found.digest}",
            *(["--secret", f"id=ca,src={secret}"] if secret else []),
            "--tag",
            found.tag,
            str(context),
        ],
        stream=True,
    )
    prune(found.tag, store)
    print(f"{found.tag}: built in {time.monotonic() - began:.0f} s, {size(found.tag, store)}")
    return found.tag


def size(name: str, store: Path = STORE) -> str:
    """The image's size as buildah reports it (its layers, uncompressed)."""
    return _run([*buildah_args(store), "images", "--format", "{{.Size}}", "--noheading", name]).strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--print-tag", action="store_true", help="print the tag these inputs build, build nothing")
    parser.add_argument("--print-digest", action="store_true", help="print the inputs' digest (CI labels with it)")
    parser.add_argument(
        "--for-tests",
        action="store_true",
        help="where the image cannot be built (not root, no buildah), say so and exit 0: its tests skip",
    )
    args = parser.parse_args(argv)
    try:
        if args.print_tag or args.print_digest:
            print(inputs().tag if args.print_tag else inputs().digest)
            return 0
        if args.for_tests and (os.geteuid() != 0 or shutil.which("buildah") is None):
            print(
                "the tools image is not built here (needs root and buildah): tests/test_tools_image.py skips its "
                "image tests; sudo make image-tools builds it"
            )
            return 0
        build()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


class Container:
    """A working container of an image (buildah from), to run commands in as the image's user; removed on exit."""

    def __init__(self, image: str, store: Path = STORE) -> None:
        self.image = image
        self.store = store
        self.id = ""

    def __enter__(self) -> Container:
        self.id = _run([*buildah_args(self.store), "from", "--pull=never", self.image]).strip()
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run([*buildah_args(self.store), "rm", self.id], capture_output=True, check=False)  # noqa: S603

    def command(
        self,
        argv: Sequence[str],
        outputs: Path,
        mounts: Mapping[str | Path, str] | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> list[str]:
        """The buildah command that runs argv in the container (chroot isolation: in the caller's network namespace),
        with host:container bind mounts. Its output goes to files under `outputs`, not through buildah: buildah
        1.28's relay of a chroot's output twice lost a short command's whole stdout (exit status 0) while these
        tests ran on a loaded machine, and an empty answer would read as "no command is missing"."""
        outputs.chmod(0o777)
        options = [f"--volume={host}:{inside}" for host, inside in {**(mounts or {}), outputs: OUTPUTS}.items()]
        options += [f"--env={k}={v}" for k, v in (env or {}).items()]
        options += [f"--user={user}"] if user else []
        wrapped = ["/bin/sh", "-c", f'exec "$@" >{OUTPUTS}/stdout 2>{OUTPUTS}/stderr', "sh", *argv]
        return [*buildah_args(self.store), "run", "--isolation", "chroot", *options, self.id, "--", *wrapped]

    def run(
        self,
        argv: Sequence[str],
        mounts: Mapping[str | Path, str] | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """argv in the container, as `command` runs it; its exit status and output."""
        with tempfile.TemporaryDirectory(prefix="orca-run-") as tmp:
            outputs = Path(tmp)
            cmd = self.command(argv, outputs, mounts, env, user)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
            return subprocess.CompletedProcess(cmd, proc.returncode, *read_outputs(outputs, proc.stderr))


# Where a command's output files are mounted in the container.
OUTPUTS = "/run/orca-platform-output"


def read_outputs(outputs: Path, buildah_stderr: str = "") -> tuple[str, str]:
    """(stdout, stderr) a command wrote under `outputs`; buildah's own complaints follow its stderr."""

    def read(name: str) -> str:
        path = outputs / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    return read("stdout"), read("stderr") + buildah_stderr
