"""Packaging and module layout: the public API, import direction, the wheel."""
import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ollama_gateway

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app" / "ollama_gateway"
SCHEMAS = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))


def test_public_api_is_pinned():
    assert ollama_gateway.__all__ == ["APIError", "OllamaGateway", "create_app"]


# module -> what it may import from the package (".x") and which third-party
# roots it must not import. Imports go one way: routes -> the rest -> errors/config.
LAYERS = {
    "errors": (set(), {"flask", "requests", "jsonschema", "werkzeug"}),
    "config": (set(), {"flask", "requests", "jsonschema", "werkzeug"}),
    "translate": ({"errors"}, {"flask", "requests", "jsonschema", "werkzeug", "urllib3"}),
    "schemas": ({"errors"}, {"flask", "requests", "werkzeug"}),
    "upstream": ({"errors", "wire"}, {"flask", "jsonschema", "werkzeug"}),
    "wire": (set(), {"flask", "requests", "jsonschema", "werkzeug", "urllib3"}),
    "stream": ({"errors"}, {"flask", "requests", "jsonschema", "werkzeug"}),
}


def _imports(path):
    local, foreign = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module:
                local.add(node.module)
            elif node.level:
                local.update(alias.name for alias in node.names)
            else:
                foreign.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            foreign.update(alias.name.split(".")[0] for alias in node.names)
    return local, foreign


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_import_direction(module):
    allowed_local, forbidden = LAYERS[module]
    local, foreign = _imports(PACKAGE / (module + ".py"))
    assert local <= allowed_local, "%s imports %s" % (module, local - allowed_local)
    assert not foreign & forbidden, "%s imports %s" % (module, foreign & forbidden)


def test_library_never_imports_wsgi():
    for path in PACKAGE.glob("*.py"):
        local, _ = _imports(path)
        assert "wsgi" not in local, path.name


def test_wheel_carries_schemas_and_works_installed(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(str(ROOT), str(src), ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    wheel, = (tmp_path / "dist").glob("ollama_gateway-*.whl")
    names = zipfile.ZipFile(str(wheel)).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names
                  if n.startswith("ollama_gateway/bundled_schemas/") and n.endswith(".json")) == SCHEMAS

    # Installed from the wheel (not the source tree), the schemas load and validate.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    probe = ("import ollama_gateway, ollama_gateway.schemas as s;"
             "print(ollama_gateway.__file__);"
             "s.validate('chat_completions.request', {'model': 'm', 'messages': [{'role': 'user', 'content': 'x'}]})")
    out = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(target)},
                         cwd=str(tmp_path), check=True, stdout=subprocess.PIPE).stdout.decode()
    assert out.strip().startswith(str(target))
