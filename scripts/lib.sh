# shellcheck shell=bash
# lib.sh: helpers shared by demo.sh and test.sh. Source it; it runs nothing.

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port FROM: the first port from FROM upwards that nobody listens on.
free_port() {
	local p=$1
	while port_busy "$p"; do
		p=$((p + 1))
		if [ "$p" -ge $(($1 + 200)) ]; then
			echo "no free port in $1..$p" >&2
			return 1
		fi
	done
	echo "$p"
}

# influx_points URL DATABASE [WHERE...]: the number of points in all
# measurements of DATABASE (the largest per-field count of each measurement,
# summed), or 0 if the query fails. Plain grep/awk: no jq on a fresh machine.
influx_points() {
	local url=$1 db=$2
	shift 2
	curl -sG --max-time 5 "$url/query" --data-urlencode "db=$db" \
		--data-urlencode "q=SELECT count(*) FROM /.*/ $*" 2>/dev/null |
		grep -oE '"values":\[\["[^"]*"(,(null|[0-9]+))*\]\]' |
		sed -E 's/^"values":\[\["[^"]*"//; s/\]\]$//' |
		awk -F, '{ m = 0; for (i = 2; i <= NF; i++) if ($i != "null" && $i + 0 > m) m = $i + 0; s += m } END { print s + 0 }'
}

# has_command NAME: cmd/NAME holds Go sources (a command that can be built).
has_command() { compgen -G "cmd/$1/*.go" >/dev/null; }

# metric_sum URL NAME: the sum of all samples of metric NAME (every label
# set) on the Prometheus text page at URL, or 0.
metric_sum() {
	curl -s --max-time 2 "$1" 2>/dev/null |
		awk -v name="$2" '$1 == name || index($1, name "{") == 1 { s += $NF } END { printf "%d\n", s }'
}
