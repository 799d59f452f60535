"""A private 3-member etcd cluster on loopback, for fault tests: find its leader, SIGKILL
a member, start it again.

Why three processes on one machine: production runs etcd as a cluster, and what a
client sees when a member dies (a leader election, an endpoint that refuses
connections, one that answers without a leader) exists only there. Each member has its
own ports and data directory under ``base_dir/<name>``; killing one keeps its data, so
a restart rejoins the cluster as the same member.

Part of ``scripts/services.py`` (see its docstring); standard library only, like it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from services_etcd import EtcdServer
from services_process import ServiceError, free_port, wait_until


@dataclass
class EtcdCluster:
    """``size`` members named ``m0``.. on free loopback ports (peers plain: loopback)."""

    base_dir: Path
    size: int = 3
    compaction_retention: str = "1000"
    members: list[EtcdServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = [(free_port(), free_port()) for _ in range(self.size)]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
        token = f"scheduler-{Path(self.base_dir).name}-{ports[0][1]}"
        self.members = [
            EtcdServer(Path(self.base_dir) / f"m{i}", client_port=client, peer_port=peer,
                       compaction_retention=self.compaction_retention, name=f"m{i}",
                       initial_cluster=initial, cluster_token=token)
            for i, (client, peer) in enumerate(ports)]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def etcd_arg(self) -> str:
        """``--etcd`` as operators give it: every member, comma-separated."""
        return ",".join(self.endpoints)

    def start(self, timeout_s: float = 60.0) -> "EtcdCluster":
        for member in self.members:
            member.spawn()
        for member in self.members:
            wait_until(member.healthy, timeout_s, f"etcd member {member.name}", member.log_path)
        self.wait_leader(timeout_s)
        return self

    def leader(self) -> EtcdServer | None:
        """The member that the answering members agree leads; None during an election."""
        ids: dict[str, EtcdServer] = {}
        leaders = set()
        for member in self.members:
            if member.process is None or member.process.poll() is not None:
                continue
            status = member.status()
            if status is None:
                continue
            ids[str(status["header"]["member_id"])] = member
            leaders.add(str(status.get("leader", "0")))
        if len(leaders) != 1:
            return None
        return ids.get(leaders.pop())

    def knows_leader(self) -> bool | None:
        """Whether a running member that answers Status knows a leader (what a client's
        quorum check reads: False when members answer and none does, i.e. no quorum);
        None when no member answers."""
        answers = [status for m in self.members
                   if m.process is not None and m.process.poll() is None
                   and (status := m.status()) is not None]
        if not answers:
            return None
        return any(str(a.get("leader", "0")) != "0" for a in answers)

    def wait_leader(self, timeout_s: float = 30.0) -> EtcdServer:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (leader := self.leader()) is not None:
                return leader
            time.sleep(0.05)
        raise ServiceError(f"no etcd leader after {timeout_s:.0f} s")

    def followers(self) -> list[EtcdServer]:
        leader = self.leader()
        return [m for m in self.members if m is not leader]

    def kill(self, member: EtcdServer) -> None:
        """SIGKILL one member (a crash); its data stays for ``restart``."""
        member.kill()

    def restart(self, member: EtcdServer, timeout_s: float = 30.0) -> None:
        """Start a killed member again: it rejoins with its data."""
        member.start(timeout_s)

    def stop(self) -> None:
        for member in reversed(self.members):
            if member.process is not None and member.process.poll() is None:
                member.stop()
