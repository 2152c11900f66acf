#!/bin/sh
# pki.sh: a small certificate authority for Mosquitto's TLS listener (8883)
# and for the piles' client certificates. Needs only openssl (1.1.1 or 3.x).
#
#   PKI_DIR=/secure/chargeguard-pki ./pki.sh ca
#       the CA: ca.key (keep it offline) and ca.crt (goes to the broker and
#       to every pile)
#   PKI_DIR=... ./pki.sh server mqtt.city.example 10.20.0.5
#       the broker's certificate (server.crt, server.key) for the names and
#       addresses piles connect to; the first one is its CN
#   PKI_DIR=... ./pki.sh pile chunbo-nanyuan/p01
#       a pile's key and certificate (piles/chunbo-nanyuan.p01.key/.crt)
#       with CN = "chunbo-nanyuan/p01": with use_identity_as_username the
#       broker takes the CN as the pile's username, and the ACL's
#       chargers/%u/... patterns then let the pile use its own topics only
#
# Keys are EC P-256, certificates SHA-256. Lifetimes: DAYS_CA (default 3650)
# for the CA, DAYS (default 825) for the others. The script never
# overwrites an existing key or certificate: move the old one away to
# renew. docs/deploy.md shows how to install the files and how to stop
# trusting a pile. broker/auth's TLS test runs this script and connects
# through Mosquitto with what it produced.
set -eu

DIR=${PKI_DIR:-./pki}
DAYS_CA=${DAYS_CA:-3650}
DAYS=${DAYS:-825}

die() { echo "pki.sh: $*" >&2; exit 2; }

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

fresh() {
	for f in "$@"; do
		[ ! -e "$f" ] || die "$f exists; move it away first to replace it"
	done
}

# sign KEY CSR CRT EXTFILE: the CA signs a request.
sign() {
	[ -f "$DIR/ca.key" ] && [ -f "$DIR/ca.crt" ] || die "no CA in $DIR; run: pki.sh ca"
	openssl x509 -req -in "$2" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
		-CAcreateserial -CAserial "$DIR/ca.srl" \
		-sha256 -days "$DAYS" -extfile "$4" -out "$3" 2>/dev/null
	rm -f "$2" "$4"
	chmod 600 "$1"
	chmod 644 "$3"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
mkdir -p "$DIR"
umask 077

case $cmd in
ca)
	fresh "$DIR/ca.key" "$DIR/ca.crt"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$DIR/ca.key" -out "$DIR/ca.crt" -sha256 -days "$DAYS_CA" \
		-subj "/CN=chargeguard pile CA" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 644 "$DIR/ca.crt"
	echo "$DIR/ca.crt"
	;;
server)
	[ $# -ge 1 ] || die "usage: pki.sh server NAME_OR_IP..."
	fresh "$DIR/server.key" "$DIR/server.crt"
	san=""
	for n in "$@"; do
		case $n in
		*[!0-9.]*) entry="DNS:$n" ;; # a host name (IPv6 is not handled here)
		*) entry="IP:$n" ;;
		esac
		san="${san:+$san,}$entry"
	done
	ext=$(mktemp)
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$DIR/server.key" -out "$DIR/server.csr" -subj "/CN=$1" 2>/dev/null
	sign "$DIR/server.key" "$DIR/server.csr" "$DIR/server.crt" "$ext"
	echo "$DIR/server.crt"
	;;
pile)
	[ $# -eq 1 ] || die "usage: pki.sh pile SITE/PILE"
	id=$1
	echo "$id" | grep -Eq '^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$' ||
		die "pile id \"$id\": want site/pile, each matching [A-Za-z0-9_-]{1,64}"
	site=${id%/*}
	pile=${id#*/}
	mkdir -p "$DIR/piles"
	base="$DIR/piles/$site.$pile" # '.' is not in the id alphabet: no clash
	fresh "$base.key" "$base.crt"
	ext=$(mktemp)
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$ext"
	# '/' separates name parts in -subj, so the one inside the CN is escaped.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$base.key" -out "$base.csr" -subj "/CN=$site\\/$pile" 2>/dev/null
	sign "$base.key" "$base.csr" "$base.crt" "$ext"
	echo "$base.crt"
	;;
*)
	usage
	;;
esac
