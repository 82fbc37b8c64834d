"""Command-line options shared by several subcommands."""
from __future__ import annotations

import argparse


def backends(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML settings file")
    parser.add_argument("--bus", help="memory://, kafka://HOST:PORT or kafka+rdkafka://HOST:PORT "
                        "(env WATCHKEEPER_BUS)")
    parser.add_argument("--store",
                        help="sqlite:///PATH or http://HOST:9200 (env WATCHKEEPER_STORE)")


def api_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="API listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default 8000)")


def syslog_port(parser: argparse.ArgumentParser, text: str = "UDP+TCP port (default 5514)"):
    parser.add_argument("--syslog-port", type=int, help=text)


def netflow_port(parser: argparse.ArgumentParser, text: str = "UDP port (default 2055)"):
    parser.add_argument("--netflow-port", type=int, help=text)
