"""Health probe for deploy/local/services: exit 0 when the Kafka broker on 127.0.0.1:PORT
answers a Metadata request that lists itself and a known controller, else exit 1.

Standard library only (it runs before the project's venv exists), and one round trip instead
of a JVM admin tool per probe, which on a busy 2-core machine competed with the starting broker.
usage: python3 kafka_probe.py PORT [TIMEOUT_S]
"""
from __future__ import annotations

import socket
import struct
import sys

METADATA, VERSION = 3, 4  # v4 is the oldest Metadata version Kafka 4 still serves (KIP-896)
CORRELATION = 0x574B


def metadata_request() -> bytes:
    client = b"wk-services-probe"
    header = struct.pack(">hhih", METADATA, VERSION, CORRELATION, len(client)) + client
    body = struct.pack(">i?", -1, False)  # all topics (null array), no auto-creation
    return struct.pack(">i", len(header + body)) + header + body


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def int(self, fmt: str) -> int:
        (value,) = struct.unpack_from(">" + fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        n = self.int("h")
        if n < 0:
            return None
        self.at += n
        return self.data[self.at - n:self.at].decode()


def broker_ready(payload: bytes, port: int) -> bool:
    """True when the response lists a broker on `port` and names a controller."""
    r = Reader(payload)
    if r.int("i") != CORRELATION:
        raise ValueError("unexpected correlation id")
    r.int("i")  # throttle_time_ms
    ports = []
    for _ in range(r.int("i")):
        r.int("i")  # node_id
        r.string()  # host
        ports.append(r.int("i"))
        r.string()  # rack
    r.string()  # cluster_id
    return port in ports and r.int("i") >= 0  # controller_id is -1 until one is known


def main(argv: list[str]) -> int:
    port = int(argv[1])
    timeout = float(argv[2]) if len(argv) > 2 else 5.0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(metadata_request())
            (size,) = struct.unpack(">i", read_exact(sock, 4))
            return 0 if broker_ready(read_exact(sock, size), port) else 1
    except (OSError, ValueError, struct.error) as exc:
        print(f"kafka probe: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
