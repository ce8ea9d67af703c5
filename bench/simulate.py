"""How fast `signage simulate` runs a city-sized fleet: writes a fleet file of N screens (30 districts, wards of
ward offices, bus stations, intersections, buses and schools with their kinds' default windows; every tenth screen
a loudspeaker) and runs the command on it with the iHanoi campaign and the acceptance's fault file (10 % of
players off 07:00-09:00 every day, 2 % crashing once a day).

    .venv/bin/python bench/simulate.py --screens 1000 --days 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("ward_office", "bus_station", "intersection", "bus", "school")
FAULTS = """schema: signage.faults/1
seed: 9
shares:
  - share: 0.10
    offline_daily: {from: "07:00", to: "09:00"}
  - share: 0.02
    crash_daily: {between: {from: "06:00", to: "22:00"}, down_for_s: 120}
"""


def fleet_yaml(screens: int, per_site: int = 10) -> str:
    lines = ["schema: signage.fleet/1", "organisations:", "  - {id: hn, name: Hà Nội, kind: city}",
             "  - {id: hn-hadong, name: Hà Đông, kind: district, parent: hn}",
             "  - {id: hn-hadong-phula, name: Phú La, kind: ward, parent: hn-hadong}"]
    sites, rows = ["sites:"], ["screens:"]
    for number in range(-(-screens // per_site)):
        district, ward = f"hn-d{number % 30:02d}", f"hn-d{number % 30:02d}-w{number:04d}"
        if number < 30:
            lines.append(f"  - {{id: {district}, name: Quận {number}, kind: district, parent: hn}}")
        lines.append(f"  - {{id: {ward}, name: Phường {number}, kind: ward, parent: {district}}}")
        site = f"s{number:04d}"
        sites.append(f"  - {{id: {site}, name: Điểm {number}, kind: {KINDS[number % len(KINDS)]}, "
                     f"organisation: {ward}}}")
        for index in range(min(per_site, screens - number * per_site)):
            kind = "speaker" if index == per_site - 1 else "lcd, resolution: 1920x1080"
            rows.append(f"  - {{id: hn-{site}-{index:03d}, site: {site}, name: Màn {index}, kind: {kind}}}")
    return "\n".join(lines + sites + rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--from", dest="first", default="2024-08-20")
    parser.add_argument("--filler", action="store_true", help="play the filler between spots too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as folder:
        work = Path(folder)
        (work / "fleet.yaml").write_text(fleet_yaml(args.screens), encoding="utf-8")
        (work / "faults.yaml").write_text(FAULTS, encoding="utf-8")
        last = date.fromisoformat(args.first) + timedelta(days=args.days - 1)
        command = [sys.executable, "-m", "signage_cli", "simulate", "--fleet", str(work / "fleet.yaml"),
                   "--campaigns", str(ROOT / "examples" / "ihanoi-campaign.yaml"), "--from", args.first,
                   "--to", last.isoformat(), "--faults", str(work / "faults.yaml"), "--out",
                   str(work / "compliance.csv"), "--json", *(["--filler"] if args.filler else [])]
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.monotonic() - began
        if done.returncode != 0:
            sys.exit(f"signage simulate failed ({done.returncode}):\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{figures['screens']} screens × {args.days} days{' with filler' if args.filler else ''}: {wall:.1f} s wall "
          f"({wall / args.days:.1f} s per simulated day), peak RSS {peak:.0f} MB")
    print(f"screen-days {figures['screen_days']}, compliant {figures['compliant']}, online "
          f"{figures['online_screen_days']} of which compliant {figures['online_compliant']} "
          f"({figures['online_compliance']:.2%}); causes {figures['causes']}; causes matching the faults "
          f"{figures['causes_matching']} of {figures['causes_checked']}")
    print(f"records {figures['records']}, lost {figures['records_lost']}, spots completed twice "
          f"{figures['spots_doubled']}, crashes {figures['crashes']}, agent turns {figures['turns']:,}, statuses "
          f"{figures['ingest'].get('statuses', 0):,}")


if __name__ == "__main__":
    main()
