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
six probes; a single-port horizontal sweep still needs the fan-out floor (one port is what a
misconfigured client and a poller with dead hosts look like too).
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
