"""deploy/local/services' wait logic on real processes: a launched pid is "starting" until it
has exec'd into its final program (the JVM, in the script), it fails only when the process
exited (with its code) or the timeout passed, and the failure carries the log tails.

The script is sourced (it defines its functions and runs nothing then); the probes here stand
in for the Kafka/Elasticsearch probes, which bench/services_start.py exercises for real."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "deploy" / "local" / "services"


def bash(body: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    script = f'source "{SERVICES}"; set +e; TIMEOUT=${{TIMEOUT_OVERRIDE:-20}}; T0=$SECONDS; {body}'
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)


def test_a_pid_not_yet_execd_into_its_program_counts_as_starting(tmp_path):
    # Launched exactly as the script launches the JVM, but it stays a shell for 2 s before
    # exec'ing; "healthy" once it runs the final program. Treating the not-yet-exec'd pid as
    # dead (the old health loop) fails this at once.
    done = bash("""
        setsid nohup bash -c 'sleep 2; exec sleep 30' </dev/null >/dev/null 2>&1 &
        pid=$!
        early="$(cat /proc/$pid/comm)"
        ready() { [[ "$(cat /proc/$pid/comm 2>/dev/null)" == sleep ]]; }
        wait_healthy demo "$pid" child ready out.log
        rc=$?
        echo "early=$early rc=$rc"
        kill "$pid" """, tmp_path)
    assert "rc=0" in done.stdout, done.stderr
    assert "early=sleep" not in done.stdout  # it really was observed before the exec
    assert "ERROR" not in done.stderr


def test_a_process_that_exits_fails_with_its_code_and_both_log_tails(tmp_path):
    (tmp_path / "stdout.log").write_text("launch line\nError: could not bind\n")
    trace = "".join(f"\tat frame{i}\n" for i in range(40))  # pushes the cause out of the tail
    (tmp_path / "server.log").write_text(f"[t] INFO ok\n[t] ERROR Unable to start acceptor\n{trace}")
    done = bash("""
        setsid nohup bash -c 'sleep 0.5; exit 3' </dev/null >/dev/null 2>&1 &
        never() { false; }
        wait_healthy demo "$!" child never stdout.log server.log gc.log
        echo "rc=$?" """, tmp_path)
    assert "rc=1" in done.stdout
    assert "ERROR: demo exited with code 3 after" in done.stderr
    assert "last 30 lines of stdout.log" in done.stderr
    assert "Error: could not bind" in done.stderr
    assert "last error lines of server.log:\n[t] ERROR Unable to start acceptor" in done.stderr
    assert "frame39" in done.stderr and "frame9\n" not in done.stderr  # the 30-line tail
    assert "gc.log: (missing or empty)" in done.stderr


def test_a_live_unhealthy_process_fails_only_at_the_timeout_and_is_left_running(tmp_path):
    (tmp_path / "server.log").write_text("still recovering\n")
    done = bash("""
        TIMEOUT=2
        sleep 30 &
        pid=$!
        never() { false; }
        wait_healthy demo "$pid" child never server.log
        echo "rc=$? elapsed=$((SECONDS - T0)) alive=$(proc_alive $pid && echo yes)"
        kill "$pid" """, tmp_path)
    assert "rc=1" in done.stdout and "alive=yes" in done.stdout
    elapsed = int(done.stdout.split("elapsed=")[1].split()[0])
    assert elapsed >= 2
    assert "demo timed out: not healthy after 2s" in done.stderr
    assert "still running as 'sleep'" in done.stderr and "still recovering" in done.stderr


def test_a_zombie_counts_as_exited_and_a_stranger_is_not_our_service(tmp_path):
    # A zombie answers kill -0; in a container whose pid 1 does not reap, a crashed node
    # reparented there stays one. Here the zombie is this test's own unreaped child.
    zombie = subprocess.Popen(["true"])
    try:
        for _ in range(100):
            if Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] == "Z":
                break
            subprocess.run(["sleep", "0.05"])
        (tmp_path / "z.pid").write_text(f"{zombie.pid}\n")
        done = bash(f"""
            kill -0 {zombie.pid} && echo kill0=ok
            proc_alive {zombie.pid} || echo zombie=dead
            never() {{ false; }}
            wait_healthy demo {zombie.pid} other never
            echo "$$" > me.pid
            live_pid me.pid "absent-$((6 * 7))" || echo stranger=rejected
            [[ "$(live_pid me.pid "{SERVICES}")" == $$ ]] && echo self=ok
            """, tmp_path)
    finally:
        zombie.wait()
    assert "kill0=ok" in done.stdout and "zombie=dead" in done.stdout
    assert "demo exited (not our child: exit code unknown)" in done.stderr
    assert "stranger=rejected" in done.stdout and "self=ok" in done.stdout
