"""Helpers for tests that drive the real `watchkeeper` command and its HTTP API."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "app.cli"]
ANY_PORTS = ["--syslog-port", "0", "--netflow-port", "0"]   # `run` listeners on free ports


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*WATCHKEEPER, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def api_key(*options: str, env: dict | None = None, role: str = "analyst") -> dict:
    """`watchkeeper keys create` on the store of `options`: headers that carry the new key."""
    made = run_cli("keys", "create", "integration-tests", "--role", role, *options, env=env)
    assert made.returncode == 0, made.stderr
    return {"X-API-Key": made.stdout.strip()}


def demo_login(process: subprocess.Popen, base: str, user: str = "demo-analyst") -> dict:
    """Read `user`'s password from what `run --demo` prints once, log in: bearer headers."""
    for line in process.stderr:
        fields = line.split()
        if fields[:1] == [user]:
            password = fields[-1]
            break
    else:
        pytest.fail(f"`run --demo` exited without printing a password for {user}")
    token = httpx.post(f"{base}/api/v1/auth/token",
                       data={"username": user, "password": password}, timeout=30)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, deadline_s: float = 60, process: subprocess.Popen | None = None):
    """Poll until the URL answers 200; fail early if the server process died."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {deadline_s}s")


@pytest.fixture
def server():
    """Start `watchkeeper <args>` in the background; stopped at teardown."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([*WATCHKEEPER, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
