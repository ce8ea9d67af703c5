"""What a media file is, asked of ffprobe, and whether a player can play it.

One rule for every way media comes in (campaign files and staff uploads): what the players' libVLC
plays well on the screen PCs, and nothing else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from campaigns.kinds import MediaKind
from signage.errors import Invalid

VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265", "vp8": "VP8", "vp9": "VP9", "mpeg4": "MPEG-4"}
AUDIO_CODECS = {"aac": "AAC", "mp3": "MP3", "opus": "Opus", "vorbis": "Vorbis"}
IMAGE_CODECS = {"png": "image/png", "mjpeg": "image/jpeg"}
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"  # ffprobe's one name for MP4, MOV and M4A
MATROSKA = "matroska,webm"  # and for MKV and WebM
VIDEO_CONTAINERS = {MP4, MATROSKA}
AUDIO_CONTAINERS = {MP4: "audio/mp4", MATROSKA: "audio/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg",
                    "aac": "audio/aac"}
WEBM_CODECS = {"vp8", "vp9", "opus", "vorbis"}
ACCEPTED = ("H.264, H.265, VP8, VP9 or MPEG-4 video in MP4, MOV, MKV or WebM; AAC, MP3, Opus or Vorbis audio "
            "(with the video, or alone in MP3, M4A, AAC, Ogg or WebM); PNG or JPEG images")
REENCODE_FIX = (f"players take {ACCEPTED}; re-encode it, e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -c:a aac "
                "OUT.mp4 (video) or ffmpeg -i IN -c:a libmp3lame OUT.mp3 (audio)")
DAMAGED_FIX = "upload the complete file again, or export it again from the editing software"
# What ffprobe says when the demuxer runs out of file before the container's index says it should.
TRUNCATION_SIGNS = ("partial file", "ended prematurely", "truncat")
# How files of each kind begin, to tell a damaged media file from something that never was one.
SIGNATURES = ((4, b"ftyp", "an MP4 or MOV video"), (0, b"\x1a\x45\xdf\xa3", "an MKV or WebM video"),
              (0, b"OggS", "an Ogg file"), (0, b"ID3", "an MP3 file"), (0, b"\x89PNG", "a PNG image"),
              (0, b"\xff\xd8\xff", "a JPEG image"), (0, b"RIFF", "a RIFF (AVI or WAV) file"))
PROBE_SECONDS = 600  # reading every packet of a 2 GB file from a slow disk


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


def ffprobe_json(path: Path, name: str | None = None) -> tuple[dict, str]:
    """ffprobe's description of the file (reading every packet, so that a cut-off file shows) and its
    error output."""
    name = name or path.name
    if shutil.which("ffprobe") is None:
        raise RuntimeError("ffprobe is not installed; install Debian's ffmpeg package (make setup does)")
    try:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-count_packets", "-print_format", "json", "-show_format", "-show_streams",
             str(path)], capture_output=True, text=True, timeout=PROBE_SECONDS, errors="replace",
        )
    except subprocess.TimeoutExpired:
        raise Invalid(f"{name} could not be read within {PROBE_SECONDS} s", DAMAGED_FIX) from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        # ffprobe names the file it read (here perhaps a temporary one): only its reason is worth showing.
        reason = lines[-1].replace(str(path), "").lstrip(": ") if lines else "unreadable"
        looks_like = _looks_like(path)
        if looks_like:
            raise Invalid(f"{name} looks like {looks_like} but cannot be read: it is truncated or damaged "
                          f"(ffprobe: {reason})", DAMAGED_FIX)
        raise Invalid(f"{name} is not a media file (ffprobe: {reason})",
                      f"upload a video, audio file or image; players take {ACCEPTED}")
    return json.loads(result.stdout), result.stderr


def _looks_like(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(16)
    return next((what for offset, magic, what in SIGNATURES if head[offset:offset + len(magic)] == magic), None)


def probe(path: Path, name: str | None = None) -> ProbeResult:
    """What the file at `path` is; raises Invalid, naming it `name` (default: the file's own name), when the
    players cannot play it."""
    name = name or path.name
    info, errors = ffprobe_json(path, name)
    streams = [s for s in info.get("streams", []) if not s.get("disposition", {}).get("attached_pic")]
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    container = info.get("format", {}).get("format_name", "")
    duration = info.get("format", {}).get("duration")

    if container.endswith("_pipe") or container == "image2":
        codec = video.get("codec_name") if video else None
        if codec not in IMAGE_CODECS:
            raise Invalid(f"{name} is a {codec or 'unknown'} image, which players do not show",
                          "convert it to PNG or JPEG")
        _refuse_undecodable(path, name)
        return ProbeResult(MediaKind.image, IMAGE_CODECS[codec], None, video.get("width"), video.get("height"),
                           container, codec, None)
    if video is None and audio is None:
        raise Invalid(f"{name} has neither picture nor sound", f"upload a file with either; players take {ACCEPTED}")
    _refuse_truncated(name, streams, errors)
    if duration is None or float(duration) <= 0:
        raise Invalid(f"{name} has no duration (truncated or damaged?)", DAMAGED_FIX)
    if video is not None and video.get("codec_name") not in VIDEO_CODECS:
        raise Invalid(f"{name} uses the video codec {video.get('codec_name')!r}, which players cannot play well",
                      REENCODE_FIX)
    if audio is not None and audio.get("codec_name") not in AUDIO_CODECS:
        raise Invalid(f"{name} uses the audio codec {audio.get('codec_name')!r}, which players cannot play well",
                      REENCODE_FIX)
    allowed = VIDEO_CONTAINERS if video is not None else AUDIO_CONTAINERS
    if container not in allowed:
        raise Invalid(f"{name} is in the container {container!r}, which players do not take", REENCODE_FIX)
    codecs = {s.get("codec_name") for s in (video, audio) if s is not None}
    if video is not None:
        kind = MediaKind.video
        mime = "video/mp4" if container == MP4 else "video/webm" if codecs <= WEBM_CODECS else "video/x-matroska"
    else:
        kind, mime = MediaKind.audio, AUDIO_CONTAINERS[container]
    return ProbeResult(kind, mime, round(float(duration) * 1000),
                       video.get("width") if video else None, video.get("height") if video else None,
                       container, video.get("codec_name") if video else None,
                       audio.get("codec_name") if audio else None)


def _refuse_undecodable(path: Path, name: str) -> None:
    """An image is decoded once: ffprobe reads only its header, and a cut-off picture has a whole one."""
    result = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "null", "-"],
                            capture_output=True, text=True, timeout=PROBE_SECONDS, errors="replace")
    if result.returncode != 0:
        raise Invalid(f"{name} is an image that cannot be decoded: it is truncated or damaged", DAMAGED_FIX)


def _refuse_truncated(name: str, streams: list[dict], errors: str) -> None:
    if any(sign in errors.lower() for sign in TRUNCATION_SIGNS):
        raise Invalid(f"{name} is truncated or damaged: its data ends before its index says it should", DAMAGED_FIX)
    for stream in streams:
        frames, read = stream.get("nb_frames"), stream.get("nb_read_packets")
        if str(frames).isdigit() and str(read).isdigit() and int(read) < int(frames):
            raise Invalid(f"{name} is truncated or damaged: only {read} of the {frames} frames of its "
                          f"{stream.get('codec_type', 'media')} stream are in the file", DAMAGED_FIX)
