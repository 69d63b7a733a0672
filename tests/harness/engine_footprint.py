"""What a container engine leaves on the host outside its own folder, and taking it away again.

Docker and podman both program the kernel's netfilter through iptables (the nf_tables flavour
here) for their bridges and published ports, make bridge and veth links, may turn on IP
forwarding, and create a few host paths. `HostFootprint.taken(names)` notes how the host is
before an engine starts; `restore()`, once it has stopped, takes away what was added since and
bears the engine's names (its chains, the rules that name its chains or bridges, its links), and
leaves alone whatever anyone else added meanwhile: another engine's rules, or another engineer's.
A table that did not exist before is deleted only once nothing is left in it.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

FAMILIES = {"ip": "iptables", "ip6": "ip6tables"}
TABLES = ("filter", "nat")
SYSCTLS = ["net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables",
           "net/bridge/bridge-nf-call-ip6tables"]


@dataclass(frozen=True)
class EngineNames:
    """How an engine's additions to the host are told apart from everyone else's."""
    engine: str
    rules: re.Pattern          # a chain of its own, or a rule that names its chains or links
    links: re.Pattern          # its bridges and veths
    paths: tuple[str, ...]     # host paths it creates: removed if it created them
    shared_dirs: tuple[str, ...] = ()  # removed only if it created them and left them empty


@dataclass
class HostFootprint:
    names: EngineNames
    rules: dict[tuple[str, str], set[str]]        # (family, table) -> iptables-save lines
    nft_tables: set[str]
    links: set[str]
    sysctls: dict[str, str]
    forward_policy: dict[str, str]                 # family -> the FORWARD chain's policy
    existing_paths: set[str] = field(default_factory=set)

    @classmethod
    def taken(cls, names: EngineNames) -> HostFootprint:
        return cls(names=names, rules=_rules(), nft_tables=_nft_tables(), links=_links(),
                   sysctls=_sysctls(), forward_policy=_forward_policy(),
                   existing_paths={p for p in names.paths + names.shared_dirs
                                   if os.path.lexists(p)})

    def restore(self) -> list[str]:
        """Takes away what the engine added since; returns what it took away."""
        removed = []
        for (family, table), lines in _rules().items():
            added = lines - self.rules.get((family, table), set())
            removed += self._remove_rules(family, table, added)
        for setting, value in self.sysctls.items():
            if _sysctls().get(setting) != value:
                Path("/proc/sys", setting).write_text(value)
                removed.append(f"{setting} back to {value}")
        for family, policy in self.forward_policy.items():
            if _forward_policy().get(family) != policy:
                subprocess.run([FAMILIES[family], "-P", "FORWARD", policy], check=False)
                removed.append(f"{FAMILIES[family]} FORWARD policy back to {policy}")
        for table in sorted(_nft_tables() - self.nft_tables):  # "ip nat", "ip filter", ...
            if not _nft_table_has_rules(table):
                subprocess.run(["nft", "delete", "table", *table.split()], check=False)
                removed.append(f"nft table {table}")
        for link in sorted(_links() - self.links):
            if self.names.links.match(link):
                subprocess.run(["ip", "link", "delete", link], check=False)
                removed.append(f"link {link}")
        for path in self.names.paths:
            if path not in self.existing_paths and os.path.lexists(path):
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
                removed.append(path)
        for path in self.names.shared_dirs:
            if path not in self.existing_paths and os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
                removed.append(path)
        return removed

    def _remove_rules(self, family: str, table: str, added: set[str]) -> list[str]:
        """Deletes the added rules that bear the engine's names, then its added chains."""
        command = [FAMILIES[family], "-t", table]
        removed = []
        chains = [line[1:].split()[0] for line in added if line.startswith(":")]
        own_chains = [chain for chain in chains if self.names.rules.search(chain)]
        for line in sorted(line for line in added if line.startswith("-A ")):
            chain = line.split()[1]
            if chain not in own_chains and self.names.rules.search(line):
                subprocess.run([*command, "-D", *shlex.split(line)[1:]], check=False)
                removed.append(f"{table} rule {line}")
        for chain in own_chains:
            subprocess.run([*command, "-F", chain], check=False)
        for chain in own_chains:
            subprocess.run([*command, "-X", chain], check=False)
            removed.append(f"{family} {table} chain {chain}")
        return removed


def _rules() -> dict[tuple[str, str], set[str]]:
    """(family, table) -> its chain (":NAME ...", counters dropped) and rule ("-A ...") lines."""
    rules = {}
    for family, tool in FAMILIES.items():
        if not shutil.which(f"{tool}-save"):
            continue
        for table in TABLES:
            listing = subprocess.run([f"{tool}-save", "-t", table], capture_output=True,
                                     text=True, check=False).stdout
            rules[(family, table)] = {re.sub(r" \[\d+:\d+\]$", "", line)
                                      for line in listing.splitlines()
                                      if line.startswith((":", "-A "))}
    return rules


def _forward_policy() -> dict[str, str]:
    policies = {}
    for (family, table), lines in _rules().items():
        if table == "filter":
            policies.update({family: line.split()[1] for line in lines
                             if line.startswith(":FORWARD ")})
    return policies


def _nft_tables() -> set[str]:
    if not shutil.which("nft"):
        return set()
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                             check=False).stdout
    return {line.removeprefix("table ").strip() for line in listing.splitlines() if line.strip()}


def _nft_table_has_rules(table: str) -> bool:
    listing = subprocess.run(["nft", "list", "table", *table.split()], capture_output=True,
                             text=True, check=False).stdout
    # Inside a chain, anything but its head ("type filter hook ... policy accept;") is a rule.
    return any(line.strip() and not line.strip().startswith(("chain ", "type ", "}", "table "))
               for line in listing.splitlines())


def _links() -> set[str]:
    listing = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                             check=False).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()
            if line.count(":") >= 2}


def _sysctls() -> dict[str, str]:
    values = {}
    for setting in SYSCTLS:
        try:
            values[setting] = Path("/proc/sys", setting).read_text().strip()
        except OSError:
            continue
    return values


def processes_named(*names: str) -> list[int]:
    """The pids of the processes on this host whose command name is one of `names`."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in names:
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids
