"""The fail-closed call rule (issue 12, point 1): a call the allow-list does not know gates.

A pickle that *calls* a function outside the allow-list of reconstructors is high
(``pickle.unknown-call``) whatever its name; an unknown *class* reconstructed through the normal
class paths stays medium (``pickle.unknown-global``). Names resolve as the unpickler resolves them
(attribute chains, ``getattr`` with constant arguments, module aliases), and strings handed to a
library that evaluates them are rated as the code they spell. The pickles are assembled opcode by
opcode; nothing here is ever unpickled for real.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import importlib
import inspect
import io
import pickle
import warnings
import zoneinfo
from pathlib import Path

import numpy as np
import pytest

from mlarmor.findings import Severity
from mlarmor.scan import FileResult, Policy, Scanner
from mlarmor.scan.policy import aliases, candidates
from mlarmor.testing.corpus._pickle_asm import Asm, Build, Call, Global, NewObj, Node
from mlarmor.testing.tables import loans

_GETATTR = Global("builtins", "getattr")


def _scan(node: Node, proto: int = 2, policy: Policy | None = None) -> FileResult:
    data = Asm(proto).push(node).program()
    return (Scanner(policy=policy) if policy else Scanner()).scan_bytes(data)


def _ids(result: FileResult) -> set[str]:
    return {f.id for f in result.findings}


# -- (a) standard-library functions no deny list names ---------------------------------------------
# Modules whose public functions write files, byte-compile or open resources, chosen because none of
# them is on the deny list: the test takes *every* public function of each that the policy does not
# allow, so it checks the rule, not a list of names.
_STDLIB = ("wave", "py_compile", "compileall", "aifc", "sunau", "zipapp", "mimetypes", "pstats", "gettext")


def _unlisted_stdlib_functions() -> list[tuple[str, str]]:
    policy = Policy()
    found = []
    for module_name in _STDLIB:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # aifc, sunau
                module = importlib.import_module(module_name)
        except ImportError:  # removed from this Python
            continue
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module_name:
                continue
            if policy.classify(module_name, attr).status == "unknown":
                found.append((module_name, attr))
    return found


_FUNCTIONS = _unlisted_stdlib_functions()


def test_the_stdlib_sample_is_broad() -> None:
    assert len(_FUNCTIONS) >= 20
    assert {m for m, _ in _FUNCTIONS} >= {"wave", "py_compile", "compileall", "zipapp"}


@pytest.mark.parametrize(("module", "name"), _FUNCTIONS, ids=[f"{m}.{n}" for m, n in _FUNCTIONS])
@pytest.mark.parametrize("proto", [0, 2, 4])
def test_reduce_of_an_unlisted_stdlib_function_is_high(module: str, name: str, proto: int) -> None:
    result = _scan(Call(Global(module, name), ("/tmp/x", "wb")), proto)
    assert result.severity >= Severity.HIGH
    finding = next(f for f in result.findings if f.id == "pickle.unknown-call")
    assert finding.evidence["global"] == f"{module}.{name}"
    assert finding.evidence["calls"] == 1
    assert "/tmp/x" in finding.evidence["call_samples"][0]


@pytest.mark.parametrize(
    "opcodes",
    [
        b"(S'/tmp/x'\nS'wb'\niwave\nopen\n.",  # INST with arguments runs the callable
        b"(cwave\nopen\nS'/tmp/x'\nS'wb'\no.",  # OBJ likewise
        b"\x80\x02cwave\nopen\nX\x06\x00\x00\x00/tmp/x\x85\x81.",  # NEWOBJ on something that is no class
        b"\x80\x04\x8c\x04wave\x8c\x04open\x93\x8c\x06/tmp/x\x85}\x92.",  # NEWOBJ_EX likewise
    ],
    ids=["INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"],
)
def test_every_calling_opcode_is_a_call(opcodes: bytes) -> None:
    result = Scanner().scan_bytes(opcodes)
    assert result.severity >= Severity.HIGH
    assert "pickle.unknown-call" in _ids(result)


# -- (b) reached through the defining module, or through a module alias ---------------------------
@pytest.mark.parametrize(
    ("module", "name", "severity"),
    [
        ("scipy.io.matlab._mio", "savemat", Severity.HIGH),  # defines scipy.io.savemat
        ("scipy.io", "savemat", Severity.HIGH),
        ("_signal", "alarm", Severity.CRITICAL),  # the C module behind signal.*
        ("posixpath", "system", Severity.CRITICAL),  # os.path is posixpath: os.* is denied
        ("genericpath", "exists", Severity.CRITICAL),
        ("numpy._core.multiarray", "_reconstruct", Severity.NONE),  # NumPy 2 spelling of an allowed name
        ("_datetime", "datetime", Severity.NONE),  # the C module behind datetime
    ],
)
def test_aliases_and_defining_modules(module: str, name: str, severity: Severity) -> None:
    result = _scan(Call(Global(module, name), ("x",)))
    assert result.severity == severity, result.findings


def test_one_resolution_function_spells_every_alias() -> None:
    assert "os.system" in candidates("posix.system")
    assert "os.system" in candidates("posixpath.os.system")
    assert "os.path.system" in candidates("posixpath.system")
    assert "operator.attrgetter" in candidates("_operator.attrgetter")
    assert "numpy.core.multiarray.scalar" in aliases("numpy._core.multiarray.scalar")
    assert "numpy._core.multiarray.scalar" in aliases("numpy.core.multiarray.scalar")


# -- (c) getattr with constant arguments resolves like the unpickler -------------------------------
def test_allowed_callable_reached_through_getattr_is_not_an_alarm() -> None:
    # what pickle protocol 2 writes for ZoneInfo: getattr(ZoneInfo, "_unpickle")("Europe/Paris", 1)
    unpickle = Call(_GETATTR, (Global("zoneinfo", "ZoneInfo"), "_unpickle"))
    result = _scan(Call(unpickle, ("Europe/Paris", 1)))
    assert result.severity == Severity.NONE, result.findings


def test_nested_class_through_getattr_is_medium() -> None:
    # protocol < 4 reaches Outer.Inner through getattr, then NEWOBJ + BUILD: a class reconstruction
    inner = Call(_GETATTR, (Global("mypkg.models", "Net"), "Head"))
    result = _scan(Build(NewObj(inner), {"w": 1}))
    assert result.severity == Severity.MEDIUM, result.findings
    assert _ids(result) == {"pickle.unknown-global"}


def test_unknown_method_reached_through_getattr_and_called_is_high() -> None:
    method = Call(_GETATTR, (Global("collections", "OrderedDict"), "fromkeys"))
    result = _scan(Call(method, (("a",),)))
    assert result.severity == Severity.HIGH
    assert any(f.evidence.get("global") == "collections.OrderedDict.fromkeys" for f in result.findings)


def test_denied_callable_reached_through_getattr_keeps_getattr_critical() -> None:
    method = Call(_GETATTR, (Global("numpy", "lib"), "npyio"))
    result = _scan(Call(Call(_GETATTR, (method, "savetxt")), ("x", [1])))
    assert result.severity == Severity.CRITICAL
    names = {f.evidence.get("global") for f in result.findings}
    assert "builtins.getattr" in names


def test_getattr_on_something_not_named_stays_critical() -> None:
    # the base is the result of a call: nothing says what the attribute is
    obj = Call(Global("collections", "OrderedDict"), ())
    result = _scan(Call(Call(_GETATTR, (obj, "popitem")), ()))
    assert result.severity == Severity.CRITICAL


# -- (d) an unknown function is called, an unknown class is reconstructed ---------------------------
def test_third_party_function_called_is_high() -> None:
    result = _scan(Call(Global("mypkg.helpers", "run"), ("payload",)))
    assert result.severity == Severity.HIGH
    assert _ids(result) == {"pickle.unknown-call"}


@pytest.mark.parametrize(
    "node",
    [
        Build(
            Call(
                Global("copyreg", "_reconstructor"),
                (Global("mypkg.models", "Net"), Global("builtins", "object"), None),
            ),
            {"w": 1},
        ),
        Build(NewObj(Global("mypkg.models", "Net")), {"w": 1}),
        Build(NewObj(Global("mypkg.models", "Point"), (1, 2)), None),
        NewObj(Global("mypkg.models", "Net"), (), {"size": 3}),
        Call(Global("copyreg", "__newobj__"), (Global("mypkg.models", "Net"),)),
    ],
    ids=["copyreg-reconstructor", "NEWOBJ-BUILD", "NEWOBJ-args", "NEWOBJ_EX", "copyreg-newobj"],
)
def test_unknown_class_reconstructed_is_medium(node: Node) -> None:
    result = _scan(node, 4)
    assert result.severity == Severity.MEDIUM, result.findings
    (finding,) = result.findings
    assert finding.id == "pickle.unknown-global"
    assert finding.evidence["module"] == "mypkg.models"
    assert "imports module mypkg.models" in finding.title


@pytest.mark.parametrize(
    "opcodes",
    [b"(imypkg.models\nNet\n(dS'w'\nI1\nsb.", b"(cmypkg.models\nNet\no(dS'w'\nI1\nsb."],
    ids=["INST", "OBJ"],
)
def test_inst_and_obj_without_arguments_are_calls(opcodes: bytes) -> None:
    # no Python 3 pickler writes INST/OBJ; on a callable that is not a class the loader calls it
    result = Scanner().scan_bytes(opcodes)
    assert result.severity == Severity.HIGH
    assert _ids(result) == {"pickle.unknown-call"}


def test_newobj_right_after_an_inst_is_still_a_class_path() -> None:
    # INST on one global, then NEWOBJ on another: only the INST is a call
    data = b"(imypkg.a\nrun\n0\x80\x02cmypkg.models\nNet\n)\x81}b."
    result = Scanner().scan_bytes(data)
    by_name = {f.evidence["global"]: f.id for f in result.findings}
    assert by_name == {"mypkg.a.run": "pickle.unknown-call", "mypkg.models.Net": "pickle.unknown-global"}


@pytest.mark.parametrize(
    "node",
    [
        Call(Global("functools", "partial"), (Global("mypkg.helpers", "run"), "x")),  # never called here
        Call(
            Global("copyreg", "_reconstructor"), (Global("mypkg", "Net"), Global("mypkg._ext", "Base"), "s")
        ),
        Call(Global("builtins", "map"), (Global("mypkg.helpers", "run"), ["x"])),
    ],
    ids=["partial", "reconstructor-base", "map"],
)
def test_a_global_handed_to_a_helper_that_calls_it_is_called(node: Node) -> None:
    result = _scan(node)
    assert result.severity >= Severity.HIGH
    called = {f.evidence["global"] for f in result.findings if f.id == "pickle.unknown-call"}
    assert called & {"mypkg.helpers.run", "mypkg._ext.Base"}


def test_policy_allow_admits_calls_and_classes() -> None:
    policy = Policy(allow=frozenset({"mypkg.*"}))
    assert _scan(Call(Global("mypkg.helpers", "run"), ("x",)), policy=policy).severity == Severity.NONE
    assert _scan(Build(NewObj(Global("mypkg", "Net")), {}), policy=policy).severity == Severity.NONE


def test_policy_file_allows_a_call(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[pickle]\nallow = ["mypkg.helpers.run"]\n', encoding="utf-8")
    result = _scan(Call(Global("mypkg.helpers", "run"), ("x",)), policy=Policy.from_file(path))
    assert result.severity == Severity.NONE


def test_dangerous_names_stay_critical() -> None:
    assert _scan(Call(Global("os", "system"), ("id",))).severity == Severity.CRITICAL
    assert _scan(Build(NewObj(Global("subprocess", "Popen")), {})).severity == Severity.CRITICAL


# -- point 3: strings a library evaluates ----------------------------------------------------------
@pytest.mark.parametrize(
    ("node", "severity"),
    [
        (Call(Global("pandas", "eval"), ("a + b",)), Severity.HIGH),
        (Call(Global("pandas.core.frame", "DataFrame.query"), (None, "income > 3")), Severity.HIGH),
        (Call(Global("pandas", "eval"), ("@os.system('id')",)), Severity.CRITICAL),
        (Call(Global("numexpr", "evaluate"), ("().__class__.__base__",)), Severity.CRITICAL),
        (
            Call(Global("hydra.utils", "instantiate"), ({"_target_": "subprocess.run", "args": "id"},)),
            Severity.CRITICAL,
        ),
    ],
    ids=["pandas.eval", "DataFrame.query", "eval-reaches-os", "numexpr-dunder", "hydra-target"],
)
def test_strings_handed_to_an_evaluator(node: Node, severity: Severity) -> None:
    result = _scan(node, 4)
    assert result.severity == severity, result.findings
    assert "pickle.evaluated-expression" in _ids(result)


def test_an_evaluator_gates_even_when_the_policy_allows_it() -> None:
    policy = Policy(allow=frozenset({"pandas.eval"}))
    result = _scan(Call(Global("pandas", "eval"), ("open('/etc/passwd').read()",)), 4, policy)
    assert result.severity == Severity.CRITICAL


# -- genuine artifacts written by the real libraries stay below high -------------------------------
class Clip:
    """A user's transformer (scikit-learn API) defined outside every allow-listed package."""

    def __init__(self, high: float = 1e5) -> None:
        self.high = high

    def fit(self, x: object, y: object = None) -> Clip:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, None, self.high)

    def get_params(self, deep: bool = True) -> dict[str, float]:
        return {"high": self.high}

    def set_params(self, **params: float) -> Clip:
        self.high = params.get("high", self.high)
        return self


def log_income(x: np.ndarray) -> np.ndarray:
    """A user's function held by a FunctionTransformer (stored as data, called after loading)."""
    return np.log1p(np.abs(x))


def _protocols(obj: object) -> list[bytes]:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return [pickle.dumps(obj, protocol=p) for p in (2, 4, 5)] + [buf.getvalue()]


def test_sklearn_pipeline_with_custom_transformer_stays_medium() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    table = loans(48)
    x, y = table[["age", "income", "debt_ratio"]].to_numpy(), table["decision"].to_numpy()
    pipe = make_pipeline(
        Clip(),
        FunctionTransformer(log_income),
        FunctionTransformer(np.log1p),
        StandardScaler(),
        LogisticRegression(),
    ).fit(x, y)
    encoder = OneHotEncoder(handle_unknown="ignore").fit(table[["decision"]])
    for blob in _protocols(pipe) + _protocols(encoder):
        result = Scanner().scan_bytes(blob)
        assert result.severity <= Severity.MEDIUM, result.findings
    (medium,) = {r.id for r in Scanner().scan_bytes(_protocols(pipe)[0]).findings}
    assert medium == "pickle.unknown-global"


def test_pandas_frames_with_every_dtype_are_clean() -> None:
    pd = pytest.importorskip("pandas")
    table = loans(36)
    table["decision"] = table["decision"].astype("category")
    table["applied"] = pd.date_range("2024-01-01", periods=len(table), freq="D", tz="Europe/Paris")
    table["month"] = pd.period_range("2024-01", periods=len(table), freq="M")
    table["band"] = pd.cut(table["income"], bins=4)  # interval dtype
    table["flag"] = pd.array([True, None] * (len(table) // 2), dtype="boolean")
    table["count"] = pd.array([1, None] * (len(table) // 2), dtype="Int64")
    table["note"] = pd.array(["a", None] * (len(table) // 2), dtype="string")
    table["sparse"] = pd.arrays.SparseArray([0.0, 1.0] * (len(table) // 2))
    table["wait"] = pd.to_timedelta(table["age"], unit="D")
    indexed = table.set_index(["decision", "month"])
    for obj in (table, indexed, table["applied"], pd.interval_range(0, 3), table.dtypes):
        for blob in _protocols(obj):
            result = Scanner().scan_bytes(blob)
            assert result.severity == Severity.NONE, result.findings


def test_scipy_sparse_numpy_objects_and_stdlib_values_are_clean() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    eye = np.eye(4) * np.array([1, 1e3, 1e5, 0.01])
    values = [
        sparse.csr_matrix(eye),
        sparse.csc_array(eye),
        sparse.coo_matrix(eye),
        sparse.lil_matrix(eye),
        sparse.dok_matrix(eye),
        np.array([{"label": "approve"}, "deny", None, 1.5, datetime.date(2024, 1, 1)], dtype=object),
        np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
        np.random.default_rng(0),
        [np.add, np.log1p],
        collections.OrderedDict(a=1),
        collections.defaultdict(list),
        collections.Counter("abc"),
        collections.deque([1, 2]),
        datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime.UTC,
        decimal.Decimal("1.10"),
        fractions.Fraction(1, 3),
        {1, 2},
        frozenset({3}),
        bytearray(b"ab"),
        complex(1, 2),
        slice(1, 5, 2),
        range(4),
    ]
    for value in values:
        for blob in _protocols(value):
            result = Scanner().scan_bytes(blob)
            assert result.severity == Severity.NONE, (value, result.findings)


try:
    import torch
except ImportError:  # pragma: no cover - torch is a test dependency
    torch = None

if torch is not None:

    class Scorer(torch.nn.Module):
        """A user's model with a nested class: torch.save reaches ``Scorer.Head`` through getattr."""

        class Head(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.out = torch.nn.Linear(4, 2)

        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(3, 4)
            self.head = Scorer.Head()


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_whole_torch_module_with_user_classes_stays_medium() -> None:
    buf = io.BytesIO()
    torch.save(Scorer(), buf)
    result = Scanner().scan_bytes(buf.getvalue(), "model.pt")
    assert result.severity == Severity.MEDIUM, result.findings
    assert _ids(result) == {"pickle.unknown-global"}
    names = {f.evidence["global"] for f in result.findings}
    assert any(n.endswith("Scorer.Head") for n in names)
