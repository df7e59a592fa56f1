"""The prediction explorer: every trained run's answers on the validation segments, live.

- `predictions`: the runs' logits read once (`Predictions`): filters, top-5 verbs, nouns and
  actions, the confusion between a reversal pair's two verbs.
- `frames`: a segment's evaluation frames as a strip (PNG) or a playing clip (GIF), cached.
- `app`: the ipywidgets app (`explorer`), served by Voila with `make explore`.
- `gallery`: the same for a few segments as a figure and a table, for the static book.
- `sources`: a profile's runs as `Predictions`, and what is missing before the app can start.

`book/05_explorer.ipynb` calls these; `tests/test_explorer_browser.py` opens the app in a
headless browser. Voila serves it with the template `VOILA_TEMPLATE`, found under
`VOILA_JUPYTER_PATH` (an entry of JUPYTER_PATH): Voila's lab template without the Font
Awesome stylesheets it links from a CDN, so that the page asks for nothing outside the machine.
"""
from pathlib import Path

from .app import Explorer, explorer
from .frames import SegmentFrames, clip_gif, strip_png
from .gallery import gallery, gallery_segments
from .predictions import RESULTS, Predictions, RunPredictions, read_logits
from .sources import check_inputs, missing_inputs, study_predictions

VOILA_TEMPLATE = "evitvid"
VOILA_JUPYTER_PATH = Path(__file__).with_name("jupyter")  # holds voila/templates/evitvid/

__all__ = ["Explorer", "explorer", "SegmentFrames", "strip_png", "clip_gif", "gallery", "gallery_segments",
           "RESULTS", "Predictions", "RunPredictions", "read_logits", "study_predictions", "missing_inputs",
           "check_inputs", "VOILA_TEMPLATE", "VOILA_JUPYTER_PATH"]
