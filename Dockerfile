# One image for the Strøm server and its workers:
#   docker run IMAGE server --config /etc/stroem/server.yaml
#   docker run IMAGE worker --config /etc/stroem/worker.yaml
# (or configure either entirely with STROEM__… environment variables).
#
# Build:  docker build -t stroem --build-arg VERSION=$(git describe --tags --always) \
#           --build-arg COMMIT=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
# Not built or run on the project's machines (they have no Docker daemon);
# see README.md.

# ---- build: a static binary ----
FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a code change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
# CGO_ENABLED=0: a static binary (the embedded SQLite of `stroem dev` is pure
# Go). timetzdata embeds the time zone database for scheduler triggers.
RUN CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
      -o /out/stroem ./cmd/stroem

# ---- runtime: small, with a shell ----
# Workers run steps with /bin/sh (ShellRunner), so the image needs a shell;
# bash is added because workflow scripts often ask for it (#!/bin/bash).
# busybox wget serves the compose health check.
FROM alpine:3.22
RUN apk add --no-cache bash ca-certificates \
 && addgroup -S -g 10001 stroem \
 && adduser -S -D -u 10001 -G stroem -h /var/lib/stroem stroem \
 && mkdir -p /var/lib/stroem/logs \
 && chown -R stroem:stroem /var/lib/stroem
COPY --from=build /out/stroem /usr/local/bin/stroem
USER stroem
WORKDIR /var/lib/stroem
# The server's default log_storage.local_dir is /var/lib/stroem/logs (mount
# a volume there); a worker's default work_dir is /tmp/stroem-worker.
EXPOSE 8080
ENTRYPOINT ["stroem"]
CMD ["--help"]
