# One image holding both servers, ws-server (port 5000) and app-server
# (port 5001); docker-compose.yml runs each from it with `command:`.
# Without a command it runs the app-server: `docker run duplex` never gives
# a shell. `docker run --rm duplex ws-server --help` (or `app-server
# --help`) tells each server's settings.
#
# Dependencies compile in a layer of their own (cargo-chef): it is rebuilt
# only when a manifest or Cargo.lock changes, not on an edit to the
# servers' sources, and not at all on an edit to what .dockerignore keeps
# out of the build (README, docs, tests). Plain Dockerfile instructions
# only, so the cache works with the classic builder (docker-compose 1.x's
# default) as with BuildKit.

FROM rust:1-bookworm AS chef
# The version is pinned: a new cargo-chef can change the recipe's format.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: the workspace's manifests and lock file, with every source
# file left out; it changes only when they do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only, cached as long as the recipe is unchanged.
RUN cargo chef cook --release --locked -p ws-server -p app-server --recipe-path recipe.json
# Then the sources (askama reads templates/ at compile time).
COPY . .
RUN cargo build --release --locked -p ws-server -p app-server

FROM debian:bookworm-slim
# A fixed numeric uid and gid, so that a platform enforcing non-root can
# check USER without reading /etc/passwd. /secrets is where compose's
# `secrets` volume is mounted: a new named volume takes this folder's
# owner, so the servers can write the generated secrets there and read
# them back.
RUN groupadd --gid 10001 duplex \
    && useradd --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin duplex \
    && mkdir /secrets && chown 10001:10001 /secrets && chmod 0700 /secrets
COPY --from=builder /src/target/release/ws-server /src/target/release/app-server /usr/local/bin/
COPY public /app/public
WORKDIR /app
USER 10001:10001
ENV RUST_LOG=info
# ws-server 5000 (WebSocket), app-server 5001 (HTTP). The ws-server's
# admin port (5003) is left out: it is for the stack's own network.
EXPOSE 5000 5001
CMD ["app-server"]
