"""The first fit of a process says when it is about to compile the numba kernels (issue 14, item 1)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core.caching import FunctionCache

import pbglm as pb
from pbglm import _compile_notice

SRC = str(Path(pb.__file__).parents[1])
CHECK = (
    "import pbglm._compile_notice as c; "
    "print('deseq2', c.kernels_need_compiling('deseq2'), 'edger', c.kernels_need_compiling('edger')); "
    "c.notify_compile('deseq2')"
)


def _check_in_subprocess(**env):
    environ = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **env}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=environ, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


@pytest.fixture(scope="module")
def warm():
    """Both methods fit once in this process: their kernels are compiled and cached on disk."""
    a = pb.datasets.pasilla()[:, :2000].copy()
    for method in ("deseq2", "edger"):
        pb.tl.fit(a, "~ condition", method=method, filter_by_expr=False)
    pb.tl.fit(a, "~ condition", method="edger", filter_by_expr=False, legacy=True)
    return a


def test_every_core_module_has_cached_kernels():
    for modules in _compile_notice.KERNEL_MODULES.values():
        for name in modules:
            kernels = _compile_notice.module_kernels(name)
            assert kernels, name
            assert all(isinstance(k._cache, FunctionCache) for k in kernels), name  # @njit(cache=True)


def test_empty_cache_announces_compiling(tmp_path):
    out, err = _check_in_subprocess(NUMBA_CACHE_DIR=str(tmp_path))
    assert out.split() == ["deseq2", "True", "edger", "True"]
    assert _compile_notice.MESSAGE in err  # shown without any logging configuration


def test_warm_cache_is_quiet(warm):
    assert not _compile_notice.kernels_need_compiling("deseq2")
    assert not _compile_notice.kernels_need_compiling("edger")
    assert not _compile_notice.kernels_need_compiling("edger_legacy")
    for modules in _compile_notice.KERNEL_MODULES.values():  # the on-disk index, not only this process
        for name in modules:
            assert any(_compile_notice.cached_on_disk(k) for k in _compile_notice.module_kernels(name)), name
    out, err = _check_in_subprocess()
    assert out.split() == ["deseq2", "False", "edger", "False"]
    assert _compile_notice.MESSAGE not in err


def test_fit_warns_once_then_logs_info(warm, monkeypatch, caplog):
    monkeypatch.setattr(_compile_notice, "kernels_need_compiling", lambda method: True)
    monkeypatch.setattr(_compile_notice, "_announced", set())
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb.tl.fit(warm, "~ condition")
        pb.tl.fit(warm, "~ condition")
    levels = [r.levelno for r in caplog.records if r.getMessage() == _compile_notice.MESSAGE]
    assert levels == [logging.WARNING, logging.INFO]


def test_fit_is_quiet_when_compiled(warm, caplog):
    with caplog.at_level(logging.INFO, logger="pbglm"):
        pb.tl.fit(warm, "~ condition")
    assert _compile_notice.MESSAGE not in caplog.text


USED = (
    "import sys, pbglm as pb, pbglm._compile_notice as c; method, legacy = sys.argv[1], sys.argv[2] == 'True'; "
    "a = pb.datasets.pasilla()[:, :500].copy(); "
    "kw = dict(legacy=legacy) if method == 'edger' else {}; "
    "pb.tl.fit(a, '~ condition', method=method, filter_by_expr=False, **kw); "
    "key = 'edger_legacy' if legacy else method; "
    "print(' '.join(m for m in c.KERNEL_MODULES[key] if not any(k.overloads for k in c.module_kernels(m))))"
)


@pytest.mark.parametrize(("method", "legacy"), [("deseq2", False), ("edger", False), ("edger", True)])
def test_listed_modules_are_the_ones_a_fit_runs(warm, method, legacy):
    """A module listed for a method but never run by its fits would keep announcing a compile forever."""
    environ = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", USED, method, str(legacy)], capture_output=True, text=True,
                          env=environ, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"modules a {method} (legacy={legacy}) fit never runs: {done.stdout}"
