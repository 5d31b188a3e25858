# One image holding both servers; docker-compose.yml runs each from it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ws-server -p app-server

FROM debian:bookworm-slim
# /secrets is where compose's `secrets` volume is mounted: a new named
# volume takes this folder's owner, so the servers (running as duplex) can
# write the generated secrets there and read them back.
RUN useradd --system --no-create-home duplex \
    && mkdir /secrets && chown duplex:duplex /secrets && chmod 0700 /secrets
COPY --from=build /src/target/release/ws-server /src/target/release/app-server /usr/local/bin/
COPY public /app/public
WORKDIR /app
USER duplex
ENV RUST_LOG=info
