"""Per (client, registered domain) features of DNS tunnels beyond "long random names".

The first dns_tunneling rule counts unique subdomains that are long (>= 20 characters) and
high-entropy: it finds a tunnel moving data in bulk. Real tools also idle (a short encoded poll
every few seconds), send hex of unencrypted data (hex never exceeds 4 bits per character), and
split data into short labels. What they cannot avoid:
- **fresh names**: a repeated name is answered from the resolver's cache and never reaches the
  attacker's server, so every query carries a new subdomain;
- **encoded labels**: hex, base32 or base64 (lower-cased in transit), i.e. letters and digits
  interleaved with no hyphen — where host names are words, words with a number (`web01`,
  `server2019`), or hyphenated CDN labels (`rr3---sn-ab5l6nzr`); or 8-bit octets, which no
  host name carries (iodine's default Base128 encoding);
- **one of**: tunnel record types (TXT, NULL, CNAME, MX), failing answers (NXDOMAIN, REFUSED,
  SERVFAIL — a tunnel under a zone the resolver will not serve, or a server that only listens),
  big answers (data coming back), long names (data going out), or a regular clock (polling).

`encoded_verdict` alerts when a client asks >= `min_encoded_names` fresh encoded names under
one registered domain in the window with at least one of those signals, or 10x as many without
one (a tunnel in A records with short labels). A CDN's hashed host names (`d1a2b3c4.cloudfront`)
are encoded too, but a client asks a handful, answered with addresses, at the browser's pace.
Reputation services that put a hash in the name by design are ignored by default (dns.py).

A channel can also run one way, downstream: a stager pulls a script or payload in TXT answers to
plain, numbered names (`l.1.ns.<domain>`, `l.2…`; Cobalt Strike's `aaa.stage.<n>.<domain>`).
Its queries carry no data, but its answers do: `downstream_verdict` alerts when fresh names
under one domain bring back >= `min_encoded_names` answers of encoded data (>= 100 characters
of base64/hex text, no spaces). Mail servers' DKIM keys are base64 too, but they live under
`_domainkey` and a domain has a handful of selectors; they are not counted.
"""
from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from detectors.clock import ticks
from detectors.kit import part, text

FAILING = frozenset({"NXDOMAIN", "REFUSED", "SERVFAIL", "NOTIMP"})
HEX = frozenset("0123456789abcdef")
ENCODED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_TIMES = 32               # newest fresh-name times kept per key, for the clock
SIGNAL_SHARE = 0.5           # share of names / answers that makes a signal
LONG_NAME_CHARS = 24         # mean encoded characters per name that carries data out
BIG_ANSWER_CHARS = 100       # mean answer text per answered query that carries data back
DATA_ANSWER_CHARS = 100      # one answer's encoded text that counts as data coming back
DATA_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")
MIN_CLOCK_SECONDS = 0.5
_TXT_PREFIX = re.compile(r"(?:^| )TXT \d+ ")
_TOKEN_SPLIT = re.compile(r"[.\-\s]+")
BASE64_TOKEN_CHARS = 24      # a mixed-case base64 token this long in a target is data
NULL_ANSWER = "<unknown type=10>"   # how the packet collector and Zeek write a NULL record


@dataclass
class DomainFeatures:
    encoded: int = 0          # fresh subdomains that look encoded
    encoded_chars: int = 0    # their characters, dots excluded
    answered: int = 0         # transactions with a response code
    failed: int = 0           # ... of which NXDOMAIN / REFUSED / SERVFAIL / NOTIMP
    answer_chars: int = 0     # answer data text over answered transactions
    data_answers: int = 0     # answers to fresh names that carry encoded data (downstream)
    times: list[float] = field(default_factory=list)   # newest fresh-name query times


@dataclass
class Verdict:
    count: int                # fresh encoded names: the alert's count
    signals: list[str]


def observe(features: DomainFeatures, event: dict, subdomain: str, fresh: bool,
            event_time: float) -> bool:
    """Add one DNS transaction; `fresh` when its subdomain was not asked before in the window.
    True when it brought encoded data back to a fresh name (evidence of a downstream channel)."""
    dns = part(event, "dns")
    code = text(dns.get("response_code"))
    carried = False
    if code:
        features.answered += 1
        features.failed += code.upper() in FAILING
        answers = dns.get("answers") if isinstance(dns.get("answers"), list) else []
        typed = [(str(a.get("type", "")), str(a.get("data", ""))) for a in answers
                 if isinstance(a, dict)]
        features.answer_chars += sum(len(data) for _, data in typed)
        carried = fresh and "_domainkey" not in subdomain.split(".") \
            and any(is_data_answer(kind, data) for kind, data in typed)
        features.data_answers += carried
    if fresh:
        features.times = (features.times + [event_time])[-MAX_TIMES:]
    if fresh and looks_encoded(subdomain):
        features.encoded += 1
        features.encoded_chars += len(subdomain.replace(".", ""))
    return carried


def encoded_verdict(features: DomainFeatures, unique: int, queries: int, tunnel_types: int,
                    min_names: int) -> Verdict | None:
    """A tunnel when enough fresh encoded names come with a tunnel's signal (module doc)."""
    n = features.encoded
    if n < min_names or n < SIGNAL_SHARE * unique or unique < SIGNAL_SHARE * queries:
        return None
    signals = [name for name, present in (
        ("record_types", tunnel_types >= SIGNAL_SHARE * unique),
        ("failing_answers", features.answered >= min_names // 2
         and features.failed >= SIGNAL_SHARE * features.answered),
        ("long_names", features.encoded_chars >= LONG_NAME_CHARS * n),
        ("big_answers", features.answered > 0
         and features.answer_chars >= BIG_ANSWER_CHARS * features.answered),
        ("clock", is_clock(features.times, min_names)),
    ) if present]
    if signals or n >= 10 * min_names:
        return Verdict(n, signals or ["volume"])
    return None


def downstream_verdict(features: DomainFeatures, min_names: int) -> Verdict | None:
    """A one-way channel: fresh names whose answers bring encoded data back (module doc)."""
    if features.data_answers >= min_names:
        return Verdict(features.data_answers, ["encoded_answers"])
    return None


def is_data(answer: str) -> bool:
    """Answer text that is encoded data: a string of >= DATA_ANSWER_CHARS with no space, at
    least 95 % base64/hex characters (a stager may frame its chunks, e.g. "@…@") and the
    entropy of encoded text. The packet collector and Zeek write TXT answers as
    "TXT <length> <string>", joined by spaces."""
    for string in _TXT_PREFIX.split(answer):
        if len(string) < DATA_ANSWER_CHARS or " " in string:
            continue
        coded = sum(c in DATA_CHARS for c in string)
        if coded >= 0.95 * len(string) and shannon_entropy(string) >= 3.5:
            return True
    return False


def is_data_answer(kind: str, data: str) -> bool:
    """An answer record that carries data rather than pointing somewhere: any NULL record
    (iodine's default; no other software uses the type); a TXT string of
    encoded data (`is_data`); an IPv6 address whose 16 bytes are all printable ASCII (text
    packed into AAAA records: a routable address has random or zero interface bytes, so
    all 16 printable is ~1 in 10^6); or a CNAME/MX/NS target with a mixed-case base64
    token (`is_base64_token`: host names are case-insensitive and written in lower case)."""
    kind = kind.upper()
    if kind == "NULL" or data.strip() == NULL_ANSWER:
        return True                         # RFC 1035's experimental NULL: only tunnels use it
    if kind == "AAAA":
        return _printable_ipv6(data)
    if kind in ("CNAME", "MX", "NS", "PTR"):
        return any(is_base64_token(t) for t in _TOKEN_SPLIT.split(data))
    return is_data(data)


def is_base64_token(token: str) -> bool:
    """>= BASE64_TOKEN_CHARS of the base64 alphabet with upper, lower case and digits."""
    return len(token) >= BASE64_TOKEN_CHARS and set(token) <= DATA_CHARS \
        and any(c.isupper() for c in token) and any(c.islower() for c in token) \
        and any(c.isdigit() for c in token) and shannon_entropy(token) >= 3.5


def _printable_ipv6(text: str) -> bool:
    try:
        packed = ipaddress.IPv6Address(text.strip()).packed
    except ValueError:
        return False
    return all(0x20 <= b <= 0x7E for b in packed)


def is_clock(times: list[float], min_names: int) -> bool:
    """Fresh names asked on a regular clock (an idle tunnel polling), jitter up to ~30 %."""
    # 11 of 12 intervals within +-40 % of the median (detectors/clock.py); below 0.5 s
    # between fresh names is a burst, not a clock.
    return len(times) >= min_names and ticks(sorted(times), MIN_CLOCK_SECONDS)


def looks_encoded(subdomain: str) -> bool:
    """Hex, base32 or base64 data rather than a host name (its longest label decides)."""
    label = max(subdomain.split("."), key=len, default="")
    if len(label) >= 6 and _has_raw_bytes(subdomain):
        return True                         # 8-bit data (iodine's Base128 and raw modes)
    if len(label) < 6 or not set(label) <= ENCODED_CHARS:
        return False                        # short, or hyphenated / punctuated: a host name
    if len(label) >= 16 and shannon_entropy(label) >= 3.5:
        return True                         # long and random-looking, letters only or not
    digits = sum(c.isdigit() for c in label)
    if digits == len(label):
        return len(label) >= 10             # hex of plain text is mostly digits; ports, IP
                                            # octets and counters are shorter
    if digits == 0:
        return False
    if set(label) <= HEX:
        return True                         # a hex string with letters and digits
    return _class_changes(label) >= 2       # letters and digits interleaved, not "web01"


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _has_raw_bytes(name: str) -> bool:
    """Octets outside printable ASCII: the packet collector writes them "\\xNN", Zeek logs
    unescape them. A host name never has one (IDNs travel as punycode "xn--"); a tunnel
    packing 7 or 8 bits per character does (iodine's Base128 and raw encodings)."""
    return "\\x" in name or any(not " " <= c <= "~" for c in name)


def _class_changes(label: str) -> int:
    return sum(a.isdigit() != b.isdigit() for a, b in zip(label, label[1:]))


class Resolvers:
    """Addresses seen answering other hosts' DNS queries on port 53: their own queries are their
    clients' (the capture marks forwarded ones; Zeek and Suricata logs do not), so they are never
    judged. Only port 53: every Windows host answers LLMNR (5355) and mDNS (5353) for its own
    name, and must stay judged. Forgotten `MEMORY_S` after they last answered."""

    MEMORY_S = 86_400.0

    def __init__(self, max_hosts: int = 10_000):
        self._seen: dict[str, float] = {}        # address -> last time it answered (LRU)
        self._max = max_hosts

    def observe(self, event: dict, event_time: float) -> None:
        src = text(part(event, "source").get("ip"))
        dst = text(part(event, "destination").get("ip"))
        if dst and dst != src and part(event, "destination").get("port") == 53:
            self._seen.pop(dst, None)
            self._seen[dst] = event_time
            if len(self._seen) > self._max:
                del self._seen[next(iter(self._seen))]

    def __contains__(self, ip: object) -> bool:
        return ip in self._seen

    def expire(self, now: float) -> None:
        horizon = now - self.MEMORY_S
        while self._seen and next(iter(self._seen.values())) < horizon:
            del self._seen[next(iter(self._seen))]

    def snapshot(self) -> dict[str, float]:
        return dict(self._seen)

    def restore(self, seen: dict[str, float]) -> None:
        self._seen = dict(seen) if isinstance(seen, dict) else {}
