"""`EventPublisher.publish_lines`: the live capture's path (JSON lines written from the flow
table's rows) puts on the bus exactly what publishing the dict documents did, and a chunk
whose lines are not valid loses nothing and publishes nothing invalid."""
from __future__ import annotations

from collectors.capture.meter import Capture, CaptureStats, file_batches
from tests.datafiles import data_file
from watchkeeper import codec
from watchkeeper.bus import Names, Producer
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher, _source_ip

NAMES = Names()
CAPTURES = ["benign/cs_tcp_ports.pcapng",                       # many IPv4 TCP flows
            "benign/zeek_ssh.pcap",                              # SSH banners: hinted rows
            "benign/zeek_quic_win11_firefox_google.pcap",       # UDP, QUIC
            "public/dns-tunnel/elastic_dns-tunnel-iodine.pcap"]  # DNS: app documents


class Recorder(Producer):
    def __init__(self):
        self.sent: list[tuple[str, bytes, str | None]] = []

    def send(self, topic, value, key=None):
        self.sent.append((topic, value, key))

    def flush(self):
        pass


def _capture(path):
    return Capture(file_batches([str(path)], CaptureStats()), app=True)


def test_the_lines_path_sends_what_the_documents_path_sent():
    networks = InternalNetworks()
    total = 0
    for name in CAPTURES:
        path = data_file(name)
        by_docs, by_lines = Recorder(), Recorder()
        docs = EventPublisher(by_docs, "capture", NAMES)
        for doc in _capture(path).documents("s1", networks, "city-a"):
            docs.publish(doc)
        lines = EventPublisher(by_lines, "capture", NAMES)
        for chunk in _capture(path).lines("s1", networks, "city-a"):
            lines.publish_lines(chunk)
        assert by_docs.sent, name
        assert by_lines.sent == by_docs.sent, name
        assert lines.published == docs.published and lines.rejected == 0
        total += len(by_docs.sent)
    assert total > 100


def test_a_chunk_that_does_not_validate_is_checked_line_by_line():
    good = [codec.encode(doc) for doc in _capture(data_file(CAPTURES[1])).documents(
        "s1", InternalNetworks())][:3]
    bad = [b'{"@timestamp":"x","source":{"ip":"10.0.0.1"}}', b"not json", b"[1]"]
    out = Recorder()
    publisher = EventPublisher(out, "capture", NAMES)
    sent = publisher.publish_lines(b"\n".join([bad[0], good[0], bad[1], good[1], bad[2],
                                               good[2]]) + b"\n")
    assert sent == 3 and publisher.published == 3 and publisher.rejected == 3
    assert [v for t, v, _ in out.sent if t == NAMES.events] == good
    assert sum(t == NAMES.deadletter for t, _, _ in out.sent) == 3


def test_the_key_is_read_from_the_line():
    assert _source_ip(b'{"observer":{"name":"\\"source\\":{\\"ip\\":\\"x"},'
                      b'"source":{"ip":"10.1.2.3","port":1}}') == "10.1.2.3"
    assert _source_ip(b'{"destination":{"ip":"10.1.2.3"}}') is None
    assert _source_ip(b'{"source":{"ip":"10.1.2') is None
