# syntax=docker/dockerfile:1
# One image: proxy, admin API and dashboard (the dashboard is embedded at build time from the
# committed budget-server/dashboard/dist, so no Node is needed here).
#
#   docker build -t budget .
#   docker run -p 8000:8000 -e ADMIN_PASSWORD='a long password' -v budget-data:/data budget
#
# Or `docker compose up -d` (see docs/server.md, "Docker").

# 1. The manifests and lock file with empty sources: changes only when a dependency does.
FROM rust:1-bookworm AS plan
WORKDIR /src
COPY . .
RUN sh scripts/docker-plan.sh /plan

# 2. Dependencies in their own layer (cached until a manifest or Cargo.lock changes), then the
#    workspace's own crates.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY --from=plan /plan ./
RUN cargo build --release --locked -p budget-server
COPY . .
# The real sources can be older than the placeholder build: make cargo rebuild our crates.
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p budget-server

FROM debian:bookworm-slim
RUN useradd --system --home /data budget && mkdir -p /data && chown budget /data
COPY --from=build /src/target/release/budget-server /usr/local/bin/budget-server
USER budget
WORKDIR /data
# Listen on every interface of the container; the server then refuses to start without a
# non-default ADMIN_PASSWORD (set it with -e or in docker-compose.yml).
ENV HOST=0.0.0.0 PORT=8000 DATABASE_URL=sqlite:/data/usage_data.db
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["budget-server"]
