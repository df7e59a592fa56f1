"""Shared fixtures for the data tests: the optional shared folder, lossless tiny videos, a tiny EK100 tree.

Videos are written losslessly (libx264rgb, qp=0, rgb24; decord decodes them bit-exactly) with
each frame's index encoded in its pixels (red = index % 256, green = index // 256, blue a
horizontal ramp so flips are visible), so a test can read back which frames it got.
"""
from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from evitvid.data.annotations import CLASS_COLUMNS, LABELLED_COLUMNS, UNLABELLED_COLUMNS
from evitvid.data.synth import format_timestamp, generate

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "book" / "params"  # the book's profiles: the library is told where they are
CPU_BASE = str(PROFILES / "cpu.yaml")  # what a test's own profile starts from (`base:` takes a path)

# ------------------------------------------------------------------ the process's signal stack


def _unmapped_signal_stack() -> str | None:
    """The main thread's alternate signal stack when it points outside every mapping, else None."""
    from evitvid.inference.signal_stack import signal_stack
    stack = signal_stack()
    if stack is None or stack.disabled:
        return None
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split(maxsplit=1)[0].split("-"))
            if low <= stack.address < high:
                return None
    return f"{stack.size}-byte stack at {stack.address:#x}"


@pytest.fixture(autouse=True)
def _signal_stack_stays_mapped():
    """Fail the test that leaves the main thread's alternate signal stack unmapped (OpenVINO did:
    evitvid/inference/signal_stack.py). Left alone, the next signal the process receives (SIGCHLD
    from any exiting worker) kills pytest with SIGSEGV, at whichever later test that happens in."""
    yield
    dangling = _unmapped_signal_stack()
    if dangling is not None:
        pytest.fail(f"this test left the main thread's alternate signal stack unmapped ({dangling}): "
                    "the next signal would kill the process", pytrace=False)


# ------------------------------------------------------------------ helpers


def find_shared() -> Path | None:
    for candidate in (Path("/work/shared"), REPO.parent / "shared"):
        if (candidate / "ek100").is_dir() or (candidate / "videos").is_dir():
            return candidate
    return None


def make_frames(start: int, count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames with global indices start .. start+count-1, (count, H, W, 3) uint8."""
    index = np.arange(start, start + count)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    frames[..., 0] = (index % 256)[:, None, None]
    frames[..., 1] = (index // 256)[:, None, None]
    frames[..., 2] = (np.arange(width) * 255 // max(width - 1, 1))[None, None, :]
    return frames


def frame_ids(frames) -> np.ndarray:
    """The indices encoded by `make_frames`, read from the top-left pixel; frames (T, H, W, 3)."""
    array = np.asarray(frames).astype(np.int64)
    return array[:, 0, 0, 0] + 256 * array[:, 0, 0, 1]


def write_video(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames losslessly with PyAV (H.264 RGB, qp=0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


LABELLED = LABELLED_COLUMNS  # the name test modules import


def segment_row(narration_id: str, start: float, stop: float, verb: int = 0, noun: int = 0,
                native_fps: float = 59.94) -> dict[str, str]:
    """A labelled EK100 row; frame numbers at `native_fps` (not the files' rate, as in EK100)."""
    video_id = narration_id.rsplit("_", 1)[0]
    return {
        "narration_id": narration_id, "participant_id": video_id.split("_")[0], "video_id": video_id,
        "narration_timestamp": format_timestamp(start, 3), "start_timestamp": format_timestamp(start),
        "stop_timestamp": format_timestamp(stop), "start_frame": str(int(round(start * native_fps))),
        "stop_frame": str(int(round(stop * native_fps))), "narration": f"verb{verb} noun{noun}",
        "verb": f"verb{verb}", "verb_class": str(verb), "noun": f"noun{noun}", "noun_class": str(noun),
        "all_nouns": f"['noun{noun}']", "all_noun_classes": f"[{noun}]",
    }


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | tuple[str, ...] = LABELLED_COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_classes(path: Path, prefix: str, count: int) -> Path:
    rows = [{"id": str(i), "key": f"{prefix}{i}", "instances": f"['{prefix}{i}', '{prefix}{i}:x']", "category": "c"}
            for i in range(count)]
    return write_csv(path, rows, CLASS_COLUMNS)


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat_field(int(entry.name), 1) == str(pid):
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    """The command line of `pid` (NUL-separated), empty when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a dead orphan nobody has reaped yet)."""
    state = _stat_field(pid, 0)
    return state is not None and state not in ("Z", "X")


def _stat_field(pid: int, index: int) -> str | None:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rfind(")") + 2:].split()[index]


def wait_until(condition, timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(interval)
    return True


def kill_and_expect_workers_gone(parent: subprocess.Popen, workers) -> None:
    """SIGKILL `parent` and assert that every pid in `workers` ends within 5 s (the parent-death
    signal acts at once; `evitvid.workers`' watchdog polls every 0.5 s)."""
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_until(lambda: not any(map(running, workers)), timeout=5), \
        f"workers {[w for w in workers if running(w)]} outlived their parent"


@contextlib.contextmanager
def reaped(parent: subprocess.Popen, workers):
    """Around a kill test: on the way out the parent (started with stderr=PIPE) is killed and
    reaped and, only when the test failed, the workers it left: this test's own grandchildren,
    by pid (`workers` is read at exit, so it may be filled in inside the block)."""
    try:
        yield
    finally:
        parent.kill()
        parent.wait()
        parent.stderr.close()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """/work/shared or ../shared next to the repository; tests using it skip when absent."""
    path = find_shared()
    if path is None:
        pytest.skip("shared folder (/work/shared or ../shared) not present")
    return path


@dataclass(frozen=True)
class Tree:
    """A tiny EK100-like dataset: AVION-chunked and whole videos, annotations, class files."""

    root: Path
    chunked: Path  # root/videos: P01/P01_01.MP4/{0,1,2}.MP4
    whole: Path  # root/whole: P01/videos/P01_01.MP4
    train_csv: Path
    test_csv: Path
    verb_classes: Path
    noun_classes: Path
    video_frames: dict  # video_id -> total frames
    chunk_seconds: int = 1
    fps: int = 30
    height: int = 48
    width: int = 64


# video_id -> number of frames at 30 fps; 1-s chunks hold 30 frames
TREE_VIDEOS = {"P01_01": 75, "P02_03": 40}
# (narration_id, start s, stop s, verb, noun)
TREE_SEGMENTS = [
    ("P01_01_0", 0.10, 0.90, 0, 1),  # inside chunk 0: frames 3..26
    ("P01_01_1", 0.80, 1.60, 1, 2),  # crosses chunks 0 -> 1: frames 24..47
    ("P01_01_2", 1.50, 2.50, 2, 0),  # crosses 1 -> 2 (the shorter last chunk), ends at the video's end
    ("P01_01_3", 2.20, 2.53, 0, 2),  # overruns the video's end by one frame: clamped
    ("P02_03_0", 0.00, 1.30, 1, 1),  # into P02_03's 10-frame last chunk
    ("P02_03_1", 0.50, 0.60, 2, 2),  # 3 frames: shorter than any clip
]


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("ek100")
    for video_id, count in TREE_VIDEOS.items():
        participant = video_id.split("_")[0]
        write_video(root / "whole" / participant / "videos" / f"{video_id}.MP4", make_frames(0, count))
        for chunk, first in enumerate(range(0, count, 30)):
            write_video(root / "videos" / participant / f"{video_id}.MP4" / f"{chunk}.MP4",
                        make_frames(first, min(30, count - first)))
    rows = [segment_row(n, a, b, v, o) for n, a, b, v, o in TREE_SEGMENTS]
    ann = root / "annotations"
    train_csv = write_csv(ann / "EPIC_100_train.csv", rows)
    test_csv = write_csv(ann / "EPIC_100_test_timestamps.csv", rows, UNLABELLED_COLUMNS)
    return Tree(
        root=root, chunked=root / "videos", whole=root / "whole", train_csv=train_csv, test_csv=test_csv,
        verb_classes=write_classes(ann / "EPIC_100_verb_classes.csv", "verb", 3),
        noun_classes=write_classes(ann / "EPIC_100_noun_classes.csv", "noun", 3),
        video_frames=dict(TREE_VIDEOS),
    )


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic data set's `tiny` preset (evitvid.data.synth), generated once per session:
    read it in place, or give a test that writes beside it (frame caches, runs) a `tiny_copy`."""
    from evitvid.data.fashion_mnist import find_fashion_mnist

    if find_fashion_mnist("t10k") is None:
        pytest.skip("Fashion-MNIST t10k files not found: the synthetic set cannot be generated")
    return generate(tmp_path_factory.mktemp("synth") / "tiny", preset="tiny", seed=0, workers=1, progress=False)


def tiny_copy(synth_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's tiny set (`synth_tiny`) in a folder of its own, as generating it
    there would leave it (tests/test_synth.py checks generation itself)."""
    return Path(shutil.copytree(synth_tiny, tmp_path_factory.mktemp("synth") / "tiny"))
