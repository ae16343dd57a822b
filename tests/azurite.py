"""Azurite (the Azure Blob emulator, npm package pinned by tools/npm) on 127.0.0.1 over HTTPS, for the PITR tests.

The test makes its own certificate for 127.0.0.1 (openssl), starts azurite-blob on a free loopback port with a
data directory of its own, and stops it by PID; stopping and starting again on the same port and directory is an
object-store outage. barman-cloud reaches it as emulated storage: a path-style URL (`https://host:port/<account>/
<container>/...`) and AZURE_STORAGE_CONNECTION_STRING (barman/cloud_providers/azure_blob_storage.py, __init__);
the Azure SDK's requests session trusts the test certificate through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "tools" / "npm" / "node_modules" / ".bin" / "azurite-blob"
BARMAN_BIN = ROOT / ".venv-barman" / "bin"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (Azurite README, "Default Storage Account"): not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def requirement() -> str | None:
    """Why the emulator or barman-cloud cannot run here, or None."""
    if not AZURITE.exists():
        return "Azurite is not installed (run `make npm-azurite`, which `make test` runs)"
    if not (BARMAN_BIN / "barman-cloud-wal-archive").exists():
        return "barman-cloud is not installed (run `make barman-venv`, which `make test` runs)"
    for tool in ("openssl", "node", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Azurite:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "azurite-data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.cert = root / "azurite-cert.pem"
        self.key = root / "azurite-key.pem"
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
            ],
            check=True,
            capture_output=True,
        )
        self.cert.chmod(0o644)
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = root / "azurite.log"

    @property
    def connection_string(self) -> str:
        endpoint = f"https://127.0.0.1:{self.port}/{ACCOUNT}"
        return f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"

    def url(self, container: str, prefix: str) -> str:
        return f"https://127.0.0.1:{self.port}/{ACCOUNT}/{container}/{prefix}"

    def env(self) -> dict[str, str]:
        """What barman-cloud needs to reach the emulator."""
        return {
            "AZURE_STORAGE_CONNECTION_STRING": self.connection_string,
            "REQUESTS_CA_BUNDLE": str(self.cert),
            "SSL_CERT_FILE": str(self.cert),
        }

    def start(self) -> Azurite:
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603
                [
                    str(AZURITE),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(self.port),
                    "--location",
                    str(self.data),
                    "--cert",
                    str(self.cert),
                    "--key",
                    str(self.key),
                    "--skipApiVersionCheck",
                    "--silent",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                assert self._proc.poll() is None, f"azurite exited: {self.log.read_text()[-2000:]}"
                time.sleep(0.2)
        raise AssertionError("azurite did not listen within 30 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None

    def blob_python(self, code: str) -> str:
        """Run Python with azure-storage-blob (barman's virtualenv) against the emulator; its stdout."""
        run = subprocess.run(  # noqa: S603
            [str(BARMAN_BIN / "python"), "-c", code],
            env={"PATH": "/usr/bin:/bin", **self.env()},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return run.stdout

    def create_container(self, name: str) -> None:
        self.blob_python(
            "import os\nfrom azure.storage.blob import BlobServiceClient\n"
            "BlobServiceClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'])"
            f".create_container({name!r})\n"
        )

    def blobs(self, container: str, prefix: str) -> list[str]:
        out = self.blob_python(
            "import os\nfrom azure.storage.blob import ContainerClient\n"
            "c = ContainerClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'], "
            f"{container!r})\nfor b in c.list_blobs(name_starts_with={prefix!r}):\n    print(b.name)\n"
        )
        return out.split()
