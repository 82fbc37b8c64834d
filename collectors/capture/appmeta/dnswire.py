"""DNS wire-format parser for one UDP datagram or the first TCP segment of a connection.

Rendering follows Zeek's dns.log (base/protocols/dns/main.zeek and DNS.cc) so events line
up with what analysts know from Zeek: `qtype_name`/`rcode_name`/`qclass_name` use Zeek's
tables and `DnsAnswer.data` is the text Zeek puts into the `answers` vector.

Differences from Zeek, on purpose:
  * names keep their wire case (Zeek lower-cases the query and answer names);
  * DNAME renders as its target (Zeek has no DNAME decoder: "<unknown type=39>");
  * bytes outside printable ASCII (and the backslash) in names and TXT strings are
    escaped here as "\\xNN" (Zeek escapes them later, in its log writer);
  * no NetBIOS special cases (Zeek decodes port-137 names and calls SRV "NBSTAT").

Answers Zeek decodes but never logs (WKS, HINFO, NB, OPT, TSIG, SVCB, HTTPS, CAA) get
data "" - Zeek only appends non-empty replies, so callers should skip them likewise.

Work is bounded: at most 25 questions (Zeek's dns_max_queries, more is "not DNS"),
64 answers, 64 compression jumps per name and 255 bytes per name; compression pointers
must point strictly backwards, as in Zeek, so they cannot loop. Names already read are
cached per message, so a pointer into them costs one lookup.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from collectors.capture.appmeta.errors import AppParseError

MAX_QUESTIONS = 25
MAX_ANSWERS = 64
MAX_JUMPS = 64
MAX_NAME = 255          # wire length, length octets and root label included (RFC 1035 2.3.4)
MAX_STRINGS = 64        # TXT/SPF strings rendered per record (65535 empty ones would fit)

_HDR = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_QQ = struct.Struct("!HH")
_H = struct.Struct("!H")
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_AF6 = socket.AF_INET6
_ntop = socket.inet_ntop

# Escape everything that is not printable ASCII, like Zeek's log writers do, and the
# backslash itself so that an escape in the output is never ambiguous.
_ESC = {i: f"\\x{i:02x}" for i in range(256) if not 0x20 <= i < 0x7F or i == 0x5C}


@dataclass(slots=True)
class DnsAnswer:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: str       # Zeek's `answers` text; "" where Zeek logs nothing


@dataclass(slots=True)
class DnsMessage:
    id: int
    response: bool
    opcode: int
    rcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    questions: list[tuple[str, int, int]]       # (name, qtype, qclass)
    answers: list[DnsAnswer]
    # The answer section stopped early (cut by the datagram/segment end or corrupt):
    # `answers` holds the records before that point. Zeek logs such a query too.
    answers_truncated: bool = False


def _text(raw: bytes) -> str:
    s = raw.decode("latin-1")
    if s.isascii() and s.isprintable() and "\\" not in s:
        return s
    return s.translate(_ESC)


# A cached run of labels (or a bare pointer): (text, end, wire length, jumps, start).
_Run = tuple[str, int, int, int, int]


def _name(msg: bytes, pos: int, limit: int, seen: dict[int, _Run], depth: int = 0,
          base: int = 0) -> tuple[str, int, int, int]:
    """Read the name at `pos`: (text without trailing dot, end, wire length, jumps).

    `end` is the position after the name's own bytes. Inline labels must end before
    `limit`; a compression pointer must point before itself and the name it points to
    must end before the pointer (as in Zeek), so every jump moves strictly backwards and
    cannot loop. `depth` counts jumps taken so far and `base` the wire bytes before
    this part, so the 64-jump and 255-byte limits hold for the whole name.

    `seen` maps the offset of every label (and bare pointer) already read in this
    message to its run, so the usual pointers into earlier names cost a dict lookup and
    each position is followed at most once in the common case; a cached run is only
    reused where it passes the same checks a fresh read would make.
    """
    start = pos
    rels: list[int] = []
    while True:
        if pos >= limit:
            raise AppParseError("DNS name runs past its end")
        ln = msg[pos]
        if ln == 0 or ln >= 0xC0:
            break
        if ln > 63:
            raise AppParseError("DNS label type 0x40/0x80")
        rels.append(pos)
        pos += ln + 1
        if base + pos - start >= MAX_NAME:
            raise AppParseError("DNS name longer than 255 bytes")
    wire = pos - start
    if ln == 0:
        end, tail, twire, jumps = pos + 1, "", 1, 0
    else:
        if pos + 1 >= limit:
            raise AppParseError("DNS compression pointer cut")
        ptr = ((ln & 0x3F) << 8) | msg[pos + 1]
        if ptr >= pos:
            raise AppParseError("DNS compression pointer does not point backwards")
        if depth >= MAX_JUMPS:
            raise AppParseError("too many DNS compression jumps")
        end = pos + 2
        run = seen.get(ptr)
        if run is not None:
            cut = ptr - run[4]
            if (run[1] <= pos and depth + 1 + run[3] <= MAX_JUMPS
                    and base + wire + run[2] - cut <= MAX_NAME):
                tail, twire, jumps = run[0][cut:], run[2] - cut, run[3]
            else:
                run = None
        if run is None:
            tail, _, twire, jumps = _name(msg, ptr, pos, seen, depth + 1, base + wire)
        jumps += 1
    if not rels:
        if jumps:
            # A bare pointer: cache it too, so a chain of pointers is followed only once.
            seen[start] = (tail, end, twire, jumps, start)
        return tail, end, twire, jumps
    if len(rels) == 1:
        raw = msg[start + 1:pos].decode("latin-1")
    else:
        ba = bytearray(msg[start:pos])
        for r in rels[1:]:
            ba[r - start] = 46         # length octet -> "."
        raw = ba[1:].decode("latin-1")
    if raw.isascii() and raw.isprintable() and "\\" not in raw:
        text = raw + "." + tail if tail else raw
        # One record for the whole run; a label's offset in the text equals its offset
        # in the wire bytes, so a pointer into the run just slices the text.
        run = (text, end, wire + twire, jumps, start)
        for r in rels:
            seen[r] = run
        return text, end, wire + twire, jumps
    # Escaping changes lengths, so these labels are not cached (rare).
    text = raw.translate(_ESC)
    return (text + "." + tail if tail else text), end, wire + twire, jumps


def _strings(msg: bytes, pos: int, end: int, tag: str) -> str:
    """TXT/SPF character-strings as Zeek renders them: "TXT <len> <string>" joined by " "."""
    out: list[str] = []
    while pos < end and len(out) < MAX_STRINGS:
        ln = msg[pos]
        nxt = pos + 1 + ln
        if nxt > end:
            raise AppParseError("DNS character-string runs past its record")
        out.append(f"{tag} {ln} {_text(msg[pos + 1:nxt])}")
        pos = nxt
    return " ".join(out)


def _need(pos: int, size: int, end: int) -> None:
    if pos + size > end:
        raise AppParseError("DNS record data too short")


# Types Zeek decodes without adding anything to dns.log's `answers`:
# WKS HINFO NB OPT SVCB HTTPS TSIG CAA.
_SILENT = frozenset((11, 13, 32, 41, 64, 65, 250, 257))


def _rdata(msg: bytes, rtype: int, pos: int, end: int, owner: str,
           seen: dict[int, _Run]) -> str:
    """Zeek's `answers` text for one record's RDATA (msg[pos:end])."""
    if rtype == 1:                                                  # A
        if end - pos != 4:
            raise AppParseError("DNS A record is not 4 bytes")
        return f"{msg[pos]}.{msg[pos + 1]}.{msg[pos + 2]}.{msg[pos + 3]}"
    if rtype == 28:                                                 # AAAA
        if end - pos != 16:
            raise AppParseError("DNS AAAA record is not 16 bytes")
        raw = msg[pos:end]
        if raw[:12] == _V4_MAPPED:      # Zeek keeps IPv4 as v4-mapped and prints it dotted
            return f"{raw[12]}.{raw[13]}.{raw[14]}.{raw[15]}"
        return _ntop(_AF6, raw)         # Zeek also formats with inet_ntop
    if rtype in (5, 2, 12, 39):                                     # CNAME NS PTR DNAME
        return _name(msg, pos, end, seen)[0]
    if rtype == 15 or rtype == 33:                                  # MX, SRV: skip the numbers
        skip = 2 if rtype == 15 else 6
        _need(pos, skip, end)
        return _name(msg, pos + skip, end, seen)[0]
    if rtype == 16:
        return _strings(msg, pos, end, "TXT")
    if rtype == 6:                                                  # SOA -> mname
        return _name(msg, pos, end, seen)[0]
    if rtype in _SILENT:
        return ""
    if rtype == 99:
        return _strings(msg, pos, end, "SPF")
    if rtype == 46:                                                 # RRSIG
        _need(pos, 18, end)
        signer = _name(msg, pos + 18, end, seen)[0]
        return f"RRSIG {_H.unpack_from(msg, pos)[0]} {signer or '<Root>'}"
    if rtype == 48:                                                 # DNSKEY
        _need(pos, 4, end)
        return f"DNSKEY {msg[pos + 3]}"
    if rtype == 43:                                                 # DS
        _need(pos, 4, end)
        return f"DS {msg[pos + 2]} {msg[pos + 3]}"
    if rtype == 47:                                                 # NSEC
        return f"NSEC {owner} {_name(msg, pos, end, seen)[0]}"
    if rtype == 50:
        return "NSEC3"
    if rtype == 51:
        return "NSEC3PARAM"
    if rtype == 44:                                                 # SSHFP
        _need(pos, 2, end)
        return f"SSHFP: {msg[pos + 2:end].hex()}"
    if rtype == 29:                                                 # LOC
        _need(pos, 4, end)
        return f"LOC:  {msg[pos + 1]} {msg[pos + 2]} {msg[pos + 3]}"
    if rtype == 65534:
        return "BIND9 signing signal"
    return f"<unknown type={rtype}>"


def parse_dns(payload: bytes, tcp: bool = False) -> DnsMessage:
    """Parse one DNS message; `tcp` means it starts with the 2-byte length prefix.

    Raises AppParseError for a short header, a cut or corrupt question section, or
    more than 25 questions. A cut or corrupt answer section is not an error: the
    answers before it are returned with `answers_truncated` set. Only the answer
    section is read (not authority/additional), at most 64 records.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    if tcp:
        if len(payload) < 2:
            raise AppParseError("DNS/TCP length prefix cut")
        size = (payload[0] << 8) | payload[1]
        if size < 12:
            raise AppParseError("DNS/TCP length prefix below header size")
        # A message longer than this segment is parsed as far as it goes.
        msg = payload[2:2 + size]
    else:
        msg = payload
    n = len(msg)
    if n < 12:
        raise AppParseError("DNS header cut")
    ident, flags, qdcount, ancount, _ns, _ar = _HDR.unpack_from(msg)
    if qdcount > MAX_QUESTIONS:
        raise AppParseError("too many DNS questions")

    pos = 12
    seen: dict[int, _Run] = {}
    questions = []
    for _ in range(qdcount):
        qname, pos, _w, _j = _name(msg, pos, n, seen)
        if pos + 4 > n:
            raise AppParseError("DNS question cut")
        qtype, qclass = _QQ.unpack_from(msg, pos)
        pos += 4
        questions.append((qname, qtype, qclass))

    answers = []
    cut = False
    try:
        for _ in range(min(ancount, MAX_ANSWERS)):
            name, pos, _w, _j = _name(msg, pos, n, seen)
            if pos + 10 > n:
                raise AppParseError("DNS record header cut")
            rtype, rclass, ttl, rdlen = _RR.unpack_from(msg, pos)
            pos += 10
            end = pos + rdlen
            if end > n:
                raise AppParseError("DNS record data cut")
            if rtype == 1 and rdlen == 4:       # the common case, without a call
                data = f"{msg[pos]}.{msg[pos + 1]}.{msg[pos + 2]}.{msg[pos + 3]}"
            else:
                data = _rdata(msg, rtype, pos, end, name, seen)
            answers.append(DnsAnswer(name, rtype, rclass, ttl, data))
            pos = end
    except AppParseError:
        cut = True

    return DnsMessage(ident, bool(flags & 0x8000), (flags >> 11) & 0xF, flags & 0xF,
                      bool(flags & 0x0400), bool(flags & 0x0200), bool(flags & 0x0100),
                      bool(flags & 0x0080), questions, answers, cut)


# Zeek's DNS::query_types (base/protocols/dns/consts.zeek).
_QTYPES = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT",
    17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR",
    24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT",
    31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT",
    38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP",
    45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3",
    51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY",
    58: "TALINK", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD",
    64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO", 101: "UID", 102: "GID",
    103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48",
    109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB",
    254: "MAILA", 255: "*", 256: "URI", 257: "CAA", 32768: "TA", 32769: "DLV",
    65281: "WINS", 65282: "WINS-R", 65422: "XPF", 65521: "INTEGRITY",
}

# Zeek's DNS::base_errors; note Zeek's own spelling "NXRRSet".
_RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSet", 9: "NOTAUTH", 10: "NOTZONE",
    11: "unassigned-11", 12: "unassigned-12", 13: "unassigned-13", 14: "unassigned-14",
    15: "unassigned-15", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE",
    20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE", 3842: "BADSIG",
}

_QCLASSES = {1: "C_INTERNET", 2: "C_CSNET", 3: "C_CHAOS", 4: "C_HESIOD", 254: "C_NONE",
             255: "C_ANY"}

_OPCODES = {0: "query", 1: "iquery", 2: "server-status", 4: "notify",
            5: "dynamic-update", 6: "dso"}


def qtype_name(qtype: int) -> str:
    """Zeek's name for a query/record type ("query-<n>" when unknown, "*" for ANY)."""
    return _QTYPES.get(qtype) or f"query-{qtype}"


def rcode_name(rcode: int) -> str:
    """Zeek's name for a response code ("rcode-<n>" when unknown)."""
    return _RCODES.get(rcode) or f"rcode-{rcode}"


def qclass_name(qclass: int) -> str:
    """Zeek's name for a query class ("qclass-<n>" when unknown)."""
    return _QCLASSES.get(qclass) or f"qclass-{qclass}"


def opcode_name(opcode: int) -> str:
    """Zeek's dns.log opcode_name ("opcode-<n>" when unknown)."""
    return _OPCODES.get(opcode) or f"opcode-{opcode}"
