"""Media assets: probing with ffprobe, the content-addressed store, serving to players."""
