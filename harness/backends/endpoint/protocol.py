"""The wire format per flavour: /v1/completions bodies from a SamplingSpec, token ids from answers, SSE lines."""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.sampling import SamplingSpec
from harness.errors import ConfigError

try:
    import orjson

    def dumps(value: Any) -> bytes:
        """JSON bytes (orjson)."""
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        """Parse JSON (orjson)."""
        return orjson.loads(data)
except ImportError:  # the stdlib parser is enough; orjson only saves CPU at high request rates
    def dumps(value: Any) -> bytes:
        """JSON bytes (stdlib)."""
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON (stdlib)."""
        return json.loads(data)

__all__ = ["COMPLETIONS", "Delta", "ProtocolError", "completion_body", "int32_ids", "parse_choice", "sse_data",
           "sse_payloads", "stream_events"]

COMPLETIONS = "/v1/completions"


class ProtocolError(Exception):
    """An answer that does not follow the flavour's format (the message says what was wrong)."""


@dataclass(frozen=True)
class Delta:
    """What one answer (or one SSE event) carried for choice 0."""

    token_ids: list[int] | None  # None: the answer had no ids (generic flavour: text only)
    text: str
    finish_reason: str | None


def completion_body(flavour: str, model: str, prompt: Sequence[int], spec: SamplingSpec,
                    stream: bool) -> dict[str, Any]:
    """A /v1/completions body: the prompt as token ids, greedy (or the spec's sampling), stopping only at EOS.

    vllm: `return_token_ids`; `ignore_eos` + `stop_token_ids: [eos, *stop ids]` so that exactly those ids stop
    generation (vLLM would also stop at extra EOS ids of the checkpoint's generation_config otherwise).
    sglang: `return_token_ids` and `stop_token_ids: [eos, *stop ids]`. trtllm-serve: `detokenize: false` (its request
    model forbids unknown fields, so no `return_token_ids`). generic: standard OpenAI fields only (text comes back).
    """
    if spec.num_beams > 1:
        raise ConfigError(f"generation.num_beams is {spec.num_beams}; the endpoint backend decodes without beams",
                          hint="use num_beams: 1 with backend.kind endpoint")
    body: dict[str, Any] = {"model": model, "prompt": list(prompt), "max_tokens": spec.max_new_tokens, "n": 1,
                            "stream": stream, "stop": []}
    if spec.greedy:
        body["temperature"] = 0.0
    else:
        body.update(temperature=spec.temperature, top_p=spec.top_p)
        if flavour != "generic" and spec.top_k > 0:
            body["top_k"] = spec.top_k
    if spec.presence_penalty:
        body["presence_penalty"] = spec.presence_penalty
    if flavour == "generic":
        return body
    if spec.repetition_penalty != 1.0:
        body["repetition_penalty"] = spec.repetition_penalty
    if spec.min_new_tokens:
        body["min_tokens"] = spec.min_new_tokens
    body["stop_token_ids"] = spec.all_stop_ids
    if flavour == "vllm":
        body.update(return_token_ids=True, ignore_eos=True)
    elif flavour == "sglang":
        body["return_token_ids"] = True
    elif flavour == "trtllm-serve":
        body["detokenize"] = False
    return body


def parse_choice(flavour: str, answer: Any) -> Delta:
    """Choice 0 of a completion answer or stream event; ProtocolError names what is missing."""
    if not isinstance(answer, dict):
        raise ProtocolError(f"expected a JSON object, got {type(answer).__name__}")
    if answer.get("error") is not None:
        error = answer["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ProtocolError(f"server error: {str(message)[:200]}")
    choices = answer.get("choices")
    if not isinstance(choices, list):
        raise ProtocolError("answer has no 'choices' list")
    if not choices:
        return Delta([], "", None)  # a usage-only stream event
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ProtocolError(f"choices[0] is not an object ({type(choice).__name__})")
    text = choice.get("text") or ""
    finish = choice.get("finish_reason")
    if flavour == "generic":
        return Delta(None, text, finish)
    ids = choice.get("token_ids")
    if ids is None:
        field = "detokenize: false" if flavour == "trtllm-serve" else "return_token_ids"
        raise ProtocolError(f"choices[0].token_ids is missing: the server ignored {field}; "
                            f"is it really {flavour} (and recent enough)?")
    if not isinstance(ids, list) or not all(isinstance(token, int) for token in ids):
        raise ProtocolError("choices[0].token_ids is not a list of integers")
    return Delta(ids, text, finish)


def sse_data(line: bytes) -> bytes | None:
    """The payload of an SSE `data:` line; None for blank lines, comments and other fields."""
    if not line.startswith(b"data:"):
        return None
    return line[5:].strip()


def sse_payloads(block: bytes) -> tuple[list[bytes], bool]:
    """The non-empty `data:` payloads of complete SSE lines (a block ending at a line end), up to `[DONE]`;
    and whether `[DONE]` was among them. One list comprehension per network read, not a call per line."""
    payloads = [data for line in block.split(b"\n") if line.startswith(b"data:") and (data := line[5:].strip())]
    if b"[DONE]" in payloads:
        return payloads[:payloads.index(b"[DONE]")], True
    return payloads, False


def stream_events(flavour: str, payloads: Sequence[bytes], ids: list[int], texts: list[str]) -> str | None:
    """Parse SSE event payloads of one stream, in order: choice 0's token ids are appended to `ids` (text to
    `texts` for generic); returns the last non-null finish_reason among them (None if none).

    The usual event (an object whose choice 0 carries a `token_ids` list) takes a short path that only reads
    `token_ids` and `finish_reason`; anything else goes through parse_choice, which names what is wrong. The ids'
    type is checked once per stream, by int32_ids, not per token.
    """
    finish = None
    for payload in payloads:
        try:
            event = loads(payload)
        except ValueError:
            raise ProtocolError(f"broken SSE event: {payload[:80]!r}") from None
        if flavour != "generic" and type(event) is dict and "error" not in event:
            choices = event.get("choices")
            if type(choices) is list and choices and type(choice := choices[0]) is dict \
                    and type(new := choice.get("token_ids")) is list:
                ids += new
                finish = choice.get("finish_reason") or finish
                continue
        delta = parse_choice(flavour, event)
        if delta.token_ids is not None:
            ids += delta.token_ids
        texts.append(delta.text)
        finish = delta.finish_reason or finish
    return finish


def int32_ids(ids: list[int]) -> array[int]:
    """The ids as an int32 array (what LoadGen receives); ProtocolError if one is not an int32 integer."""
    try:
        return array("i", ids)
    except (TypeError, OverflowError):
        raise ProtocolError("choices[0].token_ids is not a list of integers (int32)") from None
