"""dvc.yaml lists exactly the project files each stage runs, so an edit never leaves outputs stale."""
from __future__ import annotations

import copy
import json
import subprocess

import yaml
from codedeps import closure, code_deps_problems

from conftest import REPO
from e2e import ENV
from pipeline.features.backbones import FAMILIES

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_every_stage_depends_on_exactly_its_import_closure():
    assert code_deps_problems(DVC_YAML, REPO) == []


def test_a_file_removed_from_a_stage_is_reported():
    broken = copy.deepcopy(DVC_YAML)
    broken["stages"]["features-transformers"]["deps"].remove("pipeline/features/store.py")
    broken["stages"]["evaluate"]["deps"].remove("pipeline/learning/metrics.py")
    assert code_deps_problems(broken, REPO) == [  # the unannotated twin lists its own (its own persons parquet)
        "features-transformers: imports pipeline/features/store.py but does not depend on it",
        "evaluate: imports pipeline/learning/metrics.py but does not depend on it"]


def test_a_file_a_stage_never_runs_is_reported():
    extra = copy.deepcopy(DVC_YAML)
    extra["stages"]["frames"]["do"]["deps"].append("pipeline/learning/heads.py")
    assert code_deps_problems(extra, REPO) == ["frames: depends on pipeline/learning/heads.py, which it never imports",
                                               "frames-unannotated: depends on pipeline/learning/heads.py, which it never imports"]


def test_each_family_stage_depends_on_its_family_module_and_no_other():
    for family, stage in [(f, s) for f in FAMILIES for s in (f"features-{f}", f"features-{f}-unannotated")]:
        deps = DVC_YAML["stages"][stage]["deps"]
        assert [d for d in deps if d.startswith("pipeline/features/backbones/") and not d.endswith("__init__.py")] == [
            f"pipeline/features/backbones/{family}.py"]
    moved = copy.deepcopy(DVC_YAML)
    moved["stages"]["features-pixels"]["deps"].append("pipeline/features/backbones/transformers.py")
    assert code_deps_problems(moved, REPO) == [
        "features-pixels: depends on pipeline/features/backbones/transformers.py, which it never imports"]


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


def test_a_temp_output_inside_a_directory_dependency_leaves_the_stage_up_to_date(tmp_path):
    """The project's .dvcignore hides writers' temps (`.NAME.tmp-PID`) from DVC, so one left in a directory
    dependency by a killed writer changes no hash; without that line the stage would rerun."""
    def status() -> dict:
        r = subprocess.run(["dvc", "status", "--json"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=ENV, check=True)
    (tmp_path / ".dvcignore").write_text((REPO / ".dvcignore").read_text())
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "000000.jpg").write_bytes(b"jpg")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"count": {
        "cmd": "ls frames | wc -l > count.txt", "deps": ["frames"], "outs": ["count.txt"]}}}))
    subprocess.run(["dvc", "repro", "-q"], cwd=tmp_path, env=ENV, check=True)
    (tmp_path / "frames" / ".000001.jpg.tmp-123").write_bytes(b"half a jpg")
    assert status() == {}
    (tmp_path / ".dvcignore").write_text("")
    assert status() == {"count": [{"changed deps": {"frames": "modified"}}]}


def test_a_feature_store_records_the_hash_of_code_its_stage_depends_on_including_shared_models():
    from pipeline.features import store

    for family in FAMILIES:
        hashed = {f"pipeline/{name}" for name in (*store.CODE, f"features/backbones/{family}.py",
                                                   *store.SHARED.get(family, ()))}
        deps = set(DVC_YAML["stages"][f"features-{family}"]["deps"])
        assert all((REPO / path).is_file() for path in hashed) and hashed <= deps, family
        assert {d for d in deps if d.startswith("pipeline/models/") and not d.endswith("__init__.py")} <= hashed, family


def test_every_file_a_stage_depends_on_exists():
    missing = {d for name, stage in DVC_YAML["stages"].items() for d in stage.get("do", stage)["deps"]
               if d.startswith(("pipeline/", "stages/")) and not (REPO / d).exists()}
    assert missing == set()
