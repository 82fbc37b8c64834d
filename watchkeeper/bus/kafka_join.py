"""kafka-python 3.0's group join, mended where a short poll() can lose it.

kafka-python runs JoinGroup -> SyncGroup as a task on its IO thread; a poll() whose timeout
runs out first returns early and leaves the task running. Two things then go wrong (seen in
CI: a member that never got partitions, and a group that rebalanced for two minutes):

1. **An abandoned join is forgotten.** The next poll() resumes the join only if
   `need_rejoin()` still says so. A leader that rejoins because its metadata changed (a topic
   it had no metadata for at the first join, new partitions) stops saying so as soon as it
   computes the assignment, so the task's result is never applied. The member stays in the
   group with no partitions and with its heartbeat switched off, the broker drops it, and
   nothing rejoins it until the metadata changes again.
2. **A finished join is thrown away.** If the task finished between two polls, the next
   poll() starts a fresh JoinGroup instead of taking the finished one's assignment. From the
   leader, that starts a new rebalance; with polls spaced wider than a join takes, every
   join finishes between polls, and the member never gets its partitions.

Kafka's Java client avoids both (`rejoinNeededOrPending()`; a completed `joinFuture` is
consumed on the next poll). This subclass does the same, through two small overrides:
`need_rejoin()` also answers True while a join task waits to be taken, and a finished
task's assignment is handed to the attempt the library starts, without another JoinGroup.
"""
from __future__ import annotations

from kafka import KafkaConsumer
from kafka.coordinator.consumer import ConsumerCoordinator


class PendingJoinCoordinator(ConsumerCoordinator):
    """ConsumerCoordinator that completes the join a timed-out poll() left behind."""

    _finished_join: bytes | None = None   # assignment of a join nobody had awaited yet

    def need_rejoin(self) -> bool:
        return self._join_task is not None or super().need_rejoin()

    async def join_group_async(self, timeout_ms=None):
        task = self._join_task
        if task is not None and task.succeeded():
            self._finished_join = task.value   # taken by the attempt the library starts next
        return await super().join_group_async(timeout_ms=timeout_ms)

    async def _do_join_and_sync_async(self):
        if self._finished_join is not None:
            assignment, self._finished_join = self._finished_join, None
            return assignment
        return await super()._do_join_and_sync_async()


def mend_group_join(consumer: KafkaConsumer) -> KafkaConsumer:
    """Give a freshly made consumer the mended coordinator (it has not polled yet)."""
    coordinator = consumer._coordinator
    if type(coordinator) is ConsumerCoordinator:
        coordinator.__class__ = PendingJoinCoordinator
    return consumer
