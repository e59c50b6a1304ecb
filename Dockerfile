# syntax=docker/dockerfile:1
# Both binaries, stripped, in a small image that runs as a user of its own.

# The dependencies are built in a layer of their own from a recipe of the manifests
# (cargo-chef): a change of the code alone rebuilds only the workspace's crates.
FROM rust:1.88-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS recipe
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=recipe /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p ingest -p mcp-classifier
COPY . .
RUN cargo build --release --locked -p ingest -p mcp-classifier \
    && strip target/release/ingest target/release/mcp-classifier

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 traffic \
    && mkdir -p /var/lib/smart-traffic && chown traffic /var/lib/smart-traffic
COPY --from=build /src/target/release/ingest /src/target/release/mcp-classifier /usr/local/bin/
USER traffic
WORKDIR /var/lib/smart-traffic
# mimalloc returns freed memory to the OS at once: lower peaks under batch load (docs/benchmarks.md).
ENV INGEST_BIND=0.0.0.0:8080 MIMALLOC_PURGE_DELAY=0
EXPOSE 8080 8001
CMD ["ingest"]
