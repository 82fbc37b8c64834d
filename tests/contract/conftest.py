"""Both backends of each interface, behind one fixture: the contract tests run on each."""
from __future__ import annotations

import pytest

from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.store.elastic import ElasticStore
from watchkeeper.store.sqlite import SqliteStore


@pytest.fixture(params=["embedded", "kafka", "rdkafka"])
def bus(request):
    if request.param == "embedded":
        made = EmbeddedBus(partitions=4)
    elif request.param == "kafka":
        made = KafkaBus(request.getfixturevalue("kafka_url"), partitions=4)
    else:   # the optional librdkafka client: installed by `make install` (the rdkafka extra)
        from watchkeeper.bus.rdkafka import RdKafkaBus
        made = RdKafkaBus(request.getfixturevalue("kafka_url"), partitions=4)
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    else:
        unique = request.getfixturevalue("unique")
        made = ElasticStore(request.getfixturevalue("es_url"), prefix=f"wktest-{unique}")
    yield made
    if isinstance(made, ElasticStore):
        made.es.indices.delete(index=f"{made.prefix}-*", ignore_unavailable=True,
                               allow_no_indices=True)
    made.close()
