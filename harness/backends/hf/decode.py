"""Fast greedy decoding for Llama-architecture models: static KV cache, batched prefill, graph-replayed steps.

``StaticDecoder`` runs the model's own weights (read from a transformers ``LlamaForCausalLM``) through a
small forward pass of its own, so that every decode step has fixed shapes and no host synchronisation:
- the KV cache is preallocated ([rows, kv_heads, slots, head_dim] per layer) and written in place;
- prompts are left-padded to one width and prefilled in one batched pass (row chunks bound its memory);
- each decode step (embedding → layers → argmax → bookkeeping) reads and writes only static device
  tensors, so on CUDA it is captured once per (batch bucket, attended-length bucket) as a CUDA graph and
  then replayed; on the CPU the same step runs eagerly (that is what the CPU unit tests check);
- the host never reads a token while decoding: finished rows are detected on the device, and the
  "all rows finished" flag is copied back asynchronously every few steps (early stop without stalls).
Only the first tokens are read back right after prefill, and only when a caller streams them (Server).

Greedy decoding only (temperature 0, one beam, no repetition/presence penalty): the MLPerf reference
setting. ``unsupported_reason`` says why a model or sampling spec must use plain ``generate`` instead.
Token ids equal transformers' greedy ``generate`` (EOS suppressed before min_new_tokens, pad after EOS).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (the usual PyTorch alias)

from harness.backends.sampling import SamplingSpec

__all__ = ["StaticDecoder", "unsupported_reason"]

SLOT_BUCKET = 64  # attended cache length is rounded up to this: one graph per bucket, few wasted reads
CHECK_EVERY = 8  # decode steps between asynchronous "all rows finished" checks
CHECKS_IN_FLIGHT = 4  # the host runs at most this many checks ahead of the GPU
PREFILL_TOKENS = 16384  # prompt tokens per prefill chunk (bounds activation memory)
# torch.cuda.graph() synchronises and empties the allocator cache of every device when a capture begins,
# which breaks a capture running at the same time in another thread (replicas on other GPUs): one at a time.
_CAPTURE_LOCK = threading.Lock()


def unsupported_reason(model: Any, spec: SamplingSpec) -> str | None:
    """Why the static decoder cannot serve this model and sampling spec; None when it can."""
    config = model.config
    if getattr(config, "model_type", None) != "llama":
        return f"model_type is {getattr(config, 'model_type', None)!r}; the static decoder supports 'llama'"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "the model has attention or MLP biases"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act is {config.hidden_act!r}; expected 'silu'"
    if "dynamic" in str(getattr(model.model.rotary_emb, "rope_type", "default")):
        return "dynamic RoPE scaling depends on the sequence length"
    if not spec.greedy or spec.num_beams != 1:
        return "only greedy decoding with one beam is supported"
    if spec.repetition_penalty != 1.0 or spec.presence_penalty:
        return "repetition/presence penalties are not supported"
    return None


@dataclass
class _Layer:
    norm1: torch.Tensor
    eps1: float
    qkv: torch.Tensor  # q, k, v projections fused along the output dim
    out: torch.Tensor
    norm2: torch.Tensor
    eps2: float
    gate_up: torch.Tensor  # gate and up projections fused along the output dim
    down: torch.Tensor


def _fuse(linears: Sequence[Any]) -> torch.Tensor:
    """Concatenate Linear weights; the Linears keep working as views into the fused tensor (no copy kept)."""
    fused = torch.cat([linear.weight.data for linear in linears], dim=0)
    offset = 0
    for linear in linears:
        rows = linear.weight.shape[0]
        linear.weight.data = fused[offset:offset + rows]
        offset += rows
    return fused


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm: float32 statistics, cast back, then scale."""
    hidden = x.float()
    hidden = hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + eps)
    return weight * hidden.to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class _State:
    """Static device tensors one decode step reads and writes (sized for the largest batch)."""

    def __init__(self, rows: int, max_new: int, device: torch.device) -> None:
        def longs(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.long, device=device)

        self.token = longs(rows, 1)  # last generated token per row
        self.position = longs(rows, 1)  # RoPE position of that token
        self.pad = longs(rows, 1)  # left-padding slots per row
        self.slot = longs(1)  # cache slot the step writes
        self.count = longs(1)  # tokens generated so far
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)
        self.out = longs(rows, max_new)

    def small(self) -> list[torch.Tensor]:
        return [self.token, self.position, self.slot, self.count, self.done]


class StaticDecoder:
    """Greedy batched generation with a static KV cache; CUDA graphs on GPU, eager on CPU."""

    def __init__(self, model: Any, spec: SamplingSpec, max_batch_size: int, use_graphs: bool | None = None) -> None:
        reason = unsupported_reason(model, spec)
        if reason is not None:
            raise ValueError(f"static decoder unavailable: {reason}")
        self.spec = spec
        self.max_rows = max_batch_size
        body, config = model.model, model.config
        first = body.layers[0].self_attn
        self.device = body.embed_tokens.weight.device
        self.dtype = body.embed_tokens.weight.dtype
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = first.head_dim
        self.scaling = float(first.scaling)
        self.embed = body.embed_tokens.weight
        self.lm_head = model.get_output_embeddings().weight
        self.norm, self.norm_eps = body.norm.weight, body.norm.variance_epsilon
        self.rotary = body.rotary_emb
        pad = spec.pad_token_id  # padding and finished rows feed this id (pad itself may lie outside the vocab)
        self.filler = pad if 0 <= pad < self.embed.shape[0] else 0
        self.layers = [self._layer(layer) for layer in body.layers]
        self.use_graphs = self.device.type == "cuda" if use_graphs is None else use_graphs
        self.capacity = 0
        self.cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.state = _State(self.max_rows, spec.max_new_tokens, self.device)
        self._graphs: dict[tuple[int, int], Any] = {}
        self._pool: Any = None
        self._capture_stream: Any = None

    @staticmethod
    def _layer(layer: Any) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp
        return _Layer(layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon,
                      _fuse([attn.q_proj, attn.k_proj, attn.v_proj]), attn.o_proj.weight,
                      layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon,
                      _fuse([mlp.gate_proj, mlp.up_proj]), mlp.down_proj.weight)

    # --- sizes ---------------------------------------------------------------------------------------
    @property
    def weight_bytes(self) -> int:
        """Bytes of weights one decode step reads (all layers, final norm, LM head; one embedding row each)."""
        tensors = [self.norm, self.lm_head]
        for layer in self.layers:
            tensors += [layer.norm1, layer.qkv, layer.out, layer.norm2, layer.gate_up, layer.down]
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def kv_bytes_per_token(self) -> int:
        """Cache bytes one token occupies (K and V, all layers)."""
        return 2 * len(self.layers) * self.kv_heads * self.head_dim * self.embed.element_size()

    def _rows_for(self, count: int) -> int:
        """Batch bucket: the next power of two, capped at max_batch_size (one graph set per bucket)."""
        rows = 1
        while rows < count:
            rows *= 2
        return min(rows, self.max_rows)

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> int:
        """Size the cache for the longest prompt and capture every decode graph those batches can need.

        Done before LoadGen starts, so that the timed run never waits for a capture (each one synchronises
        the device, and in-process replicas take turns). Returns how many graphs were captured.
        """
        if not batch_sizes:
            return 0
        self._ensure_capacity(longest_prompt + self.spec.max_new_tokens)
        if not self.use_graphs:
            return 0
        before = len(self._graphs)
        context = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with context, torch.inference_mode():
            for rows in sorted({self._rows_for(size) for size in batch_sizes}):
                for attended in range(SLOT_BUCKET, self.capacity + SLOT_BUCKET, SLOT_BUCKET):
                    key = (rows, min(attended, self.capacity))
                    if key not in self._graphs:
                        self._capture(*key)
        return len(self._graphs) - before

    def _ensure_capacity(self, slots: int) -> None:
        """(Re)allocate the cache and RoPE tables for `slots` slots; a new cache drops captured graphs."""
        if slots <= self.capacity:
            return
        self.capacity = -(-slots // SLOT_BUCKET) * SLOT_BUCKET
        self.cache, self._graphs, self._pool = [], {}, None
        shape = (self.max_rows, self.kv_heads, self.capacity, self.head_dim)
        self.cache = [(torch.zeros(shape, dtype=self.dtype, device=self.device),
                       torch.zeros(shape, dtype=self.dtype, device=self.device)) for _ in self.layers]
        positions = torch.arange(self.capacity, device=self.device)
        cos, sin = self.rotary(self.embed[:1].unsqueeze(0), positions.unsqueeze(0))
        self.cos, self.sin = cos[0], sin[0]
        self.slots = positions

    # --- the model -----------------------------------------------------------------------------------
    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """GQA attention without repeating K/V: the query heads of one KV head become extra query rows."""
        rows, heads, length, dim = q.shape
        group = heads // self.kv_heads
        grouped = q.reshape(rows, self.kv_heads, group * length, dim)
        mask = mask if group == 1 else mask.repeat(1, 1, group, 1)
        out = F.scaled_dot_product_attention(grouped, k, v, attn_mask=mask, scale=self.scaling)
        return out.reshape(rows, heads, length, dim)

    def _forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, mask: torch.Tensor,
                 first_row: int, attended: int) -> torch.Tensor:
        """Hidden states of the last position; writes K/V of `tokens` into cache `slots` of rows first_row…"""
        rows, length = tokens.shape
        last = first_row + rows
        x = F.embedding(tokens, self.embed)
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)
        sizes = [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim]
        for layer, (k_cache, v_cache) in zip(self.layers, self.cache, strict=True):
            q, k, v = F.linear(_rms(x, layer.norm1, layer.eps1), layer.qkv).split(sizes, dim=-1)
            q = _rotate(q.view(rows, length, self.heads, self.head_dim).transpose(1, 2), cos, sin)
            k = _rotate(k.view(rows, length, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
            k_cache[first_row:last].index_copy_(2, slots, k)
            v_cache[first_row:last].index_copy_(2, slots, v.view(rows, length, self.kv_heads,
                                                                 self.head_dim).transpose(1, 2))
            attn = self._attend(q, k_cache[first_row:last, :, :attended], v_cache[first_row:last, :, :attended], mask)
            x = x + F.linear(attn.transpose(1, 2).reshape(rows, length, -1), layer.out)
            gate, up = F.linear(_rms(x, layer.norm2, layer.eps2), layer.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        return x[:, -1]

    def _next_token(self, hidden: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """Greedy choice; EOS is banned while fewer than min_new_tokens tokens exist (as in transformers)."""
        logits = F.linear(_rms(hidden, self.norm, self.norm_eps), self.lm_head)
        for eos in self.spec.all_stop_ids:  # every id that ends an answer is banned below min_new_tokens
            if self.spec.min_new_tokens > 0 and 0 <= eos < logits.shape[-1]:
                logits[:, eos] = torch.where(generated < self.spec.min_new_tokens, float("-inf"), logits[:, eos])
        return logits.argmax(dim=-1)

    def _stops(self, token: torch.Tensor) -> torch.Tensor:
        """Whether each token ends its answer (EOS, or another stop id of the checkpoint)."""
        if not self.spec.stop_token_ids:
            return token == self.spec.eos_token_id
        return torch.isin(token, torch.tensor(self.spec.all_stop_ids, device=token.device))

    # --- prefill and decode --------------------------------------------------------------------------
    def _prefill(self, prompts: Sequence[Sequence[int]], rows: int, width: int) -> torch.Tensor:
        """Fill the cache with the left-padded prompts; set the step state; return the first tokens."""
        padded = [list(p) for p in prompts] + [[self.filler]] * (rows - len(prompts))
        tokens = torch.tensor([[self.filler] * (width - len(p)) + p for p in padded], device=self.device)
        pad = torch.tensor([width - len(p) for p in padded], device=self.device).unsqueeze(1)
        key = self.slots[:width]
        positions = (key.unsqueeze(0) - pad).clamp(min=0)
        causal = key.unsqueeze(0) <= key.unsqueeze(1)  # [query, key]
        chunk = max(1, PREFILL_TOKENS // width)
        firsts = []
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            valid = (key.unsqueeze(0) >= pad[start:stop]).unsqueeze(1) & causal  # [rows, query, key]
            mask = (valid | torch.eye(width, dtype=torch.bool, device=self.device)).unsqueeze(1)
            hidden = self._forward(tokens[start:stop], positions[start:stop], key, mask, start, width)
            firsts.append(self._next_token(hidden, torch.zeros(1, dtype=torch.long, device=self.device)))
        first = torch.cat(firsts)
        s = self.state
        s.token[:rows, 0].copy_(first)
        s.position[:rows].copy_(width - pad)
        s.pad[:rows].copy_(pad)
        s.slot.fill_(width)
        s.count.fill_(1)
        s.done[:rows].copy_(self._stops(first))
        s.out[:rows, 0].copy_(first)
        return first

    def _step(self, rows: int, attended: int) -> None:
        """One decode step for `rows` rows attending `attended` slots; only static tensors are touched."""
        s = self.state
        slots = self.slots[:attended]
        valid = (slots.unsqueeze(0) >= s.pad[:rows]) & (slots.unsqueeze(0) <= s.slot)
        hidden = self._forward(s.token[:rows], s.position[:rows], s.slot, valid[:, None, None, :], 0, attended)
        token = self._next_token(hidden, s.count)
        finished = s.done[:rows]
        s.out[:rows].index_copy_(1, s.count, torch.where(finished, self.spec.pad_token_id, token).unsqueeze(1))
        s.token[:rows].copy_(torch.where(finished, self.filler, token).unsqueeze(1))
        finished.logical_or_(self._stops(token))
        s.position[:rows].add_(1)
        s.slot.add_(1)
        s.count.add_(1)

    def _run_step(self, rows: int, attended: int) -> None:
        if not self.use_graphs:
            self._step(rows, attended)
            return
        graph = self._graphs.get((rows, attended))
        if graph is None:
            graph = self._capture(rows, attended)
        graph.replay()

    def _capture(self, rows: int, attended: int) -> Any:
        """Warm the step up on a side stream (state restored afterwards), then capture it as a CUDA graph."""
        with _CAPTURE_LOCK:
            return self._capture_locked(rows, attended)

    def release(self) -> None:
        """Free graphs and cache on the decoder's own device (a CUDA graph must die where it was captured)."""
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                self._graphs.clear()
                self.cache, self._pool, self.capacity = [], None, 0
                torch.cuda.synchronize()

    def _capture_locked(self, rows: int, attended: int) -> Any:
        saved = [t.clone() for t in self.state.small()]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._step(rows, attended)
        torch.cuda.current_stream(self.device).wait_stream(side)
        for tensor, value in zip(self.state.small(), saved, strict=True):
            tensor.copy_(value)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        if self._capture_stream is None:  # torch.cuda.graph's default stream lives on the first device used
            self._capture_stream = torch.cuda.Stream(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool, stream=self._capture_stream, capture_error_mode="thread_local"):
            self._step(rows, attended)
        self._graphs[(rows, attended)] = graph
        return graph

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Sequence[int]],
                 on_first: Callable[[list[int]], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> np.ndarray:
        """Generated token ids, one row per prompt (int32; after a row's first EOS comes padding, which the SUT
        cuts); on_first gets the first tokens early. When cancelled() turns true, decoding stops after the
        current step and the rows produced so far are returned (the caller discards them)."""
        if not prompts or len(prompts) > self.max_rows:
            raise ValueError(f"batch of {len(prompts)} prompts; expected 1 to {self.max_rows}")
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                return self._generate(prompts, on_first, cancelled)
        return self._generate(prompts, on_first, cancelled)

    def _generate(self, prompts: Sequence[Sequence[int]], on_first: Callable[[list[int]], None] | None,
                  cancelled: Callable[[], bool] | None) -> np.ndarray:
        count, width = len(prompts), max(len(p) for p in prompts)
        rows, max_new = self._rows_for(count), self.spec.max_new_tokens
        self._ensure_capacity(width + max_new)
        first = self._prefill(prompts, rows, width)
        if on_first is not None:
            on_first(first[:count].tolist())
        produced = self._decode(rows, count, width, max_new, cancelled or _never)
        return self.state.out[:count, :produced].to(torch.int32).cpu().numpy()

    def _decode(self, rows: int, count: int, width: int, max_new: int, cancelled: Callable[[], bool]) -> int:
        """Replay decode steps until max_new tokens, all rows finished, or cancelled(); returns tokens per row."""
        checks: collections.deque[tuple[Any, torch.Tensor]] = collections.deque()
        produced = 1
        while produced < max_new and not cancelled():  # a host-side flag: no device sync
            attended = -(-(width + produced) // SLOT_BUCKET) * SLOT_BUCKET
            self._run_step(rows, min(attended, self.capacity))
            produced += 1
            at_check = produced % CHECK_EVERY == 0 and produced < max_new
            if at_check and self._all_done(checks, self.state.done[:count].all()):
                break
        return produced

    def _all_done(self, checks: collections.deque[tuple[Any, torch.Tensor]], flag: torch.Tensor) -> bool:
        """Queue an asynchronous read of `flag`; True once an earlier read says every row is finished."""
        if self.device.type != "cuda":
            return bool(flag)
        host = torch.empty(1, dtype=torch.bool, pin_memory=True)
        host.copy_(flag.reshape(1), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        checks.append((event, host))
        while checks and (len(checks) > CHECKS_IN_FLIGHT or checks[0][0].query()):
            event, host = checks.popleft()
            event.synchronize()
            if bool(host[0]):
                return True
        return False


def _never() -> bool:
    return False
