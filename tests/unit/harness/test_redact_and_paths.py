"""harness.redact (the one rule) and harness.safe_paths (containment, OSError mapping), unit level."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from harness.errors import ConfigError, EnvironmentProblem, InputError
from harness.redact import MARKER, is_secret_name, redact_argv, redact_environment, redact_mapping, redact_text
from harness.safe_paths import contained, from_os_error, read_contained, safe_copy

SECRET = "s3cr3t-VALUE-9"


@pytest.mark.parametrize("name", ["HF_TOKEN", "WANDB_API_KEY", "DB_PASS", "GPG_PASSPHRASE", "MY_PASSWORD", "apiKey",
                                  "hfToken", "AWS_SECRET_ACCESS_KEY", "GITHUB_CREDENTIALS", "AUTH", "SESSION_COOKIE",
                                  "slurm.env.WANDB_API_KEY", "--hf-token", "--api-key", "SECRET_THING", "NCCL_AUTH",
                                  "DBPASS", "private_key"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["eos_token_id", "max_new_tokens", "first_token_delay_ms", "tokenizer",
                                  "output_tokens", "max_num_tokens", "kv_cache_dtype", "NCCL_IB_HCA", "PWD",
                                  "TOKEN_FILE", "model.path", "CUDA_VISIBLE_DEVICES", "KEY_PATH"])
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_mapping_redacts_secret_keys_at_any_depth_and_keeps_the_rest() -> None:
    data = {"slurm": {"env": {"WANDB_API_KEY": SECRET, "NCCL_IB_HCA": "mlx5"}},
            "backend": {"llm_args": {"hf_token": SECRET, "nested": {"password": [SECRET, SECRET]}}},
            "model": {"path": f"https://user:{SECRET}@hub.example/model", "eos_token_id": 2},
            "generation": {"max_new_tokens": 64}}
    out = redact_mapping(data)
    assert SECRET not in repr(out)
    assert out["slurm"]["env"] == {"WANDB_API_KEY": MARKER, "NCCL_IB_HCA": "mlx5"}
    assert out["backend"]["llm_args"]["nested"]["password"] == [MARKER, MARKER]
    assert out["model"] == {"path": f"https://user:{MARKER}@hub.example/model", "eos_token_id": 2}
    assert out["generation"] == {"max_new_tokens": 64}


def test_argv_environment_and_text() -> None:
    argv = ["harness", "run", "--set", f"slurm.env.WANDB_API_KEY={SECRET}", "--set",
            f"slurm.env={{HF_TOKEN: {SECRET}, NCCL_IB_HCA: mlx5}}", "--token", SECRET, f"--api-key={SECRET}",
            "--set", "generation.max_new_tokens=64"]
    out = redact_argv(argv)
    assert SECRET not in " ".join(out)
    assert out[-1] == "generation.max_new_tokens=64" and "NCCL_IB_HCA: mlx5" in out[5]
    env = redact_environment({"HARNESS_DB_PASS": SECRET, "NCCL_PASSPHRASE": SECRET, "CUDA_VISIBLE_DEVICES": "0"})
    assert env == {"HARNESS_DB_PASS": MARKER, "NCCL_PASSPHRASE": MARKER, "CUDA_VISIBLE_DEVICES": "0"}
    assert SECRET not in redact_text(f"export HF_TOKEN={SECRET}; curl -H 'Authorization: Bearer {SECRET}'")


def test_contained_refuses_links_and_dotdot_out_of_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "outside.txt").write_text("outside")
    (run / "inside.txt").write_text("inside")
    (run / "out_link").symlink_to("/etc/passwd")
    (run / "in_link").symlink_to("inside.txt")
    for bad in ("out_link", "../outside.txt", "/etc/passwd"):
        with pytest.raises(InputError, match="leads outside its run directory"):
            contained(run, bad)
    assert read_contained(run, "in_link") == "inside"
    safe_copy(run, "inside.txt", tmp_path / "copy" / "x.txt")
    assert (tmp_path / "copy" / "x.txt").read_text() == "inside"
    with pytest.raises(InputError):
        safe_copy(run, "out_link", tmp_path / "copy" / "y.txt")
    assert not (tmp_path / "copy" / "y.txt").exists()


@pytest.mark.parametrize(("code", "kind"), [(errno.ENOSPC, EnvironmentProblem), (errno.EROFS, EnvironmentProblem),
                                            (errno.EACCES, EnvironmentProblem), (errno.ENOTDIR, ConfigError),
                                            (errno.EISDIR, ConfigError)])
def test_os_errors_map_to_one_line_errors_with_exit_codes(code: int, kind: type) -> None:
    err = from_os_error(OSError(code, os.strerror(code), "/some/path"), "write the run's files")
    assert isinstance(err, kind)
    assert "\n" not in err.message and "/some/path" in err.message and err.hint


@pytest.mark.parametrize("qsl_idx", ['"1"', "1.5", "true", "null"])
def test_accuracy_log_qsl_idx_must_be_a_json_integer(tmp_path: Path, qsl_idx: str) -> None:
    from harness.logs import parse_accuracy_log

    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(f'[{{"seq_id": 0, "qsl_idx": {qsl_idx}, "data": "02000000"}}]')
    with pytest.raises(InputError, match="qsl_idx"):
        parse_accuracy_log(log)
