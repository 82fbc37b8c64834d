"""Sigma rules evaluated over our ECS documents.

pySigma parses a rule and turns its condition into a tree (`SigmaCondition.parsed`) whose leaves
already carry the modifiers' effect: `contains`/`startswith`/`endswith` become wildcards, `all`
turns a value list into an AND, `re` a SigmaRegularExpression, `cidr` a SigmaCIDRExpression,
`1 of x_*`/`all of them` ORs/ANDs of the detections. pySigma converts that tree into queries
for backends but has no evaluator, so `compile_rule` turns it once into nested Python closures
that test one event dict. Anything it cannot evaluate is an error, never a rule that silently
matches nothing.
"""
from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from sigma.conditions import (ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT,
                              ConditionOR, ConditionValueExpression)
from sigma.rule import SigmaLevel, SigmaRule
from sigma.types import (CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExists, SigmaNull, SigmaNumber,
                         SigmaRegularExpression, SigmaString,
                         SpecialChars)

from watchkeeper import schema

Predicate = Callable[[dict], bool]

# Sigma's field names (Windows- and Linux-flavoured) -> our ECS paths. A field missing here is
# accepted only when it already looks like an ECS path (`event.outcome`), else it is an error.
FIELD_MAP = {
    "User": "user.name", "user": "user.name", "TargetUserName": "user.effective.name",
    "TargetUser": "user.effective.name", "RunAsUser": "user.effective.name",
    "SourceIp": "source.ip", "SourceIP": "source.ip", "src_ip": "source.ip",
    "SourcePort": "source.port", "src_port": "source.port",
    "DestinationIp": "destination.ip", "DestinationIP": "destination.ip",
    "dst_ip": "destination.ip", "DestinationPort": "destination.port",
    "dst_port": "destination.port", "Protocol": "network.transport",
    "CommandLine": "process.command_line", "Image": "process.executable",
    "ProcessName": "process.name", "CurrentDirectory": "process.working_directory",
    "Hostname": "host.hostname", "Computer": "host.hostname",
    "Message": "message", "msg": "message", "Action": "event.action",
    "Outcome": "event.outcome", "Reason": "event.reason",
}
_ECS_PATH = re.compile(r"^[a-z_@][a-z0-9_]*(\.[a-z0-9_]+)*$")
# Sigma logsource -> the event.module values our syslog collector emits; None = any of them.
SERVICES: dict[str, frozenset[str] | None] = {
    "sshd": frozenset({"sshd"}), "sudo": frozenset({"sudo"}), "pam": frozenset({"pam"}),
    "auth": frozenset({"sshd", "sudo", "pam"}), "syslog": None,
    "iptables": frozenset({"netfilter"}), "nftables": frozenset({"netfilter"}),
    "netfilter": frozenset({"netfilter"}), "cef": frozenset({"cef"}),
}
CATEGORIES: dict[str, frozenset[str] | None] = {"firewall": frozenset({"netfilter"}),
                                                 "authentication": frozenset({"sshd", "pam"})}
LEVELS = {SigmaLevel.INFORMATIONAL: 1, SigmaLevel.LOW: 1, SigmaLevel.MEDIUM: 2,
          SigmaLevel.HIGH: 3, SigmaLevel.CRITICAL: 4}
TECHNIQUE_NAMES = {"T1078": "Valid Accounts", "T1548.003": "Sudo and Sudo Caching",
                   "T1021.002": "SMB/Windows Admin Shares", "T1021.004": "SSH",
                   "T1110": "Brute Force", "T1059.004": "Unix Shell"}
_COMPARE = {CompareOperators.LT: operator.lt, CompareOperators.LTE: operator.le,
            CompareOperators.GT: operator.gt, CompareOperators.GTE: operator.ge,
            CompareOperators.NEQ: operator.ne}
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")


class RuleError(ValueError):
    """A rule we cannot evaluate; the message says which part and why."""


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str                        # "sigma:<rule id>"
    title: str
    level: str
    severity: int                       # 1..4
    modules: frozenset[str] | None      # event.module values it applies to; None = all syslog
    technique_id: str | None
    technique_name: str | None
    origin: str                         # file:line, for the analyst
    matches: Predicate


def compile_rule(rule: SigmaRule, origin: str) -> CompiledRule:
    if rule.id is None:
        raise RuleError("the rule has no id (needed for a stable alert rule id)")
    conditions = [compile_condition(c.parsed) for c in rule.detection.parsed_condition]
    matches = conditions[0] if len(conditions) == 1 else _any(conditions)
    technique = next((t.name.upper() for t in rule.tags
                      if t.namespace == "attack" and _TECHNIQUE.match(t.name)), None)
    level = rule.level or SigmaLevel.MEDIUM
    return CompiledRule(f"sigma:{rule.id}", rule.title, str(level), LEVELS[level],
                        logsource_modules(rule), technique, TECHNIQUE_NAMES.get(technique),
                        origin, matches)


def logsource_modules(rule: SigmaRule) -> frozenset[str] | None:
    src = rule.logsource
    if src.product not in (None, "linux"):
        raise RuleError(f"logsource product {src.product!r}: we only receive linux syslog")
    found: frozenset[str] | None = None
    for table, value, name in ((SERVICES, src.service, "service"),
                               (CATEGORIES, src.category, "category")):
        if value is None:
            continue
        if value not in table:
            raise RuleError(f"logsource {name} {value!r} is not one of {sorted(table)}")
        if table[value] is not None:
            found = table[value] if found is None else found & table[value]
    return found


def ecs_field(name: str) -> str:
    if name in FIELD_MAP:
        return FIELD_MAP[name]
    if _ECS_PATH.match(name):
        return name
    raise RuleError(f"field {name!r} has no ECS mapping (add it to sigma_eval.FIELD_MAP)")


# --- condition tree -> predicate -------------------------------------------------------------
def compile_condition(node) -> Predicate:
    if isinstance(node, (ConditionAND, ConditionOR)):
        parts = [compile_condition(arg) for arg in node.args]
        return _all(parts) if isinstance(node, ConditionAND) else _any(parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda event: not inner(event)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field(ecs_field(node.field), node.value)
    if isinstance(node, ConditionValueExpression):
        return _field("message", node.value)        # a keyword: searched in the log line
    raise RuleError(f"unsupported condition element {type(node).__name__}")


def _all(parts: list[Predicate]) -> Predicate:
    return lambda event: all(p(event) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda event: any(p(event) for p in parts)


def _field(path: str, value) -> Predicate:
    if isinstance(value, SigmaNull):
        return lambda event: schema.get(event, path) is None
    if isinstance(value, SigmaExists):
        return lambda event: (schema.get(event, path) is not None) == value.exists
    test = value_matcher(value)

    def predicate(event: dict) -> bool:
        found = schema.get(event, path)
        if found is None or isinstance(found, dict):
            return False
        if isinstance(found, list):                 # ECS arrays: any element may match
            return any(test(item) for item in found if not isinstance(item, (dict, list)))
        return test(found)
    return predicate


def value_matcher(value) -> Callable[[object], bool]:
    if isinstance(value, SigmaString):
        return _string(value)
    if isinstance(value, SigmaRegularExpression):
        flags = sum(SigmaRegularExpression.sigma_to_python_flags[f] for f in value.flags)
        pattern = re.compile(str(value.regexp), flags)
        return lambda found: pattern.search(_text(found)) is not None
    if isinstance(value, SigmaCIDRExpression):
        return lambda found: _in_network(found, value.network)
    if isinstance(value, SigmaBool):
        want = "true" if value.boolean else "false"
        return lambda found: _text(found).lower() == want
    if isinstance(value, SigmaNumber):
        return lambda found: _number(found) == value.number
    if isinstance(value, SigmaCompareExpression):
        compare, limit = _COMPARE[value.op], value.number.number
        return lambda found: (n := _number(found)) is not None and compare(n, limit)
    raise RuleError(f"unsupported value type {type(value).__name__} ({value})")


def _string(value: SigmaString) -> Callable[[object], bool]:
    """Sigma strings compare case-insensitively (unless `cased`); `*` and `?` are wildcards."""
    flags = re.DOTALL | (0 if isinstance(value, SigmaCasedString) else re.IGNORECASE)
    if all(isinstance(part, str) for part in value.s):
        plain = "".join(value.s)
        if flags & re.IGNORECASE:
            plain = plain.casefold()
            return lambda found: _text(found).casefold() == plain
        return lambda found: _text(found) == plain
    pieces = []
    for part in value.s:
        if isinstance(part, str):
            pieces.append(re.escape(part))
        elif part is SpecialChars.WILDCARD_MULTI:
            pieces.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        else:
            raise RuleError(f"placeholder {part} in {value.original!r} is not supported")
    pattern = re.compile("".join(pieces), flags)
    return lambda found: pattern.fullmatch(_text(found)) is not None


def _text(found: object) -> str:
    if isinstance(found, bool):
        return "true" if found else "false"
    return found if isinstance(found, str) else str(found)


def _number(found: object) -> float | None:
    if isinstance(found, bool):
        return None
    if isinstance(found, (int, float)):
        return found
    try:
        return float(str(found))
    except ValueError:
        return None


def _in_network(found: object, network) -> bool:
    try:
        addr = ipaddress.ip_address(_text(found))
    except ValueError:
        return False
    return addr.version == network.version and addr in network

