"""Playback timing benchmark: VlcPlayback (real libVLC, dummy outputs) over a plan of 50 short items.

    .venv/bin/python bench/player_timing.py                  # 50 items, 1920x1080 media
    .venv/bin/python bench/player_timing.py --size 640x360 --items 100 --seed 3
    .venv/bin/python bench/player_timing.py --items 100 --load      # with CPU and disk load beside it

The media are made with ffmpeg in a temporary directory: H.264/AAC clips of 1, 1.5 and 2 s, a PNG still shown for
1 s, an MP3 of 1.5 s. The plan mixes them (60 % clips, 30 % stills, 10 % MP3s, shuffled by the seed) and places
them back to back with zero gap, the first one second after a warm-up item. One loop drives playback the way the
agent does: it waits on the event queue until the next planned start, then calls play(); an item still on at
the next start is cut there.

It prints p50/p99/max of
- start error: the `started` event's time minus the planned start;
- gap: an item's `started` minus the end of the item before it (its `ended`, or the moment play() cut it);
- play() call: how long the loop's thread spends in play() (libVLC tearing down the previous item);
and the process's peak RSS (getrusage; ffmpeg runs in child processes and is not counted).

`--load` runs load beside the playback, as a busy screen PC has it: one process spinning on each core, and one
writing and fsyncing a 256 MB file over and over (the disk busy, as when a big clip downloads). Each stops by
itself at a deadline (the plan's length and a margin) and is killed when the benchmark ends; the load average
over the run is printed. glibc keeps freed
video buffers unless MALLOC_MMAP_THRESHOLD_ is set (e.g. 131072), which roughly halves the peak with 1080p media.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import random
import resource
import subprocess
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from player.playback import MediaKind, PlaybackEvent, VlcPlayback  # noqa: E402
from signage.clock import SystemClock  # noqa: E402

TARGETS_MS = {"start error": 250.0, "gap": 150.0}
TARGET_RSS_MB = 150.0


@dataclass(frozen=True)
class Media:
    path: Path
    kind: MediaKind
    duration_ms: int
    label: str


@dataclass
class Slot:
    media: Media
    planned: datetime
    called: datetime | None = None
    call_ms: float | None = None
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


def make_media(directory: Path, size: str) -> dict[str, Media]:
    made: dict[str, Media] = {}
    for seconds in (1.0, 1.5, 2.0):
        path = directory / f"clip-{seconds}.mp4"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}", "-f", "lavfi",
               "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-shortest", str(path))
        made[f"clip {seconds} s"] = Media(path, "video", int(seconds * 1000), f"clip {seconds} s")
    still = directory / "still.png"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}", "-frames:v", "1", str(still))
    made["still 1 s"] = Media(still, "image", 1000, "still 1 s")
    spot = directory / "spot.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1.5", "-c:a", "libmp3lame", str(spot))
    made["mp3 1.5 s"] = Media(spot, "audio", 1500, "mp3 1.5 s")
    return made


def make_plan(media: dict[str, Media], items: int, seed: int) -> list[Media]:
    clips = [m for m in media.values() if m.kind == "video"]
    still, spot = media["still 1 s"], media["mp3 1.5 s"]
    n_still, n_audio = round(items * 0.3), round(items * 0.1)
    plan = [clips[i % len(clips)] for i in range(items - n_still - n_audio)] + [still] * n_still + [spot] * n_audio
    random.Random(seed).shuffle(plan)
    return plan


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]

    return f"p50 {rank(0.5):7.1f} ms   p99 {rank(0.99):7.1f} ms   max {ordered[-1]:7.1f} ms   (n={len(values)})"


def ms(delta: timedelta) -> float:
    return delta / timedelta(milliseconds=1)


LOAD_SCRIPTS = {
    "cpu": "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    sum(range(10000))\n",
    "disk": ("import os, time\nend = time.monotonic() + {seconds}\nblock = os.urandom(1 << 20)\n"
             "path = {path!r}\nwhile time.monotonic() < end:\n"
             "    with open(path, 'wb') as out:\n"
             "        for _ in range(256):\n"
             "            out.write(block)\n"
             "            if time.monotonic() >= end:\n"
             "                break\n"
             "        out.flush()\n        os.fsync(out.fileno())\n"
             "os.unlink(path)\n"),
}


@contextmanager
def load_beside(directory: Path, seconds: float):
    """CPU load on every core and a disk writer, each stopping by itself after `seconds`; killed on the way out."""
    workers = [subprocess.Popen([sys.executable, "-c", LOAD_SCRIPTS["cpu"].format(seconds=seconds)])
               for _ in range(os.cpu_count() or 1)]
    workers.append(subprocess.Popen([sys.executable, "-c", LOAD_SCRIPTS["disk"].format(
        seconds=seconds, path=str(directory / "disk-load.bin"))]))
    try:
        yield
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        (directory / "disk-load.bin").unlink(missing_ok=True)


def run(plan: list[Media], warm_up: Media) -> list[Slot]:
    clock = SystemClock()
    events: queue.Queue[PlaybackEvent] = queue.Queue()
    playback = VlcPlayback(events.put, clock=clock, headless=True)
    try:
        # The first play loads libVLC's plugins; a running agent has done that long before its first spot.
        playback.play(warm_up.path, warm_up.kind, "warm-up", duration_ms=300)
        while events.get(timeout=10).kind == "started":
            pass
        start = clock.now() + timedelta(seconds=1)
        slots, at = [], start
        for media in plan:
            slots.append(Slot(media, at))
            at += timedelta(milliseconds=media.duration_ms)

        def note(event: PlaybackEvent) -> None:
            slot = slots[int(event.token)]
            if event.kind == "started":
                slot.started = event.at
            elif event.kind == "ended":
                slot.ended = event.at
            else:
                slot.error, slot.ended = event.detail, event.at

        def wait_until(instant: datetime) -> None:
            while (remaining := (instant - clock.now()).total_seconds()) > 0:
                try:
                    note(events.get(timeout=remaining))
                except queue.Empty:
                    return

        for index, slot in enumerate(slots):
            wait_until(slot.planned)
            slot.called = clock.now()
            playback.play(slot.media.path, slot.media.kind, str(index), duration_ms=slot.media.duration_ms)
            slot.call_ms = ms(clock.now() - slot.called)
        last = slots[-1]
        wait_until(last.planned + timedelta(milliseconds=last.media.duration_ms + 3000))
        return slots
    finally:
        playback.close()


def report(plan: list[Media], slots: list[Slot], size: str) -> None:
    counts = {label: sum(1 for m in plan if m.label == label) for label in dict.fromkeys(m.label for m in plan)}
    total = sum(m.duration_ms for m in plan) / 1000
    print(f"plan: {len(plan)} items back to back with zero gap, {total:.1f} s: "
          + ", ".join(f"{n} x {label}" for label, n in counts.items()) + f"; video {size}, libVLC headless; "
          f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}")
    start_errors = [ms(s.started - s.planned) for s in slots if s.started]
    after_cut: list[float] = []
    after_end: list[tuple[float, str]] = []
    for before, after in zip(slots, slots[1:], strict=False):
        if after.started is None:
            continue
        if before.ended is not None and before.ended <= after.called:
            after_end.append((ms(after.started - before.ended), before.media.label))
        else:
            after_cut.append(ms(after.started - after.called))
    gaps = after_cut + [gap for gap, _ in after_end]
    print(f"start error (started - planned start):     {percentiles(start_errors)}   "
          f"target p99 <= {TARGETS_MS['start error']:.0f} ms")
    print(f"gap (started - previous item's end):       {percentiles(gaps)}   target p99 <= {TARGETS_MS['gap']:.0f} ms")
    print(f"  after a cut at the planned start:        {percentiles(after_cut)}")
    print(f"  after an item that ended by itself:      {percentiles([gap for gap, _ in after_end])}")
    widest = sorted(after_end, reverse=True)[:5]
    print("  widest after an end: " + ", ".join(f"{gap:.0f} ms after a {label}" for gap, label in widest))
    print(f"play() call on the loop's thread:          {percentiles([s.call_ms for s in slots if s.call_ms])}")
    ends = [ms(s.ended - s.planned - timedelta(milliseconds=s.media.duration_ms)) for s in slots
            if s.ended and not s.error]
    print(f"own end - planned end (items that ended):  {percentiles(ends)}")
    print(f"errors: {sum(1 for s in slots if s.error)}; never started: {sum(1 for s in slots if not s.started)}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.1f} MB   target <= {TARGET_RSS_MB:.0f} MB")


def run_agent(plan: list[Media], directory: Path) -> tuple[list[float], list[float], int]:
    """The real agent (its loop, programme, journal and libVLC) over the same items, planned as back-to-back
    spots in a signed plan it finds on disk; the figures come from the proof-of-play in its journal."""
    import hashlib
    import json
    import shutil
    import sqlite3
    import threading
    from zoneinfo import ZoneInfo

    from player.agent import PlayerAgent
    from signage.player_config import PlayerConfig
    from signage.protocol import canonical_json, plan_version
    from signage.signing import Signer, public_key_text

    clock, zone = SystemClock(), ZoneInfo("Asia/Ho_Chi_Minh")
    data = directory / "agent"
    signer = Signer.load_or_create(directory / "server")
    mime = {"video": "video/mp4", "image": "image/png", "audio": "audio/mpeg"}
    sha_of: dict[Path, str] = {}
    for item in set(plan):
        sha = hashlib.sha256(item.path.read_bytes()).hexdigest()
        (data / "media" / sha[:2]).mkdir(parents=True, exist_ok=True)
        shutil.copy(item.path, data / "media" / sha[:2] / sha)  # already cached: timing, not downloading
        sha_of[item.path] = sha
    first = clock.now().astimezone(zone).replace(microsecond=0) + timedelta(seconds=6)
    day = first.replace(hour=0, minute=0, second=0)
    spots, at = [], first
    for index, item in enumerate(plan):
        spots.append({"spot_id": f"bench-{index:03d}", "campaign_id": "bench", "media": sha_of[item.path],
                      "start": at.isoformat(), "duration_ms": item.duration_ms})
        at += timedelta(milliseconds=item.duration_ms)
    span = {"start": day.isoformat(), "end": (day + timedelta(days=2)).isoformat()}
    body = {"schema": "signage.plan/1", "player_id": "bench-player", "generated_at": "2024-01-01T00:00:00Z",
            "timezone": "Asia/Ho_Chi_Minh", "valid_from": span["start"], "valid_until": span["end"],
            "operating_hours": [span], "peak_windows": [span], "filler": [], "spots": spots,
            "media": {sha_of[i.path]: {"url": f"/media/{sha_of[i.path]}", "bytes": i.path.stat().st_size,
                                       "mime": mime[i.kind], "duration_ms": i.duration_ms} for i in set(plan)}}
    body["version"] = plan_version(body)
    data.mkdir(parents=True, exist_ok=True)
    (data / "plan.json").write_bytes(signer.envelope_json(canonical_json(body)))
    config = PlayerConfig(player_id="bench-player", broker_port=9, username="bench", password="bench",
                          server_url="http://127.0.0.1:9", public_keys=[public_key_text(signer.public_key)],
                          data_dir=str(data), headless=True)  # no broker, no server: it plays offline
    agent = PlayerAgent(config, clock, lambda post: VlcPlayback(post, clock=clock, headless=True))
    runner = threading.Thread(target=agent.run, name="agent")
    runner.start()
    threading.Event().wait(((at - clock.now()) + timedelta(seconds=3)).total_seconds())  # the plan's length
    agent.stop()
    runner.join(timeout=30)
    with sqlite3.connect(data / "journal.db") as journal:
        records = [json.loads(b) for (b,) in journal.execute("SELECT body FROM records ORDER BY seq")]
    plays = sorted((r for r in records if r["kind"] == "spot" and r["status"] != "missed"),
                   key=lambda r: r["started_at"])
    starts = [ms(datetime.fromisoformat(r["started_at"]) - datetime.fromisoformat(r["scheduled_start"]))
              for r in plays]
    gaps = [ms(datetime.fromisoformat(b["started_at"]) - datetime.fromisoformat(a["ended_at"]))
            for a, b in zip(plays, plays[1:], strict=False)]
    completed = sum(r["status"] == "completed" for r in plays)
    if os.environ.get("BENCH_VERBOSE"):
        for r in sorted(records, key=lambda r: r["started_at"]):
            print(r["spot_id"], r["kind"], r["status"], r["reason"], (r["scheduled_start"] or "")[11:23],
                  r["started_at"][11:23], r["ended_at"][11:23], r["duration_ms"])
    return starts, gaps, completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", default="1920x1080", help="video and still size, WxH")
    parser.add_argument("--agent", action="store_true", help="run the whole player agent, not the backend alone")
    parser.add_argument("--load", action="store_true", help="CPU load on every core and a disk writer beside it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="player-timing-") as directory:
        media = make_media(Path(directory), args.size)
        plan = make_plan(media, args.items, args.seed)
        seconds = sum(m.duration_ms for m in plan) / 1000 + 20
        before = os.getloadavg()[0]
        with load_beside(Path(directory), seconds) if args.load else nullcontext():
            if args.agent:
                starts, gaps, completed = run_agent(plan, Path(directory))
            else:
                slots = run(plan, media["still 1 s"])
            after = os.getloadavg()[0]
    added = f"CPU on {os.cpu_count()} cores and a disk writer beside it" if args.load else "none added"
    print(f"load: {added}; 1-minute load average {before:.2f} before, {after:.2f} at the end")
    if not args.agent:
        report(plan, slots, args.size)
        return
    print(f"the player agent over {len(plan)} back-to-back spots ({args.size}), {completed} completed")
    print(f"start error (started - planned): {percentiles(starts)}")
    print(f"gap (next started - ended):      {percentiles(gaps)}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")


if __name__ == "__main__":
    main()
