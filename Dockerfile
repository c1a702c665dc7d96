# syntax=docker/dockerfile:1
# One image: proxy, admin API and dashboard (the dashboard is embedded at build time from
# the committed budget-server/dashboard/dist, so no Node is needed here).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p budget-server

FROM debian:bookworm-slim
RUN useradd --system --home /data budget && mkdir -p /data && chown budget /data
COPY --from=build /src/target/release/budget-server /usr/local/bin/budget-server
USER budget
WORKDIR /data
ENV HOST=0.0.0.0 PORT=8000 DATABASE_URL=sqlite:/data/usage_data.db
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["budget-server"]
