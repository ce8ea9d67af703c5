#!/usr/bin/env bash
# Makes the example campaign's media: a 30 s clip and a 20 s audio spot with ffmpeg, the poster in two formats.
# The outputs are committed; run this again only to change them.
set -euo pipefail
out="${1:-$(dirname "$0")/../examples/media}"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
mkdir -p "$out"
ffmpeg -v error -y -f lavfi -i "color=c=0x0b5394:s=640x360:r=25:d=30" \
  -f lavfi -i "sine=frequency=523:sample_rate=44100:duration=30" \
  -vf "drawtext=fontfile=$font:text='iHanoi':fontcolor=white:fontsize=72:x=(w-tw)/2:y=(h-th)/2-30,\
drawtext=fontfile=$font:text='Tải ứng dụng iHanoi – %{eif\:30-t\:d}s':fontcolor=white:fontsize=26:x=(w-tw)/2:y=h/2+50" \
  -c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv420p -c:a aac -b:a 48k -shortest -movflags +faststart \
  "$out/ihanoi-30s.mp4"
# The poster, landscape and portrait, by the server's own template (media/posters.py): QR code and hotline.
"$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/make-example-posters.py" "$out"
ffmpeg -v error -y -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=20" \
  -af "volume=0.4" -c:a libmp3lame -b:a 48k "$out/ihanoi-spot.mp3"
ls -l "$out"
