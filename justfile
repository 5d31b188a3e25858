# Duplex developer commands. Each one calls the same `cargo xtask` command
# that works without just.

# Show the commands.
default:
    @just --list

# Run ws-server :5000 and app-server :5001 (`--scale 2`: plus Redis and ws-server :5002); Ctrl-C stops all.
dev *ARGS:
    cargo xtask dev {{ARGS}}

# Run the whole test suite, browser tests included.
test *ARGS:
    cargo xtask test {{ARGS}}

# Check formatting and clippy lints.
lint:
    cargo xtask lint

# Format the code.
fmt:
    cargo fmt --all

# Benchmark the ws-server against peer servers; writes docs/benchmarks.md.
bench *ARGS:
    cargo xtask bench {{ARGS}}

# What CI runs: lint, then test.
ci:
    cargo xtask ci
