"""The layers point one way: nothing but the CLI (and ``__main__``) imports
``imier.cli``, neither does ``bench/``, and no import circle anywhere in ``src/``.

The graph is read from the source (every ``import``, also inside functions;
``if TYPE_CHECKING:`` blocks are annotations only and left out).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def _module(path: Path, base: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in out if m in known and m != module}


def _graph(base: Path, top: str) -> dict[str, set[str]]:
    files = {_module(p, base): p for p in (base / top).rglob("*.py")}
    known = set(files)
    return {m: _imports(p, m, known) for m, p in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_only_the_cli_imports_the_cli() -> None:
    graph = _graph(SRC, "imier")
    allowed = {"imier.__main__"}
    offenders = sorted(
        f"{m} -> {t}" for m, ts in graph.items() for t in ts
        if t.startswith("imier.cli") and not m.startswith("imier.cli") and m not in allowed
    )
    assert not offenders, offenders


def test_bench_does_not_import_the_cli() -> None:
    hits = []
    for p in sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            hits += [f"{p.name}: {n}" for n in names if n == "imier.cli" or n.startswith("imier.cli.")]
    assert not hits, hits


def test_no_import_circle_in_src_outside_consensus() -> None:
    cycles = _cycles(_graph(SRC, "imier"))
    assert [c for c in cycles if not all(m.startswith("imier.consensus.") for m in c)] == []


def test_no_import_circle_in_consensus() -> None:
    assert _cycles(_graph(SRC, "imier")) == []


def test_the_walker_finds_a_circle(tmp_path: Path) -> None:
    """The check itself works: a planted circle a -> b -> c -> a is found."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n"
                              "from .a import y\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    assert _cycles(_graph(tmp_path, "p")) == [["p.a", "p.b", "p.c"]]


# -- SQL only in store/ --------------------------------------------------------------------

SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|PRAGMA|CREATE|ALTER|DROP|WITH|BEGIN|COMMIT"
                 r"|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|ATTACH|DETACH|ANALYZE|REINDEX)\b")
SQL_CALLS = frozenset({"execute", "executemany", "executescript"})
# Nothing is allowed: every query is a named read in store/.
SQL_ALLOWED: set[str] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


def _sql_outside_store(base: Path) -> list[str]:
    """``file:line: text`` of every SQL statement written outside ``imier/store/``: a
    string constant (or an f-string's first piece) that is not a docstring and reads
    as SQL, or a call of a connection's ``execute``, ``executemany`` or ``executescript``."""
    hits: list[str] = []
    for p in sorted((base / "imier").rglob("*.py")):
        rel = p.relative_to(base).as_posix()
        if rel.startswith("imier/store/") or rel in SQL_ALLOWED:
            continue
        tree = ast.parse(p.read_text(), str(p))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                text = node.value
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                text = str(node.values[0].value)
            if text is not None and SQL.match(text):
                hits.append(f"{rel}:{node.lineno}: {text.strip()[:60]}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in SQL_CALLS:
                hits.append(f"{rel}:{node.lineno}: .{node.func.attr}(...)")
    return sorted(set(hits))


def test_no_sql_outside_the_store() -> None:
    assert _sql_outside_store(SRC) == []


def test_the_sql_check_finds_sql(tmp_path: Path) -> None:
    """The check itself works: queries and execute calls are found, docstrings and
    English words are not, and store/ may hold SQL."""
    (tmp_path / "imier" / "store").mkdir(parents=True)
    (tmp_path / "imier" / "store" / "db.py").write_text('Q = "SELECT 1"\n')
    (tmp_path / "imier" / "web.py").write_text(
        '"""SELECT the rows: a docstring."""\n'
        'def f(c, t):\n'
        '    """DELETE nothing."""\n'
        '    msg = "update your node; delete the file"\n'
        '    c.execute("select 1")\n'
        '    q = f"UPDATE {t} SET x = 1"\n'
        '    return "  PRAGMA data_version", msg, q\n')
    assert _sql_outside_store(tmp_path) == [
        "imier/web.py:5: .execute(...)",
        "imier/web.py:6: UPDATE",
        "imier/web.py:7: PRAGMA data_version",
    ]
