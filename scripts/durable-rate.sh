#!/usr/bin/env bash
# durable-rate.sh measures what chargeguard alone makes durable: InfluxDB is
# not running (the writer retries, the spool takes everything), Mosquitto
# runs with deploy/mosquitto/mosquitto.conf's tuning, `pilesim load` offers
# RATE messages/s of 10-port telemetry at QoS 1, and the script reports, over
# WINDOW seconds in the middle of the run, the messages chargeguard acked per
# second (chargeguard_ingest_acked_total) and the CPU it used (/proc).
#
#   RATE=18000 scripts/durable-rate.sh         docs/benchmarks.md, "chargeguard alone"
#   RATE=12000 PILES=1000 DURATION=30 WINDOW=10 scripts/durable-rate.sh
#
# Everything listens on loopback ports from 21883 upwards and is stopped at
# the end; nothing outside a temporary directory is written.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
export PATH="$PWD/.cache/bin:$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

RATE=${RATE:-18000}
PILES=${PILES:-1000}
DURATION=${DURATION:-30} # seconds of load
WINDOW=${WINDOW:-10}     # seconds measured, from DURATION/3 on

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/" ./cmd/chargeguard ./cmd/pilesim

mq=$(free_port 21883)
http=$(free_port 29466)
dead=$(free_port 28086) # no InfluxDB here
# The shipped tuning, without the container's listeners, auth and paths.
grep -Ev '^(#|$|listener|use_username_as_clientid|allow_anonymous|password_file|acl_file|persistence_location|log_dest)' \
	deploy/mosquitto/mosquitto.conf >"$tmp/mosquitto.conf"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence_location %s/\nlog_dest stderr\n' \
	"$mq" "$tmp" >>"$tmp/mosquitto.conf"
# Started as root, Mosquitto would switch to its own user, which cannot
# write in our temporary directory.
[ "$(id -u)" = 0 ] && echo "user root" >>"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" 2>"$tmp/mosquitto.log" &
pids+=($!)
for _ in $(seq 50); do port_busy "$mq" && break; sleep 0.1; done

"$tmp/chargeguard" --mqtt-url "tcp://127.0.0.1:$mq" --influx-url "http://127.0.0.1:$dead" \
	--data-dir "$tmp/data" --http-addr "127.0.0.1:$http" --log-level error --log-format json 2>"$tmp/chargeguard.log" &
cg=$!
pids+=("$cg")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done

"$tmp/pilesim" load --broker "tcp://127.0.0.1:$mq" --piles "$PILES" --rate "$RATE" \
	--duration "${DURATION}s" --conns 8 --qos 1 >"$tmp/load.txt" 2>&1 &
load=$!
pids+=("$load")

cpu() { awk '{ print $14 + $15 }' "/proc/$cg/stat"; } # utime + stime, in clock ticks
sleep $((DURATION / 3))
a=$(metric_sum "http://127.0.0.1:$http/metrics" chargeguard_ingest_acked_total)
c0=$(cpu)
sleep "$WINDOW"
b=$(metric_sum "http://127.0.0.1:$http/metrics" chargeguard_ingest_acked_total)
c1=$(cpu)
wait "$load" || true
hz=$(getconf CLK_TCK)
awk -v rate="$RATE" -v a="$a" -v b="$b" -v c0="$c0" -v c1="$c1" -v hz="$hz" -v w="$WINDOW" 'BEGIN {
	acked = (b - a) / w; cores = (c1 - c0) / hz / w
	printf "offered %d msgs/s | acked %.0f msgs/s = %.0f port samples/s | chargeguard %.2f core | %.0f µs CPU per message\n",
		rate, acked, acked * 10, cores, (acked > 0 ? cores * 1e6 / acked : 0)
}'
echo "load generator: $(tail -n 1 "$tmp/load.txt")"
uptime
