#!/usr/bin/env bash
# Installs what slotbus needs (Debian bookworm packages), then configures and
# builds with a CMake preset. Sourced by test.sh and demo.sh.
#   PRESET=dev|ci|asan|tsan (default: dev)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
preset=${PRESET:-dev}

packages=(g++ cmake ninja-build clang-format clang libclang-rt-14-dev
          libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev
          libboost-program-options1.81-dev libboost-filesystem1.81-dev
          libssl-dev iproute2 nftables
          libnats-dev nats-server pkg-config openssl
          libboost-url1.81-dev chromium python3 python3-prometheus-client curl
          libsystemd-dev help2man systemd)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> configuring and building (preset $preset)"
cmake --preset "$preset" -S "$root" >/dev/null
cmake --build --preset "$preset"
build_dir="$root/build/$preset"
