#!/usr/bin/env bash
# Builds the Celeriac image from the Dockerfile and runs docker-compose.yml's Celeriac services
# from it (gateway, two workers, beat, archiver), then checks they start and answer
# (scripts/python/container_smoke.py: the compose healthcheck, an e-mail sent, received and
# archived, the image's CLI).
#
#   scripts/container-smoke.sh                    # release binaries, built first
#   BIN_DIR=target/debug scripts/container-smoke.sh
#
# This machine has no container engine daemon and reaches no container registry, so:
# - the base image (debian:bookworm-slim) is made from Debian's packages with mmdebstrap and
#   imported under that name, once (kept in containers/storage for the next run);
# - the image is built by buildah (chroot isolation) with --build-arg BINARIES=prebuilt: the
#   host's binaries, as no Rust image can be pulled for the builder stage (same Debian release
#   as the runtime stage, so the same glibc);
# - each service runs with `buildah run` on the host's network, because `podman run` (and so
#   podman-compose) cannot start a container here: the sandbox refuses the setrlimit an OCI
#   runtime makes for the container (crun: RLIMIT_NOFILE, then RLIMIT_NPROC; runc: "error
#   setting rlimit type 7"), even at the limits already in force. The compose file's redis,
#   postgres and smtp services run on the host, on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages buildah podman mmdebstrap redis-server postgresql python3 python3-venv
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-$TARGET_DIR/container-smoke}
IMAGE=localhost/celeriac:latest
BASE_IMAGE=docker.io/library/debian:bookworm-slim
BINARIES=(celeriac-api celeriac-worker celeriac-beat celeriac-archiver celeriac)

if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --locked --bin celeriac-smtp-sink $(printf -- '--bin %s ' "${BINARIES[@]}")
  BIN_DIR=$TARGET_DIR/release
fi
mkdir -p "$WORK"

if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "container-smoke: making $BASE_IMAGE from Debian's packages (mmdebstrap)"
  mmdebstrap --quiet --variant=minbase bookworm "$WORK/bookworm.tar"
  podman import --quiet "$WORK/bookworm.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$WORK/bookworm.tar"
fi

# The build context: what the runtime stage copies (config/), and the binaries in prebuilt/.
CONTEXT=$WORK/context
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/prebuilt"
cp -r Dockerfile .dockerignore config "$CONTEXT/"
# Without their debug info, as the Dockerfile's builder stage makes them (a tenth of the size).
for bin in "${BINARIES[@]}"; do strip --strip-debug -o "$CONTEXT/prebuilt/$bin" "$BIN_DIR/$bin"; done
echo "container-smoke: building $IMAGE (buildah, binaries from $BIN_DIR)"
buildah build --quiet --isolation chroot --pull-never --build-arg BINARIES=prebuilt -t "$IMAGE" "$CONTEXT" >/dev/null
rm -rf "$CONTEXT"

scripts/python/env.sh
"$TARGET_DIR/pyenv/bin/python" scripts/python/container_smoke.py --image "$IMAGE" --bin-dir "$BIN_DIR"
# buildah 1.28 leaves a working container of each intermediate stage (of untagged images);
# without them, the earlier builds' images, untagged by this one, can be pruned.
buildah containers --format '{{.ContainerID}} {{.ImageName}}' | awk 'NF == 1 { print $1 }' |
  xargs -r buildah rm >/dev/null 2>&1 || true
buildah rmi --prune >/dev/null 2>&1 || true
