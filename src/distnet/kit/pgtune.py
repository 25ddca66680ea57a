"""PostgreSQL settings derived from the machine: the embedded server writes them into its data
directory at first start (and again when the machine changed), and ``distnet db recommend``
prints the same for an operator's own server.

Stock PostgreSQL assumes a small machine: 128 MB of shared buffers and 1 GB of WAL between
checkpoints, so a settlement or import at M/L checkpointed every few seconds (BENCHMARKS.md).
The rules are the usual ones (pgtune's "mixed" profile) and pure: :func:`recommend` takes a
:class:`Machine` and returns the settings; :func:`probe` reads the machine (cgroup limits first:
a container's memory is its limit, not the host's)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True, slots=True)
class Machine:
    memory: int
    """Bytes of RAM this server may use (the cgroup limit when lower than the host's)."""
    cores: int
    disk_free: int | None = None
    """Free bytes where the data directory lives; bounds the WAL kept between checkpoints."""
    ssd: bool = True


@dataclass(frozen=True, slots=True)
class Tuning:
    settings: dict[str, str]
    machine: Machine
    share: float

    def conf(self) -> str:
        """The settings as postgresql.conf lines, with the machine they were computed for (the
        first line: a changed machine is a changed file)."""
        m = self.machine
        head = (
            f"# distnet tuning for {m.memory // MB} MB, {m.cores} cores, "
            f"{'ssd' if m.ssd else 'rotating disk'}, share {self.share:g} of the machine\n"
        )
        return head + "".join(f"{name} = '{value}'\n" for name, value in self.settings.items())


def _size(n: int) -> str:
    """PostgreSQL's unit syntax, in whole MB (GB when exact)."""
    mb = max(1, n // MB)
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def recommend(machine: Machine, *, share: float = 1.0, max_connections: int = 100) -> Tuning:
    """Settings for a server that may use ``share`` of the machine (1.0: a database machine of its
    own; the embedded server shares it with the API processes and workers and takes half)."""
    memory = int(machine.memory * share)
    shared_buffers = _clamp(memory // 4, 128 * MB, 16 * GB)
    # WAL between checkpoints: a quarter of the memory, 1–16 GB, and never more than a tenth of
    # the free disk (the WAL may grow to it between two checkpoints)
    wal = _clamp(memory // 4, 1 * GB, 16 * GB)
    if machine.disk_free is not None:
        wal = max(256 * MB, min(wal, machine.disk_free // 10 // (256 * MB) * (256 * MB)))
    # every connection may run a few sorts or hashes at once: what is left after the buffers,
    # spread over them
    work_mem = _clamp((memory - shared_buffers) // (max_connections * 3), 4 * MB, 256 * MB)
    cores = max(1, machine.cores)
    settings = {
        "shared_buffers": _size(shared_buffers),
        "effective_cache_size": _size(memory * 3 // 4),
        "maintenance_work_mem": _size(_clamp(memory // 16, 64 * MB, 2 * GB)),
        "work_mem": _size(work_mem),
        "max_wal_size": _size(wal),
        "min_wal_size": _size(min(wal // 4, 1 * GB)),
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        # pglz spends CPU on every full-page image: measured on 2 cores it made the 1M-member
        # load's index rebuilds 33-36 s instead of 12 s (BENCHMARKS.md, Network, third session);
        # with few cores CPU is the scarce resource, with many the smaller WAL is worth it
        "wal_compression": "on" if cores > 4 else "off",
        "wal_buffers": "16MB",
        "random_page_cost": "1.1" if machine.ssd else "4",
        "effective_io_concurrency": "200" if machine.ssd else "2",
        "max_worker_processes": str(max(8, cores)),
        "max_parallel_workers": str(cores),
        "max_parallel_workers_per_gather": str(max(1, cores // 2)),
        "max_parallel_maintenance_workers": str(max(1, cores // 2)),
    }
    return Tuning(settings, machine, share)


def parse_size(raw: str) -> int:
    """``"32GB"``, ``"512MB"``, ``"64G"`` or plain bytes."""
    text = raw.strip().upper().removesuffix("B")
    for suffix, factor in (("T", 1024 * GB), ("G", GB), ("M", MB), ("K", 1024)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def _cgroup_memory() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge number: no limit
            return int(raw)
    return None


def _cgroup_cores() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _rotational(path: Path) -> bool:
    """Whether ``path`` lives on a rotating disk (Linux sysfs; anything unknown counts as SSD)."""
    try:
        dev = os.stat(path).st_dev
        block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
        if block.name.startswith(("vd", "xvd")) or block.parent.name.startswith(("vd", "xvd")):
            return False  # a virtual machine's disk says "rotational" whatever backs it
        for candidate in (block, block.parent):
            flag = candidate / "queue" / "rotational"
            if flag.exists():
                return flag.read_text().strip() == "1"
    except OSError:
        pass
    return False


def probe(data_dir: Path | None = None) -> Machine:
    """This machine: RAM and usable cores (cgroup limits win), free disk and disk kind at
    ``data_dir``."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if (limit := _cgroup_memory()) is not None:
        memory = min(memory, limit)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if (quota := _cgroup_cores()) is not None:
        cores = max(1, min(cores, int(quota)))
    disk_free = ssd = None
    if data_dir is not None:
        where = data_dir if data_dir.exists() else data_dir.parent
        disk_free = shutil.disk_usage(where).free
        ssd = not _rotational(where)
    return Machine(memory=memory, cores=cores, disk_free=disk_free, ssd=True if ssd is None else ssd)
