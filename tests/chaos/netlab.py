"""Where the chaos nodes live and how their links are faulted.

`NetnsLab` (root): each node in its own network namespace, joined by a veth pair to a
bridge the harness creates; partitions and loss are nftables rules inside the node's
namespace (real packets dropped), delay and jitter are `tc netem` on its veth, or where
the kernel has no sch_netem a `tbf` rate limit (a slow link) instead. `LoopbackLab`
(no root): every node on 127.0.0.1, each validator reaching each peer through its own
port of the fault proxy (tests/chaos/proxy.py). Both keep the wanted faults as state and
re-render them whole, so healing is exact and idempotent.

The namespaces, veths, bridge and addresses (10.231.0.0/24, inside them only) are the
harness's own; `cleanup()` removes every one, and runs at start for leftovers of a run
that was killed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from almoner.node.devnet.network import free_port

NODE_PORT = 7000


@dataclass(frozen=True)
class NetId:
    """Names and addresses of one run's network; two runs with different ids can share a
    machine (id 0: namespaces almc-0…, bridge almc-br, 10.231.0.0/24)."""

    number: int = 0

    @property
    def prefix(self) -> str:
        return "almc" if self.number == 0 else f"almc{self.number}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def subnet(self) -> str:
        return f"10.231.{self.number}"

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.254"


def run(
    *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=stdin)


@dataclass
class LinkFaults:
    blocked: set[tuple[str, str]] = field(default_factory=set)  # (src, dst): src cannot reach dst
    loss: dict[str, int] = field(default_factory=dict)  # node -> percent
    delay: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (ms, jitter ms)

    def clear(self) -> None:
        self.blocked.clear()
        self.loss.clear()
        self.delay.clear()


class Lab:
    kind = "?"
    delay_kind = "delay"  # "delay" (netem or proxy) or "slow" (tbf rate limit)

    def __init__(self, names: list[str], workdir: Path) -> None:
        self.names = names
        self.workdir = workdir
        self.faults = LinkFaults()

    def listen(self, name: str) -> str:
        raise NotImplementedError

    def url(self, name: str) -> str:
        raise NotImplementedError

    def peer_url(self, src: str, dst: str) -> str:
        raise NotImplementedError

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        return argv

    def setup(self) -> None:
        raise NotImplementedError

    def apply(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        self.faults.clear()
        self.apply()


def netns_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        return False
    probe = f"almc-probe-{os.getpid()}"
    run("ip", "netns", "del", probe, check=False)
    ok = run("ip", "netns", "add", probe, check=False).returncode == 0
    run("ip", "netns", "del", probe, check=False)
    return ok


def netem_available() -> bool:
    probe = f"almc-probe-{os.getpid()}"
    run("ip", "netns", "add", probe, check=False)
    try:
        run("ip", "netns", "exec", probe, "ip", "link", "set", "lo", "up", check=False)
        result = run(
            "ip",
            "netns",
            "exec",
            probe,
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
            check=False,
        )
        return result.returncode == 0
    finally:
        run("ip", "netns", "del", probe, check=False)


class NetnsLab(Lab):
    kind = "netns"

    def __init__(self, names: list[str], workdir: Path, net: NetId = NetId()) -> None:
        super().__init__(names, workdir)
        self.net = net
        self.netem = netem_available()
        self.delay_kind = "delay" if self.netem else "slow"

    def ns(self, name: str) -> str:
        return f"{self.net.prefix}-{self.names.index(name)}"

    def ip(self, name: str) -> str:
        return f"{self.net.subnet}.{self.names.index(name) + 1}"

    def listen(self, name: str) -> str:
        return f"{self.ip(name)}:{NODE_PORT}"

    def url(self, name: str) -> str:
        return f"http://{self.ip(name)}:{NODE_PORT}"

    def peer_url(self, src: str, dst: str) -> str:
        return self.url(dst)

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(name), *argv]

    def setup(self) -> None:
        self.cleanup()
        bridge, prefix = self.net.bridge, self.net.prefix
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.net.host_ip}/24", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        self._allow_bridged_forwarding()
        for i, name in enumerate(self.names):
            ns, host_end, ns_end = self.ns(name), f"{prefix}-h{i}", f"{prefix}-n{i}"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            run("ip", "link", "set", host_end, "master", bridge, "up")
            run("ip", "link", "set", ns_end, "netns", ns)
            inside = ("ip", "netns", "exec", ns)
            run(*inside, "ip", "link", "set", ns_end, "name", "eth0")
            run(*inside, "ip", "addr", "add", f"{self.ip(name)}/24", "dev", "eth0")
            run(*inside, "ip", "link", "set", "eth0", "up")
            run(*inside, "ip", "link", "set", "lo", "up")
        self.apply()

    def _ruleset(self, name: str) -> str:
        rules_in, rules_out = [], []
        for src, dst in sorted(self.faults.blocked):
            if src == name:  # connections src opens to dst's port, both directions of them
                rules_out.append(f"ip daddr {self.ip(dst)} tcp dport {NODE_PORT} drop")
                rules_in.append(f"ip saddr {self.ip(dst)} tcp sport {NODE_PORT} drop")
        if pct := self.faults.loss.get(name):
            net, host = f"{self.net.subnet}.0/24", self.net.host_ip
            rules_in.append(f"ip saddr {net} ip saddr != {host} numgen random mod 100 < {pct} drop")
            rules_out.append(
                f"ip daddr {net} ip daddr != {host} numgen random mod 100 < {pct} drop"
            )
        chain = "type filter hook {} priority 0; policy accept;"
        body = "\n".join(
            [
                "table inet almchaos {",
                "  chain input { " + chain.format("input"),
                *(f"    {r}" for r in rules_in),
                "  }",
                "  chain output { " + chain.format("output"),
                *(f"    {r}" for r in rules_out),
                "  }",
                "}",
            ]
        )
        return "table inet almchaos\ndelete table inet almchaos\n" + body + "\n"

    def apply(self) -> None:
        for name in self.names:
            ns = self.ns(name)
            run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=self._ruleset(name))
            run("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
            if name in self.faults.delay:
                ms, jitter = self.faults.delay[name]
                if self.netem:
                    qdisc = ["netem", "delay", f"{ms}ms", f"{jitter}ms"]
                else:  # a slow link: ~ms of queueing per 16 KiB burst
                    qdisc = [
                        "tbf",
                        "rate",
                        f"{max(64, 131072 // max(ms, 1))}kbit",
                        "burst",
                        "16kbit",
                        "latency",
                        f"{max(ms, 50) * 10}ms",
                    ]
                run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", *qdisc)

    def _forward_rule(self) -> tuple[str, ...]:
        return ("FORWARD", "-i", self.net.bridge, "-o", self.net.bridge, "-j", "ACCEPT")

    def _allow_bridged_forwarding(self) -> None:
        """Where Docker has run, the host's FORWARD policy is DROP and bridged frames pass
        through iptables (br_netfilter): without this rule no node reaches another."""
        if shutil.which("iptables"):
            run("iptables", "-I", *self._forward_rule(), check=False)

    def cleanup(self) -> None:
        if shutil.which("iptables"):
            for _ in range(16):  # one per earlier run that died before its cleanup
                if run("iptables", "-D", *self._forward_rule(), check=False).returncode:
                    break
        listed = run("ip", "-o", "link", "show", check=False).stdout
        for line in listed.splitlines():
            dev = line.split(":")[1].strip().split("@")[0]
            if dev.startswith(f"{self.net.prefix}-"):
                run("ip", "link", "del", dev, check=False)
        for line in run("ip", "netns", "list", check=False).stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"{self.net.prefix}-") and not ns.startswith("almc-probe"):
                run("ip", "netns", "del", ns, check=False)


class LoopbackLab(Lab):
    kind = "loopback"

    def __init__(self, names: list[str], workdir: Path) -> None:
        super().__init__(names, workdir)
        self.ports = {n: free_port() for n in names}
        self.routes = {(s, d): free_port() for s in names for d in names if s != d}
        self.rules_file = workdir / "proxy-faults.json"
        self.proxy: subprocess.Popen[bytes] | None = None

    def listen(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def peer_url(self, src: str, dst: str) -> str:
        return f"http://127.0.0.1:{self.routes[(src, dst)]}"

    def setup(self) -> None:
        self.apply()
        log = open(self.workdir / "proxy.log", "ab")  # noqa: SIM115 - the child owns it
        self.proxy = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.proxy", str(self.rules_file)],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        assert self.proxy.stdout is not None
        if b"proxy ready" not in self.proxy.stdout.readline():
            raise RuntimeError(f"fault proxy did not start; see {self.workdir / 'proxy.log'}")

    def apply(self) -> None:
        rules = {
            "routes": [
                {"src": s, "dst": d, "listen": port, "target": self.ports[d]}
                for (s, d), port in self.routes.items()
            ],
            "blocked": sorted([s, d] for s, d in self.faults.blocked),
            "delay": {n: list(v) for n, v in self.faults.delay.items()},
            "loss": dict(self.faults.loss),
        }
        tmp = self.rules_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(rules))
        tmp.replace(self.rules_file)

    def cleanup(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.kill()
            self.proxy.wait()


def make_lab(mode: str, names: list[str], workdir: Path, net: NetId = NetId()) -> Lab:
    if mode == "auto":
        mode = "netns" if netns_available() else "loopback"
    return NetnsLab(names, workdir, net) if mode == "netns" else LoopbackLab(names, workdir)
