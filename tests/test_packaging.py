"""Packaging: the LibTorch CMake package (build, ctest, install, find_package from a
downstream project), the wheel in a fresh virtual environment, and the import-time
check of the torch the extension was built against."""

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _prebuilt_objects():
    """-DSAFESVD_PREBUILT_OBJECTS=... when setup.py's build (make build) left an object
    file for each library source that is current (_objects_fresh): the CMake test then
    links them instead of compiling the library again (~7 of its ~8.5 min on 2 cores).
    Editing a file no object depends on (a .cu, an emulation header) keeps them usable; a
    stale or missing object, or a build folder ninja cannot read, compiles it all, as does
    SAFESVD_CMAKE_FULL_BUILD=1."""
    if os.environ.get("SAFESVD_CMAKE_FULL_BUILD") == "1":
        return []
    import sysconfig

    temp = ROOT / "build" / f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"  # setuptools' build_temp
    sources = [p for p in (ROOT / "csrc").rglob("*.cpp") if p.parts[-2] not in ("cuda", "emulation")]
    objects = [temp / src.relative_to(ROOT).with_suffix(".o") for src in sources]
    if not all(obj.exists() for obj in objects) or not _objects_fresh(temp, objects):
        return []
    return [f"-DSAFESVD_PREBUILT_OBJECTS={temp}"]


def _ninja():
    """The ninja on PATH (the one torch's build runs), else the virtual environment's."""
    return shutil.which("ninja") or shutil.which("ninja", path=str(Path(sys.executable).parent))


def _objects_fresh(temp, objects) -> bool:
    """Whether ninja would leave every object as it is (a dry run: each is newer than
    every file its dependency log names, and was compiled by the command build.ninja
    holds now) and that command carries csrc/manifest.txt's flags and defines.

    The manifest's flags are compared, not its date: an edit that only adds kernel
    instances regenerates some units (ninja sees those) and leaves the others' objects
    current; until stop 52 an object older than the manifest counted as stale, and after
    any such edit the suite compiled the whole library a second time (11.5 min against
    4.5 min for a fresh clone)."""
    # The build's own ninja (_ninja), on a copy of the build folder's rules and logs:
    # another version of ninja rewrites a log it reads (1.13 read 1.11's,
    # then 1.11 discarded it and the wheel test compiled everything again).
    ninja = _ninja()
    if ninja is None or not all((temp / name).exists() for name in ("build.ninja", ".ninja_deps", ".ninja_log")):
        return False
    rules = (temp / "build.ninja").read_text()
    if not _has_manifest_flags(rules):
        return False
    import tempfile

    with tempfile.TemporaryDirectory(prefix="safesvd-deps-") as copy:
        for name in ("build.ninja", ".ninja_deps", ".ninja_log"):
            shutil.copy2(temp / name, Path(copy) / name)
        result = subprocess.run([ninja, "-C", copy, "-n", *map(str, objects)], capture_output=True, text=True)
    return result.returncode == 0 and "no work to do" in result.stdout


def _has_manifest_flags(rules: str) -> bool:
    """build.ninja (setup.py's) compiles with the manifest's C++ flags, in their order
    (`post_cflags`), and its defines for the CPU build (`cflags`)."""
    from safesvd import _manifest

    manifest = _manifest.read(ROOT)
    variables = dict(line.split(" = ", 1) for line in rules.splitlines() if " = " in line and not line[0].isspace())
    post, pre = variables.get("post_cflags", "").split(), variables.get("cflags", "").split()
    flags = manifest.flags.get("cxx", [])
    in_order = any(post[i:i + len(flags)] == flags for i in range(len(post) - len(flags) + 1))
    return in_order and all(f"-D{m}" in pre for m in manifest.macros(["cpu"]))


@pytest.mark.skipif(_ninja() is None, reason="ninja not found")
def test_prebuilt_object_check_sees_dependencies(tmp_path, monkeypatch):
    """The freshness check of the prebuilt objects, on a build of its own (absolute paths,
    a gcc depfile and the flag variables, as setup.py's): fresh as built, and still fresh
    once csrc/manifest.txt is edited without a change of flags (new kernel instances);
    stale once a header it was compiled from is newer, once the command that compiled it
    changed, or once the manifest's flags differ from the build's; not fresh without a
    dependency log or for an object ninja has no record of."""
    root = tmp_path / "root"
    (root / "csrc").mkdir(parents=True)
    manifest = root / "csrc" / "manifest.txt"
    manifest.write_text("flags cxx -O3 -fno-math-errno\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", root)
    build = tmp_path / "build"
    build.mkdir()
    src, hdr, obj = build / "unit.cpp", build / "unit.h", build / "unit.o"
    src.write_text("#include \"unit.h\"\n")
    hdr.write_text("// header\n")
    past = src.stat().st_mtime - 100
    for f in (src, hdr, manifest):
        os.utime(f, (past, past))

    def rules(post_cflags, extra=""):
        (build / "build.ninja").write_text(
            "cflags = -DNDEBUG\n"
            f"post_cflags = {post_cflags}\n"
            "rule cc\n"
            f"  command = cat $in > $out && printf '%s: %s %s\\n' $out $in {hdr} > $out.d{extra}\n"
            "  depfile = $out.d\n"
            "  deps = gcc\n"
            f"build {obj}: cc {src}\n")

    rules("-O3 -fno-math-errno -fopenmp")
    ninja = _ninja()
    run([ninja, "-C", build])
    assert _objects_fresh(build, [obj])
    later = obj.stat().st_mtime + 10
    os.utime(hdr, (later, later))  # a dependency newer than the object
    assert not _objects_fresh(build, [obj])
    os.utime(hdr, (past, past))
    assert _objects_fresh(build, [obj])
    manifest.write_text("flags cxx -O3 -fno-math-errno\n# an instance more\n")
    os.utime(manifest, (later, later))  # edited after the build, flags unchanged
    assert _objects_fresh(build, [obj])
    manifest.write_text("flags cxx -O2 -fno-math-errno\n")  # flags the build did not use
    assert not _objects_fresh(build, [obj])
    manifest.write_text("flags cxx -fno-math-errno -O3\n")  # the same flags in another order
    assert not _objects_fresh(build, [obj])
    manifest.write_text("flags cxx -O3 -fno-math-errno\n")
    assert _objects_fresh(build, [obj])
    rules("-O3 -fno-math-errno -fopenmp", extra=" && true")  # the command changed since the build
    assert not _objects_fresh(build, [obj])
    rules("-O3 -fno-math-errno -fopenmp")
    assert _objects_fresh(build, [obj])
    assert not _objects_fresh(tmp_path / "nowhere", [obj])  # no build folder, no log
    assert not _objects_fresh(build, [build / "other.o"])  # an object ninja has no record of
    (build / ".ninja_deps").unlink()
    assert not _objects_fresh(build, [obj])


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")
def test_cmake_package_ctest_and_downstream_find_package(tmp_path):
    prefix = torch.utils.cmake_prefix_path
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build, install = tmp_path / "build", tmp_path / "install"
    run(["cmake", "-S", ROOT, "-B", build, *generator, f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release",
         *_prebuilt_objects()])
    run(["cmake", "--build", build])
    out = run(["ctest", "--test-dir", build, "--output-on-failure"])
    assert "100% tests passed" in out.stdout
    run(["cmake", "--install", build, "--prefix", install])
    consumer = tmp_path / "consumer"
    run(["cmake", "-S", ROOT / "tests" / "cpp" / "consumer", "-B", consumer, *generator,
         f"-DCMAKE_PREFIX_PATH={install};{prefix}", "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", consumer])
    out = run([consumer / "consumer"])
    assert "all passed" in out.stdout
    assert "all passed" in run([consumer / "api_consumer"]).stdout
    # The C++ API's gradients (including a second order) equal the Python package's.
    _compare_cpp_api_with_python(consumer / "api_consumer", tmp_path)
    # Only the public header is installed.
    headers = sorted(p.relative_to(install).as_posix() for p in install.rglob("*.h"))
    assert headers == ["include/safesvd/safesvd.h"], headers


def _compare_cpp_api_with_python(binary, tmp_path):
    import safesvd
    from helpers import with_singular_values

    torch.manual_seed(7)
    n = 4
    A = with_singular_values([2.0, 2.0, 1.0, 0.5], n, n)  # a repeated pair: torch would be NaN
    A = A @ A.mT  # symmetric positive definite, same repeated pair squared
    W, V = torch.randn(n, n, dtype=torch.float64), torch.randn(n, n, dtype=torch.float64)
    path = tmp_path / "input.txt"
    path.write_text(" ".join(str(x) for x in [n, *A.flatten().tolist(), *W.flatten().tolist(), *V.flatten().tolist()]))
    lines = run([binary, path]).stdout.splitlines()
    cpp = {line.split()[0]: torch.tensor([float(x) for x in line.split()[1:]], dtype=torch.float64).view(n, n)
           for line in lines}

    def grad(loss, X, create_graph=False):
        X = X.clone().requires_grad_()
        return torch.autograd.grad(loss(X), X, create_graph=create_graph)[0], X

    sym = lambda X: (X + X.mT) / 2  # noqa: E731
    sqrtm_loss = lambda X: (W * safesvd.sqrtm(sym(X))).sum()  # noqa: E731
    expected = {
        "svd": grad(lambda X: (W * (lambda U, S, Vh: (U * S.unsqueeze(-2)) @ Vh)(*safesvd.svd(X))).sum(), A)[0],
        "sqrtm": grad(sqrtm_loss, A)[0],
        "polar": grad(lambda X: (W * safesvd.polar(X)[0]).sum(), A)[0],
        "eigh": grad(lambda X: (W.diagonal() * safesvd.eigh(sym(X))[0]).sum(), A)[0],
    }
    g, X = grad(sqrtm_loss, A, create_graph=True)
    expected["hvp"] = torch.autograd.grad((g * V).sum(), X)[0]
    for name, value in expected.items():
        torch.testing.assert_close(cpp[name], value, rtol=1e-10, atol=1e-10, msg=name)


SMOKE = """
import torch, safesvd
A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64)).requires_grad_()
U, S, Vh = safesvd.svd(A)
torch.linalg.norm((U * S) @ Vh).backward()
assert torch.allclose(A.grad, A.detach() / A.detach().norm()), A.grad
from importlib.metadata import version
print("safesvd", version("safesvd"), "ok")
"""


@pytest.mark.skipif(os.environ.get("SAFESVD_SKIP_WHEEL_TEST") == "1", reason="SAFESVD_SKIP_WHEEL_TEST=1")
def test_wheel_installs_and_runs_in_fresh_venv(tmp_path):
    """scripts/build_wheel.sh, then a fresh venv with only torch: import + smoke test."""
    env = dict(os.environ, FORCE_ONLY_CPU="1", PYTHON=sys.executable)
    run(["bash", ROOT / "scripts" / "build_wheel.sh", tmp_path / "dist"], env=env, cwd=ROOT)
    wheels = list((tmp_path / "dist").glob("safesvd-*.whl"))
    assert len(wheels) == 1
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    assert f"+pt{major}{minor}cpu" in wheels[0].name
    venv = tmp_path / "venv"
    # Nothing of the source tree may leak in: no PYTHONPATH, run outside the checkout
    # (pip would otherwise take the tree's egg-info as an installed safesvd).
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run([sys.executable, "-m", "venv", venv], env=clean, cwd=tmp_path)
    py = venv / "bin" / "python"
    torch_version = torch.__version__.split("+")[0]
    run([py, "-m", "pip", "install", "-q", f"torch=={torch_version}"], env=clean, cwd=tmp_path)
    run([py, "-m", "pip", "install", "-q", wheels[0]], env=clean, cwd=tmp_path)
    out = run([py, "-c", SMOKE], env=clean, cwd=tmp_path)
    assert "ok" in out.stdout


def test_import_with_another_torch_is_a_clear_error(monkeypatch):
    import safesvd
    from safesvd import _loader

    fake = types.ModuleType("safesvd._build_info")
    fake.TORCH_VERSION, fake.TORCH_CUDA_VERSION, fake.WITH_CUDA, fake.LOCAL_TAG = "2.99.0", None, False, "pt299cpu"
    monkeypatch.setitem(sys.modules, "safesvd._build_info", fake)
    monkeypatch.setattr(safesvd, "_build_info", fake, raising=False)
    with pytest.raises(ImportError, match=r"built against torch 2.99.0 but torch .* is installed"):
        _loader.check_build_matches_torch()
    fake.TORCH_VERSION = torch.__version__.split("+")[0]
    fake.WITH_CUDA, fake.TORCH_CUDA_VERSION = True, "12.8"
    if torch.version.cuda is None:
        with pytest.raises(ImportError, match="has no CUDA"):
            _loader.check_build_matches_torch()
