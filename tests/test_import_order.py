"""The course_utils modules import one another without a circle: each module builds only on modules below it, so
any one can be read (and imported) after the modules it names. Every import of a course_utils module counts, at the
top of a module and inside a function alike: an import hidden in a function still closes a circle, it only moves
the failure from import time to call time."""
import ast
from pathlib import Path

PACKAGE = "course_utils"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE


def course_imports(source: str, modules: set[str]) -> set[str]:
    """The course_utils modules that ``source`` (a module of the package) imports anywhere in its text:
    ``from . import x``, ``from .x import y``, ``from course_utils import x``, ``from course_utils.x import y``,
    ``import course_utils.x``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{PACKAGE}.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None and node.module.split(".")[0] == PACKAGE:
                path = node.module.split(".")[1:]
            elif node.level == 1:
                path = node.module.split(".") if node.module else []
            else:  # another package, or above course_utils
                continue
            found |= {path[0]} if path else {alias.name for alias in node.names}
    return found & modules


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module name -> the course_utils modules it imports, for ``sources`` (module name -> source text)."""
    return {name: course_imports(text, set(sources)) for name, text in sources.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports as the path ``[a, b, ..., a]``, or None when the graph has none (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once all its imports are explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def package_sources() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(PACKAGE_DIR.glob("*.py"))}


def test_course_utils_has_no_import_circle():
    graph = import_graph(package_sources())
    assert graph["pipeline"], "the parser found no course_utils import in pipeline.py: it is not reading the imports"
    cycle = find_cycle(graph)
    assert cycle is None, f"course_utils modules import one another in a circle: {' -> '.join(cycle)}"


def test_imports_inside_functions_and_every_form_count():
    """The check sees each way of importing a course module, at the top and inside functions, and can fail."""
    sources = {
        "a": "from . import b\n",
        "b": "def load():\n    from .c import thing\n",
        "c": "import os\n\ndef build():\n    from course_utils import a\n",
        "d": "from course_utils.a import x\nimport course_utils.b\nfrom .. import c\nfrom torch import a\n",
    }
    graph = import_graph(sources)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "b"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    sources["c"] = "import os\n"
    assert find_cycle(import_graph(sources)) is None
