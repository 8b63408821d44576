# syntax=docker/dockerfile:1
# DeployStack backend: a release build, then a small Debian runtime as a non-root user.
# The image runs against an external PostgreSQL (POSTGRES_* variables; see compose.yaml);
# it carries no PostgreSQL server, so the embedded mode of `cargo run` is not available in it.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches examples \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in http settings_init rotate_secret queue routing api soak; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin deploystack-backend \
    && rm -rf src benches examples
COPY src src
COPY migrations migrations
COPY web web
COPY benches benches
COPY examples examples
# The stub build left newer timestamps behind; make sure the real sources are compiled.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin deploystack-backend \
    && strip target/release/deploystack-backend

FROM debian:bookworm-slim AS runtime
# curl: the health check. ca-certificates: verified TLS to PostgreSQL (POSTGRES_SSL_ROOT_CERT
# names its own CA; the store serves providers whose CA is public).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 deploystack \
    && useradd --system --uid 10001 --gid deploystack --home-dir /app --shell /usr/sbin/nologin deploystack \
    && mkdir -p /app/persistent_data \
    && chown -R deploystack:deploystack /app
COPY --from=build /src/target/release/deploystack-backend /usr/local/bin/deploystack-backend
WORKDIR /app
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=3000 \
    PERSISTENT_DATA_DIR=/app/persistent_data \
    LOG_FORMAT=json
# db.selection.json and, when DEPLOYSTACK_ENCRYPTION_SECRET is unset, encryption.secret: back
# this volume up, or lose the encrypted settings with it.
VOLUME ["/app/persistent_data"]
EXPOSE 3000
# Ready once setup is done and the database answers; until setup it reports unhealthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "curl -fsS \"http://127.0.0.1:${PORT}/api/health/ready\" > /dev/null"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["deploystack-backend"]
