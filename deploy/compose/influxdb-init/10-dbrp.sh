#!/bin/bash
# Runs once, inside the influxdb container, right after the initial setup
# (DOCKER_INFLUXDB_INIT_MODE=setup; the image runs every executable *.sh in
# /docker-entrypoint-initdb.d with the influx CLI already authenticated as
# the admin).
#
# chargeguard's Grafana boards speak InfluxQL, which addresses data by
# database and retention policy rather than by bucket. This maps database
# "chargeguard", retention policy "autogen" (the default) to the bucket, so
# the same boards work on InfluxDB 1.8 (database chargeguard, RP autogen), on
# this 2.x, and on 3.x.
set -euo pipefail

influx v1 dbrp create \
	--org "${DOCKER_INFLUXDB_INIT_ORG}" \
	--bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
	--db "${DOCKER_INFLUXDB_INIT_BUCKET}" \
	--rp autogen \
	--default
