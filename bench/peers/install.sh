#!/usr/bin/env bash
# Installs and builds every benchmark peer (see README.md here), then prints
# what versions were measured. Idempotent: rerunning only redoes what is
# missing or stale. Exits non-zero if any peer could not be built.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
peers=$root/bench/peers
failed=()

step() { printf '\n== %s\n' "$*"; }

step "go-gorilla: Debian's Go and gorilla/websocket"
go_pkgs=(golang-go golang-github-gorilla-websocket-dev)
missing=()
for pkg in "${go_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if ((EUID == 0)); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing ${missing[*]}; as root run: apt-get install -y ${go_pkgs[*]}"
  fi
fi
if command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/gorilla/websocket ]]; then
  # The module proxy is off: go.mod points gorilla at Debian's copy.
  (cd "$peers/go-gorilla" && GOFLAGS=-mod=mod GOPROXY=off go build -o go-gorilla .)
  echo "built bench/peers/go-gorilla/go-gorilla"
else
  failed+=(go-gorilla)
fi

step "node-ws: npm ci"
node_ws=$peers/node-ws
locked=$(node -p "require('$node_ws/package-lock.json').packages['node_modules/ws'].version")
installed=$(node -p "try { require('$node_ws/node_modules/ws/package.json').version } catch { '' }")
if [[ "$installed" == "$locked" ]]; then
  echo "ws $installed already installed"
else
  (cd "$node_ws" && npm ci --no-audit --no-fund)
fi

step "python-websockets: venv + pip"
venv=$peers/python-websockets/.venv
[[ -x $venv/bin/python ]] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$peers/python-websockets/requirements.txt"
echo "installed into bench/peers/python-websockets/.venv"

step "naive-relay, tuned-relay: cargo build --release"
(cd "$root" && cargo build --release -p naive-relay -p tuned-relay)

step "versions (each peer's version command in peers.toml)"
# The venv's Python is 3.11+, which reads TOML without extra packages.
(cd "$root" && "$venv/bin/python" - "$peers/peers.toml" <<'PY'
import subprocess, sys, tomllib

with open(sys.argv[1], "rb") as f:
    peers = tomllib.load(f)["peer"]
for peer in peers:
    run = subprocess.run(peer["version"], capture_output=True, text=True)
    line = run.stdout.strip() if run.returncode == 0 else f"unavailable: {run.stderr.strip()}"
    print(f"{peer['name']:<18} {line}")
PY
)

if ((${#failed[@]})); then
  echo "not built: ${failed[*]}" >&2
  exit 1
fi
