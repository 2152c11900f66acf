#!/usr/bin/env bash
# install-deps.sh installs the real servers and tools that chargeguard's tests
# and demo run against, so that `make test` works on a fresh Debian 12 machine
# that only has Go:
#
#   - Debian packages: mosquitto (+ clients), prometheus (for promtool),
#     prometheus-alertmanager (+ amtool), docker-compose (to check
#     deploy/compose/docker-compose.yml), curl (the scripts talk HTTP with
#     it), openssl (the TLS test issues pile certificates with
#     deploy/mosquitto/pki.sh), make and git, etcd-server (+ etcd-client:
#     the cluster tests run three members on loopback); chromium (the
#     console's browser test drives it headless) with a small Chinese font
#     (fonts-wqy-microhei) so zh-CN pages render in its screenshots.
#   - InfluxDB 1.8.10 built from source into .cache/bin/influxd (Debian ships
#     no InfluxDB, and newer 1.x releases need a Rust toolchain to build).
#   - with --bench: benchstat into .cache/bin.
#
# It is idempotent and quick when everything is present. The Debian packages
# start system services on their default ports (1883, 9090, 9093, 9100) when
# the machine has an init system; the tests and the demo need those ports, so
# the services that the install itself started are stopped and disabled again.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.cache/bin
# Debian puts mosquitto in /usr/sbin, which a non-root PATH may lack.
export PATH="$BIN:$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

INFLUXDB_VERSION=v1.8.10
# benchstat has no releases; pin the module version so runs are comparable.
BENCHSTAT_VERSION=v0.0.0-20250813145418-2f7363a06fe1

want_bench=0
demo_only=0
for arg in "$@"; do
	case $arg in
	--bench) want_bench=1 ;;
	--demo) demo_only=1 ;;
	-h | --help)
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
		echo
		echo "usage: scripts/install-deps.sh [--bench] [--demo]"
		echo "  --bench  also install benchstat"
		echo "  --demo   only what scripts/demo.sh needs: curl and influxd"
		exit 0
		;;
	*)
		echo "install-deps: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

say() { printf 'install-deps: %s\n' "$*"; }

# apt-get and service control need root: use sudo only when not root.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo)
fi

# --- Debian packages --------------------------------------------------------

# Each entry is "command:package that provides it".
needed=(
	mosquitto:mosquitto
	mosquitto_pub:mosquitto-clients
	prometheus-alertmanager:prometheus-alertmanager
	amtool:prometheus-alertmanager
	promtool:prometheus
	docker-compose:docker-compose
	curl:curl
	openssl:openssl
	make:make
	git:git
	etcd:etcd-server
	etcdctl:etcd-client
	chromium:chromium
)
if [ "$demo_only" = 1 ]; then
	# The demo runs chargeguard's embedded broker: no Debian servers needed.
	needed=(curl:curl)
fi
missing=()
for entry in "${needed[@]}"; do
	if ! command -v "${entry%%:*}" >/dev/null 2>&1; then
		missing+=("${entry%%:*}")
	fi
done

# The Debian services run as their own users (mosquitto drops to "mosquitto",
# the prometheus tools run as "prometheus") from their full paths, mosquitto
# with the package's configuration. Matching on user, path and arguments keeps
# servers that tests start out of this.
service_pids() {
	case $1 in
	mosquitto) pgrep -u mosquitto -f '^/usr/sbin/mosquitto -c /etc/mosquitto/' || true ;;
	prometheus) pgrep -u prometheus -f '^/usr/bin/prometheus( |$)' || true ;;
	prometheus-alertmanager) pgrep -u prometheus -f '^/usr/bin/prometheus-alertmanager( |$)' || true ;;
	prometheus-node-exporter) pgrep -u prometheus -f '^/usr/bin/prometheus-node-exporter( |$)' || true ;;
	etcd) pgrep -u etcd -f '^/usr/bin/etcd( |$)' || true ;;
	esac
}
services=(mosquitto prometheus prometheus-alertmanager prometheus-node-exporter etcd)

if [ ${#missing[@]} -gt 0 ]; then
	say "missing: ${missing[*]}; installing the Debian packages"
	if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: not root and no sudo: install as root:" \
			"apt-get install mosquitto mosquitto-clients prometheus prometheus-alertmanager docker-compose curl openssl make git etcd-server etcd-client chromium fonts-wqy-microhei" >&2
		exit 1
	fi
	declare -A before=()
	for svc in "${services[@]}"; do
		before[$svc]=" $(service_pids "$svc" | tr '\n' ' ') "
	done

	packages=(mosquitto mosquitto-clients prometheus prometheus-alertmanager docker-compose curl openssl make git etcd-server etcd-client chromium fonts-wqy-microhei)
	if [ "$demo_only" = 1 ]; then
		packages=(curl)
	fi
	"${SUDO[@]}" apt-get update
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"

	# Stop and disable what the install started, so tests and the demo own
	# their ports. Without an init system (containers, CI) nothing was started
	# and these commands may not even work: that is fine.
	for svc in "${services[@]}"; do
		[ -e "/etc/init.d/$svc" ] || [ -e "/lib/systemd/system/$svc.service" ] || continue
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
			"${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
		else
			if command -v service >/dev/null 2>&1 && [ -e "/etc/init.d/$svc" ]; then
				"${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
			fi
			if command -v update-rc.d >/dev/null 2>&1; then
				"${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
			fi
		fi
		# Whatever is still running and was not running before the install
		# was started by it: end it by its PID.
		for pid in $(service_pids "$svc"); do
			case ${before[$svc]} in *" $pid "*) continue ;; esac
			say "stopping $svc (pid $pid), started by the package install"
			"${SUDO[@]}" kill "$pid" 2>/dev/null || true
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				"${SUDO[@]}" kill -0 "$pid" 2>/dev/null || break
				sleep 0.5
			done
			"${SUDO[@]}" kill -9 "$pid" 2>/dev/null || true
		done
	done
else
	say "Debian packages present ($(printf '%s ' "${needed[@]%%:*}" | sed 's/ $//'))"
fi

# A system broker left running from an earlier install holds port 1883, which
# the demo uses. Say so rather than stop a service this run did not start.
for pid in $(service_pids mosquitto); do
	say "note: a system mosquitto is running (pid $pid) and may hold port 1883;" \
		"stop it with 'service mosquitto stop' if the demo cannot listen there"
done

# --- InfluxDB 1.8.10 ----------------------------------------------------------

if [ -x "$BIN/influxd" ]; then
	say "influxd present: $BIN/influxd"
else
	if ! command -v go >/dev/null 2>&1; then
		echo "install-deps: go is not on PATH (expected /usr/local/go/bin/go)" >&2
		exit 1
	fi
	mkdir -p "$BIN"
	say "building InfluxDB $INFLUXDB_VERSION into $BIN (takes a minute or two the first time)"
	start=$SECONDS
	GOBIN=$BIN GOFLAGS=-buildvcs=false go install \
		-ldflags="-s -w -X main.version=${INFLUXDB_VERSION#v}" \
		"github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
	say "built $BIN/influxd in $((SECONDS - start))s"
fi

# --- benchstat (only for make bench) -----------------------------------------

if [ "$want_bench" = 1 ]; then
	if [ -x "$BIN/benchstat" ]; then
		say "benchstat present: $BIN/benchstat"
	else
		mkdir -p "$BIN"
		say "installing benchstat into $BIN"
		GOBIN=$BIN GOFLAGS=-buildvcs=false go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION"
	fi
fi

say "done"
