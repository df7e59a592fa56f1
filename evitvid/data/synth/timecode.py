"""EK100's time codes: the CSVs' `HH:MM:SS.ff` timestamps and their frame numbers.

Frame numbers follow the convention measured on the real `EPIC_100_validation.csv`:
`frame = floor(seconds * round(fps))` (99.5 % of rows of 59.94-fps videos; on that file even
29.97/47.95/90-fps videos count at 60, a quirk not imitated here). The synthetic videos are
"recorded" at 59.94 or 50 fps (`EPIC_100_video_info.csv` says which), so their frame numbers
count at 60 or 50 frames per second while the files are 30 fps: loaders must go through the
timestamps (or the fps), as on EK100. `evitvid.data.annotations` reads these back
(`parse_timestamp`, `to_file_frames`).
"""
from __future__ import annotations

import math

__all__ = ["annotation_rate", "seconds_to_frame", "format_timestamp"]


def annotation_rate(native_fps: float) -> int:
    """Frames per second the CSV frame numbers count at for a video recorded at `native_fps`."""
    return int(round(native_fps))


def seconds_to_frame(seconds: float, native_fps: float) -> int:
    """EK100's frame number for a time: `floor(seconds * round(native_fps))` (see module doc)."""
    return int(math.floor(seconds * annotation_rate(native_fps) + 1e-6))


def format_timestamp(seconds: float, decimals: int = 2) -> str:
    """`HH:MM:SS.ff` (EK100's start/stop format; `decimals=3` for narration_timestamp)."""
    units = int(round(seconds * 10 ** decimals))
    whole, frac = divmod(units, 10 ** decimals)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{frac:0{decimals}d}"
