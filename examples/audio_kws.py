"""Generate a spoken keyword corpus with espeak-ng, then tune a network on it.

Run from the repository root::

    python examples/audio_kws.py

It writes ``kws_corpus/`` (about 150 short wav files) once, then runs the
sweep of ``examples/audio_kws.yaml`` and prints the ranked trials.
"""

from __future__ import annotations

import logging
from pathlib import Path

from spiketune.config import load_config
from spiketune.data import generate_corpus
from spiketune.tuning import SpikeTuner

HERE = Path(__file__).parent


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    corpus = Path("kws_corpus")
    if not corpus.is_dir():
        generate_corpus(corpus, words=("yes", "no"), seed=0)

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
