"""A tiny QEMU guest for the vhost tests: Debian's kernel, busybox, and an init script.

Nothing is downloaded: the kernel (``linux-image-cloud-amd64`` or ``linux-image-amd64``),
its virtio modules and ``busybox-static`` come from apt (``scripts/install-qemu.sh``).
The initramfs is written here, in Python (``newc`` cpio, gzip), into a temporary
directory: ``/init`` is the caller's shell script, run by busybox after the virtio
network modules are loaded.

The guest's serial console goes to a file the test reads (:meth:`QemuGuest.console`),
so the init script reports with ``echo MARKER`` lines.  Guest memory is a shared memfd,
which vhost-user needs: the backend maps it from the fd passed in ``SET_MEM_TABLE``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from spp.testing import wait_for

QEMU = shutil.which("qemu-system-x86_64")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
#: The modules virtio-net needs, leaves last; each is loaded only if it is a module.
NET_MODULES = ("virtio_pci", "virtio_net")
INSTALL_HINT = "run scripts/install-qemu.sh (apt-get install qemu-system-x86 linux-image-cloud-amd64 busybox-static)"


@dataclass(frozen=True)
class GuestKernel:
    """A bootable kernel and the module files (dependency order) virtio-net needs from it."""

    vmlinuz: Path
    modules: tuple[Path, ...]


def _static_busybox() -> str | None:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                head = f.read(4096)
            # A static binary has no PT_INTERP, hence no "ld-linux" path near the start.
            if head.startswith(b"\x7fELF") and b"ld-linux" not in head:
                return path
    return None


def _builtin(config: Path, option: str) -> bool:
    with contextlib.suppress(OSError):
        return f"{option}=y\n" in config.read_text()
    return False


def _module_order(moddir: Path, names: tuple[str, ...]) -> tuple[Path, ...] | None:
    """The ``.ko`` files for ``names`` with their dependencies first (``modules.dep``)."""
    deps: dict[str, list[str]] = {}
    try:
        text = (moddir / "modules.dep").read_text()
    except OSError:
        return None
    by_name: dict[str, str] = {}
    for line in text.splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
        base = os.path.basename(mod).split(".ko")[0].replace("-", "_")
        by_name[base] = mod
    order: list[str] = []

    def visit(mod: str) -> None:
        for d in deps.get(mod, []):
            visit(d)
        if mod not in order:
            order.append(mod)

    for name in names:
        if name not in by_name:
            return None
        # modules.dep lists a module's full dependency closure, deepest last: load in reverse.
        for d in reversed(deps[by_name[name]]):
            visit(d)
        visit(by_name[name])
    files = tuple(moddir / m for m in order)
    if any(not f.name.endswith(".ko") or not f.is_file() for f in files):
        return None  # compressed modules (.ko.xz) would need a decompressor in the guest
    return files


def find_kernel() -> GuestKernel | None:
    """The newest ``/boot/vmlinuz-*`` that can boot here with virtio-net, or ``None``."""
    for vmlinuz in sorted(Path("/boot").glob("vmlinuz-*"), reverse=True):
        version = vmlinuz.name.removeprefix("vmlinuz-")
        if not os.access(vmlinuz, os.R_OK):
            continue
        config = Path(f"/boot/config-{version}")
        wanted = tuple(n for n, opt in (("virtio_pci", "CONFIG_VIRTIO_PCI"), ("virtio_net", "CONFIG_VIRTIO_NET"))
                       if not _builtin(config, opt))
        if not wanted:
            return GuestKernel(vmlinuz, ())
        modules = _module_order(Path(f"/lib/modules/{version}"), wanted)
        if modules is not None:
            return GuestKernel(vmlinuz, modules)
    return None


def need_qemu() -> tuple[str, GuestKernel, str]:
    """QEMU, a guest kernel and a static busybox, or skip the test saying what is missing."""
    if QEMU is None:
        pytest.skip(f"qemu-system-x86_64 is not installed; {INSTALL_HINT}")
    kernel = find_kernel()
    if kernel is None:
        pytest.skip(f"no readable /boot/vmlinuz-* with virtio_pci/virtio_net (built in or as .ko); {INSTALL_HINT}")
    busybox = _static_busybox()
    if busybox is None:
        pytest.skip(f"no static busybox at {' or '.join(BUSYBOX_CANDIDATES)}; {INSTALL_HINT}")
    return QEMU, kernel, busybox


# -- initramfs -------------------------------------------------------------------------------


class _Cpio:
    """A ``newc`` cpio archive (what the kernel unpacks as initramfs), built in memory."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self.ino += 1
        self.out += b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return bytes(self.out)


INIT_PREAMBLE = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m || echo "SPP-GUEST-INSMOD-FAILED $m"; done
"""


def build_initramfs(dest: Path, kernel: GuestKernel, busybox: str, script: str) -> Path:
    """Write ``dest`` (gzip'd cpio): busybox, the kernel's virtio-net modules, and ``/init``.

    ``/init`` mounts /proc, /sys and /dev, loads the modules, then runs ``script`` (sh).
    """
    archive = _Cpio()
    for d in ("bin", "dev", "lib", "lib/modules", "proc", "sys"):
        archive.add(d, stat.S_IFDIR | 0o755)
    archive.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    archive.add("bin/busybox", stat.S_IFREG | 0o755, Path(busybox).read_bytes())
    for ko in kernel.modules:
        archive.add(f"lib/modules/{ko.name}", stat.S_IFREG | 0o644, ko.read_bytes())
    init = INIT_PREAMBLE.format(modules=" ".join(ko.name for ko in kernel.modules)) + script
    archive.add("init", stat.S_IFREG | 0o755, init.encode())
    dest.write_bytes(gzip.compress(archive.finish(), compresslevel=1))
    return dest


# -- the VM ----------------------------------------------------------------------------------


def accel() -> str:
    """The accelerator: ``$SPP_QEMU_ACCEL`` if set, else ``tcg``.

    Not ``kvm`` by default: on the build machines ``/dev/kvm`` opens but a KVM guest
    never prints a line (nested virtualisation without VMX), while TCG boots in ~4 s.
    """
    return os.environ.get("SPP_QEMU_ACCEL", "tcg")


class QemuGuest:
    """``qemu-system-x86_64`` with one virtio-net NIC on a vhost-user socket; console in a file.

    The VM has ``memory_mb`` of shared memfd memory, one vCPU, no disks, no display;
    ``-no-reboot`` turns the guest's ``reboot``/panic into QEMU exiting.
    """

    def __init__(self, qemu: str, kernel: GuestKernel, initrd: Path, sock: str, mac: str, workdir: Path,
                 *, memory_mb: int = 256, cmdline: str = "") -> None:
        self.console_path = workdir / "console.log"
        self.log_path = workdir / "qemu.log"
        argv = [qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-accel", accel(),
                "-M", "pc", "-cpu", "max", "-smp", "1", "-m", f"{memory_mb}M",
                "-object", f"memory-backend-memfd,id=mem,size={memory_mb}M,share=on", "-numa", "node,memdev=mem",
                "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
                "-append", f"console=ttyS0 quiet panic=-1 ipv6.disable=1 {cmdline}".strip(),
                "-serial", f"file:{self.console_path}",
                "-chardev", f"socket,id=c0,path={sock}",
                "-netdev", "vhost-user,id=n0,chardev=c0",
                # vectors=0: no MSI-X.  QEMU 7.2 under TCG dereferences NULL in
                # msix_set_vector_notifiers() (called from vhost_net_start) when the guest
                # starts a vhost-user NIC with MSI-X; with INTx it runs.
                "-device", f"virtio-net-pci,netdev=n0,mac={mac},vectors=0"]
        self.argv = argv
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def console(self) -> str:
        """What the guest printed on its serial console so far."""
        try:
            return self.console_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def qemu_log(self) -> str:
        """QEMU's own stdout/stderr so far."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        return f"console:\n{self.console()[-3000:]}\nqemu:\n{self.qemu_log()[-2000:]}"

    def wait_console(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the console shows ``pattern`` (a regex); raise if QEMU exits first."""

        def seen() -> re.Match[str] | None:
            m = re.search(pattern, self.console())
            if m is None and self.proc.poll() is not None:
                raise RuntimeError(f"qemu exited with {self.proc.returncode} before {pattern!r}\n{self.describe()}")
            return m

        found = wait_for(seen, timeout=timeout, interval=0.05,
                         message=lambda: f"{pattern!r} on the guest console\n{self.describe()}")
        assert found is not None
        return found

    def kill(self) -> None:
        """Kill QEMU (if still running) and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._log.close()


@contextmanager
def qemu_guest(*args: object, **kw: object) -> Iterator[QemuGuest]:
    """A running :class:`QemuGuest`; always killed on exit."""
    vm = QemuGuest(*args, **kw)  # type: ignore[arg-type]
    try:
        yield vm
    finally:
        vm.kill()
