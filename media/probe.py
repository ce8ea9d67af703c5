"""What a media file is, asked of ffprobe, and whether a player can play it."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from campaigns.kinds import MediaKind
from signage.errors import Invalid

# What the players' libVLC build plays reliably on the screen PCs.
VIDEO_CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video"}
AUDIO_CODECS = {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_s24le"}
IMAGE_CODECS = {"png": "image/png", "mjpeg": "image/jpeg"}
CONTAINER_MIME = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "matroska,webm": "video/webm",
    "mpegts": "video/mp2t",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
}
REENCODE_FIX = ("re-encode it, e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -c:a aac OUT.mp4 "
                "(video) or ffmpeg -i IN -c:a libmp3lame OUT.mp3 (audio)")


@dataclass(frozen=True)
class ProbeResult:
    kind: MediaKind
    mime: str
    duration_ms: int | None
    width: int | None
    height: int | None
    container: str
    video_codec: str | None
    audio_codec: str | None


def ffprobe_json(path: Path) -> dict:
    if shutil.which("ffprobe") is None:
        raise RuntimeError("ffprobe is not installed; install Debian's ffmpeg package (make setup does)")
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "unreadable"
        raise Invalid(f"{path.name} is not a media file ffprobe can read ({reason})",
                      "upload an MP4/WebM video, a PNG/JPEG image or an MP3/AAC/Opus audio file")
    return json.loads(result.stdout)


def probe(path: Path) -> ProbeResult:
    info = ffprobe_json(path)
    streams = [s for s in info.get("streams", []) if not s.get("disposition", {}).get("attached_pic")]
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    container = info.get("format", {}).get("format_name", "")
    duration = info.get("format", {}).get("duration")

    if video is not None and video.get("codec_name") in IMAGE_CODECS and container.endswith("_pipe"):
        return ProbeResult(MediaKind.image, IMAGE_CODECS[video["codec_name"]], None, video.get("width"),
                           video.get("height"), container, video["codec_name"], None)
    if video is None and audio is None:
        raise Invalid(f"{path.name} has no video or audio stream", "choose a file with picture or sound")
    if duration is None or float(duration) <= 0:
        raise Invalid(f"{path.name} has no duration (truncated or damaged?)", "export the file again")
    if video is not None and video.get("codec_name") not in VIDEO_CODECS:
        raise Invalid(f"{path.name} uses the video codec {video.get('codec_name')!r}, which players cannot play",
                      REENCODE_FIX)
    if audio is not None and audio.get("codec_name") not in AUDIO_CODECS:
        raise Invalid(f"{path.name} uses the audio codec {audio.get('codec_name')!r}, which players cannot play",
                      REENCODE_FIX)
    mime = CONTAINER_MIME.get(container)
    if mime is None:
        raise Invalid(f"{path.name} is in the container {container!r}, which players do not take", REENCODE_FIX)
    kind = MediaKind.video if video is not None else MediaKind.audio
    if kind is MediaKind.audio and mime.startswith("video/"):
        mime = "audio/mp4" if mime == "video/mp4" else "audio/webm"
    return ProbeResult(kind, mime, round(float(duration) * 1000),
                       video.get("width") if video else None, video.get("height") if video else None,
                       container, video.get("codec_name") if video else None,
                       audio.get("codec_name") if audio else None)
