#!/usr/bin/env bash
# memload.sh measures chargeguard's memory under a telemetry flood: it starts
# InfluxDB 1.8 and chargeguard (embedded broker) on free loopback ports with
# their data in a fresh temporary directory, runs
#
#   pilesim load --piles $PILES --rate $RATE --duration $DURATION [--qos $QOS]
#
# against it, and samples chargeguard's RSS (/proc/PID/status VmRSS and
# VmHWM) and Go heap (/metrics go_memstats_heap_inuse_bytes) every second
# while the load runs and for $SETTLE seconds after. It prints one line per
# sample and a summary (peak and end RSS, peak heap), and stops only the
# processes it started, by PID. It never runs longer than DURATION + SETTLE
# + 3 minutes.
#
# Environment:
#   PILES (1000) RATE (10000) DURATION (120s) QOS (0) CONNS (default: one per pile)
#   SETTLE          seconds to keep sampling after the load ends (30)
#   NO_INFLUX=1     run without InfluxDB (the spool holds everything)
#   MEMLOAD_BIN     directory with chargeguard and pilesim (default: build
#                   ./cmd/... into $MEMLOAD_DIR/bin)
#   MEMLOAD_DIR     where data, logs and samples go (default: mktemp -d)
#   INFLUXD         influxd 1.8 binary (default .cache/bin/influxd)
#   GOMEMLIMIT      passed to chargeguard only (default: unset); InfluxDB and
#                   pilesim run without it
#   PROFILE=1       save /debug/pprof/heap at the peak of the run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export PATH="$PATH:/usr/local/go/bin"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

PILES=${PILES:-1000}
RATE=${RATE:-10000}
DURATION=${DURATION:-120s}
QOS=${QOS:-0}
SETTLE=${SETTLE:-30}
DIR=${MEMLOAD_DIR:-$(mktemp -d /tmp/memload.XXXXXX)}
INFLUXD=${INFLUXD:-$ROOT/.cache/bin/influxd}
mkdir -p "$DIR"
CG_GOMEMLIMIT=${GOMEMLIMIT:-}
unset GOMEMLIMIT

say() { printf 'memload: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

secs=${DURATION%s}
case $secs in '' | *[!0-9]*) die "DURATION must be whole seconds like 120s, not '$DURATION'" ;; esac

BIN=${MEMLOAD_BIN:-}
if [ -z "$BIN" ]; then
	BIN=$DIR/bin
	say "building ./cmd/chargeguard and ./cmd/pilesim into $BIN"
	go build -o "$BIN/" ./cmd/chargeguard ./cmd/pilesim
fi

pids=()
names=()
cleanup() {
	local i pid
	trap - EXIT INT TERM
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "${names[i]} (pid $pid) did not stop within 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
started() {
	pids+=("$1")
	names+=("$2")
}

wait_http() { # URL CODE SECONDS PID
	local got i
	for ((i = 0; i < $3 * 10; i++)); do
		got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)
		[ "$got" = "$2" ] && return 0
		kill -0 "$4" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

influx_args=()
if [ "${NO_INFLUX:-}" != 1 ]; then
	[ -x "$INFLUXD" ] || die "no influxd at $INFLUXD (set INFLUXD, or NO_INFLUX=1)"
	IPORT=$(free_port 18086)
	RPORT=$(free_port $((IPORT + 1)))
	INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$IPORT INFLUXDB_BIND_ADDRESS=127.0.0.1:$RPORT \
		INFLUXDB_META_DIR=$DIR/influx/meta INFLUXDB_DATA_DIR=$DIR/influx/data \
		INFLUXDB_DATA_WAL_DIR=$DIR/influx/wal \
		"$INFLUXD" run -config deploy/influxdb/influxdb.conf >"$DIR/influxd.log" 2>&1 &
	started $! influxd
	wait_http "http://127.0.0.1:$IPORT/ping" 204 60 "${pids[-1]}" || die "influxd did not start; see $DIR/influxd.log"
	curl -sS --fail -XPOST "http://127.0.0.1:$IPORT/query" --data-urlencode "q=CREATE DATABASE chargeguard" >/dev/null
	influx_args=(--influx-url "http://127.0.0.1:$IPORT")
else
	# Nothing listens there: the writer retries and the spool holds all.
	influx_args=(--influx-url "http://127.0.0.1:$(free_port 18186)")
fi

MPORT=$(free_port 11883)
HPORT=$(free_port 19466)
env ${CG_GOMEMLIMIT:+GOMEMLIMIT=$CG_GOMEMLIMIT} "$BIN/chargeguard" "${influx_args[@]}" --influx-bucket chargeguard/autogen \
	--data-dir "$DIR/data" --http-addr "127.0.0.1:$HPORT" --mqtt-listen "127.0.0.1:$MPORT" \
	--log-format json >"$DIR/chargeguard.log" 2>&1 &
CG=$!
started $CG chargeguard
wait_http "http://127.0.0.1:$HPORT/readyz" 200 30 $CG || die "chargeguard not ready; see $DIR/chargeguard.log"

load_args=(load --broker "tcp://127.0.0.1:$MPORT" --piles "$PILES" --rate "$RATE" --duration "$DURATION" --qos "$QOS" --log-level warn)
[ -n "${CONNS:-}" ] && load_args+=(--conns "$CONNS")
say "chargeguard pid $CG${CG_GOMEMLIMIT:+ with GOMEMLIMIT=$CG_GOMEMLIMIT} (http 127.0.0.1:$HPORT, mqtt 127.0.0.1:$MPORT); data in $DIR"
say "running: pilesim ${load_args[*]}"
"$BIN/pilesim" "${load_args[@]}" >"$DIR/pilesim.json" 2>"$DIR/pilesim.log" &
LOAD=$!
started $LOAD pilesim

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
# metric NAME: the sum of a metric's samples as an integer (awk's %d would
# stop at 2^31, and the heap goes past that).
metric() {
	curl -s --max-time 5 "http://127.0.0.1:$HPORT/metrics" 2>/dev/null |
		awk -v name="$1" '$1 == name || index($1, name "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}
mib() { echo $(($1 / 1024)); }

peak_rss=0 peak_heap=0 peak_sys=0 t=0 end_rss=0 end_heap=0 saved=0 t0=$SECONDS
deadline=$((secs + SETTLE + 180))
load_done=
printf '%5s %8s %8s %9s %9s %10s %10s %s\n' t rss_MiB hwm_MiB heap_MiB sys_MiB received acked phase >"$DIR/samples.txt"
while [ "$t" -lt $deadline ]; do
	kill -0 $CG 2>/dev/null || die "chargeguard exited; see $DIR/chargeguard.log"
	rss=$(kib $CG VmRSS) hwm=$(kib $CG VmHWM)
	heap=$(metric go_memstats_heap_inuse_bytes) sys=$(metric go_memstats_sys_bytes)
	recv=$(metric chargeguard_broker_messages_received_total) acked=$(metric chargeguard_ingest_acked_total)
	phase=load
	[ -n "$load_done" ] && phase=settle
	printf '%5d %8d %8d %9d %9d %10d %10d %s\n' $t "$(mib "$rss")" "$(mib "$hwm")" $((heap >> 20)) $((sys >> 20)) "$recv" "$acked" $phase | tee -a "$DIR/samples.txt" >&2
	[ "$rss" -gt $peak_rss ] && peak_rss=$rss
	[ "$heap" -gt $peak_heap ] && peak_heap=$heap
	[ "$sys" -gt $peak_sys ] && peak_sys=$sys
	if [ "${PROFILE:-}" = 1 ] && [ $saved = 0 ] && [ $t -ge $((secs / 2)) ]; then
		curl -s --max-time 10 "http://127.0.0.1:$HPORT/debug/pprof/heap" -o "$DIR/heap.pprof" && saved=1
	fi
	if [ -z "$load_done" ] && ! kill -0 $LOAD 2>/dev/null; then
		wait $LOAD || say "pilesim exited with an error; see $DIR/pilesim.log"
		load_done=$t
	fi
	if [ -n "$load_done" ] && [ $((t - load_done)) -ge "$SETTLE" ]; then
		end_rss=$rss end_heap=$heap
		break
	fi
	sleep 1
	t=$((SECONDS - t0))
done
hwm=$(kib $CG VmHWM)
# utime + stime, fields 14 and 15 of /proc/PID/stat (after the command name).
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$CG/stat")
cat <<EOF | tee "$DIR/summary.txt"
pilesim: $(cat "$DIR/pilesim.json")
chargeguard peak RSS (VmHWM): $(mib "$hwm") MiB; highest sampled RSS $(mib $peak_rss) MiB
chargeguard RSS ${SETTLE}s after the load: $(mib $end_rss) MiB; heap in use then $((end_heap >> 20)) MiB
peak Go heap in use: $((peak_heap >> 20)) MiB; peak memory from the OS (go_memstats_sys_bytes): $((peak_sys >> 20)) MiB
broker received $(metric chargeguard_broker_messages_received_total) messages; chargeguard stored (acked) $(metric chargeguard_ingest_acked_total); chargeguard CPU ${cpu}s
broker dropped: $(metric chargeguard_broker_messages_dropped_total) deliveries (write queue full), $(metric chargeguard_broker_inflight_dropped_total) (in-flight full)
broker held: $(metric chargeguard_broker_publishes_held_total) publishes for $(metric chargeguard_broker_publish_hold_seconds_total)s; let through after the longest hold $(metric chargeguard_broker_publish_hold_timeouts_total), stalled $(metric chargeguard_broker_publish_hold_stalled_total)
samples: $DIR/samples.txt
EOF
