# Release builds of the single `stroem` binary. Static (CGO_ENABLED=0: the
# embedded SQLite of `stroem dev` is pure Go), stamped with the version,
# commit and build date that `stroem version` prints.
#
#   make build                  # ./bin/stroem for this machine
#   make release VERSION=v1.2.0 # dist/stroem_<version>_<os>_<arch>.tar.gz + checksums
#
# .goreleaser.yaml produces the same archives (and the image) on a release
# host with goreleaser installed.

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)
GOFLAGS_RELEASE := -trimpath -tags timetzdata

.PHONY: build release clean

build:
	CGO_ENABLED=0 go build $(GOFLAGS_RELEASE) -ldflags "$(LDFLAGS)" -o bin/stroem ./cmd/stroem

release:
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=stroem_$(VERSION)_$${os}_$${arch}; \
		mkdir -p dist/$$name; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build $(GOFLAGS_RELEASE) -ldflags "$(LDFLAGS)" \
			-o dist/$$name/stroem ./cmd/stroem; \
		cp README.md dist/$$name/; \
		tar -C dist -czf dist/$$name.tar.gz $$name; \
		rm -rf dist/$$name; \
	done
	cd dist && sha256sum *.tar.gz > checksums.txt

clean:
	rm -rf bin dist
