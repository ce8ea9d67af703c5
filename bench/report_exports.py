"""Report export speed and memory: the streamed CSV of a generated proof-of-play log, and the other formats beside.

    .venv/bin/python bench/report_exports.py [--rows 5000000] [--playout-rows 1000000] [--xlsx-rows 100000]
                                             [--pdf-rows 1000] [--out DIR]

The log's rows come from a generator, written in the proof-of-play report's own columns (scheduler/reports/
columns.py: POP_COLUMNS), so memory shows what the export itself keeps. Prints, for the CSV: rows per second
(wall clock and CPU time: the machine is shared) and the process's peak resident memory before and after; once
with rows cycled from a pool of 10,000 (the export's own speed) and once with every row generated (the
generator's own rate is printed too: a database cursor is such a source). Then --playout-rows of the log in the
Playout format, an XLSX of --xlsx-rows rows and a PDF of --pdf-rows rows (the PDF's cap).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.reports.columns import POP_COLUMNS  # noqa: E402
from scheduler.reports.exports import write_csv, write_pdf, write_xlsx  # noqa: E402
from scheduler.reports.playout import write_playout_csv  # noqa: E402
from scheduler.reports.table import Report, Sheet  # noqa: E402

START = datetime(2024, 8, 20, 0, 0, tzinfo=UTC)


def plays(count: int):
    """Proof-of-play rows as the log's query would yield them, one dict at a time."""
    step = timedelta(milliseconds=1013)
    at = START
    for i in range(count):
        at += step
        yield {"player_id": f"hn-hadong-{i % 10000:05d}", "screen_name": f"Khu tiếp dân – màn LCD {i % 10000}",
               "site_id": "hadong-phula", "site": "Bộ phận một cửa Phú La",
               "organisation_id": "hn-hadong", "organisation": "UBND quận Hà Đông", "reason": None,
               "campaign_id": "ihanoi-2024", "campaign_name": "iHanoi — Công dân số", "media": "ab" * 32,
               "media_name": "ihanoi-30s.mp4", "kind": "spot", "scheduled_start": at, "started_at": at,
               "ended_at": at + timedelta(milliseconds=30012), "duration_ms": 30012, "status": "completed",
               "play_id": f"00000000-0000-0000-0000-{i:012d}"}


def report(rows, count: int) -> Report:
    return Report(kind="pop", title="Nhật ký phát sóng", organisation="Thành phố Hà Nội",
                  period=(date(2024, 8, 20), date(2024, 8, 26)), generated_at=START,
                  sheets=[Sheet("Nhật ký", POP_COLUMNS, rows)], timezone="Asia/Ho_Chi_Minh")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, count: int, action) -> None:
    before_peak = peak_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<28} {count:>10,} rows  {wall:8.2f} s  {count / wall:>10,.0f} rows/s wall  "
          f"{count / cpu:>10,.0f} rows/s CPU  peak RSS {before_peak:.0f} -> {peak_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--playout-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--pdf-rows", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or Path(temporary)
        out.mkdir(parents=True, exist_ok=True)
        print(f"start: peak RSS {peak_mb():.0f} MB")
        pool = itertools.cycle(list(plays(10_000)))
        timed("CSV, rows from a pool", args.rows,
              lambda: write_csv(report(itertools.islice(pool, args.rows), args.rows), out / "log.csv"))
        timed("generator alone", args.rows, lambda: sum(1 for _ in plays(args.rows)))
        timed("CSV, rows generated", args.rows, lambda: write_csv(report(plays(args.rows), args.rows), out / "log.csv"))
        print(f"{'':<28} {(out / 'log.csv').stat().st_size / 1e6:,.0f} MB written")
        timed("Playout CSV", args.playout_rows,
              lambda: write_playout_csv(plays(args.playout_rows), out / "log.playout.csv"))
        timed("XLSX", args.xlsx_rows, lambda: write_xlsx(report(plays(args.xlsx_rows), args.xlsx_rows),
                                                          out / "log.xlsx"))
        timed("PDF (first rows)", args.pdf_rows,
              lambda: write_pdf(report(plays(args.pdf_rows), args.pdf_rows), out / "log.pdf", max_rows=args.pdf_rows))


if __name__ == "__main__":
    main()
