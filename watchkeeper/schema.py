"""Event and alert documents: ECS field names, validation, deterministic ids.

Documents travel as plain dicts (JSON on the bus, `_source` in Elasticsearch). The msgspec
structs below describe the parts we rely on; `validate()` checks a dict against them and
returns it unchanged, so producers and consumers never pay for a conversion.
"""
from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec

from watchkeeper import timeutil
from watchkeeper.taxonomy import CATEGORY_INFO

FLOW = "watchkeeper.flow"
DNS = "watchkeeper.dns"
HTTP = "watchkeeper.http"
TLS = "watchkeeper.tls"
KERBEROS = "watchkeeper.kerberos"   # Kerberos AS exchanges (logins), as Zeek's kerberos.log
DCE_RPC = "watchkeeper.dce_rpc"   # DCE/RPC calls (interface and operation), as Zeek's dce_rpc.log
ARP = "watchkeeper.arp"     # broadcast ARP requests: who asked for which address (host discovery)
LOG = "watchkeeper.log"
SYSLOG = "watchkeeper.syslog"   # every syslog message; parsed auth/firewall fields added in place
ALERT = "watchkeeper.alert"

# Fixed vocabulary (DESIGN.md §3), defined once in taxonomy.CATEGORY_INFO with each
# category's kill-chain stage and GB/T 20986-2023 subcategory.
CATEGORIES = frozenset(CATEGORY_INFO)
# Triage workflow (watchkeeper/store/triage.py): new -> acknowledged -> investigating -> closed.
ALERT_STATUSES = ("new", "acknowledged", "investigating", "closed")
VERDICTS = ("true_positive", "false_positive", "benign_positive", "duplicate", "other")
# The status vocabulary before triage: still accepted in documents, upgraded on write and read
# (legacy -> (status, verdict)); `suppressed` (allowlisted) becomes closed + benign_positive.
LEGACY_ALERT_STATUSES = {"in_progress": ("investigating", None), "resolved": ("closed", "other"),
                         "false_positive": ("closed", "false_positive"),
                         "suppressed": ("closed", "benign_positive")}
SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high", 4: "critical"}


class ValidationError(ValueError):
    """A document does not follow the event model; the message says where and why."""


# --- structure -------------------------------------------------------------------------------
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class _Open(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """ECS objects accept fields we do not model."""


class EventMeta(_Open):
    id: Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
    kind: Annotated[str, msgspec.Meta(pattern="^(event|alert|metric|state|signal)$")]
    dataset: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    category: list[str] | None = None
    type: list[str] | None = None
    module: str | None = None
    start: str | None = None
    end: str | None = None
    duration: Count | None = None  # nanoseconds, as ECS says
    outcome: str | None = None
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    risk_score: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    created: str | None = None
    original: str | None = None


class Endpoint(_Open):
    ip: str | None = None
    port: Port | None = None
    bytes: Count | None = None
    packets: Count | None = None


class Network(_Open):
    transport: str | None = None
    protocol: str | None = None
    community_id: str | None = None
    bytes: Count | None = None
    packets: Count | None = None
    direction: str | None = None


class Rule(_Open):
    id: str
    name: str
    version: str | None = None


class AlertInfo(_Open):
    category: str
    detector: str
    status: str = "new"
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    first_seen: str | None = None
    last_seen: str | None = None
    evidence: list[str] = []
    subscores: dict[str, Annotated[float, msgspec.Meta(ge=0, le=1)]] = {}
    assignee: str | None = None
    incident_id: str | None = None


class WatchkeeperExt(_Open):
    alert: AlertInfo | None = None


class Document(_Open):
    timestamp: str = msgspec.field(name="@timestamp")
    event: EventMeta
    source: Endpoint | None = None
    destination: Endpoint | None = None
    network: Network | None = None
    rule: Rule | None = None
    message: str | None = None
    watchkeeper: WatchkeeperExt | None = None
    related: dict[str, list[str]] | None = None


# --- validation ------------------------------------------------------------------------------
def validate(doc: Any) -> dict:
    """Return `doc` if it is a valid event or alert, else raise ValidationError naming the field."""
    if not isinstance(doc, dict):
        raise ValidationError(f"document must be a JSON object, got {type(doc).__name__}")
    try:
        parsed = msgspec.convert(doc, Document, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None
    _check_time(parsed.timestamp, "@timestamp")
    for name, endpoint in (("source", parsed.source), ("destination", parsed.destination)):
        if endpoint is not None and endpoint.ip is not None:
            _check_ip(endpoint.ip, f"{name}.ip")
    if parsed.event.kind == "alert":
        _check_alert(parsed)
    return doc


def _check_alert(parsed: Document) -> None:
    info = parsed.watchkeeper.alert if parsed.watchkeeper else None
    if info is None or parsed.rule is None or parsed.event.severity is None:
        raise ValidationError("an alert needs rule, event.severity and watchkeeper.alert")
    if info.category not in CATEGORIES:
        raise ValidationError(f"watchkeeper.alert.category {info.category!r} is not one of "
                              f"{sorted(CATEGORIES)}")
    if info.status not in ALERT_STATUSES and info.status not in LEGACY_ALERT_STATUSES:
        raise ValidationError(f"watchkeeper.alert.status {info.status!r} is not one of "
                              f"{list(ALERT_STATUSES)}")


def _check_time(value: str, field: str) -> None:
    try:
        timeutil.parse(value)
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not an ISO-8601 time with a zone") from None


def _check_ip(value: str, field: str) -> None:
    if not is_ip(value):
        raise ValidationError(f"{field} {value!r} is not an IP address")


@lru_cache(maxsize=65536)
def is_ip(value: str) -> bool:
    """Addresses repeat across events: parsing each once was most of validation's cost."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --- ids -------------------------------------------------------------------------------------
def stable_id(*parts: object) -> str:
    """A deterministic id from what makes a record unique: replays overwrite, never duplicate."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_PATHS: dict[str, tuple[str, ...]] = {}     # dotted path -> its parts (split once)
_MISSING = object()


def get(doc: dict, dotted: str, default: Any = None) -> Any:
    """Read a dotted ECS path from a nested document. On every detector's per-event path:
    the path is split once, and each level is one dict look-up."""
    parts = _PATHS.get(dotted)
    if parts is None:
        parts = tuple(dotted.split("."))
        if len(_PATHS) < 4096:          # the code's and the rules' fields: a few hundred
            _PATHS[dotted] = parts
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict):
            return default
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return default
    return node


def now_iso() -> str:
    return timeutil.format(datetime.now(timezone.utc).timestamp())


# msgspec builds a Struct's type information lazily, on its first use, and two threads doing
# that first use at once can crash the process (msgspec 0.22, reproduced with four threads
# validating their first document). Building it here, while the import lock is held, means no
# thread ever does that first use.
msgspec.json.Decoder(Document)
