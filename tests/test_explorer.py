"""The prediction explorer's library (`evitvid.explorer`): predictions read from run folders,
filters, top-5 verbs/nouns/actions, a reversal pair's confusion, frames as pictures, the app
driven without a browser, and what `make explore` checks before it starts.

Most tests write run folders by hand (params.json and logits.npz with chosen logits), so
every expected answer is known; the tests marked slow train the tiny study (`tiny_study`,
shared with `test_explorer_browser.py`) and compare with `evitvid.study`'s own readings.
"""
from __future__ import annotations

import fcntl
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from evitvid.data.annotations import Segment
from evitvid.explorer import (Explorer, Predictions, SegmentFrames, check_inputs, clip_gif, gallery,
                              gallery_segments, missing_inputs, strip_png, study_predictions)
from evitvid.runs import Run
from evitvid.study import Splits
from conftest import CPU_BASE, tiny_copy

VERBS = ["take", "put", "open", "close", "shake"]   # take/put and open/close: reversal pairs
NOUNS = ["cup", "lid", "pan"]


# ------------------------------------------------------------------ hand-made runs

def _segment(i: int, verb: int, noun: int) -> Segment:
    return Segment(f"P01_01_{i}", "P01", "P01_01", None, float(i), i + 1.0, 60 * i, 60 * i + 60,
                   f"{VERBS[verb]} {NOUNS[noun]}", VERBS[verb], verb, NOUNS[noun], noun)


# true (verb, noun) of the validation segments
TRUTH = [(0, 0), (1, 1), (0, 2), (1, 0), (2, 1), (3, 2), (4, 0)]


def _write_run(folder: Path, seed: int, ids, verb_logits, noun_logits, verb, noun) -> Run:
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"seed": seed}))
    np.savez(folder / "logits.npz", narration_id=np.array(ids), verb_logits=np.asarray(verb_logits, np.float32),
             noun_logits=np.asarray(noun_logits, np.float32), verb=np.array(verb), noun=np.array(noun))
    return Run(folder)


def _onehot(classes, size, high=4.0):
    out = np.zeros((len(classes), size), np.float32)
    out[np.arange(len(classes)), classes] = high
    return out


@pytest.fixture
def hand_runs(tmp_path):
    """Method "a" (two seeds) and method "b" (one seed) with known answers."""
    segments = [_segment(i, v, n) for i, (v, n) in enumerate(TRUTH)]
    ids = [s.narration_id for s in segments]
    verb = [v for v, _ in TRUTH]
    noun = [n for _, n in TRUTH]
    # a, seed 0: verbs right except segment 1 (put -> take) and 5 (close -> open); nouns all right
    a_verbs = [0, 0, 0, 1, 2, 2, 4]
    a0 = _write_run(tmp_path / "a0", 0, ids, _onehot(a_verbs, 5), _onehot(noun, 3), verb, noun)
    a1 = _write_run(tmp_path / "a1", 1, ids, _onehot(verb, 5), _onehot(noun, 3), verb, noun)
    # b, seed 0: evaluated the segments in another order, all but segment 5 (as a smoke run's max_val)
    order = [6, 4, 2, 0, 1, 3]
    b_verbs = np.zeros((6, 5), np.float32)  # every segment: a tie between take and put, shake far ahead
    b_verbs[:, 4] = 3.0
    b_nouns = _onehot([2] * 6, 3)            # always "pan"
    b0 = _write_run(tmp_path / "b0", 0, [ids[i] for i in order], b_verbs, b_nouns, [verb[i] for i in order],
                    [noun[i] for i in order])
    splits = Splits([], segments, VERBS, NOUNS)
    return {"a": [a0, a1], "b": [b0]}, splits


@pytest.fixture
def predictions(hand_runs):
    runs, splits = hand_runs
    return Predictions.from_runs(runs, splits, {"a": "method A", "b": "method B"})


def test_segments_are_those_every_run_evaluated_in_split_order(predictions):
    assert predictions.ids == ["P01_01_0", "P01_01_1", "P01_01_2", "P01_01_3", "P01_01_4", "P01_01_6"]
    assert predictions.methods == {"a": "method A", "b": "method B"}
    assert predictions.seeds() == [0] and predictions.seeds(["a"]) == [0, 1]
    assert [name for _, _, name in predictions.pairs] == ["take / put", "open / close"]
    # rows are aligned with the segments, whatever order a run stored them in
    assert [name for name, _, _ in [predictions.top(r, ("b", 0))["noun"][0] for r in range(6)]] == ["pan"] * 6


def test_a_run_of_another_dataset_is_refused(hand_runs, tmp_path):
    runs, splits = hand_runs
    z = dict(np.load(runs["a"][0].dir / "logits.npz"))
    z["verb"] = z["verb"][::-1].copy()
    other = tmp_path / "other"
    other.mkdir()
    (other / "params.json").write_text(json.dumps({"seed": 3}))
    np.savez(other / "logits.npz", **z)
    with pytest.raises(ValueError, match="run c seed 3: its labels differ"):
        Predictions.from_runs({"c": [Run(other)]}, splits)


def test_top5_probabilities_are_the_softmax_best_first(predictions, hand_runs):
    z = np.load(hand_runs[0]["b"][0].dir / "logits.npz")
    row_in_b = list(z["narration_id"]).index("P01_01_2")
    p = np.exp(z["verb_logits"][row_in_b]) / np.exp(z["verb_logits"][row_in_b]).sum()
    top = predictions.top(predictions.row["P01_01_2"], ("b", 0))
    assert [name for name, _, _ in top["verb"]][0] == "shake"
    assert [round(q, 6) for _, q, _ in top["verb"]] == [round(float(q), 6) for q in sorted(p, reverse=True)]
    assert [right for _, _, right in top["noun"]] == [True, False, False]   # segment 2 is a pan


def test_action_top5_is_the_best_five_of_every_verb_noun_product(predictions, hand_runs):
    rng = np.random.default_rng(0)
    # an independent oracle on random logits: every (verb, noun) product, sorted
    verb_logits, noun_logits = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    from evitvid.explorer import RunPredictions
    r = RunPredictions.from_logits(verb_logits.astype(np.float32), noun_logits.astype(np.float32))
    for i in range(4):
        pv = np.exp(verb_logits[i]) / np.exp(verb_logits[i]).sum()
        pn = np.exp(noun_logits[i]) / np.exp(noun_logits[i]).sum()
        pairs = sorted(((pv[v] * pn[n], v, n) for v in range(5) for n in range(3)), reverse=True)[:5]
        assert list(zip(r.action_verb[i].tolist(), r.action_noun[i].tolist())) == [(v, n) for _, v, n in pairs]
        np.testing.assert_allclose(r.action_score[i], [s for s, _, _ in pairs], rtol=1e-5)  # float32 softmax
    top = predictions.top(predictions.row["P01_01_1"], ("a", 1))["action"]
    assert top[0][0] == "put lid" and top[0][2] and not any(right for _, _, right in top[1:])


def test_filters_by_verb_noun_pair_and_result(predictions):
    rows = lambda **kw: [predictions.ids[r][-1] for r in predictions.select(**kw)]  # noqa: E731
    assert rows(verb=0) == ["0", "2"]
    assert rows(noun=0) == ["0", "3", "6"]
    assert rows(verb=1, noun=0) == ["3"]
    assert rows(pair=0) == ["0", "1", "2", "3"]          # take / put
    assert rows(pair=1) == ["4"]                         # open / close: no close left
    assert rows(result="verb wrong", run=("a", 0)) == ["1"]
    assert rows(result="verb right", run=("a", 0)) == ["0", "2", "3", "4", "6"]
    assert rows(result="action wrong", run=("a", 0)) == ["1"]        # its nouns are all right
    assert rows(result="noun right", run=("b", 0)) == ["2"]          # b always says pan
    assert rows(result="verb wrong", run=("a", 1)) == []
    assert [predictions.correct(r, ("a", 0))["verb"] for r in range(6)] == [True, False, True, True, True, True]
    assert [predictions.correct(r, ("b", 0))["noun"] for r in range(6)] == [False, False, True, False, False, False]
    with pytest.raises(ValueError, match="needs the run"):
        predictions.select(result="verb wrong")
    with pytest.raises(ValueError, match="result must be one of"):
        predictions.select(result="wrong", run=("a", 0))
    with pytest.raises(KeyError, match="no run of method 'b' with seed 1"):
        predictions.select(result="verb wrong", run=("b", 1))


def test_pair_confusion_counts_the_choice_between_the_two_verbs(predictions):
    # a, seed 0, take/put: segments 0 (take->take), 1 (put->take), 2 (take->take), 3 (put->put)
    table = predictions.pair_confusion(0, ("a", 0))
    assert list(table.index) == ["take", "put"]
    assert list(table.columns) == ["chose take", "chose put", "top-1 outside the pair"]
    assert table.to_numpy().tolist() == [[2, 0, 0], [1, 1, 0]]
    # b: take and put tie (the pair's first verb wins, as in study.pair_accuracy), shake is its top-1
    assert predictions.pair_confusion(0, ("b", 0)).to_numpy().tolist() == [[2, 0, 2], [2, 0, 2]]
    # open/close for a: segment 4 open->open (5, close, is not among the segments)
    assert predictions.pair_confusion(1, ("a", 0)).to_numpy().tolist() == [[1, 0, 0], [0, 0, 0]]
    assert predictions.pair_of(3) == 1 and predictions.pair_of(4) is None


def test_tables_side_by_side_and_for_static_pages(predictions):
    wide = predictions.top_table(1, [("a", 0), ("a", 1), ("b", 0)])
    assert list(wide.columns.get_level_values(0).unique()) == ["method A, seed 0", "method A, seed 1", "method B"]
    assert wide.loc[1, ("method A, seed 0", "verb")].startswith("take ")
    assert wide.loc[1, ("method A, seed 1", "verb")].startswith("put ")
    assert len(wide) == 5 and wide.loc[4, ("method B", "noun")] == ""   # three nouns: a top-3
    summary = predictions.summary([0, 4], [("a", 0)])
    assert summary.loc[("P01_01_4", "ground truth"), "actions"] == "open lid"
    assert summary.loc[("P01_01_4", "method A"), "verbs"].startswith("open ")


# ------------------------------------------------------------------ pictures

def _coloured(t=4, h=6, w=10):
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, ..., 0] = 40 * i + 10
        frames[i, ..., 2] = 200
    return frames


def test_strip_puts_frames_left_to_right_in_time():
    frames = _coloured()
    png = strip_png(frames, height=12, gap=2)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape == (12, 4 * 20 + 3 * 2, 3)   # 6x10 frames doubled to 12x20
    for i in range(4):
        assert image[6, i * 22 + 10].tolist() == [40 * i + 10, 0, 200]
    assert image[6, 21].tolist() == [255, 255, 255]   # the gap
    narrow = Image.open(io.BytesIO(strip_png(frames, height=100, max_width=86, gap=2)))
    assert narrow.width <= 86 and narrow.height < 100
    with pytest.raises(ValueError, match="uint8"):
        strip_png(frames.astype(np.float32))


def test_clip_is_a_looping_animation_of_every_frame():
    gif = Image.open(io.BytesIO(clip_gif(_coloured(), fps=5, height=12)))
    assert gif.format == "GIF" and gif.n_frames == 4 and gif.info["loop"] == 0
    assert gif.info["duration"] == 200
    reds = []
    for i in range(4):
        gif.seek(i)
        reds.append(np.asarray(gif.convert("RGB"))[6, 10, 0])
    assert np.abs(np.array(reds, int) - [10, 50, 90, 130]).max() <= 8   # GIF palette quantisation


@pytest.fixture(scope="module")
def tiny_data(synth_tiny, tmp_path_factory):
    from evitvid.study import read_splits, resolve_data
    root = tiny_copy(synth_tiny, tmp_path_factory)
    data = resolve_data(str(root))
    return data, read_splits(data)


def test_frames_are_the_evaluation_frames_decoded_once(tiny_data, monkeypatch):
    from evitvid.study import clip_dataset
    data, splits = tiny_data
    segments = splits.validation[:3]
    frames = SegmentFrames(data, segments, num_frames=4, cache_size=2)
    got = frames.frames(segments[1].narration_id)
    assert got.shape == (4, 64, 64, 3) and got.dtype == np.uint8
    # the model's own clip (resized to the frame size, so no resampling; normalised) un-normalised
    dataset = clip_dataset(data, "val", num_frames=4, crop_size=64, train=False, segments=segments)
    mean = np.array(dataset.transform.mean).reshape(3, 1, 1, 1)
    std = np.array(dataset.transform.std).reshape(3, 1, 1, 1)
    clip = (dataset[1]["video"].numpy() * std + mean) * 255
    assert np.abs(clip.transpose(1, 2, 3, 0) - got).max() < 0.51   # float32 normalisation round trip
    reads = []
    source = frames._dataset(4).source
    monkeypatch.setattr(source, "read", lambda *a: reads.append(a) or np.zeros((4, 64, 64, 3), np.uint8))
    assert frames.frames(segments[1].narration_id) is got and not reads        # cached
    frames.frames(segments[0].narration_id)
    frames.frames(segments[2].narration_id)                                     # evicts segment 1
    frames.frames(segments[1].narration_id)
    assert len(reads) == 3
    with pytest.raises(KeyError, match="not among the explorer's 3 segments"):
        frames.frames("P99_99_9")


# ------------------------------------------------------------------ the app, without a browser

class _Frames:
    """SegmentFrames' interface with a solid colour per segment (no decoding)."""
    num_frames = 4

    def __init__(self, ids):
        self.ids = list(ids)

    def frames(self, nid, num_frames=None):
        out = np.full((num_frames or 4, 8, 8, 3), 30 * self.ids.index(nid), np.uint8)
        out[:, 0, 0, 1] = 10 * np.arange(len(out))  # frames differ (a GIF merges identical ones)
        return out

    def strip(self, nid):
        return strip_png(self.frames(nid))

    def clip(self, nid):
        return clip_gif(self.frames(nid, 6))


def test_app_follows_the_selection(predictions):
    app = Explorer(predictions, _Frames(predictions.ids), methods=["a", "b"])
    assert app.narration_id == "P01_01_0" and "ready" in app.status.value
    assert "6 of 6 segments" in app.count.value
    first_image, first_table = app.image.value, app.top5.value
    app.segment.value = "P01_01_3"
    assert app.image.value == strip_png(_Frames(predictions.ids).frames("P01_01_3")) != first_image
    assert "data-segment='P01_01_3'" in app.top5.value and app.top5.value != first_table
    assert "showing <b>P01_01_3</b>" in app.status.value
    assert "take / put" in app.confusion.value and "method B" in app.confusion.value
    app.step(+1)
    assert app.narration_id == "P01_01_4"
    app.step(-2)
    assert app.narration_id == "P01_01_2"
    app.view.value = "clip"
    assert app.image.format == "gif" and Image.open(io.BytesIO(app.image.value)).n_frames == 6


def test_app_filters_and_labels_by_the_first_method(predictions):
    app = Explorer(predictions, _Frames(predictions.ids), methods=["a"])
    app.seed.value = 0
    app.result.value = "verb wrong"
    assert [v for _, v in app.segment.options] == ["P01_01_1"]
    assert app.segment.options[0][0] == "P01_01_1: put lid   verb ✗ noun ✓"
    assert app.narration_id == "P01_01_1"
    app.seed.value = 1            # seed 1 gets every verb right
    assert app.segment.options == () and "No segment matches" in app.info.value
    assert "0 of 6 segments" in app.count.value
    app.result.value = "any"
    app.pair.value = 1            # open / close
    assert [v for _, v in app.segment.options] == ["P01_01_4"]
    assert "open / close" in app.confusion.value
    app.pair.value = -1
    app.verb.value = 4            # shake: in no pair
    assert "in no reversal pair" in app.confusion.value
    app.methods.value = ("a", "b")
    assert list(app.seed.options) == [0]   # b has seed 0 only
    app.methods.value = ()
    assert app.methods.value == ("a",)     # at least one method stays chosen


def test_gallery_draws_each_segment_and_tabulates_every_method(predictions):
    examples = gallery_segments(predictions, 2)
    assert examples == ["P01_01_0", "P01_01_3"]
    fig, table = gallery(predictions, _Frames(predictions.ids), examples)
    assert len(fig.axes) == 2 * 4 and fig.axes[0].get_title(loc="left") == "P01_01_0: take cup"
    assert list(table.data.index.get_level_values("model")[:3]) == ["ground truth", "method A", "method B"]
    assert table.data.loc[("P01_01_3", "method A"), "verbs"].split("\n")[0] == "put 93%"
    assert "white-space: pre;" in table.to_html()


# ------------------------------------------------------------------ the tiny study (trained)

def tiny_study(tmp_path_factory) -> Path:
    """The tiny study's profile: the tiny dataset and two methods x two seeds trained for one
    epoch on 8 segments (about half a minute). Built once per pytest session, under the
    session's base temporary folder, whichever test module asks first."""
    from evitvid.data import synth
    from evitvid.study import load_profile, train_methods
    base = tmp_path_factory.getbasetemp() / "explorer-tiny-study"
    base.mkdir(exist_ok=True)
    profile = base / "tiny.yaml"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers share the base folder's parent only; be safe
        if not (base / "done").exists():
            root = synth.generate(base / "data", "tiny", seed=0, workers=1, progress=False)
            profile.write_text(yaml.safe_dump(dict(base=CPU_BASE,
                dataset=str(root), runs_root=str(base / "runs"), methods=["frame_averaging_random", "3d_random"],
                seeds=[0, 1], epochs=1, num_frames=4, crop_size=32, batch_size=4, max_train=8, reversal_clips=4,
                gallery_size=2)))
            train_methods(load_profile(profile))
            (base / "done").write_text("ok\n")
    return profile


@pytest.fixture(scope="module")
def trained_profile(tmp_path_factory):
    return tiny_study(tmp_path_factory)


@pytest.mark.slow
def test_study_predictions_agree_with_the_study(trained_profile):
    from evitvid.study import finished_methods, load_profile, predictions_frame, segment_results
    params = load_profile(trained_profile)
    predictions = study_predictions(params)
    assert set(predictions.runs) == {(m, s) for m in ("frame_averaging_random", "3d_random") for s in (0, 1)}
    assert predictions.default_methods == ["frame_averaging_random", "3d_random"]
    for key, group in finished_methods(params).items():
        for run in group:
            mine = predictions.run((key, run.params["seed"]))
            theirs = segment_results(run).set_index("narration_id").loc[predictions.ids]
            assert (mine.verb_top[:, 0] == theirs["verb_pred"].to_numpy()).all()
            assert (mine.correct("action", predictions.verb_true, predictions.noun_true)
                    == theirs["action_correct"].to_numpy()).all()
            top5 = predictions_frame(run).set_index("narration_id").loc[predictions.ids]
            assert [" ".join(map(str, r)) for r in mine.noun_top.tolist()] == list(top5["noun_top5"])


@pytest.mark.slow
def test_make_explore_check_passes_on_a_trained_study(trained_profile, capsys):
    assert check_inputs(str(trained_profile)) == 0 and capsys.readouterr().out == ""


def test_missing_runs_are_named_and_nothing_is_trained(tiny_data, tmp_path, capsys):
    from evitvid.study import load_profile
    data, _ = tiny_data
    profile = tmp_path / "p.yaml"
    runs_root = tmp_path / "runs"
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE, dataset=str(data.videos.parent), runs_root=str(runs_root),
                                           seeds=[0, 1], methods=["frame_averaging", "3d_random"])))
    # the pretraining first, then every run of every method (named by their parameters, the pretraining's too)
    missing = missing_inputs(load_profile(profile))
    assert [m.split(":")[0] for m in missing] == ["image pretraining (efficientvit_b0)", "frame averaging, seed 0",
                                                  "frame averaging, seed 1", "3D, random init, seed 0",
                                                  "3D, random init, seed 1"]
    assert missing[0].startswith(f"image pretraining (efficientvit_b0): no finished run {runs_root}")
    assert not runs_root.exists() or not any(runs_root.iterdir())
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE, dataset=str(data.videos.parent), runs_root=str(runs_root),
                                           seeds=[0, 1], methods=["3d_random"])))
    missing = missing_inputs(load_profile(profile))
    assert [m.split(":")[0] for m in missing] == ["3D, random init, seed 0", "3D, random init, seed 1"]
    assert check_inputs(str(profile)) == 1
    out = capsys.readouterr().out
    assert "run `make study` first" in out and "3D, random init, seed 1" in out
    assert check_inputs(str(tmp_path / "nope.yaml")) == 2
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE, dataset=str(tmp_path / "nowhere"))))
    assert missing_inputs(load_profile(profile)) == [f"dataset: {tmp_path / 'nowhere'} is not a folder"]
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE, dataset="synth:no-such-preset")))
    assert "embedded dataset" in missing_inputs(load_profile(profile))[0]


def test_make_explore_serves_the_template_that_fetches_nothing():
    """`make explore` passes Voila evitvid's template and the JUPYTER_PATH entry it lives under
    (what tests/test_explorer_browser.py serves, and where it checks that the page asks for
    nothing outside 127.0.0.1); the template extends Voila's lab template."""
    from evitvid.explorer import VOILA_JUPYTER_PATH, VOILA_TEMPLATE
    root = Path(__file__).resolve().parents[1]
    recipe = (root / "Makefile").read_text().split("\nexplore:", 1)[1].split("\n\n", 1)[0]
    assert f"--template={VOILA_TEMPLATE} " in recipe
    assert f"JUPYTER_PATH=$(CURDIR)/{VOILA_JUPYTER_PATH.relative_to(root).as_posix()}" in recipe
    template = VOILA_JUPYTER_PATH / "voila" / "templates" / VOILA_TEMPLATE
    assert json.loads((template / "conf.json").read_text()) == {"base_template": "lab"}
    assert "{%- extends 'voila/templates/lab/index.html.j2' -%}" in (template / "index.html.j2").read_text()
