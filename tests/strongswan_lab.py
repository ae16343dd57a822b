# ruff: noqa: S603, S607
# (fixed argument lists of ip, nft, swanctl and charon from the Debian packages make deb-strongswan installs)
"""Network namespaces and charon processes for the real-strongSwan concentrator tests.

Everything here is created by the test and removed by it: namespaces carry a per-run prefix and are deleted in
teardown, every process is stopped by its own PID, and traffic stays inside these namespaces (the project's network
rule). Addresses are documentation and private ranges that exist only inside the lab.

This machine's kernel has XFRM but no ESP, so every charon uses strongSwan's userspace datapath (kernel-libipsec:
ESP is processed in charon and decrypted packets come out of a TUN device, ipsec0). Azure's VMs use the kernel
datapath instead; what that changes is in docs/vpn.md.

Each charon gets its own STRONGSWAN_CONF, a private tmpfs /run (charon's pid file has a fixed path) through the
mount namespace `ip netns exec` creates, its own vici socket, and a file log with flush_line so the tests can read it
while charon runs (strongswan.conf(5): charon.filelog.<name>.flush_line).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHARON = Path("/usr/lib/ipsec/charon")
SWANCTL = "swanctl"
# Commands are bounded: nothing here waits longer than this for one step.
STEP_TIMEOUT_S = 20.0

# kernel-libipsec before kernel-netlink: the first registered kernel-ipsec interface is the one charon uses, and
# kernel-netlink still provides the networking part (addresses, routes, interface events).
PLUGINS = (
    "random nonce openssl pem pkcs1 x509 pubkey sha1 sha2 hmac gcm aes kdf "
    "kernel-libipsec kernel-netlink socket-default vici"
)


def unavailable_reason() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "nft", SWANCTL):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deb-strongswan)"
    if not CHARON.exists():
        return f"{CHARON} is not installed (make deb-strongswan)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun for kernel-libipsec"
    probe = f"orca-probe-{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False
    )
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=STEP_TIMEOUT_S, check=False)
    return None


def run(*args: str, check: bool = True, timeout: float = STEP_TIMEOUT_S, stdin: str | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=stdin, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def wait_for(what: str, probe: Callable[[], bool], timeout: float = STEP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def strongswan_conf(directory: Path, chd_keys: bool = False) -> str:
    log = directory / "charon.log"
    # chd = 4 logs the CHILD_SA keys (keymat_v2.c derive_child_keys, DBG4): only the attacking clinic of the spoofing
    # test needs them, to encrypt its own packets inside its valid SA.
    chd = 4 if chd_keys else 1
    return f"""charon {{
    load_modular = no
    load = {PLUGINS}
    install_routes = no
    install_virtual_ip = no
    retransmit_tries = 2
    retransmit_timeout = 1.0
    retransmit_base = 1.2
    plugins {{
        vici {{
            socket = unix://{directory}/charon.vici
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
    filelog {{
        main {{
            path = {log}
            time_format = %T
            flush_line = yes
            default = 1
            ike = 2
            cfg = 2
            esp = 2
            chd = {chd}
        }}
    }}
}}
"""


@dataclass
class Charon:
    """One charon in one namespace: its files, its vici socket, its PID."""

    ns: str
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"unix://{self.directory}/charon.vici"

    @property
    def log(self) -> str:
        path = self.directory / "charon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, chd_keys: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "strongswan.conf"
        conf.write_text(strongswan_conf(self.directory, chd_keys))
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "STRONGSWAN_CONF": str(conf)}
        # `ip netns exec` enters a mount namespace of its own (and exec()s: the PID stays charon's), so the tmpfs over
        # /run is private to this charon.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "sh", "-c", f"mount -t tmpfs tmpfs /run && exec {CHARON}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "charon.stderr").open("wb"),
        )
        wait_for(f"charon's vici socket in {self.ns}", (self.directory / "charon.vici").exists)
        wait_for(f"ipsec0 in {self.ns}", lambda: "ipsec0" in run("ip", "-n", self.ns, "link", "show", check=False))

    def swanctl(self, *args: str, check: bool = True, timeout: float = STEP_TIMEOUT_S) -> str:
        env_conf = self.directory / "strongswan.conf"
        return run(
            "env", f"STRONGSWAN_CONF={env_conf}", SWANCTL, *args, "--uri", self.uri, check=check, timeout=timeout
        )

    def load(self, files: dict[str, str]) -> float:
        """Write swanctl.conf (including the given files) and load it all; returns the load's seconds."""
        top = []
        for name, text in files.items():
            path = self.directory / name
            path.write_text(text)
            path.chmod(0o600)
            top.append(f"include {path}")
        (self.directory / "swanctl.conf").write_text("\n".join(top) + "\n")
        started = time.monotonic()
        self.swanctl("--load-all", "--noprompt", "--file", str(self.directory / "swanctl.conf"))
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Lab:
    """Namespaces with a per-run prefix; everything made is remembered and undone by close()."""

    prefix: str
    root: Path
    namespaces: list[str] = field(default_factory=list)
    charons: list[Charon] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    links: int = 0

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        run("ip", "netns", "add", full)
        self.namespaces.append(full)
        run("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def sh(self, ns: str, script: str, check: bool = True, timeout: float = STEP_TIMEOUT_S) -> str:
        return run("ip", "netns", "exec", ns, "sh", "-ec", script, check=check, timeout=timeout)

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair between namespaces a and b (made in the root namespace under unique names, then moved)."""
        self.links += 1
        left, right = f"ol{os.getpid() % 100000}x{self.links}", f"or{os.getpid() % 100000}x{self.links}"
        run("ip", "link", "add", left, "type", "veth", "peer", "name", right)
        run("ip", "link", "set", left, "netns", a, "name", a_if)
        run("ip", "link", "set", right, "netns", b, "name", b_if)
        run("ip", "-n", a, "link", "set", a_if, "up")
        run("ip", "-n", b, "link", "set", b_if, "up")

    def charon(self, ns: str, chd_keys: bool = False) -> Charon:
        c = Charon(ns, self.root / ns)
        self.charons.append(c)
        c.start(chd_keys)
        return c

    def spawn(self, ns: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for c in self.charons:
            c.stop()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


def child_keys(log: str) -> tuple[bytes, bytes]:
    """The last CHILD_SA's (initiator, responder) encryption keys from a charon log with chd = 4."""

    def last_key(which: str) -> bytes:
        lines = log.splitlines()
        starts = [i for i, line in enumerate(lines) if f"encryption {which} key =>" in line]
        if not starts:
            raise AssertionError(f"no '{which}' key in the charon log (chd = 4 missing?)")
        size = int(re.search(r"=> (\d+) bytes", lines[starts[-1]]).group(1))  # type: ignore[union-attr]
        out = bytearray()
        for line in lines[starts[-1] + 1 :]:
            m = re.search(r"\s+\d+: ((?:[0-9A-F]{2} ?)+)", line)
            if m is None or len(out) >= size:
                break
            out += bytes.fromhex(m.group(1).replace(" ", ""))
        return bytes(out[:size])

    return last_key("initiator"), last_key("responder")


# --- the lab's programs (run with this interpreter inside a namespace; each is bounded in time and count) --------

SERVER = """
import socket, sys, threading
# A TCP server that answers each connection with the address it came from, and a UDP sink that records every
# datagram's source and payload: how the tests see which source address reached the server.
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 8080)); tcp.listen(16)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 9999))
log = open(sys.argv[1], "a", buffering=1)
def sink():
    while True:
        data, (src, _) = udp.recvfrom(2048)
        log.write(f"{src} {data.decode(errors='replace')}\\n")
threading.Thread(target=sink, daemon=True).start()
print("ready", flush=True)
while True:
    conn, (src, _) = tcp.accept()
    mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    conn.sendall(f"{src} {mss}\\n".encode()); conn.close()
"""

CLIENT = """
import socket, sys
# Connect from a given source address to the server, print what the server saw. One try, bounded.
src, dst = sys.argv[1], sys.argv[2]
s = socket.socket(); s.settimeout(5); s.bind((src, 0)); s.connect((dst, 8080))
print(s.recv(200).decode().strip())
"""


def server_seen(lab: Lab, ns: str, src: str, dst: str) -> str:
    """What the server saw of one TCP connection from `src` (inside clinic namespace `ns`) to `dst`."""
    script = lab.root / "client.py"
    script.write_text(CLIENT)
    import sys

    return run("ip", "netns", "exec", ns, sys.executable, str(script), src, dst, timeout=15).strip()
