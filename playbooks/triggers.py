"""Which playbooks an alert starts: the trigger's conditions, all of which must hold."""
from __future__ import annotations

from collections.abc import Mapping

from playbooks.expr import compiled
from playbooks.model import AlertTrigger, IncidentTrigger, Playbook
from watchkeeper import schema

# Alerts the policy layer closed (allowlisted / suppressed) start nothing.
_QUIET = ("suppressed",)


def in_subtree(site: str | None, root: str, tree: Mapping[str, str | None] | None) -> bool:
    """`site` is `root` or below it in the inventory tree (id -> parent)."""
    seen = set()
    while site and site not in seen:
        if site == root:
            return True
        seen.add(site)
        site = (tree or {}).get(site)
    return False


def alert_matches(trigger: AlertTrigger, alert: dict,
                  tree: Mapping[str, str | None] | None = None) -> bool:
    info = alert.get("watchkeeper", {}).get("alert", {})
    if info.get("status") in _QUIET or info.get("suppressed_by"):
        return False
    if trigger.category and info.get("category") not in trigger.category:
        return False
    if trigger.detector and info.get("detector") not in trigger.detector:
        return False
    if trigger.severity_at_least is not None:
        severity = schema.get(alert, "event.severity")
        if not isinstance(severity, int) or severity < trigger.severity_at_least:
            return False
    if trigger.site and not in_subtree(schema.get(alert, "labels.site"), trigger.site, tree):
        return False
    if trigger.where and not compiled(trigger.where).test({**alert, "alert": alert}):
        return False
    return True


def playbooks_for(alert: dict, playbooks: Mapping[str, Playbook],
                  tree: Mapping[str, str | None] | None = None) -> list[Playbook]:
    return [p for p in playbooks.values()
            if p.trigger.alert is not None and alert_matches(p.trigger.alert, alert, tree)]


def target_of(playbook: Playbook, alert: dict) -> str | None:
    value = schema.get(alert, playbook.target)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def incident_matches(trigger: IncidentTrigger, incident: dict,
                     tree: Mapping[str, str | None] | None = None) -> bool:
    info = incident.get("watchkeeper", {}).get("incident", {})
    if info.get("level") not in trigger.levels():
        return False
    if trigger.category and not set(info.get("categories") or []) & set(trigger.category):
        return False
    if trigger.site and not in_subtree(schema.get(incident, "labels.site"), trigger.site, tree):
        return False
    if trigger.where and not compiled(trigger.where).test({**incident, "incident": incident}):
        return False
    return True


def incident_target(playbook: Playbook, incident: dict) -> str | None:
    value = schema.get(incident, playbook.target) or \
        schema.get(incident, "watchkeeper.incident.entity")
    return None if value is None else str(value)
