#!/usr/bin/env bash
# The race that made the old `deploy/local/services start` give up at once: the old health loop
# read /proc/PID/comm of the pid it had just launched (setsid → nohup → java) and took anything
# but "java" for a dead process. This launches `setsid nohup sleep` the same way N times
# (default 300; `sleep` stands in for java: the exec chain is the same) and counts how often
# the old check's first look still sees a shell, setsid or nohup. Run it under load to see the
# rate a busy machine gives.   usage: bench/exec_race.sh [N]
set -u
n="${1:-300}" f="$(mktemp)" early=0 seen=""
for ((i = 0; i < n; i++)); do
  setsid nohup sleep 0.3 </dev/null >/dev/null 2>&1 &
  echo "$!" >"$f"
  pid="$(cat "$f")"; kill -0 "$pid" 2>/dev/null
  c="$(cat "/proc/$pid/comm" 2>/dev/null)"
  [[ "$c" == sleep ]] || { early=$((early + 1)); seen+="$c "; }
done
wait; rm -f "$f"
counts="$( [[ -z "$seen" ]] || tr " " "\n" <<<"${seen% }" | sort | uniq -c | xargs)"
echo "not yet exec'd at the old check: $early/$n (seen: ${counts:-none})"
