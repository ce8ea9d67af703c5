"""HTTP under load: a real `signage server` process, staff clients, players downloading media, and the machine's
own limits measured in the same run.

    .venv/bin/python bench/http_load.py [--seconds 20] [--players 200] [--clip-mb 20] [--json FILE]
                                        [--database-url URL | --postgres] [--server-env KEY=VALUE ...]

Set-up, in a temporary directory: the example fleet and the iHanoi campaign imported with `signage fleet import` and
`signage campaign import`, a staff user (`signage user create --role staff`), a registered player (`signage player
register`: its id and secret from the config file are the HTTP Basic credentials of downloads) and a clip made with
ffmpeg (H.264, about --clip-mb MB), uploaded through `POST /api/v1/media` with the staff user's bearer token from
`POST /api/v1/auth/token`. The server runs as `signage server` on 127.0.0.1 with SIGNAGE_MQTT=false (no broker:
this bench measures HTTP) and SIGNAGE_JOBS=true (the planning jobs run in it, as in the one server process of a
default install); SQLite in the temporary directory unless --database-url (an empty database) or --postgres (a
throwaway PostgreSQL from Debian's package, as the test suite starts it).

Phases, from one asyncio client process (a small HTTP/1.1 client of its own below: httpx was the bottleneck),
each with /healthz probed every 100 ms on connections of its own:
- staff-16, staff-64, staff-256: that many staff clients, each looping on GET /api/v1/campaigns and
  GET /api/v1/screens, for --seconds each; after staff-256, the recovery probe: from the moment its clients stop,
  how long until a fresh staff request answers 200;
- downloads: --players concurrent downloads of the clip (GET /media/{sha256}, each once, the whole file) while 16
  staff clients keep requesting the lists, until every download ends;
- the limits of this machine, for the ratios: a trivial app on the same uvicorn (an `async def` and a `def` route
  answering a constant) under 64 clients, and the same clip served by nginx (when it is installed; else by
  Starlette's StaticFiles on uvicorn) to the same number of concurrent downloads;
- the body probe: a 300 MB JSON body to POST /api/v1/auth/token, unauthenticated, once chunked and once with
  Content-Length, each against a freshly started server: its status and the server's RSS rise.

Printed per phase: requests/s, p50/p99 per route, timeouts (client timeout --timeout), 5xx other than 503, 503s and
how many carried Retry-After, connection errors, healthz p50/p99/max, the server's peak RSS (VmRSS sampled every
100 ms, and VmHWM), CPU seconds of the server and of this client process, the load average, and MB/s of media; then
each target with PASS or FAIL. Exit status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SIGNAGE = [sys.executable, "-m", "signage_cli"] if not (ROOT / ".venv/bin/signage").exists() else [
    str(ROOT / ".venv/bin/signage")]
STAFF_ROUTES = ("/api/v1/campaigns", "/api/v1/screens")
PASSWORD = "bench-http-load-Password-1"
TICKS = os.sysconf("SC_CLK_TCK")


# -- measurements -----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class RouteStats:
    latencies: list[float] = field(default_factory=list)  # seconds, of every answered request
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after_503: int = 0
    timeouts: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # connection errors and the like, by exception name

    def answered(self, status: int, seconds: float, retry_after: bool) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 503 and retry_after:
            self.retry_after_503 += 1

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, ClientTimeout | httpx.TimeoutException):
            self.timeouts += 1
        else:
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1

    def summary(self, seconds: float) -> dict:
        count = len(self.latencies)
        ok = self.statuses.get(200, 0)
        return {
            "requests": count, "ok": ok, "req_per_s": round(count / seconds, 1) if seconds else None,
            "ok_per_s": round(ok / seconds, 1) if seconds else None,
            "p50_ms": _ms(percentile(self.latencies, 0.50)), "p99_ms": _ms(percentile(self.latencies, 0.99)),
            "max_ms": _ms(max(self.latencies, default=None)),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "5xx_not_503": sum(v for k, v in self.statuses.items() if k >= 500 and k != 503),
            "503": self.statuses.get(503, 0), "503_with_retry_after": self.retry_after_503,
            "timeouts": self.timeouts, "errors": dict(self.errors),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def proc_status(pid: int, key: str) -> int | None:
    """A line of /proc/<pid>/status in kB (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


class RssSampler:
    """The largest VmRSS of a process seen while running, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self.start_kb = proc_status(pid, "VmRSS") or 0
        self.peak_kb = self.start_kb
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            rss = proc_status(self.pid, "VmRSS")
            if rss is not None:
                self.peak_kb = max(self.peak_kb, rss)
            await asyncio.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        rss = proc_status(self.pid, "VmRSS")
        if rss is not None:
            self.peak_kb = max(self.peak_kb, rss)
        if self._task:
            self._task.cancel()


# -- a small HTTP/1.1 client ------------------------------------------------------------------------------------
# httpx costs this machine 8-50 ms of CPU a request once 64 connections share its pool (measured: 77 req/s of a
# constant route for a whole core), so the load would measure the client. This one keeps one connection per
# client, speaks just what the bench needs (GET with Content-Length or chunked answers) and costs well under 1 ms.


class ClientTimeout(Exception):
    """No complete answer within the client timeout."""


class RawConnection:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path: str, headers: dict[str, str] | None = None, *,
                  idle: bool = False) -> tuple[int, dict[str, str], int]:
        """(status, headers with lower-case names, body bytes read); the body is read and dropped. The timeout
        bounds the whole request, or with `idle` each wait for bytes (a long download that keeps moving)."""
        try:
            if idle:
                return await self._get(path, headers or {}, self.timeout)
            return await asyncio.wait_for(self._get(path, headers or {}, None), self.timeout)
        except TimeoutError:
            self.close()
            raise ClientTimeout(path) from None
        except BaseException:
            self.close()
            raise

    async def _get(self, path: str, headers: dict[str, str], idle: float | None) -> tuple[int, dict[str, str], int]:
        def bounded(wait):
            return asyncio.wait_for(wait, idle) if idle else wait

        if self.writer is None:
            self.reader, self.writer = await bounded(asyncio.open_connection(self.host, self.port))
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{lines}\r\n".encode())
        await self.writer.drain()
        reader = self.reader
        status_line = await bounded(reader.readline())
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        answer: dict[str, str] = {}
        while (line := await bounded(reader.readline())) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer[name.strip().lower()] = value.strip()
        got = 0
        if "content-length" in answer:
            left = int(answer["content-length"])
            while left > 0:
                chunk = await bounded(reader.read(min(left, 1 << 20)))
                if not chunk:
                    raise ConnectionResetError(f"the body ended {left} bytes early")
                got += len(chunk)
                left -= len(chunk)
        elif answer.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):
                        pass
                    break
                got += len(await reader.readexactly(size))
                await reader.readexactly(2)
        else:
            while chunk := await bounded(reader.read(1 << 20)):
                got += len(chunk)
            self.close()
        if answer.get("connection", "").lower() == "close":
            self.close()
        return status, answer, got


# -- the stand --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Stand:
    def __init__(self, work: Path, database_url: str | None, server_env: dict[str, str],
                 source: Path | None = None) -> None:
        self.work = work
        self.data = work / "data"
        self.port = free_port()
        self.env = {**os.environ, "SIGNAGE_DATA_DIR": str(self.data), "SIGNAGE_MQTT": "false",
                    "SIGNAGE_JOBS": "true", "SIGNAGE_HTTP_HOST": "127.0.0.1", "SIGNAGE_HTTP_PORT": str(self.port),
                    **server_env}
        if database_url:
            self.env["SIGNAGE_DATABASE_URL"] = database_url
        if source is not None:  # another tree's code (e.g. `git archive COMMIT`) on the same venv: it comes first
            self.env["PYTHONPATH"] = str(source.resolve())
        self.server: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = self.url  # where clients go: the server, or nginx in front of it (--behind-nginx)
        self.front: subprocess.Popen | None = None
        self.token = self.player_auth = self.clip_sha = None
        self.clip_path: Path | None = None
        self.clip_size = 0

    def prepare(self, clip_mb: int) -> None:
        # The server process gets the settings from the environment; run the commands where no .env is read.
        self.data.mkdir(parents=True)
        run([*SIGNAGE, "fleet", "import", str(ROOT / "examples/hanoi-fleet.yaml")], self.env, cwd=self.work)
        run([*SIGNAGE, "campaign", "import", str(ROOT / "examples/ihanoi-campaign.yaml")], self.env, cwd=self.work)
        run([*SIGNAGE, "user", "create", "bench-staff", "-o", "hn", "--role", "staff", "--password-stdin"],
            self.env, stdin=PASSWORD + "\n", cwd=self.work)
        screen = "hn-nb-t2-001"
        config = self.work / "player.json"
        run([*SIGNAGE, "player", "register", screen, "--out", str(config), "--server-url", self.url,
             "--headless"], self.env, cwd=self.work)
        player = json.loads(config.read_text())
        self.player_auth = (player["username"], player["password"])
        self.clip_path = self.work / "bench-clip.mp4"
        seconds = max(2, clip_mb)  # at 8 Mbit/s, one second is about 1 MB
        run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-vf",
             "noise=alls=60:allf=t", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
             "-maxrate", "8M", "-bufsize", "4M", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
             str(self.clip_path)], self.env)
        self.clip_size = self.clip_path.stat().st_size

    def start(self) -> None:
        log = (self.work / "server.log").open("ab")
        self.server = subprocess.Popen([*SIGNAGE, "server"], env=self.env, cwd=self.work, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"signage server exited with {self.server.returncode}; see {self.work}/server.log")
            with suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit("signage server did not answer /healthz within 60 s")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def start_front(self) -> None:
        """nginx in front, as in deploy/nginx-signage.conf: requests proxied to the server, players' media sent
        by nginx from the store after the server's X-Accel-Redirect (the server runs with
        SIGNAGE_MEDIA_ACCEL_REDIRECT=/_media/). It stays up while the server behind it restarts."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        work, port = self.work / "front", free_port()
        work.mkdir()
        # nginx's master drops to `nobody` when started as root, and nobody may not enter the private work dir.
        conf = FRONT_CONF.format(user="user root;" if os.geteuid() == 0 else "", work=work, port=port,
                                 app_port=self.port, store=self.data / "media")
        (work / "nginx.conf").write_text(conf)
        self.base = f"http://127.0.0.1:{port}"
        self.front = start_process([nginx, "-e", str(work / "error.log"), "-c", str(work / "nginx.conf"), "-g",
                                    "daemon off;"], dict(os.environ), work / "nginx.log", self.base + "/healthz")
        self.check_clip_served(self.base)

    def stop_front(self) -> None:
        if self.front is not None:
            stop_process(self.front)
            self.front = None

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def sign_in_and_upload(self) -> None:
        answer = httpx.post(self.url + "/api/v1/auth/token", timeout=30,
                            json={"username": "bench-staff", "password": PASSWORD, "name": "bench", "days": 1})
        answer.raise_for_status()
        self.token = answer.json()["access_token"]
        with self.clip_path.open("rb") as clip:
            answer = httpx.post(self.url + "/api/v1/media", timeout=120, headers=self.staff_headers,
                                files={"file": ("bench-clip.mp4", clip, "video/mp4")})
        if answer.status_code not in (200, 201):
            raise SystemExit(f"upload refused: {answer.status_code} {answer.text}")
        self.clip_sha = answer.json()["sha256"]
        self.check_clip_served(self.url)

    def check_clip_served(self, base: str) -> None:
        check = httpx.head(f"{base}/media/{self.clip_sha}", auth=self.player_auth, timeout=30)
        handed_to_nginx = base == self.url and "x-accel-redirect" in check.headers
        if check.status_code != 200 or not (handed_to_nginx
                                            or int(check.headers["content-length"]) == self.clip_size):
            raise SystemExit(f"the clip is not served to the player: {check.status_code} {check.headers}")

    @property
    def staff_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# -- load -------------------------------------------------------------------------------------------------------


async def staff_loop(base: str, headers: dict, stats: dict[str, RouteStats], stop: asyncio.Event, offset: int,
                     timeout: float, routes: tuple[str, ...] = STAFF_ROUTES) -> None:
    """One staff client on its own keep-alive connection, asking for each list in turn until `stop`."""
    connection = RawConnection(*host_port(base), timeout)
    n = offset
    try:
        while not stop.is_set():
            route = routes[n % len(routes)]
            n += 1
            started = time.perf_counter()
            try:
                status, answer, _ = await connection.get(route, headers)
            except (ClientTimeout, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                stats[route].failed(exc)
                if not isinstance(exc, ClientTimeout):
                    await asyncio.sleep(0.05)  # a refused connection must not spin
                continue
            stats[route].answered(status, time.perf_counter() - started, "retry-after" in answer)
    finally:
        connection.close()


def host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


async def healthz_loop(base: str, stats: RouteStats, stop: asyncio.Event, timeout: float) -> None:
    """/healthz every 100 ms, each probe on a connection of its own (as a load balancer's check), a probe started
    every 100 ms whatever the previous one took."""
    pending: set[asyncio.Task] = set()

    async def probe() -> None:
        connection = RawConnection(*host_port(base), timeout)
        started = time.perf_counter()
        try:
            status, answer, _ = await connection.get("/healthz", {"Connection": "close"})
        except (ClientTimeout, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            stats.failed(exc)
            return
        finally:
            connection.close()
        stats.answered(status, time.perf_counter() - started, "retry-after" in answer)

    while not stop.is_set():
        task = asyncio.create_task(probe())
        pending.add(task)
        task.add_done_callback(pending.discard)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def download(base: str, path: str, headers: dict, size: int, stats: RouteStats, done: list[float],
                   timeout: float) -> int:
    connection = RawConnection(*host_port(base), timeout)
    started = time.perf_counter()
    try:
        status, answer, got = await connection.get(path, headers, idle=True)
    except (ClientTimeout, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        stats.failed(exc)
        return 0
    finally:
        connection.close()
    if status == 200 and got != size:
        stats.failed(RuntimeError(f"short body: {got} of {size} bytes"))
        return got
    stats.answered(status, time.perf_counter() - started, "retry-after" in answer)
    if status == 200:
        done.append(time.perf_counter())
    return got


class Phase:
    """One phase's clients, the healthz prober and the samplers around them."""

    def __init__(self, name: str, pid: int | None) -> None:
        self.name, self.pid = name, pid
        self.routes: dict[str, RouteStats] = {}
        self.healthz = RouteStats()
        self.stop = asyncio.Event()
        self.result: dict = {"phase": name}

    def stats(self, route: str) -> RouteStats:
        return self.routes.setdefault(route, RouteStats())

    async def __aenter__(self) -> Phase:
        self.load_before = os.getloadavg()
        self.sampler = RssSampler(self.pid).__enter__() if self.pid else None
        self.server_cpu = cpu_seconds(self.pid) if self.pid else 0.0
        self.client_cpu = self_cpu()
        self.started = time.perf_counter()
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        self.seconds = time.perf_counter() - self.started
        self.result.update({
            "seconds": round(self.seconds, 2),
            "routes": {route: stats.summary(self.seconds) for route, stats in self.routes.items()},
            "healthz": self.healthz.summary(self.seconds),
            "client_cpu_s": round(self_cpu() - self.client_cpu, 1),
            "load_average": [round(self.load_before[0], 2), round(os.getloadavg()[0], 2)],
        })
        if self.pid:
            self.sampler.__exit__()
            self.result.update({
                "server_cpu_s": round(cpu_seconds(self.pid) - self.server_cpu, 1),
                "server_rss_peak_mib": round(self.sampler.peak_kb / 1024, 1),
                "server_vmhwm_mib": round((proc_status(self.pid, "VmHWM") or 0) / 1024, 1),
            })


async def settle(tasks: list[asyncio.Task], timeout: float) -> None:
    """Wait for the tasks' last requests (they count), cancelling what is still running after `timeout`."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()


async def staff_phase(stand: Stand, concurrency: int, seconds: float, timeout: float, *, recovery: bool) -> dict:
    async with Phase(f"staff-{concurrency}", stand.pid) as phase:
        for route in STAFF_ROUTES:
            phase.stats(route)
        prober = asyncio.create_task(healthz_loop(stand.base, phase.healthz, phase.stop, timeout))
        clients = [asyncio.create_task(staff_loop(stand.base, stand.staff_headers, phase.routes, phase.stop, i,
                                                  timeout)) for i in range(concurrency)]
        await asyncio.sleep(seconds)
        phase.stop.set()
        # Requests still in flight are answered within the timeout: wait for them, they count.
        await settle([*clients, prober], timeout + 5)
    if recovery:
        phase.result["recovery_s"] = await recovery_probe(stand, timeout)
    return phase.result


async def recovery_probe(stand: Stand, timeout: float) -> float | None:
    """From now (the clients have stopped), how long until a fresh staff request answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < 120:
        connection = RawConnection(*host_port(stand.base), timeout)
        with suppress(ClientTimeout, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            status, _, _ = await connection.get(STAFF_ROUTES[0], stand.staff_headers)
            if status == 200:
                return round(time.perf_counter() - started, 3)
        connection.close()
        await asyncio.sleep(0.05)
    return None


async def download_phase(name: str, base: str, path: str, headers: dict, size: int, players: int, staff: int,
                         staff_headers: dict | None, timeout: float, pid: int | None, cap: float) -> dict:
    async with Phase(name, pid) as phase:
        stats = phase.stats("GET /media/{sha256}")
        staff_tasks = []
        prober = None
        if staff_headers is not None:
            for route in STAFF_ROUTES:
                phase.stats(route)
            prober = asyncio.create_task(healthz_loop(base, phase.healthz, phase.stop, timeout))
            staff_tasks = [asyncio.create_task(staff_loop(base, staff_headers, phase.routes, phase.stop, i, timeout))
                           for i in range(staff)]
        done: list[float] = []
        started = time.perf_counter()
        downloads = [asyncio.create_task(download(base, path, headers, size, stats, done, timeout))
                     for _ in range(players)]
        finished, unfinished = await asyncio.wait(downloads, timeout=cap)
        for task in unfinished:
            task.cancel()
        moved = sum(task.result() for task in finished)
        elapsed = (max(done) if done else time.perf_counter()) - started
        phase.stop.set()
        await settle([*staff_tasks, *([prober] if prober else [])], timeout + 5)
    phase.result.update({"downloads_complete": len(done), "downloads_asked": players,
                         "downloads_unfinished_at_cap": len(unfinished), "bytes": moved,
                         "media_mb_per_s": round(moved / 1e6 / elapsed, 1) if elapsed else None,
                         "download_wall_s": round(elapsed, 2)})
    return phase.result


# -- the machine's limits ---------------------------------------------------------------------------------------

HELLO_APP = textwrap.dedent('''
    from fastapi import FastAPI
    from starlette.staticfiles import StaticFiles
    import os

    app = FastAPI()

    @app.get("/hello")
    async def hello():
        return {"hello": "world"}

    @app.get("/hello-sync")
    def hello_sync():
        return {"hello": "world"}

    app.mount("/files", StaticFiles(directory=os.environ["BENCH_FILES"]), name="files")
''')

NGINX_CONF = textwrap.dedent('''
    worker_processes 1;
    pid {work}/nginx.pid;
    error_log {work}/nginx-error.log;
    events {{ worker_connections 1024; }}
    http {{
        access_log off;
        sendfile on;
        tcp_nopush on;
        client_body_temp_path {work}/nginx-body;
        proxy_temp_path {work}/nginx-proxy;
        fastcgi_temp_path {work}/nginx-fastcgi;
        uwsgi_temp_path {work}/nginx-uwsgi;
        scgi_temp_path {work}/nginx-scgi;
        server {{
            listen 127.0.0.1:{port};
            location /files/ {{ alias {files}/; }}
        }}
    }}
''')


FRONT_CONF = textwrap.dedent('''
    {user}
    worker_processes auto;
    pid {work}/nginx.pid;
    events {{ worker_connections 4096; }}
    http {{
        access_log off;
        sendfile on;
        tcp_nopush on;
        client_body_temp_path {work}/body;
        proxy_temp_path {work}/proxy;
        fastcgi_temp_path {work}/fastcgi;
        uwsgi_temp_path {work}/uwsgi;
        scgi_temp_path {work}/scgi;
        upstream signage_web {{ server 127.0.0.1:{app_port}; keepalive 64; }}
        server {{
            listen 127.0.0.1:{port};
            client_max_body_size 2m;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            location / {{ proxy_pass http://signage_web; }}
            location /_media/ {{ internal; alias {store}/; }}
        }}
    }}
''')


def start_process(args: list[str], env: dict[str, str], log: Path, url: str) -> subprocess.Popen:
    process = subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{args[0]} exited with {process.returncode}; see {log}")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return process
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{' '.join(args)} did not answer within 30 s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def hello_limit(work: Path, files: Path, concurrency: int, seconds: float, timeout: float) -> dict:
    (work / "hello_app.py").write_text(HELLO_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process([sys.executable, "-m", "uvicorn", "hello_app:app", "--app-dir", str(work), "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            {**os.environ, "BENCH_FILES": str(files)}, work / "hello.log", url + "/hello")
    try:
        async with Phase(f"limit-hello-{concurrency}", process.pid) as phase:
            routes = ("/hello", "/hello-sync")
            for route in routes:
                phase.stats(route)
            tasks = [asyncio.create_task(staff_loop(url, {}, phase.routes, phase.stop, i, timeout, routes))
                     for i in range(concurrency)]
            await asyncio.sleep(seconds)
            phase.stop.set()
            await settle(tasks, timeout + 5)
        return phase.result | {"server": "uvicorn, FastAPI app of two constant routes, no database"}
    finally:
        stop_process(process)


async def static_limit(work: Path, files: Path, name: str, size: int, players: int, timeout: float) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, port=port, files=files))
        args, server = [nginx, "-c", str(conf), "-g", "daemon off;"], "nginx (1 worker, sendfile), same file"
        # nginx's master pid says nothing of its worker's memory or CPU: not sampled.
    else:
        (work / "hello_app.py").write_text(HELLO_APP)
        args = [sys.executable, "-m", "uvicorn", "hello_app:app", "--app-dir", str(work), "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]
        server = "Starlette StaticFiles on uvicorn (nginx is not installed), same file"
    process = start_process(args, {**os.environ, "BENCH_FILES": str(files)}, work / "static.log",
                            f"{url}/files/{name}")
    try:
        result = await download_phase(f"limit-static-{players}", url, f"/files/{name}", {}, size, players, 0,
                                      None, timeout, None if nginx else process.pid, cap=600)
        return result | {"server": server}
    finally:
        stop_process(process)


# -- the body probe ---------------------------------------------------------------------------------------------


async def body_probe(stand: Stand, megabytes: int, chunked: bool, timeout: float) -> dict:
    """POST /api/v1/auth/token with a JSON body of `megabytes` MB, unauthenticated, over a raw socket so that the
    server may answer before the body is all sent (and the answer is read even then)."""
    head = b'{"username": "probe", "password": "'
    tail = b'"}'
    block = b"a" * (1 << 20)
    total = len(head) + len(tail) + megabytes * len(block)
    framing = (b"Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n".encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", stand.port)
    writer.write(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + framing + b"Connection: close\r\n\r\n")

    answer: dict = {}

    async def read_answer() -> None:
        status_line = await reader.readline()
        headers = []
        while (line := await reader.readline()) not in (b"\r\n", b""):
            headers.append(line.decode("latin-1").strip())
        answer["status"] = int(status_line.split()[1]) if status_line.split()[1:] else None
        answer["at_s"] = round(time.perf_counter() - started, 2)
        answer["headers"] = headers
        with suppress(Exception):
            answer["body"] = (await asyncio.wait_for(reader.read(600), 5)).decode("utf-8", "replace")

    def frame(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

    with RssSampler(stand.pid, every=0.02) as sampler:
        started = time.perf_counter()
        answering = asyncio.create_task(read_answer())
        sent = 0
        send_error = None
        try:
            for part in [head, *([block] * megabytes), tail]:
                if answering.done():
                    break
                writer.write(frame(part))
                await writer.drain()
                sent += len(part)
            else:
                if chunked:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
        except (ConnectionError, OSError) as exc:
            send_error = type(exc).__name__
        try:
            await asyncio.wait_for(answering, timeout)
        except (TimeoutError, ConnectionError, OSError, IndexError, ValueError) as exc:
            answer.setdefault("status", None)
            answer["read_error"] = type(exc).__name__
        await asyncio.sleep(0.5)  # let the sampler see what stays
        writer.close()
        with suppress(Exception):
            await writer.wait_closed()
    return {"framing": "chunked" if chunked else "content-length", "body_mb": megabytes, "bytes_sent": sent,
            "send_error": send_error, "status": answer.get("status"), "answered_at_s": answer.get("at_s"),
            "answer_head": answer.get("body", "")[:300], "rss_before_mib": round(sampler.start_kb / 1024, 1),
            "rss_peak_mib": round(sampler.peak_kb / 1024, 1),
            "rss_rise_mib": round((sampler.peak_kb - sampler.start_kb) / 1024, 1),
            "seconds": round(time.perf_counter() - started, 2)}


# -- report -----------------------------------------------------------------------------------------------------


def print_phase(result: dict) -> None:
    print(f"\n== {result['phase']}  ({result['seconds']:.1f} s; load average {result['load_average'][0]:.2f} -> "
          f"{result['load_average'][1]:.2f}; client CPU {result['client_cpu_s']} s"
          + (f"; server CPU {result['server_cpu_s']} s, RSS peak {result['server_rss_peak_mib']} MiB "
             f"(VmHWM {result['server_vmhwm_mib']} MiB)" if "server_cpu_s" in result else "") + ")")
    print(f"  {'route':<24} {'req/s':>8} {'200/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'timeouts':>8} "
          f"{'5xx!503':>7} {'503(RA)':>9} errors")
    for route, s in [*result["routes"].items(), ("/healthz (prober)", result["healthz"])]:
        if not s["requests"] and not s["timeouts"] and not s["errors"]:
            continue
        print(f"  {route:<24} {s['req_per_s']:>8} {s['ok_per_s']:>8} {s['p50_ms']!s:>9} {s['p99_ms']!s:>9} "
              f"{s['max_ms']!s:>9} {s['timeouts']:>8} {s['5xx_not_503']:>7} "
              f"{str(s['503']) + '(' + str(s['503_with_retry_after']) + ')':>9} {s['errors'] or ''}"
              + (f"  statuses {s['statuses']}" if set(s["statuses"]) - {"200"} else ""))
    if "media_mb_per_s" in result:
        print(f"  media: {result['downloads_complete']}/{result['downloads_asked']} downloads complete, "
              f"{result['bytes'] / 1e6:,.0f} MB in {result['download_wall_s']} s = {result['media_mb_per_s']} MB/s")
    if "recovery_s" in result:
        print(f"  recovery: a fresh staff request answered 200 after {result['recovery_s']} s")


def staff_all(result: dict) -> RouteStatsView:
    return RouteStatsView([result["routes"][r] for r in STAFF_ROUTES if r in result["routes"]])


@dataclass
class RouteStatsView:
    parts: list[dict]

    def total(self, key: str) -> int:
        return sum(p[key] for p in self.parts)

    def errors(self) -> int:
        return sum(sum(p["errors"].values()) for p in self.parts)

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.parts:
            for k, v in p["statuses"].items():
                out[k] = out.get(k, 0) + v
        return out


def checks(results: dict) -> list[tuple[str, bool, str]]:
    out = []
    p64 = results.get("staff-64")
    if p64:
        v = staff_all(p64)
        bad_503 = v.total("503") - v.total("503_with_retry_after")
        out.append(("64: no timeout", v.total("timeouts") == 0, f"{v.total('timeouts')} timeouts"))
        out.append(("64: no 5xx other than 503, every 503 with Retry-After",
                    v.total("5xx_not_503") == 0 and bad_503 == 0 and v.errors() == 0,
                    f"{v.total('5xx_not_503')} 5xx not 503, {bad_503} 503 without Retry-After, "
                    f"{v.errors()} connection errors"))
        hz = p64["healthz"]
        out.append(("64: healthz p99 <= 100 ms", hz["p99_ms"] is not None and hz["p99_ms"] <= 100
                    and hz["timeouts"] == 0, f"p99 {hz['p99_ms']} ms, {hz['timeouts']} timeouts"))
        rate = p64["routes"]["/api/v1/campaigns"]["ok_per_s"]
        out.append(("64: campaign list >= 150 req/s (200s)", rate >= 150, f"{rate} req/s"))
    p256 = results.get("staff-256")
    if p256:
        v = staff_all(p256)
        statuses = v.statuses()
        other = {k: n for k, n in statuses.items() if k not in ("200", "503")}
        bad_503 = v.total("503") - v.total("503_with_retry_after")
        out.append(("256: every request answered 200 or 503 with Retry-After",
                    v.total("timeouts") == 0 and v.errors() == 0 and not other and bad_503 == 0,
                    f"{v.total('timeouts')} timeouts, {v.errors()} errors, other statuses {other}, "
                    f"{bad_503} 503 without Retry-After"))
        rec = p256.get("recovery_s")
        out.append(("256: recovery at once (a staff request answers 200 within 1 s)", rec is not None and rec <= 1,
                    f"{rec} s"))
    if "downloads" in results:
        d = results["downloads"]
        staff = [d["routes"][r] for r in STAFF_ROUTES]
        p99s = [r["p99_ms"] for r in staff]
        lost = sum(r["timeouts"] + sum(r["errors"].values()) for r in staff)
        worst = None if None in p99s else max(p99s)
        out.append((f"downloads: staff p99 <= 1 s with {d['downloads_asked']} downloads",
                    worst is not None and worst <= 1000 and lost == 0,
                    f"p99 {worst} ms (campaigns {p99s[0]}, screens {p99s[1]}), {lost} staff requests timed out or "
                    f"failed; {d['downloads_complete']}/{d['downloads_asked']} downloads complete"))
    for probe in results.get("body_probes", []):
        ok = probe["status"] == 413 and probe["rss_rise_mib"] < 64
        out.append((f"body {probe['body_mb']} MB {probe['framing']}: 413 with < 64 MB RSS rise", ok,
                    f"status {probe['status']}, RSS rise {probe['rss_rise_mib']} MiB"))
    return out


# -- main -------------------------------------------------------------------------------------------------------


async def measure(stand: Stand, args) -> dict:
    results: dict = {}
    timeout = args.timeout
    for n, concurrency in enumerate(args.concurrency):
        if n and not args.one_server:
            await asyncio.to_thread(stand.restart)
        result = await staff_phase(stand, concurrency, args.seconds, timeout, recovery=concurrency == 256)
        results[result["phase"]] = result
        print_phase(result)
        await asyncio.sleep(2)
    if args.players:
        if not args.one_server:
            await asyncio.to_thread(stand.restart)
        basic = base64.b64encode(":".join(stand.player_auth).encode()).decode()
        result = await download_phase("downloads", stand.base, f"/media/{stand.clip_sha}",
                                      {"Authorization": f"Basic {basic}"}, stand.clip_size, args.players, 16,
                                      stand.staff_headers, timeout, stand.pid, cap=args.download_cap)
        results["downloads"] = result
        print_phase(result)
    return results


async def limits(stand: Stand, args) -> dict:
    # nginx's workers run as another user: a directory of their own that they may read (the work directory is
    # private, and holds the player's secret and the signing key).
    files = Path(tempfile.mkdtemp(prefix="bench-http-files-"))
    files.chmod(0o755)
    name = "clip.mp4"
    shutil.copy(stand.clip_path, files / name)
    (files / name).chmod(0o644)
    out = {}
    hello = await hello_limit(stand.work, files, 64, max(5.0, args.seconds / 2), args.timeout)
    out["limit-hello"] = hello
    print_phase(hello)
    if args.players:
        static = await static_limit(stand.work, files, name, stand.clip_size, args.players, args.timeout)
        out["limit-static"] = static
        print_phase(static)
    shutil.rmtree(files, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="length of each staff phase")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--players", type=int, default=200, help="concurrent downloads (0: no download phase)")
    parser.add_argument("--clip-mb", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30, help="client timeout of every request, seconds")
    parser.add_argument("--download-cap", type=float, default=300, help="longest the download phase may take")
    parser.add_argument("--body-mb", type=int, default=300, help="size of the body probe (0: none)")
    parser.add_argument("--no-limits", action="store_true", help="skip the machine-limit phases")
    parser.add_argument("--one-server", action="store_true",
                        help="run every phase on the same server process (default: a fresh one for each phase, so "
                             "that what a phase leaves behind is not measured in the next; recovery is measured on "
                             "the 256 phase's own process either way)")
    parser.add_argument("--database-url", help="an empty database for the server (default: SQLite in the temp dir)")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL (tests/pg_server.py)")
    parser.add_argument("--server-env", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra settings for the server process, e.g. SIGNAGE_DB_POOL_SIZE=20")
    parser.add_argument("--source", type=Path, help="run the server and commands from this copy of the project "
                        "(e.g. `git archive COMMIT | tar -x -C DIR`) instead of the installed one")
    parser.add_argument("--behind-nginx", action="store_true",
                        help="the production shape: clients go through nginx, which sends players' media after the "
                             "server's X-Accel-Redirect")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs)")
    args = parser.parse_args()

    pg = None
    database_url = args.database_url
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.pg_server import PostgresServer

        pg = PostgresServer()
        pg.start()
        database_url = pg.create_database()
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    server_env = dict(item.split("=", 1) for item in args.server_env)
    if args.behind_nginx:
        server_env.setdefault("SIGNAGE_MEDIA_ACCEL_REDIRECT", "/_media/")
    stand = Stand(work, database_url, server_env, args.source)
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                     "database": "postgresql" if database_url and database_url.startswith("postgresql") else
                     "sqlite", "server_env": server_env, "seconds": args.seconds, "players": args.players,
                     "source": str(args.source or ROOT), "fresh_server_per_phase": not args.one_server,
                     "behind_nginx": args.behind_nginx,
                     "git_head": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()}
    try:
        stand.prepare(args.clip_mb)
        stand.start()
        stand.sign_in_and_upload()
        if args.behind_nginx:
            stand.start_front()
        print(f"server pid {stand.pid} at {stand.url}{' behind nginx at ' + stand.base if args.behind_nginx else ''} "
              f"({results['database']}, SIGNAGE_MQTT=false, "
              f"SIGNAGE_JOBS=true{', ' + ' '.join(args.server_env) if args.server_env else ''}); clip "
              f"{stand.clip_size / 1e6:.1f} MB sha256 {stand.clip_sha[:12]}…; code from {results['source']} "
              f"(repository HEAD {results['git_head']}); "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        results["clip_bytes"] = stand.clip_size
        results["phases"] = asyncio.run(measure(stand, args))
        stand.stop()
        if not args.no_limits:
            results["limits"] = asyncio.run(limits(stand, args))
        probes = []
        for chunked in (True, False) if args.body_mb else ():
            stand.start()  # a fresh process for each probe: memory a first probe left behind would hide a rise
            probe = asyncio.run(body_probe(stand, args.body_mb, chunked, max(args.timeout, 120)))
            stand.stop()
            probes.append(probe)
            print(f"\n== body probe: {probe['body_mb']} MB JSON, {probe['framing']}, to POST /api/v1/auth/token: "
                  f"status {probe['status']} after {probe['answered_at_s']} s, {probe['bytes_sent'] / 1e6:,.0f} MB "
                  f"sent{' (' + probe['send_error'] + ')' if probe['send_error'] else ''}; server RSS "
                  f"{probe['rss_before_mib']} -> peak {probe['rss_peak_mib']} MiB (rise {probe['rss_rise_mib']} "
                  f"MiB)")
        results["phases"]["body_probes"] = probes
    finally:
        stand.stop()
        stand.stop_front()
        if pg is not None:
            pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(kept {work})")

    phases = results["phases"]
    ratios = {}
    lim = results.get("limits", {})
    if "limit-hello" in lim and "staff-64" in phases:
        hello = lim["limit-hello"]["routes"]
        ratios["hello_sync_vs_campaigns_64"] = _ratio(hello["/hello-sync"]["ok_per_s"],
                                                      phases["staff-64"]["routes"]["/api/v1/campaigns"]["ok_per_s"])
        ratios["hello_total_vs_staff_total_64"] = _ratio(
            sum(r["ok_per_s"] for r in hello.values()),
            sum(phases["staff-64"]["routes"][r]["ok_per_s"] for r in STAFF_ROUTES))
    if "limit-static" in lim and "downloads" in phases:
        ratios["static_vs_app_media_mb_s"] = _ratio(lim["limit-static"]["media_mb_per_s"],
                                                    phases["downloads"]["media_mb_per_s"])
    results["ratios"] = ratios
    print("\n== ratios (machine limit ÷ the app, same run)")
    for key, value in ratios.items():
        print(f"  {key}: {value}×")
    verdicts = checks(phases)
    results["checks"] = [{"target": t, "pass": ok, "measured": m} for t, ok, m in verdicts]
    print("\n== targets")
    for target, ok, measured in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {target}: {measured}")
    results["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0 if all(ok for _, ok, _ in verdicts) else 1


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


if __name__ == "__main__":
    sys.exit(main())
