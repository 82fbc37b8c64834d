"""Flow documents as JSON lines, straight from the compiled table's record rows: the bytes
`codec.encode(doc) + b"\\n"` for each dict documents/flows.py builds, without the dict.

    for chunk in flow_lines(rows, app, observer, networks, site): ...   # bytes, a line per row

The columns are prepared here in bulk (numpy: times, durations, services), the per-row
work (three hashes, address text, ISO times, the direction, the line itself) is the compiled
kernel's (documents/kernel.py). Rows the kernel does not write — those with payload hints (SSH
banners, a service named by the payload) — are encoded from their dicts, in place.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from functools import lru_cache, partial

import numpy as np

from watchkeeper import codec
from watchkeeper.documents import PORT_PROTOCOLS, PROTO_NAMES, community_id
from watchkeeper.networks import InternalNetworks

from collectors.capture.documents.flows import flow_documents
from collectors.capture.flows.compiled.layout import CONN_STATES
from collectors.capture.flows.flow import SERVICES, ip_text
from collectors.capture.kernels import native as K
from collectors.capture.prefetch import in_order

SLICE = 8192            # rows per kernel call: bounds the output buffer (~13 MiB)
# A line is at most this long plus the observer, the site and the supplied texts: ~600 bytes
# of names and punctuation, 13 integers, 3 times, 2 hashes, 2 IPv4 addresses, history.
ROW_BOUND = 1600
DIRECTIONS = ("external", "inbound", "outbound", "internal")    # 2 * src + dst internal
SERVICE_NAMES = tuple(sorted(set(SERVICES.values())))


def _u8(raw: bytes) -> np.ndarray:
    """A writable uint8 array of `raw` (the kernel is compiled for writable arrays)."""
    return np.frombuffer(bytearray(raw), np.uint8)


def _string_table() -> tuple[np.ndarray, np.ndarray]:
    """The kernel's string table (its layout is documented in kernel._row)."""
    strings = [*CONN_STATES, *([""] * (13 - len(CONN_STATES))),
               *(PROTO_NAMES.get(p, str(p)) for p in range(256)), *DIRECTIONS, *SERVICE_NAMES]
    raw = [s.encode() for s in strings]
    offsets = np.cumsum([0] + [len(s) for s in raw]).astype(np.int64)
    return _u8(b"".join(raw)), offsets


STRINGS, STRING_OFF = _string_table()


def _service_table() -> np.ndarray:
    """(2, 65536): index into SERVICE_NAMES of (TCP row 0 | UDP row 1, responder port)."""
    table = np.full((2, 65536), -1, np.int16)
    for (proto, port), name in SERVICES.items():
        table[0 if proto == 6 else 1, port] = SERVICE_NAMES.index(name)
    return table


SERVICE_TABLE = _service_table()


def micros(epoch: np.ndarray) -> np.ndarray:
    """Epoch seconds -> integer microseconds, rounded as documents.flows.iso_times does."""
    frac, whole = np.modf(epoch)
    return np.round(frac * 1e6).astype(np.int64) + whole.astype(np.int64) * 1_000_000


def start_reprs(start: np.ndarray, start_micros: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`repr(t)` of the start times the kernel does not write itself, as one uint8 blob and
    n + 1 offsets (an empty one: the kernel writes it). The kernel writes a time of whole
    microseconds between 1e9 and 2**32 (2001-2106) as its 10 digits, ".", and 1-6 fraction
    digits: such a double is within half a ulp (< 0.5 µs) of that decimal, which is then the
    only shortest string that reads back as it - what `repr` writes. Others (nanosecond
    captures, odd clocks) are `repr`'s here."""
    offsets = np.zeros(len(start) + 1, np.int64)
    own = (start < 1e9) | (start >= 2.0 ** 32) | (start_micros / 1e6 != start)
    if not own.any():
        return _u8(b""), offsets
    parts = [repr(float(start[j])).encode() if own[j] else b"" for j in range(len(start))]
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return _u8(b"".join(parts)), offsets


@lru_cache(maxsize=8)
def networks_array(cidrs: tuple[str, ...]) -> np.ndarray:
    """(3, k, 16) uint8: each internal network's address and mask as 16 bytes (IPv4 in the
    last 4, as in the record rows), and in [2, k, 0] whether it is IPv6."""
    nets = np.zeros((3, len(cidrs), 16), np.uint8)
    for k, cidr in enumerate(cidrs):
        net = ipaddress.ip_network(cidr, strict=False)
        width = 4 if net.version == 4 else 16
        nets[0, k, 16 - width:] = np.frombuffer(net.network_address.packed, np.uint8)
        nets[1, k, 16 - width:] = np.frombuffer(net.netmask.packed, np.uint8)
        nets[2, k, 0] = net.version == 6
    return nets


def services(rows: np.ndarray) -> np.ndarray:
    """SERVICE_NAMES index of each row's `network.protocol` (-1: none), as flow_documents
    decides without a payload hint: traffic seen, TCP or UDP, a known responder port."""
    proto = rows["proto"]
    seen = (rows["bytes"][:, 0] + rows["bytes"][:, 1]) > 0
    tcp_udp = (proto == 6) | (proto == 17)
    found = SERVICE_TABLE[(proto == 17).astype(np.intp), rows["port"][:, 1]]
    return np.where(seen & tcp_udp, found, -1).astype(np.int16)


def supplied_texts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texts the kernel does not write itself, per row (src, dst, community id) as
    [start, end) in one blob (start == end: the kernel writes it): IPv6 address text
    (ipaddress's spelling), community ids of protocols without ports (the library's)."""
    offsets = np.zeros((len(rows), 3, 2), np.int64)
    v6 = rows["v6"].astype(bool)
    portless = ~np.isin(rows["proto"], list(PORT_PROTOCOLS))
    wanted = np.flatnonzero(v6 | portless)
    parts: list[bytes] = []
    # columns of the wanted rows as Python values: a numpy record per row cost ~8 µs
    ips, protos = rows["ip"][wanted], rows["proto"][wanted].tolist()
    ports, is_v6 = rows["port"][wanted].tolist(), v6[wanted].tolist()
    for k, j in enumerate(wanted.tolist()):
        src, dst = ip_text(ips[k, 0].tobytes(), is_v6[k]), ip_text(ips[k, 1].tobytes(), is_v6[k])
        parts += [src.encode() if is_v6[k] else b"", dst.encode() if is_v6[k] else b"",
                  community_id(protos[k], src, dst, *ports[k]).encode() if portless[j] else b""]
    if parts:
        sizes = np.array([len(p) for p in parts], np.int64).reshape(-1, 3)
        offsets[wanted, :, 1] = np.cumsum(sizes).reshape(-1, 3)
        offsets[wanted, :, 0] = offsets[wanted, :, 1] - sizes
    return _u8(b"".join(parts)), offsets


def flow_lines(rows: np.ndarray, app: dict[int, dict], observer: str,
               networks: InternalNetworks, site: str | None = None) -> Iterator[bytes]:
    """The JSON lines of every row, in row order: one bytes object per SLICE rows (a flush
    can hand over 10^5 rows at once; joined, they would double the peak memory). Batches of
    several slices are encoded two slices at a time (prefetch.in_order): the kernel
    releases the GIL, and such a batch (the end of a capture) is otherwise encoded
    while the flow meter has nothing left to do."""
    jobs = slice_encoders(rows, app, observer, networks, site)
    if len(jobs) < 2:
        yield from (job() for job in jobs)
        return
    yield from in_order(jobs, workers=2, name="flow-lines")


def slice_encoders(rows: np.ndarray, app: dict[int, dict], observer: str,
                   networks: InternalNetworks, site: str | None = None,
                   view: bool = False) -> list[Callable[[], bytes | memoryview]]:
    """One function per SLICE rows, each returning those rows' lines: callers may run them
    on several threads and join the results in order. With `view`, lines are handed over
    as a view of the writer's own buffer instead of a copy (for a consumer that only
    writes them out: the copy was ~8 % of `flows --json`'s time, bench/RESULTS.md)."""
    def encoder(a: int) -> Callable[[], bytes | memoryview]:
        hints = {j - a: h for j, h in app.items() if a <= j < a + SLICE}
        return partial(_slice_lines, rows[a:a + SLICE], hints, observer, networks, site, view)

    return [encoder(a) for a in range(0, len(rows), SLICE)]


def _slice_lines(rows: np.ndarray, app: dict[int, dict], observer: str,
                 networks: InternalNetworks, site: str | None,
                 view: bool = False) -> bytes | memoryview:
    n = len(rows)
    if not n:
        return b""
    rows = np.ascontiguousarray(rows)
    start, last = rows["start"], rows["last"]
    times = np.stack([micros(start), micros(last)], axis=1)
    duration = np.maximum(0, np.round((last - start) * 1e9)).astype(np.int64)
    reprs, repr_off = start_reprs(start, times[:, 0])
    texts, text_off = supplied_texts(rows)
    skip = np.zeros(n, np.uint8)
    skip[list(app)] = 1
    obs_key = ("" if observer is None else str(observer)).encode() + b"\x1f"
    site_tail = b',"labels":{"site":' + codec.encode(site) + b"}" if site else b""
    obs_json = codec.encode(observer)
    supplied = int((text_off[:, :, 1] - text_off[:, :, 0]).sum(axis=1).max())
    line_bound = ROW_BOUND + len(obs_json) + len(site_tail) + supplied
    out = np.empty(n * line_bound + line_bound, np.uint8)
    ends = np.zeros(n, np.int64)
    done = K.encode_flows(rows, skip, times, duration, reprs, repr_off,
                          networks_array(tuple(networks.cidrs)), services(rows), texts, text_off, STRINGS, STRING_OFF, _u8(obs_json), _u8(obs_key),
                          _u8(site_tail), np.zeros(len(obs_key) + 512, np.uint8),
                          np.zeros(128, np.uint64), np.zeros(32, np.uint8),
                          np.zeros(32, np.uint8), out, ends, line_bound)
    assert done == n                     # `out` has room for every row
    if not app:
        return memoryview(out[:ends[-1]]) if view else out[:ends[-1]].tobytes()
    return _with_hinted_rows(out, ends, rows, app, observer, networks, site)


def _with_hinted_rows(out, ends, rows, app, observer, networks, site) -> bytes:
    """The kernel's lines with those of the hinted rows (left empty) encoded from dicts."""
    hinted = sorted(app)
    docs = flow_documents(rows[hinted], {k: app[j] for k, j in enumerate(hinted)}, observer,
                          networks, site)
    lines = {j: codec.encode(doc) + b"\n" for j, doc in zip(hinted, docs)}
    parts, begin = [], 0
    for j in hinted:
        parts.append(out[begin:ends[j]].tobytes())
        parts.append(lines[j])
        begin = ends[j]
    parts.append(out[begin:ends[-1]].tobytes())
    return b"".join(parts)


def example_args() -> tuple:
    """Arguments of the types `_slice_lines` passes (kernels/build.py compiles for them)."""
    from collectors.capture.flows.compiled.layout import RECORD
    rows = np.zeros(1, RECORD)
    u8 = np.zeros(1, np.uint8)
    return (rows, u8, np.zeros((1, 2), np.int64), np.zeros(1, np.int64), u8,
            np.zeros(2, np.int64), networks_array(("10.0.0.0/8",)), np.zeros(1, np.int16), u8, np.zeros((1, 3, 2), np.int64),
            STRINGS, STRING_OFF, u8, u8, u8, u8, np.zeros(128, np.uint64), u8, u8, u8,
            np.zeros(1, np.int64), ROW_BOUND)
