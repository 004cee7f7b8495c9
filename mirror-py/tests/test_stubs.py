"""The type stubs match the module: every public name, class member and
parameter list in regmirror/__init__.pyi exists at run time, and the other
way round."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import regmirror

STUB = Path(regmirror.__file__).with_name("__init__.pyi")


def stub_classes() -> dict[str, ast.ClassDef]:
    tree = ast.parse(STUB.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def members(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def test_package_ships_stubs_and_py_typed():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_every_public_name_is_stubbed():
    assert sorted(regmirror.__all__) == sorted(ast.literal_eval(
        next(n.value for n in ast.parse(STUB.read_text()).body
             if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")))
    for name in regmirror.__all__:
        assert hasattr(regmirror, name), name


def test_class_members_match():
    classes = stub_classes()
    runtime = {**{n: getattr(regmirror, n) for n in regmirror.__all__ if n[0].isupper()},
               "_Engine": regmirror.Mirror.__mro__[1]}
    for name, obj in runtime.items():
        assert name in classes, f"{name} has no stub"
        if issubclass(obj, BaseException):
            continue
        stubbed = {m for m in members(classes[name]) if not m.startswith("__")}
        for base in classes[name].bases:
            if isinstance(base, ast.Name) and base.id in classes:
                stubbed |= {m for m in members(classes[base.id]) if not m.startswith("__")}
        actual = {m for m in dir(obj) if not m.startswith("_")}
        assert stubbed == actual, f"{name}: stub-only {stubbed - actual}, runtime-only {actual - stubbed}"


def test_method_signatures_match():
    engine = stub_classes()["_Engine"]
    for name, fn in members(engine).items():
        runtime = inspect.signature(getattr(regmirror.Mirror, name))
        params = [p for p in runtime.parameters.values() if p.name != "self"]
        stub_args = fn.args
        stub_names = [a.arg for a in stub_args.posonlyargs + stub_args.args if a.arg != "self"]
        stub_kwonly = [a.arg for a in stub_args.kwonlyargs]
        assert [p.name for p in params if p.kind != p.KEYWORD_ONLY] == stub_names, name
        assert [p.name for p in params if p.kind == p.KEYWORD_ONLY] == stub_kwonly, name


def test_exception_hierarchy():
    for name in ("AuthenticationError", "TLSError", "NotFoundError", "DigestMismatchError",
                 "InvalidPolicyError", "UnreachableError", "CanceledError"):
        assert issubclass(getattr(regmirror, name), regmirror.MirrorError), name
    assert issubclass(regmirror.InvalidPolicyError, ValueError)
    assert issubclass(regmirror.UnreachableError, ConnectionError)
    assert regmirror.MirrorError.__module__ == "regmirror"
