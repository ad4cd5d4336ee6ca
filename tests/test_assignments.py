"""The course assignments in ``assignments/``: generated, solved and graded with Otter-Grader.

For each assignment, Otter Assign turns the solution notebook into a student notebook and
an autograder zip (once per assignment, into a temporary folder). Then:

* the solution notebook earns every point of the autograder, hidden tests included;
* the student notebook holds no solution code, no solution text and no hidden test;
* a deliberately wrong submission -- the student notebook filled in with the solution
  plus one realistic mistake -- passes every public test when a student runs it, with the
  one call ``grader.check_all()``, and loses points to the hidden tests when it is graded.

Each assignment runs its notebook three times (solution graded, wrong submission run as a
student would, wrong submission graded), a few seconds each on a CPU (A5 about 17 s: it
loads TensorFlow and embeds 400 film texts).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

with warnings.catch_warnings():  # Otter passes traitlets types where instances are expected
    warnings.filterwarnings("ignore", "Traits should be given as instances", DeprecationWarning)
    from otter.api import grade_submission
    from otter.assign import main as otter_assign

# Otter's grader calls DataFrame.drop(inplace=True), deprecated in pandas 3.1.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

ASSIGNMENTS = Path(__file__).resolve().parents[1] / "assignments"
SOLUTION_TAG = "otter_assign_solution_cell"  # Otter's tag for solution cells (autograder copy)
ANSWER_TAG = "otter_answer_cell"  # ... and for the cells a student fills in


@dataclass(frozen=True)
class Mistake:
    """A realistic bug: ``wrong`` replaces ``right``; the hidden tests of ``caught_by`` fail."""

    caught_by: tuple[str, ...]
    right: str
    wrong: str
    what: str


#: One mistake per assignment that public tests miss and hidden tests catch.
MISTAKES = {
    "a1_metrics_split": Mistake(
        ("q2",),
        "np.minimum(n_relevant, k) - 1",
        "n_relevant - 1",
        "the ideal DCG is not cut at k",
    ),
    "a2_softmax_gradient": Mistake(
        ("q5",),
        "grad[index] = (f_plus - f_minus) / (2 * eps)",
        "grad[index] = (f_plus - f(z)) / eps",
        "a one-sided finite difference, whose error is of order eps",
    ),
    "a3_bpr": Mistake(
        ("q2",),
        "if not seen.any():",
        "if True or not seen.any():",
        "negatives are never checked against the user's training items",
    ),
    "a4_attention": Mistake(
        ("q2", "q4"),
        "q @ np.swapaxes(k, -1, -2) / np.sqrt(d)",
        "q @ np.swapaxes(k, -1, -2)",
        "attention scores not divided by sqrt(d)",
    ),
    "a5_text_cold_start": Mistake(
        ("q3",),
        "unit(item_embeddings).T",
        "item_embeddings.T",
        "item vectors not scaled to unit length in the cosine (MiniLM's happen to be)",
    ),
}


def _solution_lines(master: nbformat.NotebookNode) -> list[str]:
    """Substantial code lines inside ``# BEGIN SOLUTION`` / ``# END SOLUTION`` of the master."""
    lines, inside = [], False
    for cell in master.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("# BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("# END SOLUTION"):
                inside = False
            elif (inside or stripped.endswith("# SOLUTION")) and len(stripped) >= 12:
                if not stripped.startswith("#"):
                    lines.append(stripped)
    return lines


def _markdown_solutions(master: nbformat.NotebookNode) -> list[str]:
    """Markdown cells between raw ``# BEGIN SOLUTION`` and ``# END SOLUTION`` cells."""
    found, inside = [], False
    for cell in master.cells:
        if cell.cell_type == "raw" and re.match(r"#\s+begin\s+solution", cell.source, re.I):
            inside = True
        elif cell.cell_type == "raw" and re.match(r"#\s+end\s+solution", cell.source, re.I):
            inside = False
        elif inside and cell.cell_type == "markdown":
            found.append(cell.source)
    return found


def _questions(master: nbformat.NotebookNode) -> dict[str, dict]:
    """The ``# BEGIN QUESTION`` configs of the master notebook, by question name."""
    configs = [
        yaml.safe_load(cell.source)
        for cell in master.cells
        if cell.cell_type == "raw" and re.match(r"#\s+begin\s+question", cell.source, re.I)
    ]
    return {config["name"]: config for config in configs}


def _advertised_points(master: nbformat.NotebookNode) -> dict[str, float]:
    """The points table that the notebook shows students: rows ``| q1 | ... | 3 |``."""
    rows = (
        re.match(r"\|\s*(q\d+)\s*\|.*\|\s*([\d.]+)\s*\|$", line.strip())
        for cell in master.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
    )
    return {m.group(1): float(m.group(2)) for m in rows if m}


def _autograder_tests(zip_path: Path) -> dict[str, dict]:
    """The OK-format test dictionaries in the autograder zip, by question name."""
    tests = {}
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            if name.startswith("tests/") and name.endswith(".py"):
                namespace: dict = {}
                exec(z.read(name).decode(), namespace)  # a file of the form `test = {...}`
                tests[namespace["test"]["name"]] = namespace["test"]
    return tests


def _cases(test: dict) -> list[dict]:
    return [case for suite in test["suites"] for case in suite["cases"]]


@dataclass(frozen=True)
class Generated:
    name: str
    master: nbformat.NotebookNode
    student_path: Path
    autograder_path: Path
    zip_path: Path


@pytest.fixture(scope="module", params=sorted(MISTAKES))
def generated(request, tmp_path_factory) -> Generated:
    """Run Otter Assign on one assignment into a temporary folder."""
    request.getfixturevalue("shared_data")  # the notebooks load MovieLens (RECSYS_BOOK_DATA)
    name = request.param
    master_path = ASSIGNMENTS / name / f"{name}.ipynb"
    dist = tmp_path_factory.mktemp(name) / "dist"
    with contextlib.redirect_stdout(io.StringIO()):
        # no_run_tests: the solution is graded explicitly by test_solution_earns_every_point.
        otter_assign(str(master_path), str(dist), no_pdfs=True, no_run_tests=True)
    zips = list((dist / "autograder").glob("*.zip"))
    assert len(zips) == 1, zips
    return Generated(
        name=name,
        master=nbformat.read(master_path, as_version=4),
        student_path=dist / "student" / f"{name}.ipynb",
        autograder_path=dist / "autograder" / f"{name}.ipynb",
        zip_path=zips[0],
    )


def _grade(notebook: Path, zip_path: Path):
    with contextlib.redirect_stdout(io.StringIO()):
        results = grade_submission(str(notebook), str(zip_path), quiet=True)
    assert results.catastrophic_error is None, results.catastrophic_error
    assert results.possible > 0
    return results


def test_every_assignment_is_checked():
    folders = {p.parent.name for p in ASSIGNMENTS.glob("*/*.ipynb") if p.stem == p.parent.name}
    assert folders == set(MISTAKES), "each assignment needs a Mistake in MISTAKES"


def test_solution_earns_every_point(generated: Generated):
    results = _grade(generated.autograder_path, generated.zip_path)
    assert results.total == results.possible, results.summary()
    cases = [c for t in _autograder_tests(generated.zip_path).values() for c in _cases(t)]
    assert any(c["hidden"] for c in cases), "an assignment needs hidden tests"

    # The points table shown to students matches what is graded (by Otter or by hand).
    advertised = _advertised_points(generated.master)
    questions = _questions(generated.master)
    assert set(advertised) == set(questions)
    for name, config in questions.items():
        if config.get("manual"):
            assert advertised[name] == config["points"], name
        else:
            assert advertised[name] == results.results[name].possible, name


def test_student_notebook_has_no_solution_and_no_hidden_test(generated: Generated):
    student = nbformat.read(generated.student_path, as_version=4)
    sources = "\n".join(cell.source for cell in student.cells)
    whole = json.dumps(student.dict())  # metadata (where public tests live) included

    for marker in ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN TEST", "HIDDEN"):
        assert marker not in sources, marker
    student_lines = {line.strip() for line in sources.splitlines()}
    code = _solution_lines(generated.master)
    assert code, "the master notebook has no solution block"
    leaked = [line for line in code if line in student_lines]
    assert not leaked, f"solution code in the student notebook: {leaked}"
    for text in _markdown_solutions(generated.master):
        assert text not in sources
    assert all(not cell.get("outputs") for cell in student.cells if cell.cell_type == "code")

    public = student.metadata["otter"]["tests"]
    for question, test in _autograder_tests(generated.zip_path).items():
        for case in _cases(test):
            if case["hidden"]:
                assert json.dumps(case["code"]) not in whole, f"hidden test of {question} leaked"
        shown = _cases(public[question]) if question in public else []
        assert [c["code"] for c in shown] == [c["code"] for c in _cases(test) if not c["hidden"]]
        assert not any(c["hidden"] for c in shown)


@pytest.fixture(scope="module")
def wrong_submission(generated: Generated) -> Path:
    """The student notebook, filled in with the solution with one mistake, saved beside it."""
    mistake = MISTAKES[generated.name]
    solution = nbformat.read(generated.autograder_path, as_version=4)
    answers = [
        _drop_markers(c.source)
        for c in solution.cells
        if c.cell_type == "code" and SOLUTION_TAG in c.metadata.get("tags", [])
    ]
    assert sum(a.count(mistake.right) for a in answers) == 1, mistake.right
    answers = [a.replace(mistake.right, mistake.wrong) for a in answers]

    student = nbformat.read(generated.student_path, as_version=4)
    slots = [
        c
        for c in student.cells
        if c.cell_type == "code" and ANSWER_TAG in c.metadata.get("tags", [])
    ]
    assert len(slots) == len(answers)
    for cell, answer in zip(slots, answers, strict=True):
        ast.parse(answer)  # the mistake keeps the code valid Python
        cell.source = answer
    path = generated.student_path.parent / "wrong" / generated.student_path.name
    path.parent.mkdir()
    nbformat.write(student, path)
    return path


def _drop_markers(source: str) -> str:
    keep = [
        line for line in source.splitlines() if not re.match(r"\s*# (BEGIN|END) SOLUTION", line)
    ]
    return "\n".join(keep)


def test_wrong_submission_passes_public_tests_in_one_call(wrong_submission: Path):
    nb = nbformat.read(wrong_submission, as_version=4)
    # The export cell re-runs the notebook to build a zip; a student runs it last, we skip it.
    nb.cells = [c for c in nb.cells if "grader.export(" not in c.source]
    check_all = [c for c in nb.cells if c.cell_type == "code" and c.source == "grader.check_all()"]
    assert len(check_all) == 1
    NotebookClient(
        nb, timeout=600, resources={"metadata": {"path": str(wrong_submission.parent)}}
    ).execute()  # raises on any error: the submission runs top to bottom
    report = "".join(o.get("data", {}).get("text/plain", "") for o in check_all[0].outputs)
    public = nb.metadata["otter"]["tests"]
    assert public, "the student notebook has no public tests"
    for question in public:
        assert f"{question} results: All test cases passed!" in report, report


def test_wrong_submission_loses_points_to_hidden_tests(
    generated: Generated, wrong_submission: Path
):
    mistake = MISTAKES[generated.name]
    results = _grade(wrong_submission, generated.zip_path)
    assert results.total < results.possible, f"{mistake.what}: not caught"
    assert results.passed_all_public
    failed = [
        (name, r.test_case.hidden)
        for name, test_file in results.results.items()
        for r in test_file.test_case_results
        if not r.passed
    ]
    assert {name for name, _ in failed} == set(mistake.caught_by), results.summary()
    assert all(hidden for _, hidden in failed)
