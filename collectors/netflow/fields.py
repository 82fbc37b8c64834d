"""IANA IPFIX information element ids (RFC 7012; NetFlow v9 shares ids 1-127) that we read.

netflume decodes every element by name; these ids are what the unit tests build templates
from and what an operator sees in an exporter's configuration, so they live in one place.
"""
from __future__ import annotations

OCTET_DELTA_COUNT = 1            # netflume key "octets"
PACKET_DELTA_COUNT = 2           # "packets"
PROTOCOL_IDENTIFIER = 4          # "proto"
TCP_CONTROL_BITS = 6             # "tcp_flags"
SOURCE_TRANSPORT_PORT = 7        # "src_port"
SOURCE_IPV4_ADDRESS = 8          # "src_addr"
INGRESS_INTERFACE = 10           # "in_if"
DESTINATION_TRANSPORT_PORT = 11  # "dst_port"
DESTINATION_IPV4_ADDRESS = 12    # "dst_addr"
EGRESS_INTERFACE = 14            # "out_if"
FLOW_END_SYS_UP_TIME = 21        # "last_switched": ms since exporter boot
FLOW_START_SYS_UP_TIME = 22      # "first_switched"
SOURCE_IPV6_ADDRESS = 27         # "src_addr" as well: one key for both families
DESTINATION_IPV6_ADDRESS = 28    # "dst_addr"
ICMP_TYPE_CODE_IPV4 = 32         # "icmp_type_code": type * 256 + code
SAMPLING_INTERVAL = 34           # v9 options: "sampling_interval" (1 in N)
SAMPLING_ALGORITHM = 35          # v9 options: 1 deterministic, 2 random
OCTET_TOTAL_COUNT = 85           # "octets_total": some exporters send totals instead
PACKET_TOTAL_COUNT = 86          # "packets_total"
ICMP_TYPE_CODE_IPV6 = 139        # "icmp_type_code_v6"
FLOW_START_SECONDS = 150         # "flow_start_s"
FLOW_END_SECONDS = 151           # "flow_end_s"
FLOW_START_MILLISECONDS = 152    # "flow_start_ms": absolute epoch ms (IPFIX)
FLOW_END_MILLISECONDS = 153      # "flow_end_ms"
SYSTEM_INIT_TIME_MILLISECONDS = 160  # "system_init_time_ms": epoch ms the exporter booted
SAMPLING_PACKET_INTERVAL = 305   # IPFIX PSAMP: take `interval` packets ...
SAMPLING_PACKET_SPACE = 306      # ... then skip `space`

# Set ids on the wire.
V9_TEMPLATE_SET, V9_OPTIONS_SET = 0, 1
IPFIX_TEMPLATE_SET, IPFIX_OPTIONS_SET = 2, 3
FIRST_DATA_SET = 256
