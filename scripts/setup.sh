#!/usr/bin/env bash
# Installs everything the project needs on a Debian machine: system packages (as root, through apt)
# and the Python environment in .venv. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# mosquitto: the MQTT broker; libvlc: playback (video-output: X11/OpenGL for a real screen); ffmpeg: probing and test media; postgresql: the
# second database the tests run against; poppler-utils: reading exported PDFs; chromium: UI tests; Pango: WeasyPrint's
# text layout for PDF reports, in DejaVu Sans (Vietnamese glyphs, embedded in the PDFs); nginx: the production
# front that sends players' media (tests/test_media_nginx.py, bench/http_load.py); espeak-ng: the Vietnamese voice that
# reads text messages to speakers; sox: checking spoken audio in tests; zbar-tools: decoding posters' QR codes in tests.
PACKAGES=(mosquitto mosquitto-clients libvlc5 libvlc-bin vlc-plugin-base vlc-plugin-video-output ffmpeg postgresql
          postgresql-contrib
          poppler-utils chromium fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 python3-venv nginx
          espeak-ng sox zbar-tools)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the system's mosquitto, postgresql and nginx services on install; the project runs its own.
for service in mosquitto nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
# The UI's catalogues: the .po files are committed, the .mo files the server loads are compiled from them here
# (and by `make catalogues`), so a fresh clone has them before the first test or demo.
.venv/bin/pybabel -q compile -d scheduler/web/locale -D messages
