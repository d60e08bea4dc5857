"""Hostile LiveCodeBench answers, scored as the gpt-oss-120b scorer scores them (extracted code, the runner, the
real sandbox, the outside comparison): each is contained and scored 0, nothing outside its scratch directory is
touched, no process survives, and the whole evaluation ends within its bound. A correct answer scored beside them
passes, so the scoring path itself works."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest

from harness.benchmarks.gpt_oss_120b.livecodebench import evaluate_codes, load_problems

pytestmark = pytest.mark.timeout(300)

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed: apt-get install bubblewrap (scripts/install-system.sh)",
                allow_module_level=True)

PROBLEM = "smoke-stdin-add"  # read A and B, print A+B (the embedded smoke problems)
TIMEOUT_S = 2  # per test, as lcb_runner's timeout (60 in real scoring): the answer's bound is (2 + 1) x tests + 5 s
CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"


def _hostile(marker: str, port: int, home_file: str, tmp_file: str) -> dict[str, str]:
    """Each answer adds its result correctly when it can, after its attack, so only containment makes it fail."""
    add = "a, b = map(int, input().split())\nprint(a + b)\n"
    return {
        "fork bomb": f"import posix\n# {marker}\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n"
                     "        pass\n",
        "endless loop": f"# {marker}\nwhile True:\n    pass\n",
        "64 GiB allocation": f"# {marker}\nblock = bytearray(64 * 1024**3)\n{add}",
        "connection to 127.0.0.1": f"import socket\n# {marker}\nsocket.create_connection(('127.0.0.1', {port}), "
                                   f"timeout=3).sendall(b'{marker}')\n{add}",
        "reading ~/.ssh": f"# {marker}\nimport os\nprint(os.listdir('/root/.ssh'))\n{add}",
        "reading /etc/shadow": f"# {marker}\nprint(open('/etc/shadow').read())\n{add}",
        "writing into the home directory": f"# {marker}\nopen({home_file!r}, 'w').write('pwned')\n"
                                           f"open({tmp_file!r}, 'w').write('pwned')\n{add}",
        "ignoring SIGTERM": f"import signal, time\n# {marker}\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                            "while True:\n    time.sleep(1)\n",
    }


def _survivors(marker: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes() + \
                    Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_hostile_answers_are_contained_and_scored_zero_within_the_bound() -> None:
    marker = f"lcb-hostile-{uuid.uuid4().hex}"
    home_file, tmp_file = f"/root/pwned-{marker}", f"/tmp/pwned-{marker}"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        answers = _hostile(marker, listener.getsockname()[1], home_file, tmp_file)
        problems = load_problems(None, [PROBLEM])
        items = [(code, PROBLEM) for code in (*answers.values(), CORRECT)]
        started = time.monotonic()
        results = evaluate_codes(items, problems, timeout=TIMEOUT_S)
        elapsed = time.monotonic() - started
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
    verdicts = dict(zip([*answers, "correct"], results, strict=True))
    assert verdicts.pop("correct").passed
    assert {name: r.passed for name, r in verdicts.items()} == dict.fromkeys(answers, False), verdicts
    assert not os.path.exists(home_file) and not os.path.exists(tmp_file)
    assert _survivors(marker) == []
    bound = (TIMEOUT_S + 1) * len(problems[PROBLEM].tests) + 5  # each answer's own limit, 2+ run in parallel
    assert elapsed < len(items) * bound, elapsed
