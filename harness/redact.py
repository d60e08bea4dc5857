"""One redaction rule for everything recorded or published: values of secret-looking names become a marker.

A name looks secret when its last word is (or ends in) a secret word (``HF_TOKEN``, ``WANDB_API_KEY``,
``DB_PASS``, ``GPG_PASSPHRASE``, ``apiKey``), or when any of its words is an unambiguous one (``SECRET``,
``PASSWORD``, ``CREDENTIALS``...). Names such as ``eos_token_id`` or ``max_new_tokens`` are not secret: the
secret word is not their last word. Free text additionally loses the password of ``scheme://user:pw@host``
URLs and the value of ``NAME=value`` pairs whose NAME looks secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["MARKER", "is_secret_name", "redact_argv", "redact_environment", "redact_mapping", "redact_text"]

MARKER = "<redacted>"

# The last word of a secret name is one of these (HF_TOKEN, DB_PASS, SSH_PIN) ...
_LAST_WORDS = frozenset({"TOKEN", "SECRET", "KEY", "PASS", "PASSWD", "PASSWORD", "PASSPHRASE", "PASSCODE", "PWD",
                         "CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "AUTHORIZATION", "COOKIE", "SIGNATURE",
                         "BEARER", "SESSION", "PIN", "OTP", "SALT"})
# ... or ends in one of these (APIKEY, HFTOKEN, DBPASS, MYSECRET).
_SUFFIXES = ("TOKEN", "SECRET", "KEY", "PASS", "PASSWD", "PASSWORD", "PASSPHRASE", "CREDENTIALS", "COOKIE")
# Any word of the name being one of these makes it secret (SECRET_ACCESS_ID, PASSWORD_FILE_CONTENT).
_ANY_WORDS = frozenset({"SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS",
                        "APIKEY", "PRIVATE", "AUTHORIZATION"})
# Last words that name something about a secret, not the secret itself (eos_token_id, key_dtype, TOKEN_FILE).
_NOT_SECRET_LAST = frozenset({"ID", "IDS", "INDEX", "LEN", "LENGTH", "COUNT", "SIZE", "TYPE", "DTYPE", "FILE",
                              "PATH", "DIR", "NAME", "MS", "S", "DELAY", "LIMIT", "MAX", "MIN"})
_PWD_NAMES = frozenset({"PWD", "OLDPWD"})  # the shell's working directories, not passwords

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):(?P<pw>[^@\s/]+)@")
_PAIR = re.compile(r"(?P<name>(?<![A-Za-z0-9_.-])[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=|:\s)(?P<value>\"[^\"]*\"|'[^']*'"
                   r"|[^\s,;&|'\"}\]]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def _words(name: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(_CAMEL.sub(r"\1_\2", name).upper()) if w]


def is_secret_name(name: str) -> bool:
    """True when a key or variable name looks like it holds a secret (see the module docstring)."""
    last_part = str(name).rsplit(".", 1)[-1].lstrip("-")
    if last_part.upper() in _PWD_NAMES:
        return False
    words = _words(last_part)
    if not words:
        return False
    if any(word in _ANY_WORDS for word in words):
        return True
    last = words[-1]
    if last in _NOT_SECRET_LAST:
        return False
    return last in _LAST_WORDS or last.endswith(_SUFFIXES)


def redact_text(text: str) -> str:
    """Free text with URL passwords, bearer tokens and secret NAME=value values replaced by the marker."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MARKER}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MARKER}", text)
    return _PAIR.sub(lambda m: f"{m.group('name')}{m.group('sep')}{MARKER}" if is_secret_name(m.group("name"))
                     and m.group("value") != MARKER else m.group(0), text)


def _redact_all(value: Any) -> Any:
    """Everything under a secret key: every scalar leaf becomes the marker (None and booleans stay)."""
    if isinstance(value, Mapping):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_all(v) for v in value]
    if value is None or isinstance(value, bool) or value == "":
        return value
    return MARKER


def redact_mapping(data: Any) -> Any:
    """A copy of a JSON-like structure with the values of secret-looking keys replaced by the marker."""
    if isinstance(data, Mapping):
        return {key: _redact_all(value) if is_secret_name(str(key)) else redact_mapping(value)
                for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact_text(data)
    return data


def redact_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables with secret-looking values replaced by the marker (names are kept)."""
    return {name: MARKER if is_secret_name(name) and value else redact_text(value) for name, value in environ.items()}


def _redact_assignment(item: str) -> str:
    """'a.b.NAME=value' (a --set override or a shell assignment) with a secret value or mapping redacted."""
    key, _, value = item.partition("=")
    if is_secret_name(key):
        return f"{key}={MARKER}"
    if value.lstrip()[:1] in ("{", "["):  # a YAML mapping or list given inline: redact its secret keys
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return f"{key}={redact_text(value)}"
        redacted = redact_mapping(parsed)
        if redacted != parsed:
            return f"{key}={yaml.safe_dump(redacted, default_flow_style=True, width=1 << 30).strip()}"
    return f"{key}={redact_text(value)}"


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with secret flag values (--token X, --api-key=X) and secret assignments redacted."""
    out: list[str] = []
    hide_next = False
    for raw in argv:
        item = str(raw)
        if hide_next:
            out.append(MARKER)
            hide_next = False
            continue
        if item.startswith("-") and "=" not in item:
            hide_next = is_secret_name(item)
            out.append(item)
        elif "=" in item and not item.startswith("="):
            out.append(_redact_assignment(item))
        else:
            out.append(redact_text(item))
    return out
