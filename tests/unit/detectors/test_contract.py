"""The detector contract, checked on every registered detector (scikit-learn's
`check_estimator` in spirit): a new detector in the registry is covered without a new test.

On one mixed stream (flows and DNS from real captures, sshd and sudo lines through the real
syslog parsers), each detector with its default settings must:
- give the same alerts when its state is checkpointed halfway (JSON round-trip) and restored
  into a fresh instance, as the runner does after a crash or a rebalance;
- forget everything once event time has moved far past its windows (state always expires);
- keep every subscore and composite score in [0, 1];
- never raise on schema-valid events with any other field missing or of the wrong type.
Checkpoints written by the previous version (main at 327ea13, before the toolkit) restore and
give the same alerts too (data/checkpoints-327ea13.json, taken halfway through this stream).
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import msgspec
import pytest

from collectors.capture import iter_flow_documents
from collectors.syslog import document, programs, rfc
from collectors.syslog.document import Origin
from detectors import registry
from detectors.checkpoint import encode_state
from detectors.kit.keyed import live_snapshots
from detectors.runner import PartitionDetectors
from tests.datafiles import data_file
from watchkeeper import schema, timeutil
from watchkeeper.documents import alert_document
from watchkeeper.networks import InternalNetworks

CAPTURES = ("scan/cs_synscan.pcapng", "bruteforce/zeek_ssh-sshguess.pcap",
            "dos/sv_syn-flood-200.pcap", "c2-beacon/slips_test-cc-capture-1.pcap")
FAR_FUTURE_S = 400 * 86_400          # past every detector's idle horizon
DETECTORS = sorted(registry.available())
HERE = Path(__file__).resolve().parent
OLD_CHECKPOINTS = HERE / "data" / "checkpoints-327ea13.json"
# Settings beyond the defaults, only where a detector needs input to have any state at all.
PARAMS = {"ioc_match": {"paths": (str(HERE / "data" / "contract-iocs.csv"),)}}


def _build(name: str, defaults: bool = False):
    params = {name: PARAMS[name]} if name in PARAMS and not defaults else None
    return registry.build(params, [name])


def _log(t: float, text: str, program: str) -> dict:
    raw = f"<38>1 {timeutil.format(t)} web1 {program} 812 - - {text}".encode()
    msg = rfc.parse(raw, t)
    return document.build(msg, raw, Origin("192.0.2.1", 514, "udp", t), programs.extract(msg))


def _auth_lines(t0: float) -> list[dict]:
    """Password guessing from one source, a success, and sudo use (brute force, Sigma)."""
    lines = [_log(t0 + 3 * i, f"Failed password for root from 203.0.113.5 port {40000 + i} ssh2",
                  "sshd") for i in range(40)]
    lines.append(_log(t0 + 130, "Accepted password for root from 203.0.113.5 port 41000 ssh2",
                      "sshd"))
    lines += [_log(t0 + 140 + i, "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
                   "COMMAND=/bin/cat /etc/shadow", "sudo") for i in range(5)]
    return lines


@cache
def stream() -> tuple[dict, ...]:
    events = [doc for rel in CAPTURES for doc in iter_flow_documents(
        [str(data_file(rel))], "contract", InternalNetworks(), app=True)]
    events.sort(key=lambda e: e["@timestamp"])
    first = timeutil.parse(events[0]["@timestamp"])
    return tuple(schema.validate(e) for e in _auth_lines(first) + events)


def _fingerprint(specs) -> list[tuple]:
    out = []
    for spec in specs:
        doc = alert_document(spec, 0.0)
        out.append((doc["event"]["id"], spec.count, spec.severity, spec.message,
                    json.dumps(spec.subscores, sort_keys=True), spec.score))
    return out


def _replay(name: str, events, resume_at: int | None = None,
            old: dict | None = None) -> tuple[list, PartitionDetectors]:
    part = PartitionDetectors(_build(name, defaults=old is not None))
    specs = []
    for i, event in enumerate(events):
        if i == resume_at:
            saved = json.loads(json.dumps(part.checkpoint().__dict__))   # as stored
            if old is not None:       # written by the previous version instead
                saved.update(watermark=old["watermark"], next_timer=old["next_timer"],
                             snapshots={name: old["snapshot"]})
            fresh = _build(name, defaults=old is not None)
            fresh[0].restore(saved["snapshots"][name])
            part = PartitionDetectors(fresh, saved["next_offset"], saved["watermark"],
                                      saved["next_timer"])
        specs += part.on_event(copy.deepcopy(event))
    return specs, part


@cache
def straight(name: str) -> tuple[list, PartitionDetectors]:
    return _replay(name, stream())


@pytest.mark.parametrize("name", DETECTORS)
def test_a_restored_checkpoint_gives_the_same_alerts(name):
    events = stream()
    expected, _ = straight(name)
    for resume_at in (len(events) // 3, len(events) // 2):
        resumed, _ = _replay(name, events, resume_at)
        assert _fingerprint(resumed) == _fingerprint(expected)


def _old_checkpoints() -> dict:
    return json.loads(OLD_CHECKPOINTS.read_text())


# Re-raise points changed since 327ea13 (round 7: the scan's early rule first reports at 6
# failed targets, so it doubles 6, 12, 24 ... where the old checkpoint recorded 15, 30 ...):
# the same alerts, raised again at other counts.
RERAISE_CHANGED = {"scan"}


@pytest.mark.parametrize("name", sorted(_old_checkpoints()["checkpoints"]))
def test_a_checkpoint_of_the_previous_version_restores(name):
    old = _old_checkpoints()     # taken with every detector's default settings
    expected, _ = _replay(name, stream(), old=old["checkpoints"][name])
    resumed, _ = _replay(name, stream(), old["taken_at_event"], old["checkpoints"][name])
    if name in RERAISE_CHANGED:
        assert {f[0] for f in _fingerprint(resumed)} == {f[0] for f in _fingerprint(expected)}
        return
    assert _fingerprint(resumed) == _fingerprint(expected)


def _collections(value, path="") -> list[str]:
    """Paths of the non-empty dicts and lists inside a snapshot."""
    if isinstance(value, dict):
        return [path or "."] if value else []
    if isinstance(value, list):
        return [path or "."] if value else []
    return []


@pytest.mark.parametrize("name", DETECTORS)
def test_state_expires_once_event_time_moves_past_its_windows(name):
    _, part = _replay(name, stream())
    det = part.detectors[0]
    last = timeutil.parse(stream()[-1]["@timestamp"])
    det.on_timer(last + FAR_FUTURE_S)
    det.on_timer(last + 2 * FAR_FUTURE_S)
    left = {key: value for key, value in det.snapshot().items() if _collections(value)}
    assert left == {}, f"{name} keeps state after expiry: {sorted(left)}"


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_are_in_the_unit_interval(name):
    specs, _ = straight(name)
    for spec in specs:
        assert all(0.0 <= v <= 1.0 for v in spec.subscores.values()), spec.subscores
        assert spec.score is None or 0.0 <= spec.score <= 1.0


def test_the_stream_exercises_the_detectors():
    """The checks above mean little on a detector that never alerts on the stream."""
    quiet = {name for name in DETECTORS if not straight(name)[0]}
    # anomaly needs a trained model; the captures hold no DNS tunnel, exfiltration or
    # lateral movement, and no slow DoS; one source guesses, so account_attack (one account
    # from five sources) stays quiet.
    assert quiet <= {"account_attack", "anomaly", "dga", "dns_tunneling", "exfiltration",
                     "lateral_movement", "slow_dos"}, quiet


def _samples() -> list[dict]:
    """One event of each dataset and shape in the stream (first of each key set)."""
    seen, out = set(), []
    for event in stream():
        shape = (event["event"]["dataset"], tuple(sorted(event)))
        if shape not in seen:
            seen.add(shape)
            out.append(event)
    return out


WRONG = (None, "x", 7, -1, 1e300, [], {}, True)
REQUIRED = {"@timestamp", "event.id", "event.dataset"}


def _leaves(doc, prefix=""):
    for key, value in doc.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")


def _mutate(doc: dict, path: str, value, delete: bool) -> dict:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".") if path != "@timestamp" else ["@timestamp"]
    node = out
    for part in parents:
        node = node[part]
    if delete:
        del node[last]
    else:
        node[last] = value
    return out


def _malformed():
    for sample in _samples():
        for path in _leaves(sample):
            if path in REQUIRED:
                continue
            for variant in [_mutate(sample, path, None, True)] + [
                    _mutate(sample, path, v, False) for v in WRONG]:
                try:
                    yield schema.validate(variant)   # the bus carries schema-valid events
                except schema.ValidationError:
                    continue


@pytest.mark.parametrize("name", DETECTORS)
def test_malformed_and_missing_fields_never_raise(name):
    det = _build(name)[0]
    count = 0
    for event in _malformed():
        t = timeutil.parse(event["@timestamp"])
        det.on_event(event, t)
        det.on_timer(t)
        count += 1
    assert count > 100
    json.dumps(det.snapshot())


@pytest.mark.parametrize("name", DETECTORS)
def test_a_checkpoint_encoded_from_the_live_records_equals_the_plain_one(name):
    """The runner encodes checkpoints straight from the records (keyed.live_snapshots):
    the bytes must say what the builtins snapshot says, or a restore would differ."""
    _, part = _replay(name, stream()[: len(stream()) // 2])
    plain = json.loads(json.dumps(part.checkpoint().__dict__))
    with live_snapshots():
        live = msgspec.json.decode(encode_state(part.checkpoint().__dict__))
    assert live == plain
    assert _collections(plain["snapshots"]), f"{name}: no state at halfway, nothing compared"
