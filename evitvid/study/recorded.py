"""The study at a longer budget, recorded in the repository: what `make study`'s budget trades.

`make study` trains every method for the epochs that fit its 45 minutes on 2 cores, which is
short of a plateau. The profile `cpu_long` (`book/params/cpu_long.yaml`: every method, the
same seeds and protocol, twice the epochs) is trained by `make study-long`, whose
last step, `python -m evitvid study --profile cpu_long --record book/recorded/cpu_long`,
writes what the results chapter needs from those runs into the repository:

- `learning_curves.csv`: every run's validation top-1 (and training loss) per epoch, with its
  method's key and its learning rate (`peak_lr`, the run's `lr`);
- `record.json`: the profile and its values, the runs by name, the commit, the machine, the
  training time and when it was recorded.

The results chapter reads it (`read_recorded`, through the profile's `longer_budget`) beside
the runs it trained itself and compares the two budgets (`curves.budget_comparison`): whether the
methods plateau with more epochs, and whether the differences behind the verdicts hold.

A record made with `keep_runs=True` (`--record-runs`: `make study-motion`'s, book/recorded/cpu_motion)
also keeps what each run's per-segment statistics need, `runs/NAME/` with its validation logits
and its params, results and metrics files (no checkpoint; about 50 kB a run):
`RecordedStudy.method_runs` gives them as `Run`s, which every function of `results` reads as it
reads the runs of `make study`. The controls study (`make study-controls`,
book/recorded/cpu_controls) is recorded so: notebook 03's inflation controls beside its own 3D
runs (`inflation_controls`), and the instruction-set check (`machine_check`;
`RecordedStudy.machine_spread`, `instruction_set_check`), which `make study` leaves to it.

A tuning study is recorded alike, one reading per frame count in a folder of its own
(`book/recorded/cpu_tune/4_frames`, `2_frames`: `make study-tune`): each reading trains the
main methods at each rate of its `lr_grid` on the tuning split (`split: tune`: a share of the
training videos, `Splits.tuning`) at one frame count (`cpu_tune.yaml`, `cpu_tune_2_frames.yaml`).
`read_tuning` reads the folder, `tuned_frames` the frame count the methods do best with and
`tuned_rates` each method's best rate at that count, which cpu.yaml's `num_frames` and `lr` then
are (its `tuning` names the folder). The validation split the verdicts read chooses nothing.

A record names its runs, and a run's name hashes its parameters, so a record made under
another protocol (another learning rate, another dataset) no longer matches its profile:
`recorded_runs_match` says so, and the test suite asks for a new record (CONTRIBUTING.md).
"""
from __future__ import annotations

import datetime
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Union

import pandas as pd

from ..atomic import atomic_path, write_bytes_atomic, write_json_atomic
from ..data import synth
from ..runs import Run
from .budget import training_span
from .data import DataPaths, Splits, read_planned_splits, read_splits, resolve_data
from .methods import Method, study_methods
from .params import StudyParams
from .predictions import LOGITS_FILE
from .plan import finished_methods, finished_spread, machine_spread, method_runs, trains_check
from .results import learning_curves
from .spread import InstructionSetCheck

__all__ = ["RECORD_FILE", "CURVES_FILE", "RUNS_DIR", "RUN_FILES", "CURVE_COLUMNS", "RecordedStudy", "checkout_commit",
           "record_study", "read_recorded", "recorded_runs_match", "inflation_controls", "instruction_set_check",
           "TuningStudy", "read_tuning", "frames_means", "tuned_frames", "tuned_rates", "tuning_table",
           "tuning_numbers", "epoch_cost"]

RECORD_FILE = "record.json"
CURVES_FILE = "learning_curves.csv"
RUNS_DIR = "runs"
MACHINE_FOLDERS = ("runs_root", "data_root")  # where a machine keeps its runs and data: never recorded
# what a run's per-segment statistics read (`results`), kept by a record made with keep_runs=True
RUN_FILES = ("params.json", "results.json", "metrics.json", LOGITS_FILE)
CURVE_COLUMNS = ("method", "method_key", "peak_lr", "seed", "epoch", "train_loss", "val_verb_top1", "val_noun_top1",
                 "val_action_top1", "epoch_seconds")


@dataclass(frozen=True)
class RecordedStudy:
    """A study's learning curves and where they come from, as `record_study` wrote them."""
    path: Path
    curves: pd.DataFrame
    about: dict

    @property
    def epochs(self) -> int:
        return int(self.about["params"]["epochs"])

    def method_runs(self) -> dict[str, list[Run]]:
        """{method key: its runs}, as `keep_runs=True` kept them under `runs/` (the record's order);
        a record without them, or a run without its files, is named."""
        return {key: [self._kept(name) for name in names] for key, names in self.about["runs"].items()}

    def machine_spread(self) -> Optional[tuple[Run, Run]]:
        """The instruction-set check the record kept (`plan.machine_spread`: the run as the study
        trained it, the same run with oneDNN one instruction set lower); None when its profile
        did not train one. A check recorded without its runs' files is named."""
        check = self.about.get("machine_check")
        if not check:
            return None
        here, elsewhere = (self._kept(check[k]) for k in ("here", "elsewhere"))
        return here, elsewhere

    def _kept(self, name: str) -> Run:
        run = Run(self.path / RUNS_DIR / name)
        missing = [f for f in RUN_FILES if not (run.dir / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{run.dir}: the record keeps no {', '.join(missing)} of this run (record it "
                                    f"with --record-runs)")
        return run

    def data(self, data_root: Union[str, Path, None] = None) -> DataPaths:
        """The dataset the record's runs trained on, resolved again from its profile's values (the
        embedded dataset generated under `data_root` when it is not there yet)."""
        p = self.about["params"]
        return resolve_data(p["dataset"], data_root=data_root, annotations_dir=p.get("annotations_dir"),
                            videos_dir=p.get("videos_dir"), decoder=p.get("decoder", "auto"))

    def splits(self, data_root: Union[str, Path, None] = None) -> Splits:
        """The splits of the dataset the record's runs trained on: the embedded dataset's from its
        plan (`read_planned_splits`: nothing generated), once the runs are seen to be of this
        generator's version; any other dataset's read from its files (`data`)."""
        p = self.about["params"]
        if not p["dataset"].startswith("synth:") or p.get("annotations_dir"):
            return read_splits(self.data(data_root))
        made = {(run.params["data"].get("generator_version"), run.params["data"].get("seed"))
                for group in self.method_runs().values() for run in group}
        if len(made) != 1 or next(iter(made))[0] != synth.GENERATOR_VERSION:
            raise ValueError(f"{self.path}: the runs trained on the embedded dataset of (generator version, seed) "
                             f"{sorted(made, key=str)}, this code generates version {synth.GENERATOR_VERSION}: record "
                             "the study again")
        return read_planned_splits(p["dataset"], seed=next(iter(made))[1])

    @property
    def provenance(self) -> str:
        """Where and when it was recorded, for a sentence: "on CPU (N cores, M minutes of
        training) and recorded at commit C on DATE"."""
        about, env = self.about, self.about["environment"]
        minutes = about.get("training_minutes")
        commit = about.get("commit") or "an unknown commit"
        commit = commit[:7] + ("+changes" if commit.endswith("+changes") else "")
        return (f"on {env.get('cpu', '?')} ({env.get('cores', '?')} cores"
                + (f", {minutes:.0f} minutes of training" if minutes is not None else "")
                + f") and recorded at commit {commit} on {str(about.get('recorded', '?'))[:10]}")

    @property
    def location(self) -> str:
        """The folder, relative to the working directory when inside it (the book's folder for a
        notebook), else as an absolute path."""
        try:
            return str(self.path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(self.path.resolve())


def checkout_commit(folder: Union[str, Path]) -> Optional[str]:
    """The commit of the git checkout `folder` is in, `+changes` when tracked files differ from
    it; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def record_study(params: StudyParams, out: Union[str, Path], profile: str, *,
                 commit: Optional[str] = None, keep_runs: bool = False) -> RecordedStudy:
    """Write the learning curves of `params`' finished method runs and their provenance to the
    folder `out` (each file atomically): the profile, its values (without the machine's
    folders), the runs, the code that trained them (`commit`, when the caller knows it:
    `checkout_commit`) and the machine. A missing run raises, naming the notebook that trains it.
    `keep_runs=True` also copies each run's `RUN_FILES` to `out/runs/NAME/` (`RecordedStudy.method_runs`,
    and with `machine_check` the instruction-set check's runs: `RecordedStudy.machine_spread`)."""
    methods = study_methods(params)
    runs = finished_methods(params)
    curves = learning_curves(runs, methods)
    # beside the method's label, its key and each run's rate (a tuning study trains several), row by row
    # in learning_curves' order (method, run, epoch)
    epochs = [(key, run.params["lr"]) for key, group in runs.items() for run in group for _ in run.metrics]
    curves["method_key"], curves["peak_lr"] = [e[0] for e in epochs], [e[1] for e in epochs]
    curves = curves[[c for c in CURVE_COLUMNS if c in curves]]
    every = [r for group in runs.values() for r in group]
    check = finished_spread(params) if trains_check(params) else None
    if check is not None:
        every.append(check[1])  # its first run is one of the method's
    minutes = training_span(every)
    about = {
        "profile": profile,
        "command": f"python -m evitvid study --profile {profile} --record {out}" + (" --record-runs" if keep_runs
                                                                                     else ""),
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "params": {k: v for k, v in params.as_dict().items() if k not in MACHINE_FOLDERS},
        "runs": {key: [r.name for r in group] for key, group in runs.items()},
        "machine_check": None if check is None else {"here": check[0].name, "elsewhere": check[1].name},
        "training_minutes": None if minutes is None else round(minutes, 1),
        "environment": every[0].results.get("environment", {}),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CURVES_FILE) as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6g")
    if keep_runs:
        for run in every:
            (out / RUNS_DIR / run.name).mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                data = (run.dir / name).read_bytes()
                write_bytes_atomic(out / RUNS_DIR / run.name / name, portable_params(data) if name == "params.json"
                                   else data)
    write_json_atomic(out / RECORD_FILE, about)
    return read_recorded(out.resolve())


def portable_params(data: bytes) -> bytes:
    """A run's params.json without the machine's folders (`MACHINE_FOLDERS`), as a record keeps it."""
    values = json.loads(data)
    return (json.dumps({k: v for k, v in values.items() if k not in MACHINE_FOLDERS}, indent=2) + "\n").encode()


def read_recorded(path: Union[str, Path, None]) -> Optional[RecordedStudy]:
    """A folder `record_study` wrote (a profile's `longer_budget`, `motion_study` or
    `controls_study`); None for None (the profile names no record). A missing or malformed file is
    named."""
    if path is None:
        return None
    path = Path(path)
    record, curves_file = path / RECORD_FILE, path / CURVES_FILE
    for f in (record, curves_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no recorded study here (write one with `python -m evitvid study "
                                    f"--profile NAME --record {path}`)")
    try:
        about = json.loads(record.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{record}: not valid JSON ({exc})") from None
    missing = [k for k in ("params", "runs", "environment") if k not in about]
    if missing:
        raise ValueError(f"{record}: missing {', '.join(missing)}")
    curves = pd.read_csv(curves_file)
    absent = [c for c in ("method", "seed", "epoch", "val_verb_top1") if c not in curves]
    if absent:
        raise ValueError(f"{curves_file}: missing column(s) {', '.join(absent)}")
    return RecordedStudy(path, curves, about)


def recorded_runs_match(recorded: RecordedStudy, params: StudyParams) -> bool:
    """Whether `params` (the recorded profile as it reads today) names the runs the record was
    made of: the same methods, seeds and protocol."""
    names = {key: [s.name for s in group] for key, group in method_runs(params).items()}
    return names == recorded.about["runs"]


def inflation_controls(params: StudyParams, runs: Mapping[str, list[Run]],
                       recorded: Optional[RecordedStudy]) -> tuple[StudyParams, dict[str, list[Run]]]:
    """What notebook 03's inflation controls read, and `params` with their inflations (whose
    `study_methods` label every run of the chapter). A profile that trains controls of its own
    (more `inflations` than the main one) or names no record reads its own runs of evitvid's 3D
    model (not the paper's code's, which the chapter reads apart); otherwise the recorded
    controls study (`controls_study`, `make study-controls`): its kept runs, its own random init
    and mean inflation among them, so that every comparison is within one machine's runs. A
    record whose runs are not this protocol's (a method it shares with `params` names its runs
    otherwise) is refused: record it again."""
    if recorded is None or len(params.inflations) > 1:
        methods = study_methods(params)
        return params, {k: v for k, v in runs.items() if k.startswith("3d_") and not methods[k].paper_code}
    widened = params.replace(inflations=tuple(recorded.about["params"]["inflations"]))
    methods = study_methods(widened)
    shared = [k for k in recorded.about["runs"] if k in methods]
    ours = {k: [s.name for s in group] for k, group in method_runs(widened, shared).items()}
    if not shared or any(recorded.about["runs"][k] != names for k, names in ours.items()):
        raise ValueError(f"{recorded.path}: its runs are not this profile's protocol (its "
                         f"{', '.join(shared) or 'methods'} are named otherwise): record it again (make "
                         f"study-controls)")
    return widened, recorded.method_runs()


def instruction_set_check(params: StudyParams, recorded: Optional[RecordedStudy]) -> Optional[InstructionSetCheck]:
    """The instruction-set check the chapters read (`plan.machine_spread`: a run, and the same
    run with oneDNN one instruction set lower): the profile's own when its `machine_check` asks
    for one (trained here if missing), else the one the recorded controls study kept, else None."""
    if params.machine_check:
        return InstructionSetCheck(*machine_spread(params), source="this machine")
    pair = recorded.machine_spread() if recorded is not None else None
    return None if pair is None else InstructionSetCheck(
        *pair, source=f"the machine that recorded the controls study ({recorded.location})")


@dataclass(frozen=True)
class TuningStudy:
    """A tuning study's readings (`read_tuning`): {frames per clip: the recorded study at that
    count}, fewest frames first, each a grid of rates over the same methods."""
    path: Path
    readings: dict[int, RecordedStudy]

    def at(self, frames: int) -> RecordedStudy:
        if frames not in self.readings:
            raise ValueError(f"{self.path}: no reading at {frames} frames per clip (it holds "
                             f"{', '.join(map(str, self.readings))})")
        return self.readings[frames]


def read_tuning(path: Union[str, Path, None]) -> Optional[TuningStudy]:
    """The tuning study in the folder `path` (a profile's `tuning`; None for None): every
    subfolder a record of a tuning study (`split: tune`) at its own frame count, over the same
    methods and rates. A folder without readings, two readings at one count, a reading of another
    split or other methods or rates are refused, naming the folder."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no tuning study here (make study-tune records one)")
    readings: dict[int, RecordedStudy] = {}
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        recorded = read_recorded(sub)
        _check_tuning(recorded)
        frames = int(recorded.about["params"]["num_frames"])
        if frames in readings:
            raise ValueError(f"{path}: {readings[frames].path.name} and {sub.name} are both at {frames} frames per "
                             "clip")
        readings[frames] = recorded
    if not readings:
        raise FileNotFoundError(f"{path}: no recorded reading in the tuning study's folder (make study-tune records "
                                "one per frame count)")
    grids = {f: (tuple(r.about["runs"]), tuple(sorted(set(r.curves["peak_lr"])))) for f, r in readings.items()}
    if len(set(grids.values())) > 1:
        raise ValueError(f"{path}: its readings train other methods or rates ({grids}): each frame count must be "
                         "read over the same grid")
    return TuningStudy(path, dict(sorted(readings.items())))


def _check_tuning(recorded: RecordedStudy) -> None:
    split = recorded.about["params"].get("split")
    if split != "tune":
        raise ValueError(f"{recorded.path}: not a tuning study (split {split!r}): rates are chosen on the tuning "
                         "split, never on validation")
    absent = [c for c in ("method_key", "peak_lr") if c not in recorded.curves]
    if absent:
        raise ValueError(f"{recorded.path / CURVES_FILE}: missing column(s) {', '.join(absent)} (record it again "
                         f"with python -m evitvid study --record)")


def _last_epoch_means(recorded: RecordedStudy) -> pd.DataFrame:
    """Per method key and rate of a tuning study's record: verb top-1 on the tuning split at the
    last epoch, averaged over the seeds (a run stopped short of the last epoch is refused, naming
    it)."""
    curves = recorded.curves
    last = curves.loc[curves.groupby(["method_key", "peak_lr", "seed"])["epoch"].idxmax()]
    short = last[last["epoch"] != recorded.epochs]
    if not short.empty:
        row = short.iloc[0]
        raise ValueError(f"{recorded.path}: the run of {row['method_key']} at lr {row['peak_lr']:g}, seed "
                         f"{row['seed']}, stops at epoch {row['epoch']} of {recorded.epochs}")
    # the mean over seeds rounded below the seeds' resolution: equal accuracies tie whatever the sum's order
    return last.groupby(["method_key", "peak_lr"])["val_verb_top1"].mean().round(9).reset_index()


def _best_means(recorded: RecordedStudy) -> pd.Series:
    """Per method key: its verb top-1 on the tuning split at its best rate (last epoch, mean over seeds)."""
    return _last_epoch_means(recorded).groupby("method_key", sort=False)["val_verb_top1"].max()


def frames_means(tuning: TuningStudy) -> dict[int, float]:
    """{frames per clip: the mean over the methods of each one's verb top-1 on the tuning split at
    its best rate}: what `tuned_frames` compares (each frame count at every method's own rate)."""
    return {frames: float(_best_means(recorded).mean().round(9)) for frames, recorded in tuning.readings.items()}


def tuned_frames(tuning: TuningStudy) -> int:
    """The frame count whose methods do best on the tuning split (`frames_means`: every method at
    its own best rate); a tie goes to fewer frames (the cheaper clip). One count for every
    method: the protocol is the same for all, as the paper's."""
    means = frames_means(tuning)
    return max(means, key=lambda frames: (means[frames], -frames))


def _as_tuning(tuning: Union[TuningStudy, RecordedStudy]) -> TuningStudy:
    """A tuning study; one reading on its own is a study at its one frame count."""
    if isinstance(tuning, TuningStudy):
        return tuning
    _check_tuning(tuning)
    return TuningStudy(tuning.path, {int(tuning.about["params"]["num_frames"]): tuning})


def tuning_table(tuning: Union[TuningStudy, RecordedStudy], methods: Mapping[str, Method]) -> pd.DataFrame:
    """What the tuning study measured and chose, for the book: per method it trained (rows, by
    label), verb top-1 (%) on the tuning split at the last epoch at each frame count and rate of
    the grid (columns "N frames, lr R"; mean over its seeds), and the rate `tuned_rates` chose at
    the frame count `tuned_frames` chose."""
    tuning = _as_tuning(tuning)
    tuned = tuned_rates(tuning)
    parts = []
    for frames, recorded in tuning.readings.items():
        part = _last_epoch_means(recorded).pivot(index="method_key", columns="peak_lr", values="val_verb_top1")
        part.columns = [f"{frames} frames, lr {rate:g}" for rate in part.columns]
        parts.append(part.mul(100).round(1))
    table = pd.concat(parts, axis=1).reindex(list(tuned))
    table[f"chosen lr ({tuned_frames(tuning)} frames)"] = [f"{tuned[k]:g}" for k in table.index]
    table.index = [methods[k].label if k in methods else k for k in table.index]
    table.index.name = "verb top-1 on the tuning split (%)"
    return table


def tuning_numbers(tuning: Union[TuningStudy, RecordedStudy, None]) -> dict:
    """What the results chapter says of the tuning study: the frame count it chose and what each
    count reached (`tuning_frames`), and how many methods chose a rate at either end of the grid,
    where their best rate may lie outside it (`tuning_edge`), and what more frames cost an epoch
    (`tuning_epoch_cost`, `epoch_cost`)."""
    if tuning is None:
        return {key: "no tuning study is recorded for this profile"
                for key in ("tuning_edge", "tuning_frames", "tuning_epoch_cost")}
    tuning = _as_tuning(tuning)
    tuned, chosen = tuned_rates(tuning), tuned_frames(tuning)
    grid = sorted(set(tuning.at(chosen).curves["peak_lr"]))
    ends = [(grid[0], "smallest", "below"), (grid[-1], "largest", "above")] if len(grid) > 1 else []
    said = [f"{n} of {len(tuned)} methods chose the grid's {word} rate ({rate:g}), so their best may lie {side} it"
            for rate, word, side in ends if (n := sum(r == rate for r in tuned.values()))]
    means = frames_means(tuning)
    reached = ", ".join(f"{100 * m:.1f} % at {frames}" for frames, m in means.items())
    frames = (f"{chosen} frames per clip (the methods' verb top-1 on the tuning split, each at its best rate, "
              f"averages {reached})" if len(means) > 1 else f"{chosen} frames per clip, the only count the tuning "
              "study read")
    return {"tuning_edge": "; ".join(said) if said else "every method chose a rate inside the grid",
            "tuning_frames": frames, "tuning_epoch_cost": epoch_cost(tuning)}


def epoch_cost(tuning: TuningStudy) -> str:
    """What the tuning study's largest frame count cost an epoch against its smallest: the
    median over the methods of the ratio of their median epoch times (`epoch_seconds`, every
    rate and epoch), and the machines the readings ran on."""
    if len(tuning.readings) < 2:
        return "the tuning study read one frame count"
    low, high = min(tuning.readings), max(tuning.readings)

    def seconds(frames: int) -> pd.Series:
        return tuning.at(frames).curves.groupby("method_key")["epoch_seconds"].median()
    ratio = (seconds(high) / seconds(low)).dropna()
    machines = [r.about.get("environment", {}) for r in tuning.readings.values()]
    cpus = sorted({f"{env.get('cpu', '?')} ({env.get('cpu_capability', '?')})" for env in machines})
    return (f"an epoch at {high} frames took {ratio.median():.1f} times as long as at {low} (the median over the "
            f"{len(ratio)} methods of their median epoch; {' and '.join(cpus)})")


def tuned_rates(tuning: Union[TuningStudy, RecordedStudy],
                methods: Optional[Mapping[str, Method]] = None) -> dict[str, float]:
    """{method key: its best learning rate} in a tuning study (`read_tuning`: at the frame count
    `tuned_frames` chooses) or one reading of it (`split: tune`, a rate per run of `lr_grid`):
    the rate whose runs' verb top-1 on the tuning split at their last epoch, averaged over the
    seeds, is highest; a tie goes to the smaller rate.

    With `methods` (a profile's `study_methods`), the rate of each of them: an inflation ablation,
    which the tuning study does not train, takes the rate of its architecture's main inflated
    method (it changes how the weights are inflated, not the protocol), so the ablation is
    compared with that method at one rate. A record of another split, or without the rates, is
    refused, naming it."""
    tuning = _as_tuning(tuning)
    recorded = tuning.at(tuned_frames(tuning))
    mean = _last_epoch_means(recorded)
    best = mean.sort_values(["val_verb_top1", "peak_lr"], ascending=[False, True]).drop_duplicates("method_key")
    chosen = {str(k): float(r) for k, r in zip(best["method_key"], best["peak_lr"])}
    order = [k for k in recorded.about["runs"] if k in chosen] + [k for k in chosen if k not in recorded.about["runs"]]
    tuned = {k: chosen[k] for k in order}
    if methods is None:
        return tuned
    out = {}
    for key, method in methods.items():
        main = next((k for k, m in methods.items() if m.model == method.model and m.inflation and not m.ablation
                     and not m.paper_code), None) if method.ablation else key
        if main is None:
            raise ValueError(f"no main inflated method of {method.model} among the methods, so no rate for {key}")
        if main not in tuned:
            raise ValueError(f"{recorded.path}: the tuning study did not train {main} (it trained "
                             f"{', '.join(tuned)}), so it gives no rate for {key}")
        out[key] = tuned[main]
    return out
