"""The quantize stage's calibration set: the MLCommons calibration file (pickle or CNN/DailyMail JSON) as local text.

TensorRT-LLM's quantize.py takes ``--calib_dataset`` as a Hugging Face dataset name (its default,
cnn_dailymail, is downloaded, and is not MLPerf's calibration set) or a local directory, which
tensorrt_llm/quantization/quantize_by_modelopt.py (get_calib_dataloader) opens with
``datasets.load_dataset(DIR, split="train")`` and reads the ``text`` column of. This writes such a
directory: ``train.jsonl``, one ``{"text": prompt}`` per sample, the prompt being the pickle's ``input``
column (the chat-formatted prompt whose ids are ``tok_input``), in file order. For Llama 3.1 8B the source is
the MLCommons ``cnn_dailymail_calibration.json`` (a ``.json`` path): its prompts are the reference's instruction
around each ``input`` article, the text whose ids are ``tok_input``.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.artifacts import write_text_atomic
from harness.benchmarks.llama3_1_8b.dataset import read_calibration_prompts
from harness.dataset import read_openorca_pickle
from harness.errors import InputError

__all__ = ["CALIBRATION_FILE", "write_calibration_dir"]

CALIBRATION_FILE = "train.jsonl"  # datasets infers the "train" split from the file name


def write_calibration_dir(pickle_path: Path, out_dir: Path) -> int:
    """Write out_dir/train.jsonl from the calibration pickle (read with the restricted unpickler), or from the
    CNN/DailyMail calibration JSON (a .json path, Llama 3.1 8B); the sample count."""
    if pickle_path.suffix.lower() == ".json":
        return _write_texts(read_calibration_prompts(pickle_path), out_dir)
    frame = read_openorca_pickle(pickle_path)
    if "input" not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise InputError(f"{pickle_path} has no 'input' column (the prompt text); has {columns}",
                         hint="use open_orca_gpt4_tokenized_llama.calibration_1000.pkl from MLCommons")
    texts = [str(text) for text in frame["input"]]
    if not texts or any(not text.strip() for text in texts):
        raise InputError(f"{pickle_path}: an empty calibration prompt", hint="use the MLCommons calibration pickle")
    return _write_texts(texts, out_dir)


def _write_texts(texts: list[str], out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / CALIBRATION_FILE, "".join(json.dumps({"text": t}) + "\n" for t in texts))
    return len(texts)
