"""Generate a spoken keyword corpus with espeak-ng, then tune a network on it.

Run it from any folder::

    python examples/audio_kws.py

It writes ``kws_corpus/`` in the current folder once (208 short wav files in
a few seconds), then runs the sweep of ``examples/audio_kws.yaml`` and prints
the ranked trials.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from spiketune.config import load_config
from spiketune.data import generate_corpus
from spiketune.tuning import SpikeTuner

HERE = Path(__file__).parent
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland")
DISTRACTORS = ("up", "down", "left", "right")
UNKNOWN_CLASS = "_unknown"


def make_corpus(root: Path) -> None:
    """Write a balanced yes / no / unknown corpus to ``root``.

    Each keyword gets 72 clips: 4 voices, 3 pitches, 3 speeds and 2 noise
    levels. The distractors get fewer variations (one pitch, two speeds), so
    the unknown class contains 64 clips and no class dominates the accuracy.
    """
    generate_corpus(
        root,
        words=("yes", "no"),
        distractors=(),
        voices=VOICES,
        pitches=(30, 50, 70),
        speeds=(130, 160, 190),
        snr_db=(20, 10),
        seed=0,
    )
    # generate_corpus gives every variation to every word, so the distractors
    # are spoken in a separate call and moved into one unknown-word folder.
    unknown = root / UNKNOWN_CLASS
    unknown.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        generate_corpus(
            scratch,
            words=DISTRACTORS,
            distractors=(),
            voices=VOICES,
            pitches=(50,),
            speeds=(140, 180),
            snr_db=(20, 10),
            seed=1,
        )
        for path in sorted(Path(scratch).glob("*/*.wav")):
            shutil.move(path, unknown / path.name)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    corpus = Path("kws_corpus")
    if not corpus.is_dir():
        make_corpus(corpus)

    config = load_config(HERE / "audio_kws.yaml")
    tuner = SpikeTuner(
        config.bindings(),
        objective=config.objective.metric,
        mode=config.objective.mode,
        num_samples=config.budget.num_samples,
        searcher=config.searcher,
        scheduler=config.scheduler.name,
        scheduler_params=config.scheduler.params(),
        max_concurrent=config.resources.max_concurrent,
        storage_path=config.output_dir,
        name=config.name,
        test_top_k=config.budget.test_top_k,
    )
    result = tuner.fit()
    columns = ["rank", "trial_id", "status", "val_accuracy", "test_accuracy"]
    print(result.table[[c for c in columns if c in result.table]].head(5))


if __name__ == "__main__":
    main()
