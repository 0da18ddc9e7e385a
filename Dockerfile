# Celeriac: one image holding both binaries, `celeriac-api` (the default) and
# `celeriac-worker`. Settings come from /app/config (base.toml, then production.toml) and
# CELERIAC__SECTION__KEY environment variables; see docker-compose.yml.
#
#   docker build -t celeriac:latest .
#   docker run --rm -e CELERIAC__REDIS__URL=redis://redis:6379 -p 8000:8000 celeriac:latest
#   docker run --rm -e CELERIAC__REDIS__URL=redis://redis:6379 celeriac:latest \
#       celeriac-worker --queues emails,reports,default --concurrency 16

# ---------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. Dependencies only, cached until a manifest or Cargo.lock changes: the workspace's
#    manifests with empty stand-in sources. Every workspace member must be listed here.
COPY Cargo.toml Cargo.lock ./
COPY shared/Cargo.toml shared/
COPY worker/Cargo.toml worker/
COPY api/Cargo.toml api/
COPY testkit/Cargo.toml testkit/
COPY bench/Cargo.toml bench/
RUN for crate in shared worker api testkit bench; do \
        mkdir -p "$crate/src" && touch "$crate/src/lib.rs"; \
    done \
    && cargo build --release --locked -p celeriac-api -p celeriac-worker -p celeriac-archive --bins \
    && rm -rf shared/src worker/src api/src testkit/src bench/src

# 2. The real sources. COPY keeps the files' old modification times, which Cargo would take
#    as older than the stand-ins it just built: touch them so our own crates are rebuilt.
COPY . .
RUN find shared worker api testkit bench -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p celeriac-api -p celeriac-worker -p celeriac-archive --bins \
    && cp target/release/celeriac-api target/release/celeriac-worker target/release/celeriac-beat target/release/celeriac-archiver /usr/local/bin/

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

COPY --from=builder /usr/local/bin/celeriac-api /usr/local/bin/celeriac-worker /usr/local/bin/celeriac-beat /usr/local/bin/celeriac-archiver /usr/local/bin/
COPY config/ /app/config/

WORKDIR /app
ENV CELERIAC_ENV=production \
    CELERIAC_CONFIG_DIR=/app/config

USER 10001:10001
EXPOSE 8000

# No HEALTHCHECK here: the same image runs workers, which serve no HTTP. docker-compose.yml
# probes the API's /healthz instead.
CMD ["celeriac-api"]
