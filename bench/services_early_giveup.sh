#!/usr/bin/env bash
# Does a copy of deploy/local/services give up at once on a busy machine? Under two busy loops,
# launches its `start` N times (default 40) on its own dir and ports and tells, for each, whether
# the script exited within 4 s of launching Kafka (the early give-up: "kafka is not healthy
# after 180s (or exited)") or was still waiting (then it is killed and Kafka stopped; the full
# start is what bench/services_start.py measures). Data is kept between launches, so only the
# first one formats. The copy needs .cache and pom.xml beside it (symlinks to deploy/local's):
#   mkdir /tmp/oldsvc && git show main~N:deploy/local/services >/tmp/oldsvc/services && ...
# usage: bench/services_early_giveup.sh SCRIPT [N]
set -u
export WK_SERVICES_DIR=/tmp/wk-old-repro WK_KAFKA_PORT=29192 WK_KAFKA_CONTROLLER_PORT=29193 WK_ES_PORT=29300
OLD="$1" n="${2:-40}"
bash -c 'while :; do :; done' & b1=$!
bash -c 'while :; do :; done' & b2=$!
gaveup=0
for ((i = 1; i <= n; i++)); do
  rm -f $WK_SERVICES_DIR/kafka/kafka.pid
  setsid "$OLD" start >/tmp/old-repro-$i.log 2>&1 & s=$!
  # until it launched the broker (pid file written) or exited, then 4 s more
  for ((t = 0; t < 480; t++)); do [[ -s $WK_SERVICES_DIR/kafka/kafka.pid ]] && break; kill -0 $s 2>/dev/null || break; sleep 0.25; done
  for ((t = 0; t < 8; t++)); do kill -0 $s 2>/dev/null || break; sleep 0.5; done
  if kill -0 $s 2>/dev/null; then
    kill -- -$s; wait $s 2>/dev/null; res="still waiting 4s after the launch (passed the pid check)"
  else
    wait $s; rc=$?; res="script exited rc=$rc within 4s of the launch: $(grep -m1 ERROR /tmp/old-repro-$i.log)"
    grep -q "not healthy" /tmp/old-repro-$i.log && gaveup=$((gaveup + 1))
  fi
  echo "launch $i: $res"
  # let the JVM exec, then stop it with the old script (its stop needs comm == java)
  for ((t = 0; t < 20; t++)); do [[ "$(cat /proc/$(cat $WK_SERVICES_DIR/kafka/kafka.pid)/comm 2>/dev/null)" == java ]] && break; sleep 0.5; done
  "$OLD" stop >/dev/null 2>&1
done
kill $b1 $b2
echo "old script gave up early in $gaveup/$n launches"
