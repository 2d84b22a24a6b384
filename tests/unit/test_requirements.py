import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_txt_is_generated_from_pyproject():
    spec = importlib.util.spec_from_file_location("gen_requirements", ROOT / "scripts" / "gen_requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "requirements.txt").read_text() == module.render(), "run `make requirements`"
