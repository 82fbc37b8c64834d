"""`watchkeeper` limits malloc arenas before any thread exists (watchkeeper/memory.py), so
importing the command's module must start none: the role and tool tables (numpy, whose
OpenBLAS starts a thread, comes with them) are loaded by main() after the limit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import os, sys
import app.cli
print(len(os.listdir("/proc/self/task")), "numpy" in sys.modules)
"""


def test_importing_the_command_starts_no_thread():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["1", "False"]

