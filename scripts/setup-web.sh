#!/usr/bin/env bash
# Install what the web backend needs, once (each step is skipped when already there):
#   the wasm32-unknown-unknown target and wasm-bindgen-cli at the version that
#   web/skillset-web pins (cargo install, ~2.5 min on 2 cores), and, without --build-only,
#   Debian's chromium (apt-get, as root) and playwright-core (npm ci in web/).
#
#   scripts/setup-web.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' web/skillset-web/Cargo.toml)
bindgen="$HOME/.cargo/bin/wasm-bindgen"
if ! [ -x "$bindgen" ] || ! "$bindgen" --version | grep -q " $version\$"; then
    echo "installing wasm-bindgen-cli $version" >&2
    # Not --locked: its lock file pins a yanked webpki-roots.
    cargo install wasm-bindgen-cli --version "$version"
fi
[ "${1:-}" = --build-only ] && exit 0

if ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "/usr/bin/chromium is missing: sudo apt-get install chromium" >&2
        exit 2
    fi
    echo "installing chromium (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
if ! [ -d web/node_modules/playwright-core ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
