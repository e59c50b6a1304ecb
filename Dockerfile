# Both binaries in one small image.
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ingest -p mcp-classifier

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 traffic
COPY --from=build /src/target/release/ingest /src/target/release/mcp-classifier /usr/local/bin/
USER traffic
WORKDIR /var/lib/smart-traffic
# mimalloc returns freed memory to the OS at once: lower peaks under batch load (docs/benchmarks.md).
ENV INGEST_BIND=0.0.0.0:8080 MIMALLOC_PURGE_DELAY=0
EXPOSE 8080 8001
CMD ["ingest"]
