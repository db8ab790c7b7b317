"""Datasets and spike encoders for spiketune tasks.

`build_task` turns a sweep's `data.` config into encoded train, validation and
test splits. The built-in datasets are handwritten digits (`"digits"`) and wav
folders for keyword spotting or regression (`"audio"`).
"""

from __future__ import annotations

from spiketune.data.audio import AudioDataset, AudioFileError, load_audio_dataset
from spiketune.data.corpus import generate_corpus
from spiketune.data.encoders import (
    encode_delta,
    encode_direct,
    encode_latency,
    encode_rate,
    get_encoder,
)
from spiketune.data.filterbank import FrontEndSettings
from spiketune.data.task import (
    TaskData,
    build_task,
    resolve_data_paths,
    validate_data_config,
)

__all__ = [
    "AudioDataset",
    "AudioFileError",
    "FrontEndSettings",
    "TaskData",
    "build_task",
    "encode_delta",
    "encode_direct",
    "encode_latency",
    "encode_rate",
    "generate_corpus",
    "get_encoder",
    "load_audio_dataset",
    "resolve_data_paths",
    "validate_data_config",
]
