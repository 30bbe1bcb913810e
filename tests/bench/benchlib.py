"""Helpers the benchmark scripts share: ports, a process's CPU and memory from /proc,
sizes, directory sizes. Debian's /usr/bin/python3, standard library only."""
import os
import re
import socket
import subprocess

HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """User + system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_bytes(pid, key="VmRSS"):
    """A memory figure of a running process from /proc/PID/status (VmRSS, VmHWM...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_mib(pid):
    return rss_bytes(pid, "VmHWM") / (1 << 20)


def size_arg(s):
    """'100MiB' -> bytes (KiB, MiB, GiB or plain bytes)."""
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)?", s)
    if not m:
        raise SystemExit(f"bad size {s!r} (e.g. 100MiB, 1GiB)")
    return int(m.group(1)) * {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


def dir_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    return total


def child_cpu(cmd, **kw):
    """Runs cmd to completion; its user + system CPU seconds."""
    t = os.times()
    subprocess.run(cmd, check=True, **kw)
    t2 = os.times()
    return (t2.children_user - t.children_user) + (t2.children_system - t.children_system)
