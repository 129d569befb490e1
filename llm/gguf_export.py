"""Turn a base model + LoRA adapter into one quantized GGUF file for llama.cpp, once, cached.

Steps: load the base with transformers, apply the adapter with peft and merge it
(`merge_and_unload`), write the merged weights losslessly (bf16 or f32, as stored) into a GGUF file
with the `gguf` package, then quantize that file with llama.cpp's own quantizer
(`llama_cpp.llama_model_quantize`, no separate binary). The result is cached under
$XDG_CACHE_HOME/voice-storyteller/gguf/<key>/model-<quant>.gguf, where the key covers the input
files (path, size, modification time), the quantization and this converter's version.

Only the Phi-3 architecture (Phi3ForCausalLM: Phi-3-mini 4k/128k, the tiny test model) is
written; its layout mirrors llama.cpp's convert_hf_to_gguf.py (Phi3MiniModel). The GGUF carries a
vocabulary so llama.cpp can load it, but the backend tokenizes and detokenizes with the Hugging
Face tokenizer, so prompts are token-for-token those of the transformers backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from errors import ModelError
from llm.weights import GB, ModelSource, check_memory, ensure_local, weights_bytes

log = logging.getLogger(__name__)

# Bump when the written file changes, so stale caches are rebuilt.
CONVERTER_VERSION = 2
QUANTIZATIONS = ("q4_0", "q4_k_m", "q8_0", "f16")
# llama.cpp's llama_ftype for each setting (include/llama.h).
FTYPES = {"f16": "LLAMA_FTYPE_MOSTLY_F16", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
          "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}
# Bits per weight of each, to check the disk before writing.
BITS = {"f16": 16.0, "q8_0": 8.5, "q4_k_m": 4.9, "q4_0": 4.5}
LLAMA_CPP_HINT = (
    "install llama-cpp-python: scripts/install.sh compiles it for this CPU (AVX2, or AVX-512 where the CPU has it); "
    'by hand: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    "pip install llama-cpp-python==0.3.36; or use llm.backend: local"
)


def cache_root() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "voice-storyteller" / "gguf"


def import_llama_cpp() -> Any:
    """The llama_cpp module, or a one-line ModelError saying how to install it."""
    try:
        import llama_cpp
    except ImportError as err:
        raise ModelError(f"llm.backend: llamacpp needs the llama-cpp-python package: {LLAMA_CPP_HINT}") from err
    except OSError as err:  # the package is there but its shared library does not load
        raise ModelError(f"llama-cpp-python is installed but its library does not load ({err}): {LLAMA_CPP_HINT}") from err
    # llama.cpp logs every tensor it loads or quantizes to stderr unless told otherwise.
    quiet = logging.getLogger("llama-cpp-python")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.ERROR)
    return llama_cpp


def _fingerprint(folder: str | None) -> list[Any]:
    if folder is None:
        return [None]
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    return [str(Path(folder).resolve())] + [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cache_key(base_dir: str, adapter_dir: str | None, quant: str) -> str:
    data = json.dumps([CONVERTER_VERSION, quant, _fingerprint(base_dir), _fingerprint(adapter_dir)])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def ensure_gguf(source: ModelSource, quant: str) -> Path:
    """The quantized GGUF of base + adapter, building it the first time (minutes for Phi-3-mini)."""
    if quant not in QUANTIZATIONS:
        raise ModelError(f"llm.quantization must be one of {', '.join(QUANTIZATIONS)} (got {quant!r})")
    wanted = [("the base model", source.base)] + ([("the adapter", source.adapter)] if source.adapter else [])
    base_dir, adapter_dir = (ensure_local(*wanted) + [None])[:2]
    out = cache_root() / cache_key(base_dir, adapter_dir, quant) / f"model-{quant}.gguf"
    if out.is_file():
        return out
    llama_cpp = import_llama_cpp()
    _check_architecture(base_dir)
    _check_disk(out.parent, base_dir, quant)
    start = time.monotonic()
    log.info("preparing the %s CPU model once: merge the adapter, convert to GGUF, quantize to %s (%s)",
             source.label, quant, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lossless = out.with_name("merged-lossless.gguf.tmp")
    try:
        write_gguf(base_dir, adapter_dir, lossless, name=source.label)
        quantize(llama_cpp, lossless, out, quant)
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelError(
            f"could not convert {source.label} to GGUF ({type(err).__name__}: {err}); "
            "only Phi-3 models are supported by llm.backend: llamacpp, use llm.backend: local for others"
        ) from err
    finally:
        lossless.unlink(missing_ok=True)
    log.info("GGUF ready in %.0f s: %s (%.2f GB)", time.monotonic() - start, out, out.stat().st_size / GB)
    return out


def _check_architecture(base_dir: str) -> None:
    try:
        kind = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {base_dir}/config.json: {err}") from err
    if kind != "phi3":
        raise ModelError(
            f"llm.backend: llamacpp converts Phi-3 models only; {base_dir} is a '{kind}' model "
            "(use llm.backend: local)"
        )


def _check_disk(folder: Path, base_dir: str, quant: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    stored = weights_bytes(base_dir)
    # The lossless intermediate is the size of the stored weights; the result is smaller.
    need = stored + stored * BITS[quant] / 16
    free = shutil.disk_usage(folder.parent).free
    if free < need + GB // 2:
        raise ModelError(
            f"not enough disk space to prepare the GGUF model: it needs about {need / GB:.1f} GB, "
            f"{folder.parent} has {free / GB:.1f} GB free. Free some space or set XDG_CACHE_HOME to a bigger disk."
        )


def quantize(llama_cpp: Any, src: Path, dst: Path, quant: str) -> None:
    """Quantize a GGUF with llama.cpp's quantizer (all cores), writing beside dst and renaming."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quant])
    params.nthread = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    tmp = dst.with_name(dst.name + ".tmp")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not quantize {src.name} to {quant} (code {rc})")
    tmp.rename(dst)


# ---------------------------------------------------------------------------------------------
# Writing the merged model


def load_merged(base_dir: str, adapter_dir: str | None) -> Any:
    """The base model with the adapter merged in (peft merge_and_unload), in its stored dtype."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.utils.logging.disable_progress_bar()
    cfg = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    stored = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    dtype = torch.bfloat16 if stored == "bfloat16" else torch.float32
    check_memory(base_dir, 2 if stored in ("bfloat16", "float16") else 4, 2 if dtype == torch.bfloat16 else 4)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return model.eval()


def write_gguf(base_dir: str, adapter_dir: str | None, path: Path, name: str = "model") -> None:
    """Write base (+ merged adapter) as a GGUF file, weights kept exactly (bf16 or f32)."""
    import gguf
    import torch

    model = load_merged(base_dir, adapter_dir)
    config = model.config
    if config.model_type != "phi3":
        raise ModelError(f"the GGUF converter writes Phi-3 models only, not '{config.model_type}'")
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.PHI3])
    lossless_bf16 = next(model.parameters()).dtype == torch.bfloat16
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if lossless_bf16 else gguf.LlamaFileType.ALL_F32)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    extra = _write_hparams(writer, config)
    tokens = _write_vocab(writer, base_dir, config.vocab_size)
    writer.add_name(_safe_name(name, tokens))

    tensors = list(_tensors(model, extra, config.num_hidden_layers))
    for gname, tensor in tensors:
        raw = gguf.GGMLQuantizationType.BF16 if tensor.dtype == torch.bfloat16 else gguf.GGMLQuantizationType.F32
        writer.add_tensor_info(gname, tuple(tensor.shape), _np_dtype(tensor), tensor.numel() * tensor.element_size(), raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, tensor in tensors:
        writer.write_tensor_data(_numpy(tensor))
    writer.close()


def _np_dtype(tensor: Any) -> Any:
    import numpy as np
    import torch

    return np.dtype(np.uint16) if tensor.dtype == torch.bfloat16 else np.dtype(np.float32)


def _numpy(tensor: Any) -> Any:
    import torch

    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view("uint16")
    return tensor.float().numpy()


def _rope(config: Any) -> dict[str, Any]:
    """rope_parameters (transformers 5) or rope_scaling + rope_theta (older configs), as one dict."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    legacy = getattr(config, "rope_scaling", None)
    if isinstance(legacy, dict):
        params = {**legacy, **params}
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    params.setdefault("rope_type", params.get("type", "default"))
    params.setdefault("original_max_position_embeddings",
                      getattr(config, "original_max_position_embeddings", None) or config.max_position_embeddings)
    return params


def _write_hparams(writer: Any, config: Any) -> list[tuple[str, Any]]:
    """Phi-3 hyper-parameters; returns the extra rope-factor tensors of long-context (LongRoPE) models."""
    import gguf
    import torch

    rope = _rope(config)
    n_embd, n_head = config.hidden_size, config.num_attention_heads
    rope_dims = int(rope.get("partial_rotary_factor", 1.0) * n_embd) // n_head
    max_pos, orig_pos = config.max_position_embeddings, rope["original_max_position_embeddings"]
    writer.add_context_length(max_pos)
    writer.add_rope_scaling_orig_ctx_len(orig_pos)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(config.num_key_value_heads or n_head)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(rope_dims)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_sliding_window(getattr(config, "sliding_window", None) or 0)
    long_f, short_f = rope.get("long_factor"), rope.get("short_factor")
    if not long_f:
        return []
    kind = str(rope.get("rope_type", "")).lower()
    scale = max_pos / orig_pos
    if kind in ("su", "longrope"):
        attn = math.sqrt(1 + math.log(scale) / math.log(orig_pos)) if scale > 1.0 else 1.0
    elif kind == "yarn":
        attn = 0.1 * math.log(scale) + 1.0 if scale > 1.0 else 1.0
    else:
        raise ModelError(f"rope scaling '{kind}' is not supported by the GGUF converter")
    if rope.get("attention_factor") is not None:
        attn = float(rope["attention_factor"])
    writer.add_rope_scaling_attn_factors(attn)
    if not short_f or len(long_f) != len(short_f) or len(long_f) != rope_dims // 2:
        raise ModelError(f"rope long/short factors must each have {rope_dims // 2} values")
    names = gguf.TENSOR_NAMES
    return [(names[gguf.MODEL_TENSOR.ROPE_FACTORS_LONG] + ".weight", torch.tensor(long_f, dtype=torch.float32)),
            (names[gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT] + ".weight", torch.tensor(short_f, dtype=torch.float32))]


def _tensors(model: Any, extra: list[tuple[str, Any]], n_blocks: int) -> Iterator[tuple[str, Any]]:
    """(GGUF name, tensor) pairs: 2-D weights as stored, 1-D ones (norms) in f32 as llama.cpp expects."""
    import gguf

    mapping = gguf.get_tensor_name_map(gguf.MODEL_ARCH.PHI3, n_blocks)
    tied = getattr(model.config, "tie_word_embeddings", False)
    yield from extra
    for hf_name, tensor in model.state_dict().items():
        # llama.cpp reuses token_embd for the output when output.weight is absent (tied embeddings).
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        gname = mapping.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            raise ModelError(f"the GGUF converter does not know the tensor {hf_name}")
        yield gname, tensor.float() if tensor.ndim == 1 else tensor


def _safe_name(name: str, tokens: list[Any]) -> str:
    """general.name, unless it would crash llama.cpp's vocabulary loader.

    llama.cpp gives Phi-3's own special tokens extra attributes when the model's name contains
    "phi3" or "phi-3", and fails to load ("unordered_map::at") when one of them is missing from
    the vocabulary, as with any other tokenizer (a folder named phi3-... is enough).
    """
    texts = {t.decode() if isinstance(t, bytes) else t for t in tokens}
    lowered = name.lower()
    if ("phi3" in lowered or "phi-3" in lowered) and not {"</s>", "<unk>", "<s>", "<|endoftext|>"} <= texts:
        return "merged-model"
    return name


def _write_vocab(writer: Any, folder: str, vocab_size: int) -> list[Any]:
    """The tokenizer as llama.cpp wants it: SentencePiece ("llama") or byte-level BPE ("gpt2")."""
    import gguf

    if (Path(folder) / "tokenizer.model").is_file():
        tokens, scores, types = _spm_vocab(folder, vocab_size)
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        special = gguf.SpecialVocab(folder, n_vocab=len(tokens))
    else:
        tokens, types = _bpe_vocab(folder, vocab_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    return tokens


def _spm_vocab(folder: str, vocab_size: int) -> tuple[list[bytes], list[float], list[int]]:
    """Phi-3's SentencePiece vocabulary plus its added tokens, as convert_hf_to_gguf.py writes it."""
    from gguf import TokenType

    try:
        from sentencepiece import SentencePieceProcessor
    except ImportError as err:
        raise ModelError("converting this tokenizer needs the sentencepiece package: pip install sentencepiece") from err
    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(Path(folder) / "tokenizer.model"))
    size = max(vocab_size, sp.vocab_size())
    tokens = [f"[PAD{i}]".encode() for i in range(size)]
    scores, types = [-10000.0] * size, [int(TokenType.UNUSED)] * size
    for i in range(sp.vocab_size()):
        kind = TokenType.NORMAL
        if sp.IsUnknown(i):
            kind = TokenType.UNKNOWN
        elif sp.IsControl(i):
            kind = TokenType.CONTROL
        elif sp.IsUnused(i):
            kind = TokenType.UNUSED
        elif sp.IsByte(i):
            kind = TokenType.BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode(), sp.GetScore(i), int(kind)
    tok_json = Path(folder) / "tokenizer.json"
    added = json.loads(tok_json.read_text(encoding="utf-8")).get("added_tokens", []) if tok_json.is_file() else []
    for entry in added:
        i = int(entry["id"])
        if i < size:
            tokens[i], scores[i] = entry["content"].encode(), -1000.0
            types[i] = int(TokenType.CONTROL if entry.get("special") else TokenType.USER_DEFINED)
    return tokens, scores, types


def _bpe_vocab(folder: str, vocab_size: int) -> tuple[list[str], list[int]]:
    from gguf import TokenType
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = tok.added_tokens_decoder
    size = max(vocab_size, len(by_id))
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(int(TokenType.UNUSED))
        elif i in added:
            tokens.append(added[i].content)
            types.append(int(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED))
        else:
            tokens.append(by_id[i])
            types.append(int(TokenType.NORMAL))
    return tokens, types
