#!/usr/bin/env bash
# deps.sh: installs the Debian packages that building, running and testing Sextant need
# (`make deps`). Quiet and quick when everything is there already.
#
# Package installs must not start the system's own PostgreSQL/Redis/nginx services: the
# local stack (scripts/stack.sh) runs its own servers on its own sockets and port and never
# uses them. While installing, a temporary policy-rc.d keeps the packages from starting
# their services (unless the machine already has a policy-rc.d).
set -euo pipefail

PACKAGES=(
    build-essential pkg-config make
    libfcgi-dev libhiredis-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
    libyajl-dev zlib1g-dev libssl-dev libsodium-dev libsystemd-dev libcmocka-dev libcurl4-openssl-dev
    clang libclang-rt-14-dev
    nginx-light redis-server postgresql openssl curl
    nodejs npm ca-certificates procps
    chromium
)

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

# Some needs are met by more than one package: any nginx flavour serves, and
# NodeSource's nodejs bundles npm (Debian's npm package conflicts with it).
satisfied() {
    case "$1" in
    nginx-light)
        installed nginx-light || installed nginx-core || installed nginx-full ||
            installed nginx-extras || installed nginx ;;
    npm)
        installed npm || command -v npm >/dev/null 2>&1 ;;
    postgresql)
        installed postgresql || installed postgresql-15 ;;
    *)
        installed "$1" ;;
    esac
}

missing=()
for p in "${PACKAGES[@]}"; do
    satisfied "$p" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: not root and no sudo: install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from sextant scripts/deps.sh: no service starts during install\nexit 101\n' |
        "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 0755 "$policy"
    made_policy=1
fi
cleanup() { if [[ $made_policy == 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 "${missing[@]}"
echo "deps: done"
