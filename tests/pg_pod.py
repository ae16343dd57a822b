"""A pod on this machine for the real-PostgreSQL tests: Debian's PostgreSQL, the program's own scripts, and
stand-ins only for what a cluster provides (kubectl, azcopy, ORCA's monitor, and a clock for the monthly rule).

Each Pod is a private mount, PID and network namespace (util-linux unshare), as a Kubernetes pod is: the clinic
volume's state directories are bind-mounted at the image's own paths (/var/lib/postgresql, /etc/postgresql,
/var/log/postgresql, as the pod's subPath mounts put them), the socket directory is the pod's own, PostgreSQL
listens on 5432 of the pod's own loopback, and `pkill -x monitor` sees only the pod's processes. So the scripts run
exactly as rendered, with real pg_ctlcluster (postgresql-common) and real PostgreSQL, and nothing of the host's
PostgreSQL (its clusters, /etc/postgresql, /var/run/postgresql) is read or written. Killing the pod kills every
process in it, as the kubelet does.

Needs root (the ORCA pod runs these scripts as root, and namespaces need it); `requirement()` says what is missing,
for the tests to skip with that message.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
# The image paths the pod binds the volume's state directories to (orca_image.STATE_DIRS), those that exist on a
# Debian host with PostgreSQL installed; ORCA's own directories are never touched by the scripts under test.
PG_PATHS = {
    "postgresql-data": "/var/lib/postgresql",
    "postgresql-conf": "/etc/postgresql",
    "postgresql-log": "/var/log/postgresql",
}
SOCKETS = "/run/postgresql"

KUBECTL = r"""#!/bin/sh
# Stand-in for kubectl: the subset the backup scripts call, answered from files under $STANDIN, every call logged.
set -eu
echo "kubectl $*" >> "$STANDIN/kubectl.log"
case "$1" in
  get)
    case "$2" in
      pod)
        case "$*" in
          *jsonpath*) cat "$STANDIN/pod-claim" ;;
          *) cat "$STANDIN/pods" 2>/dev/null || true ;;
        esac ;;
      deployment)
        if [ -e "$STANDIN/deployment" ]; then echo "deployment.apps/$3"; fi ;;
      volumesnapshot)
        case "$*" in
          *orca-platform.io/snapshot=scheduled*) cat "$STANDIN/scheduled" 2>/dev/null || true ;;
          *) exit 1 ;;
        esac ;;
      volumesnapshot*/*)
        echo "snapcontent-${2##*/}" ;;
      *) echo "kubectl stand-in: unexpected $*" >&2; exit 1 ;;
    esac ;;
  exec)
    # exec POD -c orca -- CMD...: runs CMD with the ORCA container's environment (its password stays there).
    while [ "$1" != "--" ]; do shift; done
    shift
    mode=$(cat "$STANDIN/exec-mode" 2>/dev/null || echo whole)
    out="$STANDIN/exec.out"
    if [ "$mode" = empty ]; then exit 0; fi
    (set -a; . "$STANDIN/orca.env"; set +a; exec "$@") > "$out"
    if [ "$mode" = truncate ]; then
      size=$(wc -c < "$out")
      head -c $((size / 2)) "$out"
    else
      cat "$out"
    fi ;;
  scale)
    if [ -e "$STANDIN/on-scale" ]; then sh "$STANDIN/on-scale"; fi
    : > "$STANDIN/pods" ;;
  apply)
    doc=$(cat)
    name=$(printf '%s\n' "$doc" | sed -n 's/^  name: //p')
    kind=$(printf '%s\n' "$doc" | sed -n 's/^    orca-platform.io\/snapshot: "\(.*\)"/\1/p')
    printf '%s\n---\n' "$doc" >> "$STANDIN/applied.yaml"
    if [ "$kind" = scheduled ]; then echo "volumesnapshot.snapshot.storage.k8s.io/$name" >> "$STANDIN/scheduled"; fi
    echo "volumesnapshot.snapshot.storage.k8s.io/$name created" ;;
  wait) ;;
  patch) ;;
  delete)
    grep -v -x "$2" "$STANDIN/scheduled" > "$STANDIN/scheduled.new" || true
    mv "$STANDIN/scheduled.new" "$STANDIN/scheduled" ;;
  *) echo "kubectl stand-in: unexpected $*" >&2; exit 1 ;;
esac
"""

AZCOPY = r"""#!/bin/sh
# Stand-in for azcopy: the blob account is $STANDIN/blob; --overwrite=false refuses an existing blob, as Azure does.
set -eu
echo "azcopy $*" >> "$STANDIN/azcopy.log"
case "$1" in
  login) ;;
  copy)
    src=$2
    dst=$3
    case "$src" in "$BLOB_URL"/*) src="$STANDIN/blob/${src#"$BLOB_URL"/}" ;; esac
    case "$dst" in
      "$BLOB_URL"/*)
        dst="$STANDIN/blob/${dst#"$BLOB_URL"/}"
        case " $* " in *" --overwrite=false "*) if [ -e "$dst" ]; then echo "blob exists" >&2; exit 1; fi ;; esac
        mkdir -p "$(dirname "$dst")" ;;
    esac
    cp "$src" "$dst" ;;
  *) echo "azcopy stand-in: unexpected $*" >&2; exit 1 ;;
esac
"""

# The pod's first process, as the pause container is: it only reaps what dies in the pod.
REAPER = """
import os, time
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.2)
"""

# ORCA's monitor as the preStop hook meets it: deaf to SIGTERM, gone on SIGUSR1.
MONITOR = """#!/bin/sh
trap '' TERM
trap 'exit 0' USR1
while :; do sleep 1; done
"""

# A clock for the monthly rule: the real date(1), at $FAKE_NOW when set.
DATE = """#!/bin/sh
if [ -n "${FAKE_NOW:-}" ]; then exec /bin/date -d "$FAKE_NOW" "$@"; fi
exec /bin/date "$@"
"""


def server_version() -> str | None:
    """The newest PostgreSQL server major installed by Debian's packages, or None."""
    found = sorted(
        (p.parent.parent.name for p in PG_ROOT.glob("*/bin/postgres")), key=lambda v: [int(x) for x in v.split(".")]
    )
    return found[-1] if found else None


def requirement() -> str | None:
    """Why these tests cannot run here, or None when they can."""
    if server_version() is None:
        return "Debian's PostgreSQL server is not installed (run `make deb-postgres`, which `make test` runs)"
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_createcluster"):
        return "postgresql-common (pg_ctlcluster, pg_createcluster) is not installed (`make deb-postgres`)"
    for tool in ("unshare", "nsenter", "ip", "su", "pkill"):
        if not shutil.which(tool):
            return f"{tool} is missing: the pod harness needs util-linux, iproute2 and procps"
    if os.geteuid() != 0:
        return "needs root: the ORCA pod runs these scripts as root, in namespaces of its own (CI runs as root)"
    probe = subprocess.run(
        ["unshare", "--mount", "--pid", "--net", "--fork", "true"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create mount/PID/network namespaces here ({probe.stderr.strip()})"
    return None


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything about a directory tree that a copy over it would change: names, types, modes, owners, sizes,
    modification times and contents."""
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", str(path.readlink()))
        elif path.is_dir():
            out[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, digest)
    return out


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    def ok(self) -> Result:
        assert self.code == 0, f"exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        return self


@dataclass
class Pod:
    """One pod: its namespaces, its view of the image paths, its scratch and stand-in directories."""

    base: Path
    binds: Mapping[str, Path]
    version: str
    bin_dir: Path  # the stand-ins, first on PATH
    _holder: subprocess.Popen[bytes] | None = None
    _pid: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Pod:
        holder = subprocess.Popen(  # noqa: S603 - fixed arguments, util-linux from PATH
            [  # noqa: S607
                "unshare",
                "--mount",
                "--pid",
                "--net",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                sys.executable,
                "-c",
                REAPER,
            ]
        )
        self._holder = holder
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # unshare forks the pod's first process (its "pause"): the one to enter.
            children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
            text = children.read_text().strip() if children.exists() else ""
            if text:
                self._pid = int(text.split()[0])
                break
            time.sleep(0.05)
        assert self._pid, "the pod's namespaces did not come up"
        self.raw(["ip", "link", "set", "lo", "up"]).ok()
        sockets = self.base / "run-postgresql"
        sockets.mkdir(parents=True, exist_ok=True)
        shutil.chown(sockets, "postgres", "postgres")
        sockets.chmod(0o2775)
        for target, source in {**self.binds, SOCKETS: sockets}.items():
            self.raw(["mount", "--bind", str(source), target]).ok()
        return self

    def raw(
        self, argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 120, net: bool = True
    ) -> Result:
        """Run argv inside the pod with exactly `env` (plus a PATH with the stand-ins first). net=False keeps the
        host's network namespace (loopback services a test started, such as the blob emulator) while the mount
        and PID namespaces are the pod's."""
        assert self._pid
        full = {
            "PATH": f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            **self.env,
            **(env or {}),
        }
        cmd = [
            "nsenter",
            "-t",
            str(self._pid),
            "-m",
            "-p",
            *(["-n"] if net else []),
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in full.items()),
            *argv,
        ]
        begin = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        except subprocess.TimeoutExpired as exc:
            return Result(-1, str(exc.stdout or ""), f"timed out after {timeout}s", time.monotonic() - begin)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - begin)

    def sh(self, script: str, env: Mapping[str, str] | None = None, timeout: float = 120, net: bool = True) -> Result:
        return self.raw(["/bin/sh", "-c", script], env, timeout, net)

    def psql(self, sql: str, db: str = "orca") -> str:
        return (
            self.raw(["su", "postgres", "-c", f'psql -X -A -t -v ON_ERROR_STOP=1 -d {db} -c "{sql}"']).ok().out.strip()
        )

    def kill_all(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """What the kubelet does when the grace period is over: every process of the pod but its pause process."""
        others = '[ "$p" -gt 1 ] && [ "$p" != $$ ]'
        self.sh(f'for p in $(ps -e -o pid=); do {others} && kill -{sig.value} "$p" 2>/dev/null; done; true')

    def stop(self) -> None:
        # SIGKILL at once: `unshare --fork` does not end on SIGTERM while it waits for its child (measured: every
        # teardown waited out a 10 s timeout, 20 s for two pods). --kill-child then kills the pod's first process,
        # and with it the kernel kills every process of the pod's PID namespace, as a deleted pod's are.
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait(timeout=30)
            self._holder = None


class Workspace:
    """A temporary directory the postgres user can traverse (the pods' volumes, scratch and stand-ins)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="orca-pg-"))
        self.root.chmod(0o755)
        self.pods: list[Pod] = []

    def directory(self, *parts: str, mode: int = 0o755, owner: str | None = None) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner:
            shutil.chown(path, owner, owner)
        return path

    def stand_ins(self, name: str) -> Path:
        """The stand-ins' files for one scenario, and their scripts on the pod's PATH."""
        standin = self.directory(name, "standin", mode=0o777)
        bin_dir = self.directory(name, "bin")
        for tool, text in (("kubectl", KUBECTL), ("azcopy", AZCOPY), ("monitor", MONITOR), ("date", DATE)):
            path = bin_dir / tool
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755)
        return standin

    def pod(self, name: str, binds: Mapping[str, Path], version: str, tools: str | None = None) -> Pod:
        """A pod whose PATH starts with the stand-ins of scenario `tools` (default: its own name)."""
        bin_dir = self.root / (tools or name) / "bin"
        pod = Pod(base=self.root / name, binds=binds, version=version, bin_dir=bin_dir).start()
        self.pods.append(pod)
        return pod

    def close(self) -> None:
        for pod in self.pods:
            pod.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def volume_binds(state: Path) -> dict[str, Path]:
    """The running pod's view: the volume's state directories at the image's paths."""
    return {target: state / sub for sub, target in PG_PATHS.items()}


@dataclass
class Volume:
    """A clinic volume as this platform lays it out (orca_image.STATE_DIRS), on the workspace."""

    state: Path

    def make(self) -> Volume:
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)
        for sub in ("postgresql-data", "postgresql-conf", "postgresql-log", "jma-conf", "jma-data", "jma-log"):
            (self.state / sub).mkdir(exist_ok=True)
        shutil.chown(self.state / "postgresql-data", "postgres", "postgres")
        shutil.chown(self.state / "postgresql-log", "postgres", "adm" if _group_exists("adm") else "postgres")
        (self.state / "postgresql-log").chmod(0o1775)
        return self

    def mark_seeded(self, marker: str) -> None:
        for sub in ("postgresql-data", "postgresql-conf", "postgresql-log", "jma-conf", "jma-data", "jma-log"):
            (self.state / sub / marker).touch()


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def iter_lines(text: str) -> Iterator[str]:
    yield from (line for line in text.splitlines() if line.strip())
