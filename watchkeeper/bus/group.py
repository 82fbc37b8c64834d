"""What a consumer group's coordinator says its members hold, asked through an admin client
of its own: the liveness watchdog asks from its thread, and a kafka-python consumer must stay
with its stage's thread. Two questions, answered from one description of the group:

- `unowned`: partitions of the member's topics that no member holds (nobody owes their work,
  so no member's lag shows it);
- `left_out`: this member holds nothing in a settled group that has fewer members than one of
  its topics has partitions. Range, round-robin and sticky assignors give every member of such
  a group a partition, so the member is outside the group: kafka-python waits for a JoinGroup
  answer up to max_poll_interval + 5 s (seen once: 5 minutes with half the group's
  parallelism gone, the other member holding every partition).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

SETTLING = frozenset({"PreparingRebalance", "CompletingRebalance"})
ANSWER_TTL_S = 1.0          # the watchdog's two questions in one sweep share one description
# Fail fast with a clear line when no broker answers, instead of kafka-python's 30 s default
# (bus/kafka.py's clients use it too).
CONNECT = {"bootstrap_timeout_ms": 10_000}


def held_by(member: dict) -> set[tuple[str, int]]:
    assignment = member.get("member_assignment")
    if not isinstance(assignment, dict):      # empty, or bytes kafka-python could not decode
        return set()
    return {(tp["topic"], p) for tp in assignment.get("assigned_partitions") or ()
            for p in tp["partitions"]}


class GroupOwnership:
    """`held`: how many partitions this member holds, as its own thread last saw (None: not
    known yet); read here, never asked of the member's client."""

    def __init__(self, servers: list[str], group: str, topics: list[str],
                 held: Callable[[], int | None] = lambda: None):
        self._servers, self._group, self._topics, self._held = servers, group, topics, held
        self._admin: KafkaAdminClient | None = None
        self._closed = False
        self._answer: tuple[float, tuple[dict, list] | None] | None = None
        self._lock = threading.Lock()    # close() waits for a question in flight

    def unowned(self) -> int | None:
        described = self._described()
        if described is None:
            return None
        group, topics = described
        if group["group_state"] in SETTLING:
            return 0                     # a rebalance under way is not a gap yet
        held = set().union(*map(held_by, group["members"]))
        every = {(t["name"], p["partition_index"]) for t in topics
                 if not t.get("error_code") for p in t["partitions"]}
        return len(every - held)

    def left_out(self) -> bool | None:
        mine = self._held()
        described = None if mine is None else self._described()
        if described is None:
            return None
        group, topics = described
        if mine or group["group_state"] in SETTLING:
            return False
        members = len(group["members"])
        return any(members < len(t["partitions"]) for t in topics if not t.get("error_code"))

    def _described(self) -> tuple[dict, list] | None:
        with self._lock:
            if self._closed:
                return None
            now = time.monotonic()
            if self._answer is None or now - self._answer[0] > ANSWER_TTL_S:
                self._answer = (now, self._describe())
            return self._answer[1]

    def _describe(self) -> tuple[dict, list] | None:
        try:
            if self._admin is None:
                # a short request timeout: the watchdog's thread checks the other stages too
                self._admin = KafkaAdminClient(bootstrap_servers=self._servers,
                                               client_id="watchkeeper-watchdog",
                                               request_timeout_ms=5_000, **CONNECT)
            group = self._admin.describe_groups([self._group])[self._group]
            topics = [] if group["group_state"] in SETTLING \
                else self._admin.describe_topics(self._topics)
        except (KafkaError, OSError) as exc:
            log.debug("cannot describe group %s: %s", self._group, exc)
            return None
        return group, topics

    def close(self) -> None:
        with self._lock:
            self._closed = True
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
