"""Collectors: turn packets, NetFlow, syslog and peer-tool logs into ECS events."""
