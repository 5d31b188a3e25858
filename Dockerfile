# One image holding both servers; docker-compose.yml runs each from it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ws-server -p app-server

FROM debian:bookworm-slim
RUN useradd --system --no-create-home duplex
COPY --from=build /src/target/release/ws-server /src/target/release/app-server /usr/local/bin/
COPY public /app/public
WORKDIR /app
USER duplex
ENV RUST_LOG=info
