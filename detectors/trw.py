"""When a Threshold Random Walk verdict is enough on its own: the early scan rule.

Jung, Paxson, Berger and Balakrishnan ("Fast portscan detection using sequential hypothesis
testing", IEEE S&P 2004) chose theta0 = 0.8 (a benign host's first contacts succeed), theta1 =
0.2 (a scanner's), and the targets P_F = alpha = 0.01 (false positives) and P_D = beta = 0.99
(detection). The walk's thresholds are then eta1 = beta / alpha = 99 and eta0 = (1 - beta) /
(1 - alpha) ~ 0.0101; each failed first contact multiplies the ratio by (1 - theta1) /
(1 - theta0) = 4, each success by theta1 / theta0 = 1/4, so four failures more than successes
cross eta1 (4^4 = 256 >= 99; 4^3 = 64 is not). On their traces TRW needed 4-5 first contacts on
average to declare a scanner, with no false positive on the benign sources they checked by
hand. We keep their parameters (ScanConfig defaults) and their walk.

The fan-out floor (15 failed targets, Zeek's) on top of TRW keeps the few benign sources that
walk up quickly quiet — a client retrying several dead servers, a resolver with lame servers —
but it costs time: 15 probes of a slow scan are minutes. What those benign sources never do is
fail on many *different ports*: a client retries the one or two ports of its service. So the
walk alone names a scanner once it has crossed eta1 with `early_min_targets` failed targets on
at least `early_min_ports` distinct ports, and nearly all first contacts failing
(`early_min_failure_ratio`). Vertical, mixed, UDP and slow scans are then found within about
six probes.

A single-port horizontal sweep looks like a client whose firewall drops its connections to a
service's addresses — but those are a handful of addresses on the Internet. A sweep walks
through *our* address space: so the walk alone also names a source that failed on
`early_min_hosts` (8) hosts of one /24 (IPv4; /64 for IPv6) when it probes inward (direction
internal or inbound). Outbound single-port failures keep the fan-out floor of 15.
"""
from __future__ import annotations


def early_scan(log_ratio: float, upper: float, failed_targets, contacts: int,
               min_targets: int, min_ports: int, min_failure_ratio: float) -> bool:
    """True when the walk has crossed eta1 over enough failed targets on enough ports.

    `failed_targets` are "host|port" strings (ports may be "icmp"); `contacts` counts all first
    contacts in the window, failed or not."""
    if log_ratio < upper or contacts == 0:
        return False
    failed = len(failed_targets)
    if failed < min_targets or failed / contacts < min_failure_ratio:
        return False
    ports = {target.rsplit("|", 1)[1] for target in failed_targets}
    return len(ports) >= min_ports


def early_sweep(log_ratio: float, upper: float, failed_targets, contacts: int, direction,
                min_hosts: int, min_failure_ratio: float) -> bool:
    """True when the walk has crossed eta1 over `min_hosts` failed hosts of one of our /24s."""
    if direction not in ("internal", "inbound") or log_ratio < upper or contacts == 0:
        return False
    failed = len(failed_targets)
    if failed < min_hosts or failed / contacts < min_failure_ratio:
        return False
    hosts_by_net: dict[str, set[str]] = {}
    for target in failed_targets:
        host = target.rsplit("|", 1)[0]
        hosts_by_net.setdefault(_network(host), set()).add(host)
    return max(len(hosts) for hosts in hosts_by_net.values()) >= min_hosts


def _network(host: str) -> str:
    """The /24 of an IPv4 address, the /64 of an IPv6 one (as text: cheap, no parsing)."""
    if ":" in host:
        return ":".join(host.split(":")[:4])
    return host.rsplit(".", 1)[0]
