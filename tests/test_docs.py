"""The docs keep up with the code (unit tier, no broker).

Every setting and every metric is documented in docs/operations.md, every dead-letter reason in
docs/messages.md; every relative link in README.md and docs/*.md reaches a file (and a heading,
for `#anchor` links); every repository path and `python -m` module written in backticks exists.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

from anomstream.api.settings import ENV_PREFIX as API_PREFIX
from anomstream.api.settings import ApiSettings
from streams.metrics import Metrics
from streams.settings import ENV_PREFIX, GROUP_OF, GROUPS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OPERATIONS = DOCS / "operations.md"
MESSAGES = DOCS / "messages.md"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

PENDING = {DOCS / "architecture.md"}
"""Pages another change is writing: a link to one is allowed while it does not exist yet (once it
exists, its links and anchors are checked like any other page's)."""

OTHER_VARIABLES = {
    "ANOMSTREAM_CONFIG",  # the config file (streams/settings.py)
    "ANOMSTREAM_TEST_BROKER",  # the test lane
    "ANOMSTREAM_REQUIRE_KAFKA",  # CI: the Kafka lane must run
    "ANOMSTREAM_BENCH_DATA",  # benchmark data sets
    "ANOMSTREAM_CACHE",  # Kafka jars
}
"""`ANOMSTREAM_*` variables that are not settings but may be documented."""

REASON_SOURCES = [
    ROOT / "streams" / "codec.py",
    ROOT / "detectors" / "timestamps.py",
    *sorted((ROOT / "streams" / "formats").glob("*.py")),
]
"""Where dead-letter reasons are raised: the first argument of each `Invalid(...)`."""

CODE_DIRS = ("anomstream", "streams", "detectors", "training", "harness", "bench", "tests")
SOURCE_DIRS = (*CODE_DIRS, "schemas", "deploy")
"""Top-level folders whose paths the docs name (`models/pumps/` is an example, not a path here)."""
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(markdown: str) -> str:
    """The text outside fenced code blocks (links and headings live there)."""
    return FENCE.sub("", markdown)


def mentions(name: str, markdown: str) -> bool:
    """`name` appears as a whole identifier (`X_BROKER` is not `X_BROKER_SESSION_TIMEOUT`)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", markdown) is not None


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table under `## heading` (header and rule rows left out)."""
    section = re.split(rf"^##\s+{re.escape(heading)}\s*$", markdown, maxsplit=1, flags=re.M)
    assert len(section) == 2, f"no section '## {heading}'"
    body = re.split(r"^##\s", section[1], maxsplit=1, flags=re.M)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    assert len(rows) > 2, f"no table under '## {heading}'"
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[2:]]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- settings --------------------------------------------------------------------------------


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def test_every_setting_is_in_the_configuration_table_with_its_group() -> None:
    rows = table_rows(text(OPERATIONS), "Configuration")
    documented: dict[str, str] = {}
    for group, env, *_ in rows:
        for variable in backticked(env):
            documented[variable] = group
    wrong_group = {
        env_name(name): (documented[env_name(name)], group)
        for name, group in GROUP_OF.items()
        if env_name(name) in documented and documented[env_name(name)] != group
    }
    missing = sorted(env_name(name) for name in GROUP_OF if env_name(name) not in documented)
    assert not missing, f"settings missing from docs/operations.md's table: {missing}"
    assert not wrong_group, f"(documented, actual) group: {wrong_group}"
    unknown = sorted(set(documented) - {env_name(name) for name in GROUP_OF})
    assert not unknown, f"docs/operations.md documents settings the code lacks: {unknown}"


def test_the_configuration_table_is_ordered_by_group() -> None:
    groups = [row[0] for row in table_rows(text(OPERATIONS), "Configuration")]
    order = list(GROUPS)
    assert groups == sorted(groups, key=order.index), "rows must follow the groups' order"


def test_every_setting_appears_in_full_in_operations() -> None:
    page = text(OPERATIONS)
    missing = sorted(env_name(n) for n in GROUP_OF if not mentions(env_name(n), page))
    assert not missing, f"write these in full in docs/operations.md: {missing}"


def test_every_documented_variable_exists() -> None:
    settings = {env_name(name) for name in GROUP_OF}
    settings |= {API_PREFIX + name.upper() for name in ApiSettings.model_fields}  # docs/api.md
    code = "\n".join(text(p) for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))
    code += text(ROOT / "Makefile") + text(ROOT / ".ci" / "run")
    for variable in OTHER_VARIABLES:  # the allowance must not outlive the variable
        short = variable.removeprefix(ENV_PREFIX)
        assert variable in code or f'ENV_PREFIX + "{short}"' in code, variable
    unknown = {
        (page.relative_to(ROOT).as_posix(), variable)
        for page in PAGES
        for variable in re.findall(r"ANOMSTREAM_[A-Z][A-Z0-9_]*", text(page))
        if variable not in settings | OTHER_VARIABLES
    }
    assert not unknown, f"variables that are neither settings nor known: {sorted(unknown)}"


# -- metrics ---------------------------------------------------------------------------------


def metric_names() -> set[str]:
    """Every family `Metrics()` registers, named as Prometheus exposes it (counters `_total`)."""
    suffix = {"counter": "_total"}
    return {f.name + suffix.get(f.type, "") for f in Metrics().registry.collect()}


def test_every_metric_is_documented() -> None:
    names = metric_names()
    assert len(names) >= 10
    page = text(OPERATIONS)
    missing = sorted(name for name in names if not mentions(name, page))
    assert not missing, f"metrics missing from docs/operations.md: {missing}"


def test_every_documented_metric_exists() -> None:
    names = metric_names()
    documented = {
        name
        for row in table_rows(text(OPERATIONS), "Metrics")
        for name in backticked(row[0])
        if name.startswith("anomstream_")
    }
    assert documented, "the metrics table names no metric"
    assert documented <= names, f"documented but not registered: {sorted(documented - names)}"


# -- dead-letter reasons ---------------------------------------------------------------------


def _strings(node: ast.expr) -> set[str]:
    """The strings an expression can evaluate to: a literal, or either side of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def reasons_in(source: str) -> set[str]:
    """First arguments of `Invalid(...)`: a literal, or a name whose assignments give literals."""
    tree = ast.parse(source)
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, set()).update(_strings(node.value))
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id != "Invalid" or not node.args:
            continue
        first = node.args[0]
        if _strings(first):
            found |= _strings(first)
        elif isinstance(first, ast.Name):
            assert assigned.get(first.id), f"cannot tell the reasons `{first.id}` holds"
            found |= assigned[first.id]
        else:
            pytest.fail(f"cannot read a reason from {ast.unparse(first)}")
    return found


def dead_letter_reasons() -> set[str]:
    return set().union(*(reasons_in(text(path)) for path in REASON_SOURCES))


def test_reasons_are_read_from_literals_and_from_names() -> None:
    source = (
        'raise Invalid("a", "x")\nwhy = "b" if "UTF-8" in e else "c"\nraise Invalid(why, "y")\n'
    )
    assert reasons_in(source) == {"a", "b", "c"}


def test_the_reasons_are_found_in_the_code() -> None:
    reasons = dead_letter_reasons()
    assert {"invalid_json", "bad_utf8", "bad_ts", "bad_signal_value"} <= reasons
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", r) for r in reasons), reasons


def test_every_dead_letter_reason_is_documented() -> None:
    documented = {
        reason
        for row in table_rows(text(MESSAGES), "Dead letters")
        for reason in backticked(row[0])
    }
    reasons = dead_letter_reasons()
    assert not reasons - documented, f"missing from docs/messages.md: {reasons - documented}"
    assert not documented - reasons, f"documented, never raised: {documented - reasons}"


# -- links and paths -------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower-cased, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    kept = "".join(c for c in heading.lower() if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in HEADING.findall(prose(markdown)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(text(page))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        where, _, anchor = target.partition("#")
        path = (page.parent / where).resolve() if where else page
        if not path.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not path.exists():
            if path not in PENDING:
                broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(text(path)):
            broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_reach_a_file_and_heading(page: Path) -> None:
    assert not broken_links(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_paths_and_modules_in_backticks_exist(page: Path) -> None:
    markdown = text(page)
    missing = []
    for span in re.findall(r"`([^`\n]+)`", markdown):
        for token in span.split():
            word = token.strip(",;:()[]'\"")
            top = word.split("/")[0]
            is_file = "/" in word and re.search(r"\.(py|json|ya?ml|txt|toml)$", word)
            if is_file and (word.endswith(".py") or top in SOURCE_DIRS):
                if not (ROOT / word).is_file():
                    missing.append(word)
            elif top in SOURCE_DIRS and word.endswith("/") and not (ROOT / word).is_dir():
                missing.append(word)
    for module in re.findall(r"python -m ([A-Za-z_][\w.]*)", markdown):
        base = ROOT / module.replace(".", "/")
        if not (base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()):
            missing.append(f"python -m {module}")
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def test_the_front_page_stays_short() -> None:
    lines = text(ROOT / "README.md").count("\n")
    assert lines <= 200, f"README.md has {lines} lines: move detail into docs/"
