# Duplex developer commands. Each one calls the same `cargo xtask` command
# that works without just.

# Show the commands.
default:
    @just --list

# Build and run both servers (ws-server :5000, app-server :5001); Ctrl-C stops both.
dev:
    cargo xtask dev

# Run the whole test suite, browser tests included.
test *ARGS:
    cargo xtask test {{ARGS}}

# Check formatting and clippy lints.
lint:
    cargo xtask lint

# Format the code.
fmt:
    cargo fmt --all

# What CI runs: lint, then test.
ci:
    cargo xtask ci
