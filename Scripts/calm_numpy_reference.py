"""Independent float64 NumPy re-implementation of the CALM reference inference path.

What it covers (written from shared/spec/calm-reference.md §4-§5 and
shared/fixtures/calm/README.md; no reference code was copied or run):

* a minimal safetensors reader/writer (F64/F32/F16/BF16/I64/I32/...);
* the AE decoder (latent -> K token logits, tied output matrix E);
* the CALM backbone (embed_proj + Llama decoder layers with half-split RoPE, GQA, causal
  attention, no padding mask), recomputed in full at every step (no KV cache);
* the energy generative head (MLPGenerator.sample with explicit noise);
* `temperature_sampling` (T = 1 shortcut; T = 1/n batch approximation with the
  n, n-1, ..., 1 cascade, first-appearance candidate order, C(count, n) weights and CPython's
  `random.choices(k=1)` arithmetic bisect_right(cumsum(w), u*total, 0, len-1));
* the `generate` loop: prompt right-padded with [PAD] to a multiple of K, one chunk per step,
  finished rows get [PAD] chunks, EOS = any id of the appended chunk, stop at
  len >= max_length or all rows finished; return value = every [PAD] removed, left-aligned,
  [PAD]-filled to the running length.

All randomness is explicit: the caller passes the per-step uniform U[0,1) values (float32, as
torch.rand would have drawn them; the head consumes float32(u - 0.5)) and, for T < 1, one `u`
per row per step for the selection.

Validation (`python3 Scripts/calm_numpy_reference.py [fixtures_dir]`): replays the shipped goldens
`gen.*`, `gen_eos.*` (recorded `step_uniform`) and `ts_real.*` (recorded `uniform`, `u` from
manifest.json `ts_real.rows`) for calm_k4_mha and calm_k4_gqa, plus `head.*`, `bb.last_hidden_state`
and the selection rows of sampler_synthetic.json; every token/id must match exactly and every float
within 2e-4. It prints the max abs errors per group. Result at the time of writing: all pass;
largest errors step_hidden 1.6e-6, step_latent 3.9e-7, head decoded_logits 1.7e-5.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

# ----------------------------------------------------------------------------------------------
# safetensors

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """Returns ({name: array in its stored dtype; BF16 widened to float32}, metadata)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = blob[base + start: base + end]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).reshape(shape)
        else:
            arr = np.frombuffer(raw, dtype=_DTYPES[dt]).reshape(shape).copy()
        out[name] = arr
    return out, meta


def write_safetensors(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes tensors in the given dict order; header padded with spaces to a multiple of 8."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        key = _NAMES.get(arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
        if key is None:
            raise ValueError(f"{name}: unsupported dtype {arr.dtype}")
        data = arr.astype(_DTYPES[key], copy=False).tobytes(order="C")
        header[name] = {"dtype": key, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


# ----------------------------------------------------------------------------------------------
# primitives (float64)

def silu(x):
    return x / (1.0 + np.exp(-x))


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def layer_norm(x, w, b, eps=1e-6):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def top2_gap(logits):
    """top-1 minus top-2 along the last axis."""
    part = np.partition(logits, -2, axis=-1)
    return part[..., -1] - part[..., -2]


# ----------------------------------------------------------------------------------------------
# model


@dataclass
class CALM:
    cfg: dict
    ae_cfg: dict
    w: dict  # float64 weights, CALM names (ae under "ae_model.")
    K: int = 0
    pad: int = 0
    eos: int = 0
    bos: int = 0
    dtype: np.dtype = np.dtype(np.float64)
    diag: dict = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str, dtype=np.float64) -> "CALM":
        """dtype float64 is the reference re-implementation; float32 is only used as a
        robustness probe (does a float32 engine pick the same tokens?)."""
        cfg = json.load(open(os.path.join(folder, "config.json")))
        ae_dir = os.path.normpath(os.path.join(folder, cfg["ae_path"]))
        ae_cfg = json.load(open(os.path.join(ae_dir, "config.json")))
        raw, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
        w = {k: v.astype(dtype) for k, v in raw.items()}
        # head: accept mlp_generator.* or generative_head.* (aliases)
        for k in list(w):
            if k.startswith("generative_head."):
                alt = "mlp_generator." + k[len("generative_head."):]
                if alt in w:
                    assert np.array_equal(w[alt], w[k]), k
                else:
                    w[alt] = w[k]
        # tied AE matrix: accept either name
        e1, e2 = "ae_model.encoder.embed_tokens.weight", "ae_model.decoder.lm_head_weight"
        if e2 not in w:
            w[e2] = w[e1]
        m = cls(cfg=cfg, ae_cfg=ae_cfg, w=w)
        m.K = cfg["patch_size"]
        m.pad, m.eos, m.bos = cfg["pad_token_id"], cfg["eos_token_id"], cfg["bos_token_id"]
        # the AE actually used is the copy inside the CALM file; note whether it equals the folder's
        ae_raw, _ = read_safetensors(os.path.join(ae_dir, "model.safetensors"))
        same = all(np.array_equal(ae_raw[k].astype(np.float64), w["ae_model." + k])
                   for k in ae_raw if "ae_model." + k in w)
        m.diag["ae_folder_equals_embedded_ae"] = bool(same)
        m.dtype = np.dtype(dtype)
        return m

    # -- AE decoder ------------------------------------------------------------------------
    def ae_decode_logits(self, latents):
        """latents (..., z) -> logits (..., K, V) (each latent decoded as its own chunk)."""
        w, c = self.w, self.ae_cfg
        p = "ae_model.decoder."
        eps = c["rms_norm_eps"]
        n_dec = c["num_decoder_layers"]
        half = n_dec // 2
        H = c["hidden_size"]
        lead = latents.shape[:-1]
        x = linear(latents.reshape(-1, latents.shape[-1]), w[p + "latent_to_hidden.weight"], w[p + "latent_to_hidden.bias"])

        def layer(x, i):
            q = f"{p}decoder_layers.{i}."
            h = rms_norm(x, w[q + "layernorm.weight"], eps)
            h = linear(silu(linear(h, w[q + "mlp.gate_proj.weight"])) * linear(h, w[q + "mlp.up_proj.weight"]),
                       w[q + "mlp.down_proj.weight"])
            return x + h

        for i in range(half):
            x = layer(x, i)
        x = linear(x, w[p + "expand_layer.weight"], w[p + "expand_layer.bias"])  # (N, K*H)
        x = x.reshape(-1, self.K, H)
        for i in range(half, 2 * half):
            x = layer(x, i)
        x = rms_norm(x, w[p + "norm.weight"], eps)
        logits = x @ w[p + "lm_head_weight"].T
        return logits.reshape(*lead, self.K, -1)

    # -- generative head -------------------------------------------------------------------
    def head(self, hidden, noise):
        """hidden (..., H), noise (..., ns) (already minus 0.5) -> latent (..., z)."""
        w = self.w
        p = "mlp_generator."
        hidden = np.broadcast_to(hidden, noise.shape[:-1] + hidden.shape[-1:])
        e = layer_norm(linear(noise, w[p + "noise_embd.weight"], w[p + "noise_embd.bias"]),
                       w[p + "norm_noise.weight"], w[p + "norm_noise.bias"])
        y = layer_norm(linear(hidden, w[p + "hidden_embd.weight"], w[p + "hidden_embd.bias"]),
                       w[p + "norm_hidden.weight"], w[p + "norm_hidden.bias"])
        H = self.cfg["hidden_size"]
        for m in range(self.cfg["num_mlp_layers"]):
            q = f"{p}mlp_blocks.{m}."
            a = np.concatenate([layer_norm(e, w[q + "in_ln.weight"], w[q + "in_ln.bias"]), y], axis=-1)
            a = silu(linear(a, w[q + "linears.0.weight"], w[q + "linears.0.bias"]))
            a = silu(linear(a, w[q + "linears.2.weight"], w[q + "linears.2.bias"]))
            a = linear(a, w[q + "linears.4.weight"], w[q + "linears.4.bias"])
            gate, up = a[..., :H], a[..., H:]
            e = e + linear(silu(gate) * up, w[q + "down_proj.weight"], w[q + "down_proj.bias"])
        q = p + "final_layer."
        a = layer_norm(e, w[q + "in_ln.weight"], w[q + "in_ln.bias"])
        a = silu(linear(a, w[q + "linears.0.weight"], w[q + "linears.0.bias"]))
        return linear(a, w[q + "linears.2.weight"], w[q + "linears.2.bias"])

    # -- backbone --------------------------------------------------------------------------
    def rope(self, T):
        d = self.cfg["hidden_size"] // self.cfg["num_attention_heads"]
        inv = 1.0 / (self.cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float64) / d))
        f = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        emb = np.concatenate([f, f], axis=-1)
        return np.cos(emb).astype(self.dtype), np.sin(emb).astype(self.dtype)

    def backbone(self, ids):
        """ids (B, L*K) -> last_hidden_state (B, L, H), full causal pass from position 0."""
        w, c = self.w, self.cfg
        B, S = ids.shape
        K, H = self.K, c["hidden_size"]
        L = S // K
        eps = c["rms_norm_eps"]
        nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        d = H // nh
        r = nh // nkv
        x = w["transformer.embed_tokens.weight"][ids].reshape(B, L, K * H)
        x = linear(x, w["embed_proj.0.weight"], w["embed_proj.0.bias"])
        x = linear(silu(x), w["embed_proj.2.weight"], w["embed_proj.2.bias"])
        x = layer_norm(x, w["embed_proj.3.weight"], w["embed_proj.3.bias"], 1e-6)
        cos, sin = self.rope(L)

        def rot(t):  # t (B, heads, L, d)
            t1, t2 = t[..., : d // 2], t[..., d // 2:]
            return t * cos + np.concatenate([-t2, t1], axis=-1) * sin

        mask = np.triu(np.ones((L, L), dtype=bool), 1)
        for l in range(c["num_hidden_layers"]):
            p = f"transformer.layers.{l}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q = linear(h, w[p + "self_attn.q_proj.weight"]).reshape(B, L, nh, d).transpose(0, 2, 1, 3)
            k = linear(h, w[p + "self_attn.k_proj.weight"]).reshape(B, L, nkv, d).transpose(0, 2, 1, 3)
            v = linear(h, w[p + "self_attn.v_proj.weight"]).reshape(B, L, nkv, d).transpose(0, 2, 1, 3)
            q, k = rot(q), rot(k)
            k = np.repeat(k, r, axis=1)
            v = np.repeat(v, r, axis=1)
            s = q @ k.transpose(0, 1, 3, 2) * self.dtype.type(1.0 / math.sqrt(d))
            s = np.where(mask, -np.inf, s)
            s = s - s.max(axis=-1, keepdims=True)
            pr = np.exp(s)
            pr /= pr.sum(axis=-1, keepdims=True)
            a = (pr @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
            x = x + linear(a, w[p + "self_attn.o_proj.weight"])
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            x = x + linear(silu(linear(h, w[p + "mlp.gate_proj.weight"])) * linear(h, w[p + "mlp.up_proj.weight"]),
                           w[p + "mlp.down_proj.weight"])
        return rms_norm(x, w["transformer.norm.weight"], eps)

    # -- sampling --------------------------------------------------------------------------
    def decode_tokens(self, latents):
        """latents (..., z) -> (tokens (..., K) int64, argmax gaps (..., K))."""
        logits = self.ae_decode_logits(latents)
        return logits.argmax(axis=-1).astype(np.int64), top2_gap(logits)

    def temperature_sampling(self, hidden, uniform, temperature, choice_u=None):
        """hidden (B, H); uniform float32 (B, ns) for T = 1 or (B, N, ns) for T < 1;
        choice_u: B floats (T < 1). Returns (chunk (B, K), record dict)."""
        if not (0 < temperature <= 1):
            raise ValueError("temperature must be in (0, 1]")
        inv = 1.0 / temperature
        n0 = round(inv)
        if abs(inv - n0) > 1e-9 * abs(inv):
            raise ValueError("1/temperature must be an integer")
        noise = (np.asarray(uniform, np.float32) - np.float32(0.5)).astype(self.dtype)
        hidden = np.asarray(hidden).astype(self.dtype)
        if temperature == 1:
            latent = self.head(hidden, noise)
            toks, gaps = self.decode_tokens(latent)
            return toks, {"latent": latent, "gaps": gaps}
        latent = self.head(hidden[:, None, :], noise)  # (B, N, z)
        pool, gaps = self.decode_tokens(latent)  # (B, N, K)
        B = pool.shape[0]
        out = np.zeros((B, self.K), dtype=np.int64)
        rows = []
        for b in range(B):
            sel = select_from_pool([tuple(int(t) for t in row) for row in pool[b]], n0, float(choice_u[b]))
            out[b] = sel["candidates"][sel["index"]]
            rows.append(sel)
        return out, {"latent": latent, "pool": pool, "gaps": gaps, "rows": rows}

    def generate(self, prompt_ids, max_length, temperature, step_uniform, choice_u=None, eos_token_id=None):
        """The reference generate loop with explicit randomness.
        step_uniform[s] is the torch.rand output of step s ((B, ns) or (B, N, ns));
        choice_u[s][b] the random.random() of row b at step s (T < 1)."""
        eos = self.eos if eos_token_id is None else eos_token_id
        K, pad = self.K, self.pad
        ids = np.asarray(prompt_ids, dtype=np.int64)
        B, P = ids.shape
        if P % K:
            ids = np.concatenate([ids, np.full((B, K - P % K), pad, dtype=np.int64)], axis=1)
        padded = ids.copy()
        unfinished = np.ones(B, dtype=np.int64)
        steps = []
        s = 0
        while True:
            hs = self.backbone(ids)[:, -1, :]
            cu = None if choice_u is None else choice_u[s]
            chunk, rec = self.temperature_sampling(hs, step_uniform[s], temperature, cu)
            rec["hidden"] = hs
            rec["sampled"] = chunk.copy()
            chunk = chunk * unfinished[:, None] + pad * (1 - unfinished[:, None])
            rec["appended"] = chunk
            ids = np.concatenate([ids, chunk], axis=1)
            unfinished = unfinished * (~(chunk == eos).any(axis=1)).astype(np.int64)
            steps.append(rec)
            s += 1
            if ids.shape[1] >= max_length or unfinished.max() == 0:
                break
        out = np.full_like(ids, pad)
        for b in range(B):
            keep = ids[b][ids[b] != pad]
            out[b, : len(keep)] = keep
        return {"padded_prompt_ids": padded, "raw_ids": ids, "output_ids": out, "steps": steps,
                "finished": (1 - unfinished)}


def select_from_pool(pool: list[tuple], n0: int, u: float) -> dict:
    """Batch approximation for one row: first-appearance counts, cascade n0..1, C(count, n)
    weights, CPython choices(k=1) arithmetic on u."""
    counts: dict[tuple, int] = {}
    for t in pool:
        counts[t] = counts.get(t, 0) + 1
    order = list(counts)  # dict keeps first-appearance order
    for n in range(n0, 0, -1):
        cands = [t for t in order if counts[t] >= n]
        if cands:
            break
    weights = [math.comb(counts[t], n) for t in cands]
    cum, acc = [], 0
    for wgt in weights:
        acc += wgt
        cum.append(acc)
    total = float(cum[-1])
    x = u * total
    idx = bisect.bisect_right(cum, x, 0, len(cands) - 1)
    # distance of u*total to the nearest interior cumulative boundary (robustness of the draw)
    bounds = cum[:-1]
    margin = min((abs(x - c) for c in bounds), default=math.inf)
    return {"counts": [[list(t), counts[t]] for t in order], "n_used": n, "candidates": cands,
            "weights": weights, "u": u, "index": idx, "u_margin": margin}


# ----------------------------------------------------------------------------------------------
# validation against the shipped goldens


def _maxerr(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


def validate(fixtures: str, names=("calm_k4_mha", "calm_k4_gqa"), tol=2e-4) -> bool:
    manifest = json.load(open(os.path.join(fixtures, "manifest.json")))
    ok_all = True
    for name in names:
        model = CALM.load(os.path.join(fixtures, name))
        g, _ = read_safetensors(os.path.join(fixtures, f"golden_{name}.safetensors"))
        man = manifest[f"golden_{name}"]
        print(f"== {name}  (embedded AE == AE folder: {model.diag['ae_folder_equals_embedded_ae']})")
        for grp in ("gen", "gen_eos"):
            info = man[grp]
            p = grp + "."
            u = g[p + "step_uniform"]
            res = model.generate(g[p + "prompt_ids"], info["max_length"], info["temperature"], u,
                                 eos_token_id=info["eos_token_id"])
            st = res["steps"]
            errs = {
                "step_noise(vs u-0.5)": _maxerr((u - np.float32(0.5)), g[p + "step_noise"]),
                "step_hidden": _maxerr(np.stack([r["hidden"] for r in st]), g[p + "step_hidden"]),
                "step_latent": _maxerr(np.stack([r["latent"] for r in st]), g[p + "step_latent"]),
            }
            exact = {
                "n_steps": len(st) == info["n_steps"] == u.shape[0],
                "step_sampled_tokens": np.array_equal(np.stack([r["sampled"] for r in st]), g[p + "step_sampled_tokens"]),
                "raw_ids": np.array_equal(res["raw_ids"], g[p + "raw_ids"]),
                "output_ids": np.array_equal(res["output_ids"], g[p + "output_ids"]),
            }
            if p + "padded_prompt_ids" in g:
                exact["padded_prompt_ids"] = np.array_equal(res["padded_prompt_ids"], g[p + "padded_prompt_ids"])
            if "finished_rows" in info:
                exact["finished_rows"] = list(map(int, res["finished"])) == info["finished_rows"]
            gap = float(np.min(np.stack([r["gaps"] for r in st])))
            ok = all(exact.values()) and all(v <= tol for v in errs.values())
            ok_all &= ok
            print(f"  {grp:8s} {'PASS' if ok else 'FAIL'}  max abs err: "
                  + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
                  + "  exact: " + ", ".join(f"{k}={v}" for k, v in exact.items())
                  + f"  min argmax gap {gap:.4f}")
        # ts_real
        info = man["ts_real"]
        p = "ts_real."
        us = [row["call"]["u"] for row in info["rows"]]
        toks, rec = model.temperature_sampling(g[p + "hidden"], g[p + "uniform"], info["temperature"], us)
        errs = {"noise(vs u-0.5)": _maxerr(g[p + "uniform"] - np.float32(0.5), g[p + "noise"])}
        exact = {
            "pool_tokens": np.array_equal(rec["pool"], g[p + "pool_tokens"]),
            "selected": np.array_equal(toks, g[p + "selected"]),
        }
        for b, row in enumerate(info["rows"]):
            mine = rec["rows"][b]
            exact[f"row{b}.counts"] = mine["counts"] == [[list(t), c] for t, c in row["counts_first_appearance_order"]]
            exact[f"row{b}.candidates"] = [list(t) for t in mine["candidates"]] == row["call"]["population"]
            exact[f"row{b}.weights"] = mine["weights"] == row["call"]["weights"]
            exact[f"row{b}.index"] = mine["index"] == row["call"]["index"]
        exact["num_samples"] = g[p + "uniform"].shape[1] == info["num_samples"]
        gap = float(np.min(rec["gaps"]))
        ok = all(exact.values()) and all(v <= tol for v in errs.values())
        ok_all &= ok
        print(f"  ts_real  {'PASS' if ok else 'FAIL'}  max abs err: "
              + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
              + "  exact: " + ", ".join(f"{k}={v}" for k, v in exact.items())
              + f"  min argmax gap {gap:.4f}")
        # extra cross-checks of the pieces (head, backbone) when present
        if "head.hidden" in g:
            lat = model.head(g["head.hidden"], (g["head.uniform"] - np.float32(0.5)).astype(np.float64))
            lg = model.ae_decode_logits(lat)
            e1, e2 = _maxerr(lat, g["head.latent"]), _maxerr(lg, g["head.decoded_logits"])
            t_ok = np.array_equal(lg.argmax(-1), g["head.decoded_tokens"])
            ok = e1 <= tol and e2 <= tol and t_ok
            ok_all &= ok
            print(f"  head     {'PASS' if ok else 'FAIL'}  max abs err: latent {e1:.2e}, decoded_logits {e2:.2e}  exact: decoded_tokens={t_ok}")
        if "bb.input_ids" in g:
            e = _maxerr(model.backbone(g["bb.input_ids"]), g["bb.last_hidden_state"])
            ok = e <= tol
            ok_all &= ok
            print(f"  bb       {'PASS' if ok else 'FAIL'}  max abs err: last_hidden_state {e:.2e}")
    syn = os.path.join(fixtures, "sampler_synthetic.json")
    if os.path.exists(syn):
        n_ok = n_all = 0
        for case in json.load(open(syn)):
            for b, row in enumerate(case["rows"]):
                mine = select_from_pool([tuple(t) for t in case["pool"][b]], case["n_initial"], row["u"])
                good = ([list(t) for t in mine["candidates"]] == row["candidates"] and mine["weights"] == row["weights"]
                        and mine["index"] == row["selected_index"] and mine["n_used"] == row["n_used"]
                        and list(mine["candidates"][mine["index"]]) == case["output"][b])
                n_ok += good
                n_all += 1
        ok_all &= n_ok == n_all
        print(f"== sampler_synthetic.json: {n_ok}/{n_all} rows match (candidates, weights, n_used, index, output)")
    print("ALL PASS" if ok_all else "SOME CHECKS FAILED")
    return ok_all


if __name__ == "__main__":
    fx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "calm")
    sys.exit(0 if validate(fx) else 1)
