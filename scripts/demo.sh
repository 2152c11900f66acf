#!/usr/bin/env bash
# demo.sh (`make demo`) runs chargeguard on this machine against InfluxDB and
# a simulated fleet of charging piles:
#
#   influxd 1.8.10 (built into .cache/bin on first use) on 127.0.0.1:8086
#   chargeguard with its embedded MQTT broker on 127.0.0.1:1883,
#     metrics on http://127.0.0.1:9466/metrics, the web console on
#     http://127.0.0.1:9466/ (it prints an operator token to sign in with)
#   pilesim publishing the fleet simulators/fleets/changhe.yaml
#
# Ctrl-C stops everything it started (the simulators, then chargeguard, then
# InfluxDB, so the last writes land) and exits 0. Data stays in .cache/
# between runs; each run's logs replace the previous run's (kept as *.log.1).
#
# Environment:
#   DEMO_SECONDS=N         stop by itself after N seconds (CI smoke test)
#   CHARGEGUARD_INFLUX_URL use this InfluxDB instead of starting one
#   DEMO_INFLUX_PORT       InfluxDB port (default 8086, or the next free one)
#   DEMO_MQTT_PORT         embedded broker port (default 1883)
#   DEMO_HTTP_PORT         chargeguard's HTTP port (default 9466)
#   DEMO_FLEET             fleet file (default simulators/fleets/changhe.yaml)
#   DEMO_STATE_DIR         where data and logs go (default .cache)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.cache/bin
export PATH="$BIN:$PATH:/usr/local/go/bin"

STATE=${DEMO_STATE_DIR:-$ROOT/.cache}
case $STATE in /*) ;; *) STATE=$ROOT/$STATE ;; esac
LOGS=$STATE/logs
MQTT_PORT=${DEMO_MQTT_PORT:-1883}
HTTP_PORT=${DEMO_HTTP_PORT:-9466}
FLEET=${DEMO_FLEET:-simulators/fleets/changhe.yaml}
SECONDS_TO_RUN=${DEMO_SECONDS:-}
DATABASE=chargeguard
BUCKET=$DATABASE/autogen

say() { printf 'demo: %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# --- check before starting anything -------------------------------------------

has_command chargeguard || die "cmd/chargeguard does not exist yet: nothing to run"
has_command pilesim || die "cmd/pilesim (the fleet simulator) does not exist yet: the demo needs it to have piles to watch"
[ -f "$FLEET" ] || die "fleet file $FLEET not found (set DEMO_FLEET)"
if [ -n "$SECONDS_TO_RUN" ] && ! [ "$SECONDS_TO_RUN" -gt 0 ] 2>/dev/null; then
	die "DEMO_SECONDS must be a positive number of seconds, not '$SECONDS_TO_RUN'"
fi
port_busy "$MQTT_PORT" && die "port $MQTT_PORT (MQTT) is in use on 127.0.0.1 - a system mosquitto?" \
	"Stop it ('service mosquitto stop') or set DEMO_MQTT_PORT."
port_busy "$HTTP_PORT" && die "port $HTTP_PORT (chargeguard HTTP) is in use; set DEMO_HTTP_PORT."
command -v go >/dev/null 2>&1 || die "go is not on PATH (expected /usr/local/go/bin/go)"

mkdir -p "$LOGS" "$STATE/demo"
# This run's logs only: the summary greps them, and must not show an earlier
# run's cut.
for f in "$LOGS"/*.log; do
	[ -e "$f" ] && mv -f "$f" "$f.1"
done

# --- stop what we started, and only that, by PID ------------------------------

pids=()
names=()
cleanup() {
	local i pid
	trap - EXIT INT TERM
	if [ -n "${OVERHEAT_PID:-}" ] && kill -0 "$OVERHEAT_PID" 2>/dev/null; then
		kill -TERM "$OVERHEAT_PID" 2>/dev/null || true
		wait "$OVERHEAT_PID" 2>/dev/null || true
	fi
	# Reverse start order: the simulator first, InfluxDB last, so
	# chargeguard can flush what it has into InfluxDB before it goes.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -0 "$pid" 2>/dev/null || continue
		say "stopping ${names[i]} (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "${names[i]} did not stop within 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
# Ctrl-C is how the demo is meant to end: a clean stop, status 0. The
# children run in sessions of their own (setsid, below), so the terminal's
# SIGINT reaches only this script, and cleanup stops them in order.
trap 'exit 0' INT
trap 'exit 143' TERM

started() {
	pids+=("$1")
	names+=("$2")
	say "started $2 (pid $1)"
}

# wait_http URL CODE SECONDS NAME PID: poll until URL answers CODE.
wait_http() {
	local url=$1 code=$2 limit=$3 name=$4 pid=$5 got i
	for ((i = 0; i < limit * 10; i++)); do
		got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
		[ "$got" = "$code" ] && return 0
		kill -0 "$pid" 2>/dev/null || die "$name exited while starting; see $LOGS/$name.log"
		sleep 0.1
	done
	die "$name did not answer $url within ${limit}s; see $LOGS/$name.log"
}

# --- InfluxDB -----------------------------------------------------------------

scripts/install-deps.sh --demo

if [ -n "${CHARGEGUARD_INFLUX_URL:-}" ]; then
	INFLUX_URL=${CHARGEGUARD_INFLUX_URL%/}
	say "using the InfluxDB at $INFLUX_URL (CHARGEGUARD_INFLUX_URL)"
else
	if [ -n "${DEMO_INFLUX_PORT:-}" ]; then
		INFLUX_PORT=$DEMO_INFLUX_PORT
		port_busy "$INFLUX_PORT" && die "DEMO_INFLUX_PORT $INFLUX_PORT is in use"
	else
		INFLUX_PORT=$(free_port 8086) || die "no free port for InfluxDB"
		[ "$INFLUX_PORT" = 8086 ] || say "port 8086 is in use; InfluxDB will listen on $INFLUX_PORT instead"
	fi
	RPC_PORT=$(free_port $((INFLUX_PORT + 2))) || die "no free port for InfluxDB's RPC service"
	INFLUX_URL=http://127.0.0.1:$INFLUX_PORT
	# deploy/influxdb/influxdb.conf is the configuration; the environment
	# overrides (INFLUXDB_<SECTION>_<KEY>) only move ports and directories.
	INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$INFLUX_PORT \
		INFLUXDB_BIND_ADDRESS=127.0.0.1:$RPC_PORT \
		INFLUXDB_META_DIR=$STATE/influx/meta \
		INFLUXDB_DATA_DIR=$STATE/influx/data \
		INFLUXDB_DATA_WAL_DIR=$STATE/influx/wal \
		setsid "$BIN/influxd" run -config deploy/influxdb/influxdb.conf >>"$LOGS/influxd.log" 2>&1 &
	started $! influxd
	wait_http "$INFLUX_URL/ping" 204 60 influxd "${pids[-1]}"
fi
if ! curl -sS --fail-with-body -XPOST "$INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE $DATABASE" >/dev/null; then
	[ -n "${CHARGEGUARD_INFLUX_URL:-}" ] || die "could not create database $DATABASE at $INFLUX_URL"
	say "could not create database $DATABASE at $INFLUX_URL; assuming it exists"
fi
say "InfluxDB ready at $INFLUX_URL, database $DATABASE"

# --- chargeguard and the simulator --------------------------------------------

say "building ./cmd/... into $BIN"
go build -o "$BIN/" ./cmd/...

# An operator token, new on every run, so the reset and ack flows can be
# tried; it is only in this file (mode 600) and on the screen.
TOKEN=demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
CONFIG=$STATE/demo/chargeguard.yaml
(
	umask 077
	cat >"$CONFIG" <<EOF
# Written by scripts/demo.sh on every run.
api:
  tokens:
    - {name: demo-operator, token: "$TOKEN", role: operator}
console:
  external_url: http://127.0.0.1:$HTTP_PORT/
EOF
)

# An empty --mqtt-url makes chargeguard run its embedded broker on
# --mqtt-listen, so the demo needs no Mosquitto.
setsid "$BIN/chargeguard" \
	--config "$CONFIG" \
	--influx-url "$INFLUX_URL" \
	--influx-bucket "$BUCKET" \
	--data-dir "$STATE/demo" \
	--http-addr "127.0.0.1:$HTTP_PORT" \
	--mqtt-listen "127.0.0.1:$MQTT_PORT" \
	>>"$LOGS/chargeguard.log" 2>&1 &
started $! chargeguard
wait_http "http://127.0.0.1:$HTTP_PORT/metrics" 200 30 chargeguard "${pids[-1]}"
for _ in $(seq 1 100); do
	port_busy "$MQTT_PORT" && break
	sleep 0.1
done
port_busy "$MQTT_PORT" || die "chargeguard's broker does not listen on 127.0.0.1:$MQTT_PORT; see $LOGS/chargeguard.log"

setsid "$BIN/pilesim" --broker "tcp://127.0.0.1:$MQTT_PORT" --fleet "$FLEET" >>"$LOGS/pilesim.log" 2>&1 &
started $! pilesim

# The injected fault: a loose plug overheats port 3 of a demonstration pile
# (simulators/demo/overheat.yaml, 10x speed, about 75 s). chargeguard must
# cut the port, page on-call (the log receiver here: no Alertmanager is
# configured), and keep the port latched. --hold keeps the demo pile online
# after the scenario, as a real pile would stay, so that it can be reset;
# the result line (PASS or FAIL) marks the end of the scenario.
setsid "$BIN/pilesim" run --hold simulators/demo/overheat.yaml --broker "tcp://127.0.0.1:$MQTT_PORT" >>"$LOGS/overheat.log" 2>&1 &
OVERHEAT_PID=$!
say "started the overheat demo (pid $OVERHEAT_PID): port 3 of demo-shed/p01 heats up over the next minute"

cat <<EOF

chargeguard is watching the fleet in $FLEET.

  console:      http://127.0.0.1:$HTTP_PORT/
                sign in as demo-operator with the token $TOKEN
                (port 3 of demo-shed/p01 overheats in about a minute: watch
                it turn red, acknowledge it, and reset it once it has cooled)
  metrics:      curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep ^chargeguard_
  logs:         tail -f $LOGS/chargeguard.log $LOGS/pilesim.log
  MQTT traffic: mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t 'chargers/#' -v
  latched:      curl -s -H "Authorization: Bearer \$TOKEN" 'http://127.0.0.1:$HTTP_PORT/api/v1/ports?state=latched'
  alerts:       curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$HTTP_PORT/api/v1/alerts
  InfluxDB:     curl -sG $INFLUX_URL/query --data-urlencode db=$DATABASE \\
                  --data-urlencode "q=SHOW MEASUREMENTS"
                curl -sG $INFLUX_URL/query --data-urlencode db=$DATABASE \\
                  --data-urlencode "q=SELECT count(*) FROM /.*/ WHERE time > now() - 5m"

Operator token for this run (also in $CONFIG):

  export TOKEN=$TOKEN

Once port 3 of demo-shed/p01 has been cut and has cooled, try the operator
flows (a reset is refused with 409 while the port is still hot):

  ack:          curl -s -X POST -H "Authorization: Bearer \$TOKEN" \\
                  http://127.0.0.1:$HTTP_PORT/api/v1/alerts/overheat/demo-shed/p01/3/ack
  reset:        curl -s -X POST -H "Authorization: Bearer \$TOKEN" \\
                  http://127.0.0.1:$HTTP_PORT/api/v1/ports/demo-shed/p01/3/reset
  audit:        curl -s -H "Authorization: Bearer \$TOKEN" \\
                  http://127.0.0.1:$HTTP_PORT/api/v1/ports/demo-shed/p01/3/audit

EOF
if [ -n "$SECONDS_TO_RUN" ]; then
	say "running for ${SECONDS_TO_RUN}s (DEMO_SECONDS)"
else
	say "press Ctrl-C to stop"
fi

# --- run until Ctrl-C, DEMO_SECONDS, or a process dies ----------------------------

start=$SECONDS
next_status=$((SECONDS + 15))
while :; do
	if [ -n "${OVERHEAT_PID:-}" ] && [ -z "${OVERHEAT_DONE:-}" ]; then
		result=$(grep -E '^(PASS|FAIL) ' "$LOGS/overheat.log" | head -n 1 || true)
		if [ -z "$result" ] && ! kill -0 "$OVERHEAT_PID" 2>/dev/null; then
			result="FAIL (pilesim run exited)"
		fi
		if [ -n "$result" ]; then
			OVERHEAT_DONE=1
			case $result in
			PASS*) say "overheat demo: port 3 of demo-shed/p01 was cut and stays latched; the pile stays online:" ;;
			*)
				say "overheat demo FAILED; see $LOGS/overheat.log:"
				tail -n 20 "$LOGS/overheat.log" >&2 || true
				;;
			esac
			grep -E '"component":"alerting".*("alertname":"overheat"|"audit":"(command|ack)")' "$LOGS/chargeguard.log" |
				grep demo-shed | head -n 5 || true
			curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/api/v1/ports?site=demo-shed&state=latched" || true
			echo
		fi
	fi
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[i]}" 2>/dev/null; then
			rc=0
			wait "${pids[i]}" || rc=$?
			say "${names[i]} exited (status $rc); last lines of $LOGS/${names[i]}.log:"
			tail -n 20 "$LOGS/${names[i]}.log" >&2 || true
			exit 1
		fi
	done
	if [ -n "$SECONDS_TO_RUN" ] && [ $((SECONDS - start)) -ge "$SECONDS_TO_RUN" ]; then
		say "DEMO_SECONDS=$SECONDS_TO_RUN reached"
		exit 0
	fi
	if [ "$SECONDS" -ge "$next_status" ]; then
		say "$(metric_sum "http://127.0.0.1:$HTTP_PORT/metrics" chargeguard_ingest_messages_total) messages ingested," \
			"$(influx_points "$INFLUX_URL" "$DATABASE" "WHERE time > now() - 1m") points written to InfluxDB in the last minute"
		next_status=$((SECONDS + 15))
	fi
	sleep 1
done
