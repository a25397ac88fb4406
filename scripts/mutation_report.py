"""Print the kill rate of the last `mutmut run` (make mutation), per scope and in total,
and the surviving mutants by name (`mutmut show <name>` prints one's diff).

Scopes are the rules issue 13 names: the risk manager, sizing, stops, the engine's
decision path, the matching engine, the router, the auth middleware and the client's
circuit breaker. Functions of the mutated files outside those scopes (the engine's
status page, the HTTP client's transport) are counted apart, under `other`.

Killed = a test failed (or timed out) with the mutant in place; survived = every test
passed; "no tests" = no selected test runs the mutated function. Kill rate = killed /
(killed + survived + no tests). Exit code 1 when the rate of the scopes is below
--minimum (default 0.90)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {1: "killed", 3: "killed", 36: "killed", 24: "killed", -24: "killed", 152: "killed",
          255: "killed", 0: "survived", 5: "no tests", 33: "no tests"}

# Mutant names look like `trading.engine.xǁTradingEngineǁon_signal__mutmut_12` (a method)
# or `trading.risk.x__pearson__mutmut_3` (the function `_pearson`).
ENGINE_DECISION_PATH = ("on_signal", "_decide", "_enter", "_portfolio", "_returns_lookup",
                        "_reject", "_refuse", "_record", "_exit_problem")


def parts(name: str) -> tuple[str, str, str]:
    """(module, class, function) of a mutant name."""
    module, _, rest = name.rpartition(".x")
    rest = rest.rsplit("__mutmut_", 1)[0]
    if rest.startswith("ǁ"):
        _, owner, function = rest.split("ǁ")
        return module, owner, function
    return module, "", rest[1:]  # x_<function>


def scope_of(name: str) -> str:
    module, owner, function = parts(name)
    if module == "trading.engine":
        decision = function in ENGINE_DECISION_PATH
        return "trading/engine.py (decision path)" if decision else "other"
    if module == "serving.client":
        return "serving/client.py (circuit breaker)" if owner == "CircuitBreaker" else "other"
    return module.replace(".", "/") + ".py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--minimum", type=float, default=0.90)
    args = parser.parse_args()
    metas = sorted(args.mutants.rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {args.mutants}/: run `make mutation` first",
              file=sys.stderr)
        return 2
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for meta in metas:
        try:
            codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        except json.JSONDecodeError:  # being rewritten by a run in progress
            print(f"skipped {meta} (being written)", file=sys.stderr)
            continue
        for name, code in codes.items():
            status = KILLED.get(code, "not checked" if code is None else "other")
            scope = scope_of(name)
            counts[scope][status] += 1
            if status in ("survived", "no tests"):
                survivors[scope].append(f"{name} ({status})")
    print(f"{'scope':<40} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} "
          f"{'kill rate':>9}")
    total: Counter[str] = Counter()
    for scope in sorted(counts, key=lambda s: (s == "other", s)):
        c = counts[scope]
        judged = c["killed"] + c["survived"] + c["no tests"]
        rate = c["killed"] / judged if judged else 0.0
        print(f"{scope:<40} {sum(c.values()):>8} {c['killed']:>7} {c['survived']:>9} "
              f"{c['no tests']:>9} {rate:>9.1%}")
        if scope != "other":
            total.update(c)
    judged = total["killed"] + total["survived"] + total["no tests"]
    rate = total["killed"] / judged if judged else 0.0
    print(f"{'the rules (all scopes but other)':<40} {sum(total.values()):>8} "
          f"{total['killed']:>7} {total['survived']:>9} {total['no tests']:>9} {rate:>9.1%}")
    unchecked = total["not checked"]
    if unchecked:
        print(f"{unchecked} mutants not checked yet (the run was stopped): rerun `make mutation`")
    print("\nsurvivors (mutmut show <name> prints the change):")
    for scope in sorted(survivors):
        if scope == "other":
            continue
        for line in sorted(survivors[scope]):
            print(f"  {line}")
    return 0 if rate >= args.minimum else 1


if __name__ == "__main__":
    sys.exit(main())
