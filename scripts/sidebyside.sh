#!/usr/bin/env bash
# sidebyside.sh runs Telegraf and chargeguard on the same load, through the
# same Mosquitto tuning into the same InfluxDB 1.8.10, one after the other,
# and prints one row each (docs/benchmarks.md, "Side by side with Telegraf"):
#
#   scripts/sidebyside.sh                      one run, Telegraf first
#   RUNS=3 scripts/sidebyside.sh               three runs, the order alternating
#   MESSAGES=20000 scripts/sidebyside.sh       a quick look
#   ONLY=chargeguard CHARGEGUARD_CONFIG=x.yaml scripts/sidebyside.sh
#                                              one consumer, e.g. to tune it
#   ONLY=chargeguard CHARGEGUARD_BIN=/tmp/old/chargeguard scripts/sidebyside.sh
#                                              another build of chargeguard
#
# Each contender gets a fresh Mosquitto and a fresh InfluxDB (empty data
# directories), so neither pays for the other's data. The load is
# `pilesim load --messages $MESSAGES` (10-port telemetry from $PILES piles
# over $CONNS QoS 1 connections, sent as fast as Mosquitto takes it); the
# consumer's persistent QoS 1 session is subscribed before the load starts.
# The clock runs from the load's start until InfluxDB holds every port
# sample, or until $TIMEOUT seconds: InfluxDB's count of points written
# (/debug/vars) is polled every 250 ms until it reaches what the consumer
# writes for the load (Telegraf a point per port; chargeguard a point per
# port and per message, and the piles' births), then the port samples are
# counted (SELECT count("a") FROM "port") until all are there. CPU seconds come from /proc/PID/stat; InfluxDB's are
# read $SETTLE seconds after the last sample landed, so its cache snapshot
# (cold after 2 s here) is counted too.
#
# Telegraf 1.39.3 is built from the Go module proxy with only the plugins it
# needs (mqtt_consumer, json_v2, influxdb_v2) into .cache/bin, once. Its
# configuration is written below: the shape its users get from json_v2 (a
# `port` point per port, with the port's six fields, tags site, pile and
# port), tuned for throughput the way its docs suggest (5,000-metric
# batches, 1 s flushes, 10,000 undelivered messages in flight).
#
# Everything listens on loopback ports from 31883 upwards, everything it
# starts is stopped by PID, and nothing outside a temporary directory is
# written (but .cache/bin/telegraf).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
export PATH="$ROOT/.cache/bin:$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

MESSAGES=${MESSAGES:-100000}
PILES=${PILES:-1000}
PORTS=10
CONNS=${CONNS:-4}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-300}
SETTLE=${SETTLE:-5}
FIRST=${FIRST:-telegraf}
TELEGRAF_VERSION=v1.39.3
# Telegraf's influxdb_v2 output gzips its requests by default, which costs
# InfluxDB a decompression per request; see docs/benchmarks.md for both.
TELEGRAF_ENCODING=${TELEGRAF_ENCODING:-gzip}
INFLUXD=${INFLUXD:-$ROOT/.cache/bin/influxd}

say() { printf 'sidebyside: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

[ -x "$INFLUXD" ] || die "no influxd at $INFLUXD: run scripts/install-deps.sh"
command -v mosquitto >/dev/null || die "no mosquitto: run scripts/install-deps.sh"
if ! [ -x "$ROOT/.cache/bin/telegraf" ]; then
	say "building Telegraf $TELEGRAF_VERSION (mqtt_consumer, json_v2, influxdb_v2 only) into .cache/bin"
	GOBIN=$ROOT/.cache/bin GOFLAGS=-mod=mod go install \
		-tags "custom,inputs.mqtt_consumer,outputs.influxdb_v2,parsers.json_v2" \
		"github.com/influxdata/telegraf/cmd/telegraf@$TELEGRAF_VERSION"
fi

tmp=$(mktemp -d /tmp/sidebyside.XXXXXX)
pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
cleanup() {
	stop_all
	[ -n "${KEEP:-}" ] && say "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

go build -o "$tmp/bin/" ./cmd/chargeguard ./cmd/pilesim
# CHARGEGUARD_BIN: another chargeguard binary (an older commit's, say) to
# run in place of this tree's.
[ -n "${CHARGEGUARD_BIN:-}" ] && cp "$CHARGEGUARD_BIN" "$tmp/bin/chargeguard"

# cpu PID: its user + system CPU seconds so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }
# written URL: points InfluxDB has written to the bench database's shards,
# from /debug/vars: cheap to poll, unlike a count over the growing data,
# which would cost the slower consumer's InfluxDB more on every poll.
written() {
	curl -s --max-time 5 "$1/debug/vars" 2>/dev/null |
		awk '/^"shard:/ && /"database":"bench"/ { if (match($0, /"writePointsOk":[0-9]+/)) s += substr($0, RSTART + 16, RLENGTH - 16) } END { print s + 0 }'
}
# landed URL: port samples in InfluxDB.
landed() {
	curl -sG --max-time 5 "$1/query" --data-urlencode "db=bench" \
		--data-urlencode 'q=SELECT count("a") FROM "port"' 2>/dev/null |
		grep -oE '"values":\[\["[^"]*",[0-9]+' | sed -E 's/.*,//' || true
}
wait_port() { for _ in $(seq 100); do port_busy "$1" && return 0; sleep 0.1; done; return 1; }

# one NAME DIR: start Mosquitto, InfluxDB and the consumer NAME in DIR, run
# the load, print NAME's row.
one() {
	local name=$1 dir=$2 mq ip rp http consumer influx load t0 t1 n c0 c1 i0 i1 want
	mkdir -p "$dir"
	mq=$(free_port 31883)
	grep -Ev '^(#|$|listener|use_username_as_clientid|allow_anonymous|password_file|acl_file|persistence_location|log_dest|persistence |autosave)' \
		deploy/mosquitto/mosquitto.conf >"$dir/mosquitto.conf"
	# In memory: a persistence file would only add the autosave's cost to
	# whoever happens to run when it fires.
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n' "$mq" >>"$dir/mosquitto.conf"
	[ "$(id -u)" = 0 ] && echo "user root" >>"$dir/mosquitto.conf"
	mosquitto -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
	pids+=($!)
	wait_port "$mq" || die "mosquitto did not start; see $dir/mosquitto.log"

	ip=$(free_port $((mq + 1)))
	rp=$(free_port $((ip + 1)))
	INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$ip INFLUXDB_BIND_ADDRESS=127.0.0.1:$rp \
		INFLUXDB_META_DIR=$dir/influx/meta INFLUXDB_DATA_DIR=$dir/influx/data \
		INFLUXDB_DATA_WAL_DIR=$dir/influx/wal INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=2s \
		INFLUXDB_HTTP_LOG_ENABLED=false INFLUXDB_REPORTING_DISABLED=true \
		"$INFLUXD" run -config deploy/influxdb/influxdb.conf >"$dir/influxd.log" 2>&1 &
	influx=$!
	pids+=("$influx")
	for _ in $(seq 600); do curl -sf "http://127.0.0.1:$ip/ping" >/dev/null && break; sleep 0.1; done
	curl -sS --fail -XPOST "http://127.0.0.1:$ip/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null ||
		die "influxd did not start; see $dir/influxd.log"

	case $name in
	telegraf)
		cat >"$dir/telegraf.conf" <<EOF
[agent]
  interval = "10s"
  flush_interval = "1s"
  flush_jitter = "0s"
  metric_batch_size = 5000
  metric_buffer_limit = 200000
  omit_hostname = true
  quiet = true

[[inputs.mqtt_consumer]]
  servers = ["tcp://127.0.0.1:$mq"]
  topics = ["chargers/+/+/telemetry"]
  topic_tag = ""
  qos = 1
  persistent_session = true
  client_id = "telegraf-sidebyside"
  max_undelivered_messages = 10000
  data_format = "json_v2"
  [[inputs.mqtt_consumer.topic_parsing]]
    topic = "chargers/+/+/telemetry"
    tags = "_/site/pile/_"
  [[inputs.mqtt_consumer.json_v2]]
    measurement_name = "port"
    timestamp_path = "ts"
    timestamp_format = "unix_ms"
    timestamp_timezone = "UTC"
    [[inputs.mqtt_consumer.json_v2.object]]
      path = "ports"
      tags = ["n"]
      disable_prepend_keys = true
      [inputs.mqtt_consumer.json_v2.object.renames]
        n = "port"

[[outputs.influxdb_v2]]
  urls = ["http://127.0.0.1:$ip"]
  token = ""
  organization = ""
  bucket = "bench/autogen"
  content_encoding = "$TELEGRAF_ENCODING"
EOF
		telegraf --config "$dir/telegraf.conf" >"$dir/telegraf.log" 2>&1 &
		consumer=$!
		pids+=("$consumer")
		# Subscribed once Mosquitto has its persistent session.
		for _ in $(seq 200); do grep -q "telegraf-sidebyside" "$dir/mosquitto.log" 2>/dev/null && break; sleep 0.1; done
		sleep 1
		;;
	chargeguard)
		http=$(free_port $((rp + 1)))
		"$tmp/bin/chargeguard" --mqtt-url "tcp://127.0.0.1:$mq" --influx-url "http://127.0.0.1:$ip" \
			--influx-bucket bench/autogen --data-dir "$dir/data" --http-addr "127.0.0.1:$http" \
			--log-level warn --log-format json 2>"$dir/chargeguard.log" &
		consumer=$!
		pids+=("$consumer")
		for _ in $(seq 300); do curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break; sleep 0.1; done
		curl -sf "http://127.0.0.1:$http/readyz" >/dev/null || die "chargeguard not ready; see $dir/chargeguard.log"
		;;
	esac
	kill -0 "$consumer" 2>/dev/null || die "$name exited; see $dir"

	want=$((MESSAGES * PORTS))
	points=$want
	[ "$name" = chargeguard ] && points=$((MESSAGES * (PORTS + 1) + PILES))
	c0=$(cpu "$consumer") i0=$(cpu "$influx") t0=$(date +%s.%N)
	"$tmp/bin/pilesim" load --broker "tcp://127.0.0.1:$mq" --piles "$PILES" --ports $PORTS --conns "$CONNS" \
		--qos 1 --rate 10000000 --messages "$MESSAGES" --duration "${TIMEOUT}s" --log-level warn \
		>"$dir/load.json" 2>"$dir/load.log" &
	load=$!
	pids+=("$load")
	n=0
	while [ "$(written "http://127.0.0.1:$ip")" -lt "$points" ]; do
		awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$TIMEOUT" 'BEGIN { exit !(b - a > m) }' && break
		sleep 0.25
	done
	while :; do
		n=$(landed "http://127.0.0.1:$ip")
		n=${n:-0}
		t1=$(date +%s.%N)
		[ "$n" -ge "$want" ] && break
		awk -v a="$t0" -v b="$t1" -v m="$TIMEOUT" 'BEGIN { exit !(b - a > m) }' && break
		sleep 0.25
	done
	c1=$(cpu "$consumer")
	wait "$load" || say "$name: pilesim failed; see $dir/load.log"
	sleep "$SETTLE"
	i1=$(cpu "$influx")
	# Anything that landed after the clock stopped, or twice, shows here.
	n=$(landed "http://127.0.0.1:$ip")
	awk -v name="$name" -v n="$n" -v want="$want" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v i0="$i0" -v i1="$i1" 'BEGIN {
		s = t1 - t0
		printf "| %-11s | %6.1fk | %5.1f %% | %5.2f µs | %5.1f s | %5.2f µs | %5.1f s |\n",
			name, n / s / 1000, 100 * n / want, (c1 - c0) * 1e6 / n, s, (i1 - i0) * 1e6 / n, i1 - i0
	}'
	say "$name load: $(cat "$dir/load.json")"
	stop_all
}

say "$MESSAGES messages x $PORTS ports from $PILES piles over $CONNS QoS 1 connections, $RUNS run(s); data in $tmp"
echo "| consumer | port samples/s | landed | consumer CPU per sample | time to land all | InfluxDB CPU per sample | InfluxDB CPU for the run |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
order=(telegraf chargeguard)
[ "$FIRST" = chargeguard ] && order=(chargeguard telegraf)
for r in $(seq "$RUNS"); do
	for name in "${order[@]}"; do
		[ -n "${ONLY:-}" ] && [ "$name" != "$ONLY" ] && continue
		one "$name" "$tmp/run$r/$name"
	done
	order=("${order[1]}" "${order[0]}")
done
uptime >&2
