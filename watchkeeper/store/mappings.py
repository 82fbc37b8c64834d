"""Elasticsearch index templates with explicit ECS mappings (composable templates)."""
from __future__ import annotations

from watchkeeper.store.base import KINDS

PREFIX = "watchkeeper"

_KW = {"type": "keyword", "ignore_above": 1024}
_IP = {"type": "ip"}
_DATE = {"type": "date"}
_LONG = {"type": "long"}


def _obj(**props) -> dict:
    return {"properties": props}


ECS_COMMON = {
    "@timestamp": _DATE,
    "message": {"type": "text"},
    "event": _obj(id=_KW, kind=_KW, category=_KW, type=_KW, dataset=_KW, module=_KW,
                  action=_KW, outcome=_KW, start=_DATE, end=_DATE, created=_DATE, ingested=_DATE,
                  duration=_LONG, severity=_LONG, risk_score={"type": "float"},
                  original={"type": "keyword", "index": False, "doc_values": False}),
    "observer": _obj(name=_KW, type=_KW),
    "labels": _obj(site=_KW),
    "source": _obj(ip=_IP, port=_LONG, bytes=_LONG, packets=_LONG, mac=_KW),
    "destination": _obj(ip=_IP, port=_LONG, bytes=_LONG, packets=_LONG, mac=_KW),
    "network": _obj(transport=_KW, protocol=_KW, community_id=_KW, bytes=_LONG,
                    packets=_LONG, direction=_KW),
    "related": _obj(ip=_IP, user=_KW, hosts=_KW),
    "user": _obj(name=_KW),
    "dns": _obj(question=_obj(name=_KW, type=_KW, registered_domain=_KW),
                response_code=_KW, id=_KW, resolved_ip=_IP),
    "url": _obj(full=_KW, path=_KW, domain=_KW, original=_KW),
    "user_agent": _obj(original=_KW),
    "http": _obj(request=_obj(method=_KW), response=_obj(status_code=_LONG)),
    "tls": _obj(version=_KW, version_protocol=_KW, client=_obj(server_name=_KW)),
    "dce_rpc": _obj(endpoint=_KW, operation=_KW, named_pipe=_KW),
    "rule": _obj(id=_KW, name=_KW, version=_KW),
    "threat": _obj(framework=_KW, technique=_obj(id=_KW, name=_KW)),
}



def typed_fields(props: dict, wanted: str, path: str = "") -> set[str]:
    """Dotted names of the fields of type `wanted` under `props`."""
    found = set()
    for name, spec in props.items():
        if spec.get("type") == wanted:
            found.add(path + name)
        elif "properties" in spec:
            found |= typed_fields(spec["properties"], wanted, f"{path}{name}.")
    return found


# Addresses: up to millions of distinct values per index. A terms aggregation over them uses
# a hash of the matching documents' values (execution_hint map), not global ordinals, which
# are rebuilt over every distinct address of the shard after each refresh (elastic_reads.py).
IP_FIELDS = frozenset(typed_fields(ECS_COMMON, "ip"))

WATCHKEEPER = _obj(
    kerberos=_obj(request_type=_KW, client=_KW, service=_KW, error_msg=_KW,
                  error_code=_LONG, success={"type": "boolean"}),
    flow=_obj(uid=_KW, conn_state=_KW, history=_KW, orig_bytes=_LONG, resp_bytes=_LONG,
              orig_ip_bytes=_LONG, resp_ip_bytes=_LONG, final={"type": "boolean"}),
    alert=_obj(category=_KW, detector=_KW, status=_KW, assignee=_KW, entity=_KW,
               first_seen=_DATE, last_seen=_DATE, count=_LONG, evidence=_KW,
               incident_id=_KW, subscores={"type": "object", "dynamic": True},
               verdict=_KW, tags=_KW, suppressed_by=_KW, acknowledged_at=_DATE,
               closed_at=_DATE, updated_at=_DATE, reopened=_LONG,
               weight_points=_LONG,   # posture weight × 6 (posture_weight.py)
               message_zh={"type": "text"}, rule_name_zh=_KW,   # zh-CN wording
               # detection health (docs/detection-health.md)
               evidence_quality=_KW,
               evidence_gaps=_obj(kind=_KW, observer=_KW, collector=_KW, count=_LONG)),
    comment=_obj(object_id=_KW, object_kind=_KW),
    audit=_obj(object_id=_KW, object_kind=_KW, at=_DATE,
               changes={"type": "object", "enabled": False}, seq=_LONG, prev_hash=_KW,
               hash=_KW, outcome=_KW),
    identity={"type": "object", "enabled": False},   # users, keys, refresh tokens: never searched
    state={"type": "object", "enabled": False},
    suppression={"type": "object", "enabled": False},   # rules: few, filtered in Python
    incident=_obj(entity=_KW, status=_KW, alerts=_KW, alert_count=_LONG, categories=_KW,
                  stages=_KW, first_seen=_DATE, last_seen=_DATE, severity=_LONG,
                  risk_score={"type": "float"}, gbt_code=_KW, gbt_name=_KW, level=_KW,
                  # people's fields (watchkeeper/incidents.py)
                  level_suggested=_KW, level_set_by=_KW, level_set_at=_DATE,
                  level_reason=_KW, warning_colour=_KW, graded_at=_DATE, discovered_at=_DATE,
                  acknowledged_at=_DATE, investigating_at=_DATE, contained_at=_DATE,
                  closed_at=_DATE, assignee=_KW, reported_at=_DATE, reported_to=_KW,
                  reported_by=_KW, linked=_KW, unlinked=_KW, escalated_to=_KW,
                  escalations={"type": "object", "enabled": False}, updated_at=_DATE),
    asset=_obj(**{side: _obj(name=_KW, site=_KW, site_path=_KW, department=_KW, owner=_KW,
                             mlps_level=_LONG, criticality=_LONG)
                  for side in ("source", "destination")}),
    inventory=_obj(site=_obj(id=_KW, name=_KW, parent=_KW, org_type=_KW),
                   asset=_obj(id=_KW, cidr=_KW, site=_KW, name=_KW, department=_KW, owner=_KW,
                              mlps_level=_LONG, criticality=_LONG)),
    collector=_obj(name=_KW, counters={"type": "object", "dynamic": True}, silence=_KW,
                   final={"type": "boolean"}),
    # Generated compliance reports (watchkeeper/store/reports.py): the metadata; the PDF and
    # HTML are in a `state` blob document (watchkeeper.state: never indexed).
    report=_obj(type=_KW, period=_KW, period_start=_DATE, period_end=_DATE, schedule=_KW,
                sha256=_KW, lang=_KW, incident_id=_KW, generated_by=_KW, size=_LONG,
                sections={"type": "object", "enabled": False},
                deliveries={"type": "object", "enabled": False}),
    run=_obj(run_id=_KW, incident_id=_KW, owner=_KW, playbook=_KW, version=_LONG, status=_KW,
             target=_KW, step=_KW,
             attempt=_LONG, outcome=_KW, decision=_KW, by=_KW, requested_by=_KW,
             trigger=_obj(kind=_KW, key=_KW, object_id=_KW), step_index=_LONG,
             updated_at=_DATE, started_at=_DATE, ended_at=_DATE, at=_DATE,
             # what steps read and wrote: stored for the record, never searched
             inputs={"type": "object", "enabled": False},
             steps={"type": "object", "enabled": False},
             output={"type": "object", "enabled": False},
             approval={"type": "object", "enabled": False},
             subject={"type": "object", "enabled": False},   # the alert, as the run saw it
             message={"type": "text"}, message_zh={"type": "text"}, comment={"type": "text"},
             not_before=_DATE),
    deadletter=_obj(reason=_KW, stage=_KW, topic=_KW, raw={"type": "keyword", "index": False,
                                                            "doc_values": False}),
)

# Unknown strings become keywords, not analysed text: ECS fields are exact values.
DYNAMIC = [{"strings_as_keywords": {"match_mapping_type": "string",
                                    "mapping": {"type": "keyword", "ignore_above": 1024}}}]


def component_template() -> dict:
    return {"template": {"mappings": {"dynamic_templates": DYNAMIC,
                                      "properties": {**ECS_COMMON, "watchkeeper": WATCHKEEPER}}}}


def index_templates(prefix: str = PREFIX, replicas: int = 0) -> dict[str, dict]:
    """name -> composable template body; every index composes the shared ECS component."""
    settings = {"number_of_shards": 1, "number_of_replicas": replicas, "refresh_interval": "1s"}
    # Events: no explicit interval, so ES's default applies, under which a shard nobody has
    # searched for 30 s skips its scheduled refreshes (search-idle) and the next search
    # refreshes it first: full-speed ingest while nobody looks, nothing missed when someone
    # does. Alerts and the rest keep 1 s: the live feed polls them.
    ingest = {"number_of_shards": 1, "number_of_replicas": replicas}
    return {
        f"{prefix}-{kind}": {
            "index_patterns": [f"{prefix}-{kind}*"],
            "composed_of": [f"{prefix}-ecs"],
            "priority": 200,
            "template": {"settings": ingest if kind == "events" else settings},
        }
        for kind in KINDS
    }
