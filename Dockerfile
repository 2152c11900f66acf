# chargeguard's container image: the chargeguard service and cgpasswd (the
# MQTT password-file tool), statically linked, on a distroless base that
# holds no shell and no package manager, running as a non-root user.
#
#   docker build -t chargeguard:local .
#   docker run --rm -v chargeguard-data:/data -p 9466:9466 chargeguard:local \
#       --mqtt-url tcp://broker:1884 --influx-url http://influxdb:8086 ...
#
# deploy/compose/docker-compose.yml builds it; docs/deploy.md explains the
# rest. Every setting is a CHARGEGUARD_* variable or a flag (see README.md).

# --- build -------------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs on distroless/static. -trimpath keeps the
# build machine's paths out of the binary and of panics.
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/chargeguard ./cmd/chargeguard \
 && go build -trimpath -ldflags="-s -w" -o /out/cgpasswd ./cmd/cgpasswd \
 && mkdir -p /out/data

# --- run ---------------------------------------------------------------------
# static-debian12 carries CA certificates (for https:// InfluxDB and ssl://
# brokers), tzdata and /etc/passwd entries; "nonroot" is uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chargeguard /out/cgpasswd /usr/local/bin/
# /data holds the spool (readings not yet in InfluxDB) and the latched ports
# (ports closed for safety, which stay closed across restarts until an
# operator resets them). It must outlive the container: mount a volume.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
WORKDIR /data
USER 65532:65532
ENV CHARGEGUARD_DATA_DIR=/data \
    CHARGEGUARD_HTTP_ADDR=0.0.0.0:9466 \
    CHARGEGUARD_MQTT_LISTEN=0.0.0.0:1883 \
    CHARGEGUARD_LOG_FORMAT=json
# 9466: /metrics, /healthz, /readyz and the operator API. It listens on
#       every interface of the container, so the API needs tokens
#       (api.tokens in the --config file), or an explicit
#       CHARGEGUARD_API_ANONYMOUS_READS=true for open reads: without
#       either chargeguard refuses to start (docs/api.md).
# 1883: the embedded MQTT broker, used only when no --mqtt-url is given. It
#       listens on every interface of the container; without a password
#       file it lets anyone publish, so publish 1883 (docker run -p) only
#       for a demo or with a password file (docs/deploy.md).
EXPOSE 9466 1883
ENTRYPOINT ["/usr/local/bin/chargeguard"]
