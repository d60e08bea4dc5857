"""submission.package: accuracy-log truncation with the hash line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from submission.package import ELLIPSIS, VIEWABLE_CHARS, originals_dir, truncate_accuracy_log


def _log(n: int) -> str:
    entries = [{"seq_id": i, "qsl_idx": i, "data": "0a000000" * 40, "token_count": 40} for i in range(n)]
    return json.dumps(entries, indent=0)


def test_large_log_keeps_head_and_tail_and_hash_of_original(tmp_path: Path) -> None:
    original = tmp_path / "orig.json"
    original.write_text(_log(500))
    accuracy_txt = tmp_path / "accuracy.txt"
    accuracy_txt.write_text("\nResults\n\n{'rouge1': 44.5, 'tokens_per_sample': 294.0}\n")
    target = tmp_path / "mlperf_log_accuracy.json"
    digest = truncate_accuracy_log(original, target, accuracy_txt)
    text = original.read_text()
    assert target.read_text() == text[:VIEWABLE_CHARS] + ELLIPSIS + text[-VIEWABLE_CHARS:]
    assert target.stat().st_size == 8199
    assert digest == hashlib.sha256(original.read_bytes()).hexdigest()
    assert accuracy_txt.read_text().splitlines()[-1] == f"hash={digest}"


def test_small_log_is_copied_whole_and_a_second_hash_replaces_the_first(tmp_path: Path) -> None:
    original = tmp_path / "orig.json"
    original.write_text(_log(3))
    accuracy_txt = tmp_path / "accuracy.txt"
    accuracy_txt.write_text("{'rouge1': 44.5}\nhash=old\n")
    target = tmp_path / "log.json"
    digest = truncate_accuracy_log(original, target, accuracy_txt)
    assert target.read_text() == original.read_text()
    assert accuracy_txt.read_text() == f"{{'rouge1': 44.5}}\nhash={digest}\n"


def test_originals_sit_beside_the_tree() -> None:
    assert originals_dir(Path("/x/sub")) == Path("/x/sub-originals")
