"""A tiny case runner: named cases in definition order, exact assertions, one summary line.

Cases are plain functions taking the shared `Ctx`. A case fails on any exception; later cases of
the same family may depend on state an earlier case created (create → read back → update → fail).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Type

from databricks.sdk.errors import DatabricksError

CASES: list[tuple[str, str, Callable[["Ctx"], None]]] = []


def case(name: str):
    """Registers a case under the calling module's family name."""

    def wrap(fn):
        family = fn.__module__.rsplit(".", 1)[-1].removeprefix("api_")
        CASES.append((family, name, fn))
        return fn

    return wrap


class Skip(Exception):
    """Raised by a case that needs an input the run was not given (e.g. no target workspace)."""


@dataclass
class Result:
    family: str
    name: str
    outcome: str  # "pass" | "fail" | "skip"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Ctx:
    """Everything a case may use; `state` carries ids between the cases of one family."""

    host: str
    token: str
    w: Any
    seed: Any
    run_id: str
    client_id: Optional[str] = None
    client_secret: Optional[str] = None
    user_token: Optional[str] = None
    target_host: Optional[str] = None
    target_token: Optional[str] = None
    target: Any = None
    make_client: Callable[..., Any] = None
    state: dict = field(default_factory=dict)


def eq(actual: Any, expected: Any, what: str = "value") -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def ok(cond: Any, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def raises(cls: Type[DatabricksError] | tuple, fn: Callable[[], Any], *, code: Optional[str] = None,
           contains: Optional[str] = None) -> DatabricksError:
    """Calls fn and checks it raises exactly `cls` (not a subclass or a parent), with `code`."""
    classes = cls if isinstance(cls, tuple) else (cls,)
    try:
        fn()
    except DatabricksError as e:
        if type(e) not in classes:
            names = "/".join(c.__name__ for c in classes)
            raise AssertionError(f"expected {names}, got {type(e).__name__} "
                                 f"(error_code={e.error_code!r}): {str(e)[:300]}") from e
        if code is not None and e.error_code != code:
            raise AssertionError(f"expected error_code {code!r}, got {e.error_code!r}: {str(e)[:300]}") from e
        if contains is not None and contains not in str(e):
            raise AssertionError(f"expected message containing {contains!r}, got {str(e)[:300]!r}") from e
        return e
    names = "/".join(c.__name__ for c in classes)
    raise AssertionError(f"expected {names}, but the call succeeded")


def by(items: Iterable[Any], key: Callable[[Any], Any]) -> dict:
    out = {}
    for it in items:
        k = key(it)
        if k in out:
            raise AssertionError(f"duplicate entry {k!r}")
        out[k] = it
    return out


def run_cases(ctx: Ctx, only: Optional[list[str]] = None, verbose: bool = False) -> list[Result]:
    results = []
    for family, name, fn in CASES:
        if only and family not in only:
            continue
        started = time.monotonic()
        try:
            fn(ctx)
            r = Result(family, name, "pass")
        except Skip as e:
            r = Result(family, name, "skip", str(e))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            detail = f"{type(e).__name__}: {e}"
            if verbose or not isinstance(e, AssertionError):
                tb = traceback.extract_tb(e.__traceback__)
                here = [f for f in tb if "sdk_conformance" in f.filename]
                if here:
                    f = here[-1]
                    detail += f"  [{f.filename.rsplit('/', 1)[-1]}:{f.lineno}]"
            r = Result(family, name, "fail", detail)
        r.seconds = time.monotonic() - started
        results.append(r)
        mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r.outcome]
        line = f"{mark} {family}: {name} ({r.seconds:.2f}s)"
        if r.outcome != "pass":
            line += f"\n       {r.detail[:2000]}"
        print(line, flush=True)
    return results
