"""The package's shape (docs/ARCHITECTURE.md): no import cycle between ays_core modules, counting
imports inside functions too, and only the pipeline reaches many modules."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ays_core"
ASSEMBLER = "ays_core.pipeline"  # puts the optimization path together
HANDFUL = 6


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path, modules):
    """Project modules `path` imports anywhere in its body (relative or absolute)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate in modules and candidate != name:
                found.add(candidate)
                break
    return found


def import_graph():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) for name, path in paths.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state:
                cycle = visit(target, trail + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_the_graph_reader_sees_relative_and_function_level_imports(tmp_path):
    graph = import_graph()
    assert "ays_core.klub" in graph["ays_core.search"]          # top-level relative import
    assert "ays_core.models.digits" in graph["ays_core.scoring"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None



def test_only_the_pipeline_imports_more_than_a_handful_of_project_modules():
    """The pipeline puts the optimization path together; every other module (the public API and
    the command line included) leans on a few. The error type, which everything uses, is not counted."""
    crowded = {name: sorted(targets) for name, targets in import_graph().items()
               if len(targets - {"ays_core.errors"}) > HANDFUL and name != ASSEMBLER}
    assert not crowded


# ---------------------------------------------------------------- the WebUI extension

REPO = PACKAGE.parent
WEBUI_MODULES = {"modules", "gradio", "backend", "launch"}  # what only exists inside a WebUI


def top_level_imports(path):
    """First names of every module `path` imports, anywhere in its body ('' for relative imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("" if node.level else node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_ays_core_never_reaches_into_the_webui():
    for path in PACKAGE.rglob("*.py"):
        assert not top_level_imports(path) & (WEBUI_MODULES | {"ays_webui"}), path


def test_scripts_only_register_hooks():
    """The WebUI runs every scripts/*.py as a module of its own (none can import another): each
    registers the hooks of one concern and leaves the work to the package ays_webui beside it."""
    files = sorted((REPO / "scripts").glob("*.py"))
    assert len(files) > 1
    for path in files:
        tree = ast.parse(path.read_text())
        assert top_level_imports(path) <= {"ays_webui", "modules"}, path
        assert not [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))], path
        for node in tree.body:  # a class here is a WebUI Script (what load_scripts collects)
            if isinstance(node, ast.ClassDef):
                assert [ast.unparse(base) for base in node.bases] == ["scripts.Script"], path
