#!/usr/bin/env bash
# Install what tests/vhost/test_qemu.py needs (a QEMU guest on spp's vhost:0), from apt only:
#   qemu-system-x86          qemu-system-x86_64 (the guest runs under TCG: no KVM needed)
#   linux-image-cloud-amd64  /boot/vmlinuz-* and its virtio_pci/virtio_net modules
#   busybox-static           the guest's whole userland (the test builds its initramfs)
# Idempotent: does nothing when all three are there.  About 30 s and 200 MB on Debian 12.
# Run by scripts/test.sh (SPP_WITH_QEMU=0 skips it); without these the QEMU test skips, saying what is missing.
set -euo pipefail
pkgs=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86)
compgen -G '/boot/vmlinuz-*' >/dev/null || pkgs+=(linux-image-cloud-amd64)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || pkgs+=(busybox-static)
if [ ${#pkgs[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "install-qemu.sh: needs root to run apt-get install ${pkgs[*]}" >&2
    exit 1
fi
echo "installing ${pkgs[*]} (apt)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
