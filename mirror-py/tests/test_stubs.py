"""The type stubs match the module: every public name, class member and
parameter list in regmirror/__init__.pyi exists at run time, and the other
way round."""

from __future__ import annotations

import ast
import functools
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
        named = [p for p in params if p.kind != p.VAR_KEYWORD]
        assert [p.name for p in named if p.kind != p.KEYWORD_ONLY] == stub_names, name
        if any(p.kind == p.VAR_KEYWORD for p in params):
            # `**form`: the policy form's fields, checked by
            # test_policy_keywords_are_the_form_fields.
            assert stub_kwonly, name
            continue
        assert [p.name for p in named if p.kind == p.KEYWORD_ONLY] == stub_kwonly, name


def test_policy_keywords_are_the_form_fields(tmp_path: Path):
    """Every keyword the stubs give a policy method is a field of the
    policy form the module reads; any other keyword is a TypeError."""
    engine = stub_classes()["_Engine"]
    mirror = regmirror.Mirror(str(tmp_path))
    unreachable = {"remote_host": "http://127.0.0.1:1", "remote_repository": "team/app"}
    for name, fn in members(engine).items():
        runtime = inspect.signature(getattr(regmirror.Mirror, name))
        if not any(p.kind == p.VAR_KEYWORD for p in runtime.parameters.values()):
            continue
        keywords = [a.arg for a in fn.args.kwonlyargs]
        base: dict[str, str] = unreachable
        if "proxy_cache" in name:
            # A proxy cache method reads the cache form (no remote repository;
            # a cache is made without reaching its remote).
            assert "remote_host" in keywords, name
            base = {"namespace": "a/b", "remote_host": unreachable["remote_host"]}
            check = mirror.add_proxy_cache
        else:
            assert {"remote_host", "remote_repository"} <= set(keywords), name
            # A push policy method reads the push form (its own fields).
            check = (functools.partial(mirror.add_push_policy, "team/app") if "push" in name
                     else mirror.check_connection)
        for keyword in keywords:
            value: object = True if keyword in ("skip_tls_verification", "enabled",
                                                "initial_evaluation", "delete_removed",
                                                "delete_removed_dry_run", "anonymous_pull",
                                                "is_default") else "x"
            if keyword == "rules":
                value = [{"operator": "sw", "values": ["x"]}]
            kwargs = {**base, keyword: value}
            if keyword in base:
                kwargs[keyword] = base[keyword]
            # Not a TypeError: the keyword is read; the call then fails on
            # the unreachable remote or the value "x".
            try:
                check(**kwargs)
            except regmirror.MirrorError:
                pass
        try:
            check(**base, remote_hots="x")
        except TypeError as e:
            assert "remote_hots" in str(e)
        else:
            raise AssertionError("an unknown keyword was accepted")
    # A value of the wrong type names the field.
    try:
        mirror.check_connection(**unreachable, skip_tls_verification="yes")  # type: ignore[arg-type]
    except regmirror.InvalidPolicyError as e:
        assert "skipTLSVerification" in str(e), e
    else:
        raise AssertionError("a string was taken for a bool")


def test_exception_hierarchy():
    for name in ("AuthenticationError", "TLSError", "NotFoundError", "DigestMismatchError",
                 "InvalidPolicyError", "UnreachableError", "CanceledError"):
        assert issubclass(getattr(regmirror, name), regmirror.MirrorError), name
    assert issubclass(regmirror.InvalidPolicyError, ValueError)
    assert issubclass(regmirror.UnreachableError, ConnectionError)
    assert regmirror.MirrorError.__module__ == "regmirror"
