#!/usr/bin/env bash
# Install everything spp needs on a fresh Debian machine (idempotent, quiet when done before).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
for cmd in ip:iproute2 tcpdump:tcpdump; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need_apt+=("${cmd##*:}")
done
# headless Chromium for the topology page's browser test (tests/ctl/test_ui_browser.py);
# scripts/test.sh asks for it (SPP_WITH_CHROMIUM=1), the demo does not need it
if [ "${SPP_WITH_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
    need_apt+=(chromium)
fi
if [ "${SPP_WITH_TESTPMD:-0}" = 1 ] && ! command -v dpdk-testpmd >/dev/null 2>&1; then
    need_apt+=(dpdk-dev librte-net-af-packet23)
fi
# testpmd on net_af_xdp (tests and spp bench ndr); the AF_XDP phy driver: libxdp/libbpf
# (xdp-tools to inspect what is attached)
if [ "${SPP_WITH_TESTPMD:-0}" = 1 ]; then
    dpkg -s librte-net-af-xdp23 >/dev/null 2>&1 || need_apt+=(librte-net-af-xdp23)
fi
# spp bench's other peers (SPP_WITH_BENCH_PEERS=1): Open vSwitch and trafgen.  Not for the
# tests: openvswitch-switch brings a daemon (and on Debian swaps the time daemon).
if [ "${SPP_WITH_BENCH_PEERS:-0}" = 1 ]; then
    command -v ovs-vswitchd >/dev/null 2>&1 || need_apt+=(openvswitch-switch)
    command -v trafgen >/dev/null 2>&1 || need_apt+=(netsniff-ng)
fi
for pkg in libxdp1 libbpf1 xdp-tools; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
        || echo "apt-get could not install ${need_apt[*]}: the tests that need them will be skipped"
fi
if ! python3 -c 'import spp, numba, fastapi, scapy, pytest, prometheus_client, fastapi_offline, jsonschema, openapi_spec_validator, websockets' >/dev/null 2>&1 \
   || [ "$(python3 -c 'import spp, os; print(os.path.realpath(spp.__file__))' 2>/dev/null)" != "$(realpath src/spp/__init__.py)" ]; then
    echo "installing spp and its Python dependencies (pip)"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
fi
# Compile the data plane into numba's cache once (about a minute), so a newcomer's first
# commands never wait for it; a second run finds the cache warm and takes a second.
python3 -m spp.control.warmup || echo "the data plane was not compiled now: spp's processes compile it on first start"
