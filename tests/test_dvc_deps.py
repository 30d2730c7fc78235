"""dvc.yaml lists exactly the project files each stage runs, so an edit never leaves outputs stale."""
from __future__ import annotations

import copy

import yaml
from codedeps import closure, code_deps_problems

from conftest import REPO

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_every_stage_depends_on_exactly_its_import_closure():
    assert code_deps_problems(DVC_YAML, REPO) == []


def test_a_file_removed_from_a_stage_is_reported():
    broken = copy.deepcopy(DVC_YAML)
    broken["stages"]["features"]["do"]["deps"].remove("pipeline/store.py")
    broken["stages"]["evaluate"]["deps"].remove("pipeline/metrics.py")
    assert code_deps_problems(broken, REPO) == ["features: imports pipeline/store.py but does not depend on it",
                                                "evaluate: imports pipeline/metrics.py but does not depend on it"]


def test_a_file_a_stage_never_runs_is_reported():
    extra = copy.deepcopy(DVC_YAML)
    extra["stages"]["frames"]["do"]["deps"].append("pipeline/heads.py")
    assert code_deps_problems(extra, REPO) == ["frames: depends on pipeline/heads.py, which it never imports"]


def test_closure_follows_imports_inside_functions_and_packages(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "stages" / "s.py").write_text("import os\n\ndef main():\n    from pipeline import a\n")
    (tmp_path / "pipeline" / "a.py").write_text("from pipeline.b import f\n")
    (tmp_path / "pipeline" / "b.py").write_text("import numpy\n")
    (tmp_path / "pipeline" / "unused.py").write_text("")
    assert closure("stages.s", tmp_path) == {"stages/__init__.py", "stages/s.py", "pipeline/__init__.py",
                                             "pipeline/a.py", "pipeline/b.py"}
