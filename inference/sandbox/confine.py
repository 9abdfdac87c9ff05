"""Confining the sandbox process before it imports torch or touches the model (stdlib only).

`confine(...)` applies, in this order, whatever the machine allows, and returns one line per
measure for the job log:

1. resource limits: CPU seconds (`RLIMIT_CPU`, then SIGXCPU/SIGKILL), file size, open files,
   no core files; the address-space limit comes later (`limit_memory`), after the imports;
2. a private, empty network namespace (`unshare(CLONE_NEWNET)`, needs root and CAP_SYS_ADMIN;
   without them TCP is still denied by Landlock and `socket` by seccomp);
3. Landlock: files may be written only beneath the scratch directory; reads are limited to
   the Python installation, the system libraries, `/proc/self`, `/sys` and a few devices
   (not `/etc`, `/home`, `/tmp`, the project, other processes); TCP bind and connect are
   denied; signals and abstract unix sockets are scoped to the sandbox;
4. a seccomp filter refusing `socket`, `execve`, `ptrace`, `process_vm_*`, `unshare`,
   `setns`, `mount`, `bpf` with EPERM;
5. (`drop_privileges`, after the imports) the unprivileged user, with no supplementary groups.

Landlock and seccomp bind the calling thread and the threads it creates later, which is why
this runs while the process has one thread, before numpy or torch start theirs.
"""

import ctypes
import os
import platform
import pwd
import resource
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000

MACHINE = platform.machine()
# syscall numbers: landlock_create_ruleset, landlock_add_rule, landlock_restrict_self, seccomp
SYSCALLS = {
    "x86_64": {"landlock": (444, 445, 446), "seccomp": 317},
    "aarch64": {"landlock": (444, 445, 446), "seccomp": 277},
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
DENIED_SYSCALLS = {
    # socket, execve, execveat, ptrace, process_vm_readv, process_vm_writev, unshare, setns, mount, bpf
    "x86_64": (41, 59, 322, 101, 310, 311, 272, 308, 165, 321),
    "aarch64": (198, 221, 281, 117, 270, 271, 97, 268, 40, 280),
}


class ConfinementError(Exception):
    """A required confinement could not be applied."""


def _errno_text():
    return os.strerror(ctypes.get_errno())


# --------------------------------------------------------------------------- rlimits


def set_limits(*, cpu_seconds, file_bytes=256 << 20, open_files=1024):
    applied = []
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_seconds), int(cpu_seconds) + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    applied.append(f"CPU time ≤ {int(cpu_seconds)} s, files ≤ {file_bytes >> 20} MiB, ≤ {open_files} open files")
    return applied


def limit_memory(memory_bytes):
    """Address-space limit (allocations past it fail with ENOMEM). Not usable with CUDA, which maps huge ranges."""
    resource.setrlimit(resource.RLIMIT_AS, (int(memory_bytes), int(memory_bytes)))


def limit_processes(count):
    resource.setrlimit(resource.RLIMIT_NPROC, (count, count))


# --------------------------------------------------------------------------- network


def unshare_network():
    if libc.unshare(CLONE_NEWNET) != 0:
        raise ConfinementError(f"unshare(CLONE_NEWNET) failed: {_errno_text()}")


# --------------------------------------------------------------------------- Landlock

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1  # execute … make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
RULE_PATH_BENEATH = 1
O_PATH = getattr(os, "O_PATH", 0o10000000)


def landlock_abi():
    calls = SYSCALLS.get(MACHINE)
    if calls is None:
        return 0
    abi = libc.syscall(calls["landlock"][0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, abi)


def _handled_fs(abi):
    handled = FS_ABI1
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    return handled


def landlock(*, writable, readable, devices, abi):
    """Restrict this thread (and threads and children it starts later) to the given paths."""
    create, add_rule, restrict = SYSCALLS[MACHINE]["landlock"]
    handled_fs = _handled_fs(abi)
    handled_net = (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(create, buffer, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise ConfinementError(f"landlock_create_ruleset failed: {_errno_text()}")
    read_rights = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
    try:
        for path in writable:
            _add_rule(ruleset, add_rule, path, handled_fs & ~FS_EXECUTE)
        for path in readable:
            _add_rule(ruleset, add_rule, path, read_rights, files_only=FS_EXECUTE | FS_READ_FILE)
        for path in devices:
            device_rights = FS_READ_FILE | FS_WRITE_FILE | (FS_IOCTL_DEV if abi >= 5 else 0)
            _add_rule(ruleset, add_rule, path, device_rights | FS_READ_DIR, files_only=device_rights)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise ConfinementError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}")
        if libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise ConfinementError(f"landlock_restrict_self failed: {_errno_text()}")
    finally:
        os.close(ruleset)
    return bool(handled_net), bool(scoped)


def _add_rule(ruleset, add_rule, path, rights, files_only=None):
    try:
        fd = os.open(path, O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if files_only is not None and not os.path.isdir(path):
            rights = files_only
        attr = struct.pack("=Qi", rights, fd)
        buffer = ctypes.create_string_buffer(attr, len(attr))
        if libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), buffer, 0) != 0:
            raise ConfinementError(f"landlock_add_rule({path}) failed: {_errno_text()}")
    finally:
        os.close(fd)


def readable_paths():
    """The Python installation and system libraries, never the project or /etc (beyond the linker cache)."""
    import site  # noqa: PLC0415 - stdlib, already loaded by the interpreter

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    paths |= {os.path.realpath(p) for p in list(paths)}
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the `inference` package
    paths |= {here, "/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/usr/share/zoneinfo"}
    paths |= {"/etc/ld.so.cache", "/sys", "/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo"}
    paths |= {"/proc/stat", "/proc/driver/nvidia"}
    return sorted(os.path.realpath(p) if p.startswith("/proc/self") else p for p in paths)


def device_paths():
    names = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
    try:
        names += [f"/dev/{n}" for n in os.listdir("/dev") if n.startswith("nvidia")]
    except OSError:
        pass
    return names


# --------------------------------------------------------------------------- seccomp


def seccomp_deny():
    """Refuse the syscalls in DENIED_SYSCALLS with EPERM, in every thread (TSYNC)."""
    arch, denied = AUDIT_ARCH.get(MACHINE), DENIED_SYSCALLS.get(MACHINE)
    if arch is None:
        raise ConfinementError(f"no seccomp filter for {MACHINE}")
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    program = [(ld_abs, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny), (ld_abs, 0, 0, 0)]
    n_checks = len(denied) + (1 if MACHINE == "x86_64" else 0)
    position = 0
    if MACHINE == "x86_64":  # the x32 ABI: nr | 0x40000000
        program.append((jge, n_checks - position, 0, 0x40000000))
        position += 1
    for nr in denied:
        program.append((jeq, n_checks - position, 0, nr))
        position += 1
    program += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    filters = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program)
    filter_buffer = ctypes.create_string_buffer(filters, len(filters))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(filter_buffer))  # struct sock_fprog
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise ConfinementError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}")
    seccomp_set_mode_filter, tsync = 1, 1
    nr = SYSCALLS[MACHINE]["seccomp"]
    if libc.syscall(nr, ctypes.c_uint(seccomp_set_mode_filter), ctypes.c_uint(tsync), fprog_buffer) != 0:
        raise ConfinementError(f"seccomp(SET_MODE_FILTER) failed: {_errno_text()}")


# --------------------------------------------------------------------------- user


def lookup_user(name):
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def drop_privileges(uid, gid):
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise ConfinementError("setuid did not take effect")


def die_with_parent():
    import signal  # noqa: PLC0415 - stdlib

    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


# --------------------------------------------------------------------------- all of it


def confine(*, scratch, cpu_seconds, user):
    """Steps 1–4 in this thread; returns (summary lines, (uid, gid) to drop to later or None)."""
    summary = set_limits(cpu_seconds=cpu_seconds)
    root = os.geteuid() == 0
    target = None
    if root and user:
        target = lookup_user(user)
        os.chown(scratch, *target)
    try:
        if not root:
            raise ConfinementError("not root")
        unshare_network()
        summary.append("no network: a private network namespace without interfaces")
    except ConfinementError as exc:  # a container without CAP_SYS_ADMIN: Landlock and seccomp still apply
        summary.append(f"network namespace not available ({exc})")
    abi = landlock_abi()
    if abi:
        net, scoped = landlock(writable=[scratch], readable=readable_paths(), devices=device_paths(), abi=abi)
        line = f"Landlock ABI {abi}: writes only in the scratch directory, reads only the Python and system libraries"
        if net:
            line += ", no TCP"
        if scoped:
            line += ", signals and abstract sockets scoped"
        summary.append(line)
    else:
        summary.append("Landlock not available: file access is limited by the user's permissions only")
    seccomp_deny()
    summary.append("seccomp: socket, exec, ptrace, unshare, mount and bpf refused")
    return summary, target
