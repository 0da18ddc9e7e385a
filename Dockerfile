# Celeriac: one image holding every binary: `celeriac-api` (the default), `celeriac-worker`,
# `celeriac-beat`, `celeriac-archiver` and the `celeriac` command-line tool. Settings come
# from /app/config (base.toml, then production.toml) and CELERIAC__SECTION__KEY environment
# variables; see docker-compose.yml.
#
#   docker build -t celeriac:latest .
#   docker run --rm -e CELERIAC__REDIS__URL=redis://redis:6379 -p 8000:8000 celeriac:latest
#   docker run --rm -e CELERIAC__REDIS__URL=redis://redis:6379 celeriac:latest \
#       celeriac-worker --queues emails,reports,default --concurrency 16

# Where the binaries come from: `builder` (the default) compiles them in the image below;
# `prebuilt` takes them as they are from the build context's prebuilt/ folder, for a machine
# that builds on the host and cannot pull a Rust image (scripts/container-smoke.sh).
ARG BINARIES=builder

# ---------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# The sources (.dockerignore leaves out target/ and .git), built with the registry and the
# target folder in cache mounts (BuildKit, buildah): a rebuild compiles only what changed,
# and no stand-in manifests or sources need to mirror the workspace's members and targets.
COPY . .
# Without the debug info the workspace's release profile keeps for profiling (a tenth of the
# size); panics still name their functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --release --locked -p celeriac-api -p celeriac-worker -p celeriac-archive -p celeriac-cli --bins \
    && cp target/release/celeriac-api target/release/celeriac-worker target/release/celeriac-beat \
          target/release/celeriac-archiver target/release/celeriac /usr/local/bin/

FROM scratch AS prebuilt
COPY prebuilt/ /usr/local/bin/

# The chosen stage; the other is skipped (BuildKit and buildah build only the stages needed).
FROM ${BINARIES} AS binaries

# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# CA roots for rediss:// and SMTP over TLS. Unpinned on purpose: it follows security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user. /app/data/reports exists in the image, owned by that user, so a
# named volume mounted there starts out writable by it.
RUN groupadd --system --gid 10001 celeriac \
    && useradd --system --uid 10001 --gid celeriac --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin celeriac \
    && mkdir -p /app/data/reports \
    && chown -R celeriac:celeriac /app/data

COPY --from=binaries /usr/local/bin/celeriac-api /usr/local/bin/celeriac-worker /usr/local/bin/celeriac-beat \
     /usr/local/bin/celeriac-archiver /usr/local/bin/celeriac /usr/local/bin/
COPY config/ /app/config/

WORKDIR /app
ENV CELERIAC_ENV=production \
    CELERIAC_CONFIG_DIR=/app/config

USER 10001:10001
EXPOSE 8000

# No HEALTHCHECK here: the same image runs workers, which serve no HTTP. docker-compose.yml
# probes the API's /healthz instead.
CMD ["celeriac-api"]
