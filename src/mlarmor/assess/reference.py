"""Reference (shadow) models for membership inference: trained in parallel, cached on disk.

LiRA-style attacks compare the target's output on an example with the outputs of reference models
that were, and were not, trained on it. :func:`membership_splits` draws which examples each model
trains on (every example is in exactly half of the models); :func:`train_reference_models` trains
the models with a :class:`~mlarmor.targets.recipe.Recipe` on a local process pool and returns every
model's outputs on every example (:class:`ReferenceOutputs`). The models themselves are dropped:
the attacks need only their outputs.

Each model trains on one thread, in a worker process or (``workers=1``) in this process alike, so
results do not depend on the number of workers. With ``cache_dir`` each model's outputs are stored
as ``<key>.npz``, the key hashing everything that determines them (the recipe's fingerprint, the
data, the model's training subset and seed, the format version): a re-run reads them back.

Worker processes are started with ``forkserver`` (``spawn`` where it is missing), so a script that
calls :func:`train_reference_models` needs the usual ``if __name__ == "__main__":`` guard.

Reference:
    Carlini et al., "Membership Inference Attacks From First Principles" (LiRA), IEEE S&P 2022.
    https://arxiv.org/abs/2112.03570

Example:
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mlarmor.data import load_dataset
    >>> from mlarmor.targets.recipe import SklearnRecipe
    >>> data = load_dataset("demo:digits")
    >>> recipe = SklearnRecipe(LogisticRegression(max_iter=100), num_classes=10)
    >>> ref = train_reference_models(recipe, data.x[:300], data.y[:300], n_models=2, workers=1)
    >>> ref.outputs.shape, ref.keep.sum(axis=0).tolist()[:5]
    ((2, 300, 10), [1, 1, 1, 1, 1])
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import multiprocessing
import os
import pickle
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from numbers import Integral
from pathlib import Path
from typing import Any, cast

import numpy as np

from mlarmor import errors
from mlarmor._validation import check_int, check_seed, is_int
from mlarmor.errors import (
    InputError,
    InvalidParameterError,
    MlarmorError,
    ResourceLimitError,
    UnsupportedModelError,
)
from mlarmor.targets.recipe import Recipe

__all__ = ["ReferenceOutputs", "membership_splits", "train_reference_models"]

logger = logging.getLogger(__name__)

_OWNER = "train_reference_models"
_FORMAT = 1  # bump when the cache key or file layout changes: old files are then never read
_EVEN = "each example must be in exactly half of the reference models: use an even number such as 16"
# Start method. Measured on the 2-core dev machine (Python 3.11, torch 2.13 CPU): one call training
# 4 LogisticRegression reference models on the 1797 digits with 2 workers, in a fresh interpreter
# (importing mlarmor itself takes 2-4 s there), then a second call in the same process:
#   fork        0.35-0.40 s, then 0.35-0.40 s
#   forkserver  3.5-4.5 s,   then 0.5 s      (the server imports torch, scikit-learn, mlarmor once)
#   spawn       8.5-10 s,    then 8.5-10 s   (every worker of every pool imports them)
#   in-process  0.1-0.2 s                    (workers=1; these models train in ~40 ms each)
# fork is fastest but copies whatever threads the caller has started (torch's OpenMP pool after a
# forward pass, Rich's refresh thread behind the progress bar, an initialised CUDA context) into a
# child that cannot use them: hangs, or "Cannot re-initialize CUDA in forked subprocess". forkserver
# forks from a clean single-threaded server, so it is safe whatever the caller did, and only the
# first pool of a process pays the imports: ~3 s once, against reference models that train for
# seconds to minutes each. Python 3.14 made forkserver the POSIX default for these same reasons.
_START_METHODS = ("forkserver", "spawn")
_PRELOAD = ["mlarmor.assess.reference", "sklearn.base"]
_JOIN_SECONDS = 10.0


def membership_splits(n_examples: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Which examples each reference model trains on: every example is IN for exactly half of them.

    LiRA's construction: draw a uniform ``(n_models, n_examples)`` matrix with a numpy ``Generator``
    seeded by ``seed``, argsort each column, and mark IN the rows whose index in that order is below
    ``n_models // 2``. Each column is then a uniformly random half of the models, and each model
    trains on about half of the examples.

    Args:
        n_examples: Number of examples, at least 1.
        n_models: Number of reference models, even and at least 2.
        seed: Seed of the draw, an int >= 0.

    Returns:
        ``(n_models, n_examples)`` bool matrix; row ``m`` is the training set of model ``m``.

    Raises:
        InvalidParameterError: For an odd or too small ``n_models``, or another parameter out of its
            domain.
    """
    owner = "membership_splits"
    n = check_int(n_examples, "n_examples", owner)
    models = _check_models(n_models, owner)
    rng = np.random.default_rng(check_seed(seed, owner))
    order = rng.uniform(size=(models, n)).argsort(axis=0)
    keep: np.ndarray = order < models // 2
    return keep


@dataclass(frozen=True, eq=False)
class ReferenceOutputs:
    """Outputs of reference models on every example, and which examples each model trained on.

    The arrays are read-only.

    Attributes:
        keep: ``(M, N)`` bool; row ``m`` is the training set of model ``m``.
        outputs: ``(M, N, C)`` float32; model ``m``'s outputs on each of the ``N`` examples.
        logits: Whether ``outputs`` are logits (``True``) or probabilities (``False``).
        seeds: The training seed of each model, derived from the call's seed and the model's index.
        cached: How many models were read from the cache instead of trained.
        seconds: Wall-clock time of the call.
    """

    keep: np.ndarray
    outputs: np.ndarray
    logits: bool
    seeds: tuple[int, ...]
    cached: int
    seconds: float

    @property
    def n_models(self) -> int:
        """Number of reference models ``M``."""
        return int(self.keep.shape[0])

    @property
    def n_examples(self) -> int:
        """Number of examples ``N``."""
        return int(self.keep.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of outputs per example ``C``."""
        return int(self.outputs.shape[2])

    @property
    def trained(self) -> int:
        """How many models were trained by this call (not read from the cache)."""
        return self.n_models - self.cached


def train_reference_models(
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_models: int,
    seed: int = 0,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    queries: np.ndarray | None = None,
) -> ReferenceOutputs:
    """Train ``n_models`` reference models on random halves of ``(x, y)`` and collect their outputs.

    Model ``m`` trains on ``x[keep[m]], y[keep[m]]`` (``keep`` from :func:`membership_splits`) with a
    seed derived from ``(seed, m)``; its outputs on all of ``x`` are computed once and kept, the
    model is dropped. The same arguments give the same ``keep`` and, for recipes that seed their
    randomness (scikit-learn ``random_state``, torch recipes using their ``seed``), the same outputs,
    whatever ``workers`` is.

    Args:
        recipe: How to train a model like the target (:mod:`mlarmor.targets.recipe`).
        x: Inputs ``(N, ...)``, as the recipe's models take them.
        y: Class indices ``(N,)``.
        n_models: Number of reference models, even and at least 2 (LiRA uses 16 to 256).
        seed: Seed of the splits and of each model's training seed.
        workers: Worker processes; ``None`` uses every CPU, ``1`` trains in this process (handy for
            debugging: a failing recipe shows its full traceback).
        cache_dir: Folder holding each model's outputs as ``<key>.npz``; ``None`` caches nothing.
        progress: Called as ``progress(done, total)`` once before training (``done`` = models read
            from the cache) and after each model finishes.
        queries: Extra inputs ``(E, ...)`` (e.g. augmented copies of ``x``) whose outputs are
            computed too and appended after ``x``'s rows in ``outputs`` (``(M, N + E, C)``); models
            never train on them.

    Returns:
        The :class:`ReferenceOutputs`.

    Raises:
        InvalidParameterError: A parameter is out of its domain (odd ``n_models``, empty or
            mismatched ``x`` and ``y``, ...), or the recipe cannot be sent to worker processes.
        InputError: The recipe failed on a model (its message says which model and why), or the
            cache folder cannot be created. A recipe's own mlarmor errors keep their class.
        UnsupportedModelError: The recipe's outputs do not have the shape ``(N, C)`` for every model.
        ResourceLimitError: A worker process died (out of memory, a crash in native code).
    """
    start = time.perf_counter()
    if not isinstance(recipe, Recipe):
        raise InvalidParameterError(
            f"The 'recipe' parameter of {_OWNER} must be a Recipe (mlarmor.targets.recipe: SklearnRecipe, "
            f"TorchRecipe, load_recipe, recipe_for). Got a {type(recipe).__name__} instead."
        )
    xs, ys = _check_data(x, y)
    if queries is None:
        xq = xs
    else:
        extra = np.asarray(queries)
        if extra.shape[1:] != xs.shape[1:]:
            raise errors.invalid_parameter(
                "queries",
                _OWNER,
                f"inputs of shape (E, {', '.join(map(str, xs.shape[1:]))}) like x",
                extra.shape,
            )
        xq = np.concatenate([xs, extra.astype(xs.dtype, copy=False)])
    models = _check_models(n_models, _OWNER)
    seed = check_seed(seed, _OWNER)
    n_workers = (os.cpu_count() or 1) if workers is None else check_int(workers, "workers", _OWNER)
    if progress is not None and not callable(progress):
        raise InvalidParameterError(
            f"The 'progress' parameter of {_OWNER} must be a callable progress(done, total) or None. "
            f"Got {progress!r} instead."
        )
    keep = membership_splits(len(xs), models, seed)
    seeds = tuple(_model_seed(seed, m) for m in range(models))
    results: list[np.ndarray | None] = [None] * models
    paths: list[Path | None] = [None] * models
    if cache_dir is not None:
        folder = _cache_folder(cache_dir)
        prefix = _key_prefix(recipe.fingerprint(), xs, ys, xq)
        for m in range(models):
            path = paths[m] = folder / f"{_cache_key(prefix, keep[m], seeds[m])}.npz"
            results[m] = _read_cached(path, len(xq), recipe.logits)
    cached = sum(r is not None for r in results)
    pending = [m for m in range(models) if results[m] is None]
    logger.info(
        "%s: %d reference models on %d examples (%d cached, %d to train, %d workers)",
        recipe.name,
        models,
        len(xs),
        cached,
        len(pending),
        min(n_workers, max(len(pending), 1)),
    )
    if progress is not None:
        progress(cached, models)
    done = cached

    def accept(m: int, out: np.ndarray) -> None:
        nonlocal done
        results[m] = _checked_outputs(out, m, len(xq), recipe.name)
        path = paths[m]
        if path is not None:
            _write_cached(path, results[m], recipe.logits)  # type: ignore[arg-type]
        done += 1
        if progress is not None:
            progress(done, models)

    jobs = [(m, keep[m], seeds[m]) for m in pending]
    if min(n_workers, len(jobs)) > 1:
        _run_pool(recipe, xs, ys, xq, jobs, min(n_workers, len(jobs)), accept)
    elif jobs:
        _run_here(recipe, xs, ys, xq, jobs, accept)
    outputs = _stack(results, recipe.name)
    keep.setflags(write=False)
    outputs.setflags(write=False)
    return ReferenceOutputs(
        keep=keep,
        outputs=outputs,
        logits=bool(recipe.logits),
        seeds=seeds,
        cached=cached,
        seconds=time.perf_counter() - start,
    )


# ----------------------------------------------------------------------------- validation


def _check_models(n_models: object, owner: str) -> int:
    n = int(cast(Integral, n_models)) if is_int(n_models) else 0
    if n < 2 or n % 2:
        raise InvalidParameterError(
            f"The 'n_models' parameter of {owner} must be an even int >= 2: {_EVEN}. "
            f"Got {n_models!r} instead."
        )
    return n


def _check_data(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x), np.asarray(y)
    if xs.ndim < 1 or len(xs) < 2 or not (np.issubdtype(xs.dtype, np.number) or xs.dtype == bool):
        raise InvalidParameterError(
            f"The 'x' parameter of {_OWNER} must be a numeric array of 2 or more examples (N, ...). "
            f"Got an array of shape {xs.shape} and dtype {xs.dtype} instead."
        )
    if ys.ndim != 1 or len(ys) != len(xs) or not np.issubdtype(ys.dtype, np.integer) or ys.min() < 0:
        raise InvalidParameterError(
            f"The 'y' parameter of {_OWNER} must hold one class index >= 0 per example of x "
            f"({len(xs)} ints). Got an array of shape {ys.shape} and dtype {ys.dtype} instead."
        )
    return np.ascontiguousarray(xs), np.ascontiguousarray(ys)


def _model_seed(seed: int, index: int) -> int:
    """The training seed of model ``index``: independent streams per model, in [0, 2**31)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0] >> 1)


def _checked_outputs(out: np.ndarray, m: int, n: int, name: str) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 2:
        raise UnsupportedModelError(
            f"The recipe {name} gave outputs of shape {arr.shape} for reference model {m}; expected "
            f"({n}, C): one row per example, one column per class."
        )
    if not np.all(np.isfinite(arr)):
        logger.warning("%s: reference model %d has non-finite outputs (training diverged?)", name, m)
    return arr


def _stack(results: list[np.ndarray | None], name: str) -> np.ndarray:
    arrays = [r for r in results if r is not None]
    widths = {a.shape[1] for a in arrays}
    if len(arrays) != len(results) or len(widths) != 1:
        raise UnsupportedModelError(
            f"The reference models of {name} disagree on the number of classes ({sorted(widths)}): every "
            "model must output one column per class, even for classes missing from its training subset."
        )
    return np.stack(arrays)


# ----------------------------------------------------------------------------- cache


def _cache_folder(cache_dir: str | os.PathLike[str]) -> Path:
    folder = Path(cache_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"The reference-model cache folder {folder} cannot be created: {e}. Pass another "
            "cache_dir (--cache-dir), or none."
        ) from e
    return folder


def _key_prefix(fingerprint: str, x: np.ndarray, y: np.ndarray, evaluated: np.ndarray) -> str:
    """The part of every model's cache key shared by the call: format, recipe and data (hashed once)."""
    digest = hashlib.sha256(f"mlarmor-reference\0{_FORMAT}\0{fingerprint}\0".encode())
    arrays = (x, y) if evaluated is x else (x, y, np.ascontiguousarray(evaluated))
    for arr in arrays:
        digest.update(f"{arr.dtype.str}{arr.shape}\0".encode())
        digest.update(arr.data.cast("B"))
    return digest.hexdigest()


def _cache_key(prefix: str, keep: np.ndarray, seed: int) -> str:
    """One model's key: the call's prefix, the model's training subset and its seed."""
    digest = hashlib.sha256(f"{prefix}\0{seed}\0".encode())
    digest.update(np.packbits(keep).tobytes())
    return digest.hexdigest()


def _read_cached(path: Path, n: int, logits: bool) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            out = np.asarray(data["outputs"])
            flag = bool(data["logits"])
            version = int(data["version"])
    except Exception as e:  # a damaged cache file is any kind of broken: recompute it, never crash
        logger.warning(
            "Ignoring the unreadable cache file %s (%s: %s); retraining that model", path, type(e).__name__, e
        )
        return None
    if version != _FORMAT or flag != logits or out.dtype != np.float32 or out.ndim != 2 or out.shape[0] != n:
        logger.warning(
            "Ignoring the cache file %s: it holds %s %s outputs (format %d), not %d rows of %s; "
            "retraining that model",
            path,
            out.shape,
            out.dtype,
            version,
            n,
            "logits" if logits else "probabilities",
        )
        return None
    return out


def _write_cached(path: Path, outputs: np.ndarray, logits: bool) -> None:
    """Write atomically (a temporary file, then ``os.replace``): readers never see a half file."""
    tmp: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False
        ) as fh:
            tmp = Path(fh.name)
            np.savez(fh, outputs=outputs, logits=np.array(logits), version=np.array(_FORMAT))
        os.replace(tmp, path)
    except OSError as e:  # the cache only saves time: a full or read-only disk must not stop the audit
        logger.warning("Cannot write the cache file %s (%s); continuing without it", path, e)
        if tmp is not None:
            tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- running the recipe

Job = tuple[int, np.ndarray, int]

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class _Failure:
    """A recipe's exception, as plain data: the exception itself may not survive pickling."""

    index: int
    n_train: int
    kind: str
    message: str
    mlarmor: bool
    trace: str


def _train_one(
    recipe: Recipe, x: np.ndarray, y: np.ndarray, evaluated: np.ndarray, keep: np.ndarray, seed: int
) -> np.ndarray:
    model = recipe.train(x[keep], y[keep], seed)
    return np.asarray(recipe.outputs(model, evaluated), dtype=np.float32)


def _recipe_error(failure: _Failure, name: str) -> MlarmorError:
    detail = failure.message if failure.mlarmor else f"{failure.kind}: {failure.message}"
    cls: type[MlarmorError] = InputError
    if failure.mlarmor:
        found = getattr(errors, failure.kind, None)
        if isinstance(found, type) and issubclass(found, MlarmorError):
            cls = found
    return cls(
        f"The recipe failed training reference model {failure.index} on {failure.n_train} examples: "
        f"{detail.rstrip('.')}. Fix the recipe {name}; workers=1 runs it in this process, with the "
        "full traceback."
    )


def _as_failure(e: BaseException, index: int, n_train: int) -> _Failure:
    return _Failure(
        index=index,
        n_train=n_train,
        kind=type(e).__name__,
        message=str(e),
        mlarmor=isinstance(e, MlarmorError),
        trace="".join(traceback.format_exception(e)),
    )


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Torch and the BLAS/OpenMP pools on one thread, restored after (the in-process run)."""
    import torch

    threadpoolctl = importlib.import_module("threadpoolctl")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def _run_here(
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    evaluated: np.ndarray,
    jobs: list[Job],
    accept: Callable[[int, np.ndarray], None],
) -> None:
    with _one_thread():
        for m, keep, seed in jobs:
            try:
                out = _train_one(recipe, x, y, evaluated, keep, seed)
            except (Exception, SystemExit) as e:  # user code can raise anything
                raise _recipe_error(_as_failure(e, m, int(keep.sum())), recipe.name) from e
            accept(m, out)


def _init_worker(recipe: Recipe, x: np.ndarray, y: np.ndarray, evaluated: np.ndarray) -> None:
    """Runs once per worker process: one thread each (the pool provides the parallelism)."""
    import torch

    torch.set_num_threads(1)
    limits = importlib.import_module("threadpoolctl").threadpool_limits(limits=1)
    _WORKER.update(recipe=recipe, x=x, y=y, evaluated=evaluated, limits=limits)


def _worker_task(index: int, keep: np.ndarray, seed: int) -> tuple[int, np.ndarray | None, _Failure | None]:
    try:
        out = _train_one(_WORKER["recipe"], _WORKER["x"], _WORKER["y"], _WORKER["evaluated"], keep, seed)
        return index, out, None
    except (Exception, SystemExit) as e:  # user code can raise anything; send it back as data
        return index, None, _as_failure(e, index, int(keep.sum()))


def _context() -> BaseContext:
    available = multiprocessing.get_all_start_methods()
    method = next(m for m in _START_METHODS if m in available)
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # Imported once in the server, inherited by every worker it forks. Takes effect when this
        # process starts its forkserver; an already running one keeps its own list.
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _run_pool(
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    evaluated: np.ndarray,
    jobs: list[Job],
    workers: int,
    accept: Callable[[int, np.ndarray], None],
) -> None:
    try:
        pickle.dumps(recipe)
    except Exception as e:  # pickling reports any error type
        raise InvalidParameterError(
            f"The recipe {recipe.name} cannot be sent to worker processes ({type(e).__name__}: {e}). "
            "Define its class at module level, or pass workers=1 to train in this process."
        ) from e
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=_init_worker,
        initargs=(recipe, x, y, evaluated),
    )
    finished = False
    try:
        futures: dict[Future[tuple[int, np.ndarray | None, _Failure | None]], int] = {
            executor.submit(_worker_task, m, keep, seed): m for m, keep, seed in jobs
        }
        for future in as_completed(futures):
            try:
                index, out, failure = future.result()
            except BrokenProcessPool as e:
                raise ResourceLimitError(
                    f"A worker process died while training reference model {futures[future]} of "
                    f"{recipe.name}: it ran out of memory, crashed in native code, or could not import "
                    "the recipe's class (define it in a module, not in __main__). Use fewer workers; "
                    "workers=1 trains in this process and shows the error."
                ) from e
            if failure is not None:
                logger.debug("Traceback of reference model %d in its worker:\n%s", index, failure.trace)
                raise _recipe_error(failure, recipe.name)
            if out is not None:
                accept(index, out)
        finished = True
    finally:
        _stop(executor, now=not finished)


def _stop(executor: ProcessPoolExecutor, *, now: bool) -> None:
    """Shut the pool down; on an error or an interrupt, without waiting for models still training."""
    if not now:
        executor.shutdown(wait=True)
        return
    terminate = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if callable(terminate):
        terminate()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_JOIN_SECONDS)
