"""Issue 25: the tools image (`backup.toolsImage`) against the scripts the program renders for it.

The commands are read from the rendered objects (every container whose image is the tools image, the script its
command runs and the scripts that one runs), not listed by hand; each must resolve inside the image built by
`make image-tools` (buildah), as the image's user. The dump and restore scripts then run inside the image against a
real PostgreSQL server (Debian's, in a pod of tests/pg_pod.py). Tests that need the image skip, saying so, where it
is not built; `make unit` builds it first.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import pg_pod
from tests.orca_test_support import load_settings, raw_settings
from tools.images import build, commands, contract, scan
from tools.offline.engine import PROJECT_DIR, reveal, run_program, stack_config
from tools.reports import generated_blocks

CLINIC = "test-sakura"
DUMP_KEY = f"daily/{CLINIC}/20261121T163000Z.dump"
# Scripts of ORCA's own image: they must never be taken for the tools image's.
ORCA_IMAGE_SCRIPTS = {"pre-upgrade-dump.sh", "pre-upgrade-mark.sh", "restore-apply.sh", "verify.sh"}


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The dev stack's Kubernetes objects, with a dump restore on one clinic so its fetch step is rendered too."""
    doc = yaml.safe_load((PROJECT_DIR / "tenants.dev.yaml").read_text(encoding="utf-8"))
    for clinic in doc["clinics"]:
        if clinic["id"] == CLINIC:
            clinic["restores"] = [{"id": "r1", "fromDump": DUMP_KEY}]
    path = tmp_path_factory.mktemp("tenants") / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    run = run_program("dev", stack_config("dev", overrides={"orca-platform:tenantsFile": str(path)}))
    return [reveal(r.inputs) for r in run.resources if r.is_kubernetes]


def _named(objects: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    """The one object of the clinic's namespace of this kind whose name starts with `prefix`."""
    (found,) = [
        o for o in objects
        if o.get("kind") == kind and (o.get("metadata") or {}).get("namespace") == f"orca-{CLINIC}"
        and o["metadata"]["name"].startswith(prefix)
    ]  # fmt: skip
    return found


@pytest.fixture(scope="module")
def tools_image() -> str:
    return load_settings("dev").backup.tools_image


@pytest.fixture(scope="module")
def runs(objects: list[dict[str, Any]], tools_image: str) -> list[contract.ScriptRun]:
    return contract.tools_image_scripts(objects, tools_image)


# --- reading the scripts (no image needed) -------------------------------------------------------------------------


def test_the_reader_finds_commands_where_sh_runs_them() -> None:
    script = """\
set -eu
# a comment naming rm
X=1 Y="$(tr a b < "$f")" nohup env A=1 awk '{print}' > "$WORK/out" 2>&1
pods=$(kubectl get pod -o name | head -n 1)
if ! pg_restore --list "$a" >/dev/null; then echo "n=$(wc -c < "$a")" >&2; fi
for s in $(seq 3); do sleep "$s"; done
case "$x" in
  *"stop"*) grep -q a b ;;
  *) refuse "no" ;;
esac
refuse() { echo "$*" >&2; exit 1; }
kubectl exec "$pod" -- sh -c 'pg_dump -Fc db'
su postgres -c "psql -c 'select 1'"
trap 'cleanup_tool || true' EXIT
trap - EXIT
if command -v zstd >/dev/null; then :; fi
cat <<DOC
name: $(hostname)
DOC
cat <<'RAW'
$(never_run)
RAW
sh "$SCRIPTS/other.sh"
n=$(( (a - 1) * 60 ))
"""
    found = commands.scan(script)
    assert found.commands == {
        "set", "nohup", "env", "awk", "tr", "kubectl", "head", "pg_restore", "echo", "wc", "seq",
        "sleep", "grep", "exit", "psql", "su", "cleanup_tool", "true", "trap", "cat", "hostname", "sh", "command", ":",
    }  # fmt: skip
    assert found.functions == {"refuse"}
    assert found.scripts == {"$SCRIPTS/other.sh"}
    assert "pg_dump" not in found.commands, "kubectl exec runs it in another container"
    assert commands.scan('"$tool" --version\n').dynamic == {"$tool"}


def test_a_function_that_runs_its_argument_makes_each_call_name_a_command() -> None:
    """The archive's scripts wrap barman-cloud in a function with a time limit: the commands are its callers'."""
    script = """\
cloud() {
  limit=$1
  tool=$2
  shift 2
  timeout "$limit" "$tool" --cloud-provider azure-blob-storage "$@"
}
retry() { "$@" || "$@"; }
cloud 600 barman-cloud-wal-restore "$URL" server "$name"
if cloud 60 barman-cloud-wal-archive --gzip "$URL" server "$f"; then :; fi
retry sync
timeout 5 "$tool" --version
"""
    found = commands.scan(script)
    assert {"barman-cloud-wal-restore", "barman-cloud-wal-archive", "sync", "timeout"} <= found.commands
    assert not {"cloud", "retry", "600", "60"} & found.commands
    assert found.dynamic == {"$tool"}, "outside a function the expansion names nothing"


def test_the_scripts_of_the_tools_image_are_found_in_what_the_program_renders(
    runs: list[contract.ScriptRun],
) -> None:
    names = {run.where.rsplit(": ", 1)[1] for run in runs}
    assert {"snapshot.sh", "dump.sh", "store-dump.sh", "pre-upgrade-stop.sh", "pre-upgrade-store.sh"} <= names
    assert {"restore-fetch.sh", "move.sh"} <= names, "the restore's fetch step and the maintenance mover"
    assert not names & ORCA_IMAGE_SCRIPTS
    used = contract.commands_of(runs)
    assert {"kubectl", "azcopy", "pg_restore", "date", "head", "wc", "sleep"} <= set(used)
    assert "pg_dump" not in used and "pg_ctlcluster" not in used, "those run in ORCA's image"


def test_a_program_run_directly_and_a_script_of_another_image_are_told_apart() -> None:
    pod = {
        "containers": [
            {"name": "wal", "image": "tools:1", "command": ["barman-cloud-wal-archive", "--cloud-provider", "azure"]},
            {"name": "orca", "image": "orca:1", "command": ["sh", "-c", "pg_ctlcluster 12 main start"]},
        ],
        "initContainers": [{"name": "seed", "image": "tools:1", "command": ["/bin/sh", "-c", "cp -a /a /b"]}],
    }
    objects = [{"kind": "Deployment", "metadata": {"namespace": "n", "name": "d"}, "spec": {"template": {"spec": pod}}}]
    used = contract.commands_of(contract.tools_image_scripts(objects, "tools:1"))
    assert set(used) == {"barman-cloud-wal-archive", "cp"}


def test_the_readme_block_is_generated_from_the_containerfile() -> None:
    assert generated_blocks.update(contract.TARGET, contract.files(), check=True) == 0, "run make image-readme"


def test_the_image_serves_every_stacks_postgresql_and_kubernetes_versions() -> None:
    """pg_restore reads archives of its own and older pg_dump only (postgres/postgres src/bin/pg_dump/
    pg_backup_archiver.c, ReadHead: "unsupported version" above K_VERS_MAX); kubectl is supported within one minor
    version of the API server (kubernetes/website content/en/releases/version-skew-policy.md, kubectl)."""
    c = contract.contents()
    kubectl_minor = int(c.kubectl_minor.split(".")[1])
    for stack in ("dev", "prod"):
        raw = raw_settings(stack)
        server = int(float(raw["orca"]["postgresVersion"]))
        assert server <= c.postgres_major, f"{stack}: PostgreSQL {server} dumps need pg_restore >= {server}"
        cluster = int(str(raw["cluster"]["kubernetesVersion"]).split(".")[1])
        assert abs(cluster - kubectl_minor) <= 1, f"{stack}: kubectl {c.kubectl_minor} vs cluster 1.{cluster}"


def test_the_build_key_changes_with_every_input(tmp_path: Path) -> None:
    context = tmp_path / "tools"
    shutil.copytree(build.CONTEXT, context)
    before = build.inputs(context)
    assert before == build.inputs(build.CONTEXT)
    with (context / "requirements.txt").open("a", encoding="utf-8") as f:
        f.write("# a change\n")
    changed = build.inputs(context)
    assert changed.tag != before.tag and changed.base == before.base
    # What a local npm install leaves is not an input: the build copies only the files it names.
    (context / "node_modules" / "x").mkdir(parents=True)
    (context / "node_modules" / "x" / "index.js").write_text("", encoding="utf-8")
    assert build.inputs(context) == changed


def test_the_scan_reads_which_packages_a_security_update_has_passed_by() -> None:
    listing = """Listing...
libssl3t64/stable-security,stable 3.5.1-1+deb13u2 amd64 [upgradable from: 3.5.1-1+deb13u1]
tzdata/stable-updates 2026g-0+deb13u1 all [upgradable from: 2026f-0+deb13u1]
"""
    assert scan.parse_upgradable(listing) == [
        scan.Lagging("libssl3t64", "3.5.1-1+deb13u1", "3.5.1-1+deb13u2", security=True),
        scan.Lagging("tzdata", "2026f-0+deb13u1", "2026g-0+deb13u1", security=False),
    ]


def test_where_the_image_cannot_be_built_the_tests_are_told_and_a_build_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runner that is not root: `make unit` goes on (its image tests skip), `make image-tools` fails clearly."""
    monkeypatch.setattr(build.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(build, "image_exists", lambda *_: False)
    assert build.main(["--for-tests"]) == 0
    assert "not built here" in capsys.readouterr().out
    assert build.main([]) == 1
    assert "needs root" in capsys.readouterr().err


# --- the built image -------------------------------------------------------------------------------------------------


def _image_reason() -> str | None:
    if shutil.which("buildah") is None:
        return "buildah is not installed (make deb-buildah, which make unit runs)"
    tag = build.inputs().tag
    if not build.image_exists(tag):
        return f"{tag} is not built (make image-tools, which make unit runs)"
    return None


IMAGE_REASON = _image_reason()
needs_image = pytest.mark.skipif(IMAGE_REASON is not None, reason=f"tools image tests skipped: {IMAGE_REASON}")


@pytest.fixture(scope="module")
def image() -> Iterator[build.Container]:
    with build.Container(build.inputs().tag) as container:
        yield container


def missing(container: build.Container, names: list[str]) -> list[str]:
    """The names `command -v` does not find in the image, as its user with its PATH."""
    probe = 'for c do command -v "$c" >/dev/null 2>&1 || printf "%s\\n" "$c"; done'
    result = container.run(["/bin/sh", "-c", probe, "sh", *names])
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@needs_image
def test_every_command_the_rendered_scripts_call_is_in_the_image(
    image: build.Container, runs: list[contract.ScriptRun]
) -> None:
    used = contract.commands_of(runs)
    absent = missing(image, sorted(used))
    assert absent == [], {name: used[name] for name in absent}


@needs_image
def test_a_script_that_calls_a_tool_the_image_lacks_fails_the_check(
    image: build.Container, objects: list[dict[str, Any]], tools_image: str
) -> None:
    changed = copy.deepcopy(objects)
    scripts = _named(changed, "ConfigMap", "orca-backup-scripts")
    scripts["data"]["store-dump.sh"] += 'zstd -19 "$archive"\n'
    used = contract.commands_of(contract.tools_image_scripts(changed, tools_image))
    assert missing(image, sorted(used)) == ["zstd"]


@needs_image
def test_the_image_runs_its_tools_as_its_user_without_caches(image: build.Container) -> None:
    def out(*argv: str) -> str:
        result = image.run(list(argv))
        assert result.returncode == 0, f"{argv}: {result.stderr}"
        return result.stdout.strip()

    assert out("id", "-u") == "65532"
    # Run, not only found: a binary whose shared libraries are missing is found and exits 127.
    azcopy = out("azcopy", "--version").rsplit(" ", 1)[-1]
    assert tuple(int(x) for x in azcopy.split(".")[:2]) >= (10, 25), "--login-type=workload needs 10.25"
    assert "v1.34." in out("kubectl", "version", "--client")
    assert out("pg_restore", "--version").startswith("pg_restore (PostgreSQL) 17.")
    (barman,) = contract.contents().pypi.values()
    assert out("barman-cloud-wal-archive", "--version") == f"barman-cloud-wal-archive {barman}"
    assert out("python3", "-c", "import azure.identity, azure.storage.blob, psycopg2; print('ok')") == "ok"
    # The WAL archiver runs it in ORCA's pod as that image's postgres user, a uid this image does not know.
    stranger = image.run(["barman-cloud-wal-archive", "--version"], user="999:999")
    assert stranger.returncode == 0 and barman in stranger.stdout, stranger.stderr
    # The monthly rule's clock: a POSIX TZ rule, no zone file read.
    assert out("env", "TZ=JST-9", "date", "-d", "2026-11-30T16:30:00Z", "+%d") == "01"
    # As root, who can read everywhere: apt's lists and caches, shell histories, pip's and npm's caches, logs, and
    # the build's CA secret.
    look = image.run(
        ["/bin/sh", "-c", "ls -A /var/lib/apt/lists /var/cache/apt /var/log; find / -xdev \\( -name '.*_history' "
         "-o -name .npm -o -name .cache -o -name '*.deb' -o -path /run/secrets \\) -print"],
        user="0:0",
    )  # fmt: skip
    assert look.returncode == 0, look.stderr
    leftovers = [line for line in look.stdout.splitlines() if line and not line.endswith(":")]
    assert leftovers == [], leftovers


@needs_image
def test_the_image_is_labelled_with_its_source_commit_and_inputs() -> None:
    tag = build.inputs().tag
    proc = subprocess.run(  # noqa: S603
        [*build.buildah_args(), "inspect", "--type", "image", tag],
        capture_output=True,
        text=True,
        check=True,
    )
    labels = json.loads(proc.stdout)["OCIv1"]["config"]["Labels"]
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert labels["io.orca-platform.inputs-digest"] == build.inputs().digest
    assert labels["org.opencontainers.image.base.name"] == contract.contents().base


# --- the dump and restore scripts inside the image, against a real PostgreSQL ------------------------------------

PG_REASON = pg_pod.requirement()
DB_PASSWORD = "tools-image-2026"
ROWS = 1500


def _container_env(objects: list[dict[str, Any]], kind: str, name: str, container: str) -> dict[str, str]:
    """A container's plain environment as rendered for the clinic."""
    obj = _named(objects, kind, name)
    for pod in contract.pod_specs(obj["spec"]):
        for c in [*(pod.get("initContainers") or []), *pod["containers"]]:
            if c["name"] == container:
                return {e["name"]: e["value"] for e in c.get("env") or [] if isinstance(e.get("value"), str)}
    raise AssertionError(f"{kind} {name} has no container {container}")


@needs_image
@pytest.mark.skipif(PG_REASON is not None, reason=f"real PostgreSQL tests skipped: {PG_REASON}")
def test_the_dump_and_restore_scripts_run_in_the_image_against_a_real_server(
    objects: list[dict[str, Any]], tools_image: str
) -> None:
    """dump.sh, snapshot.sh and restore-fetch.sh as rendered, in the image, as its user: the ORCA pod's pg_dump (the
    kubectl stand-in's exec) reaches the server over the pod's loopback, the image's pg_restore checks the archive,
    the azcopy stand-in stores it; a truncated dump is refused; a dump the server's own pg_dump wrote is fetched,
    checked and read back into a new database with every row."""
    config_map = _named(objects, "ConfigMap", "orca-backup-scripts")
    version = pg_pod.server_version()
    assert version is not None
    ws = pg_pod.Workspace()
    try:
        standin = ws.stand_ins("image")
        scripts = ws.directory("image", "scripts")
        for key, text in config_map["data"].items():
            (scripts / key).write_text(text, encoding="utf-8")
        work = ws.directory("image", "work", mode=0o777)
        (standin / "orca.env").write_text(
            f"ORCA_DB_USER=orca\nORCA_DB_NAME=orca\nORCA_DB_PASS={DB_PASSWORD}\n", encoding="utf-8"
        )
        (standin / "pods").write_text("pod/orca-7d9f-x1\n", encoding="utf-8")
        volume = pg_pod.Volume(ws.root / "image" / "state").make()
        pod = ws.pod("image", pg_pod.volume_binds(volume.state), version)
        pod.raw(["pg_createcluster", version, "main"]).ok()
        pod.raw(["pg_ctlcluster", version, "main", "start"]).ok()
        pod.psql(f"CREATE ROLE orca LOGIN PASSWORD '{DB_PASSWORD}'", db="postgres")
        pod.psql("CREATE DATABASE orca OWNER orca", db="postgres")
        pod.psql("CREATE TABLE receipts (id bigserial PRIMARY KEY, patient text, points integer)")
        pod.psql(
            "INSERT INTO receipts (patient, points) SELECT '患者 ' || g, g % 997 "  # noqa: S608 - a test's literal
            f"FROM generate_series(1, {ROWS}) g"
        )
        pod.psql("ALTER TABLE receipts OWNER TO orca")
        pod.psql("CREATE DATABASE orca_copy OWNER orca", db="postgres")

        with build.Container(build.inputs().tag) as image:
            image_path = image.run(["/bin/sh", "-c", "echo $PATH"]).stdout.strip()

            def in_image(argv: list[str], env: dict[str, str]) -> pg_pod.Result:
                # buildah run from inside the pod's namespaces: chroot isolation keeps the caller's network, so
                # the image reaches the pod's server on the pod's loopback and nothing else.
                mounts = {scripts: "/scripts", work: "/work", standin: "/standin", pod.bin_dir: "/standin-bin"}
                full = {**env, "STANDIN": "/standin", "PATH": f"/standin-bin:{image_path}"}
                outputs = ws.directory("image", f"output-{len(list(ws.root.glob('image/output-*')))}")
                done = pod.raw(image.command(argv, outputs, mounts, full), timeout=300)
                return pg_pod.Result(done.code, *build.read_outputs(outputs, done.err), done.seconds)

            cron = _container_env(objects, "CronJob", "orca-dumps", "backup")
            assert cron["SCRIPTS"] == "/scripts" and cron["WORK"] == "/work"
            (standin / "exec-mode").write_text("whole", encoding="utf-8")
            in_image(["/bin/sh", "/scripts/dump.sh"], {**cron, "FAKE_NOW": "2026-11-21T16:30:00Z"}).ok()
            (stored,) = (standin / "blob" / "daily" / CLINIC).iterdir()
            assert stored.read_bytes()[:5] == b"PGDMP"

            (standin / "exec-mode").write_text("truncate", encoding="utf-8")
            refused = in_image(["/bin/sh", "/scripts/dump.sh"], {**cron, "FAKE_NOW": "2026-11-22T16:30:00Z"})
            assert refused.code != 0 and "refused" in refused.err
            assert len(list((standin / "blob" / "daily" / CLINIC).iterdir())) == 1, "nothing more was stored"

            # The snapshot job, with the image's date and head: the VolumeSnapshot it applies names the volume.
            snapshots = _container_env(objects, "CronJob", "orca-snapshots", "backup")
            snap = in_image(["/bin/sh", "/scripts/snapshot.sh"], {**snapshots, "PVC": "orca-state"}).ok()
            assert "persistentVolumeClaimName: orca-state" in (standin / "applied.yaml").read_text()
            assert "ready" in snap.out

            # A restore fetches a dump the clinic's own server wrote (ORCA's pg_dump, the server's major): the
            # image's pg_restore checks it, and loads it into a new database of that server.
            own = standin / "blob" / "daily" / CLINIC / "20261120T163000Z.dump"
            written = ws.directory("image", "server-dump", owner="postgres") / "orca.dump"
            pod.raw(["su", "postgres", "-c", f"pg_dump -Fc -f {written} orca"]).ok()
            shutil.copyfile(written, own)
            fetch = _container_env(objects, "Job", "orca-restore-r1", "fetch-dump")
            (work / "orca.dump").unlink()
            key = str(own.relative_to(standin / "blob"))
            in_image(["/bin/sh", "/scripts/restore-fetch.sh"], {**fetch, "DUMP": key}).ok()
            assert (work / "orca.dump").read_bytes() == own.read_bytes()

            # pg_restore 17 sets transaction_timeout, which servers before 17 do not know: the image's pg_restore
            # checks dumps and never loads them into the clinic's server (restore-apply.sh runs ORCA's own).
            restore = ["pg_restore", "-h", "localhost", "-U", "orca", "-d", "orca_copy", "/work/orca.dump"]
            strict = in_image([restore[0], "--exit-on-error", *restore[1:]], {"PGPASSWORD": DB_PASSWORD})
            assert strict.code != 0 and 'unrecognized configuration parameter "transaction_timeout"' in strict.err
            loaded = in_image(restore, {"PGPASSWORD": DB_PASSWORD})
            assert "errors ignored on restore: 1" in loaded.err, loaded.err
        assert pod.psql("SELECT count(*) FROM receipts", db="orca_copy") == str(ROWS)
        same = "SELECT sum(points) || ' ' || max(patient) FROM receipts"
        assert pod.psql(same, db="orca_copy") == pod.psql(same)
    finally:
        ws.close()
