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
    "upstream": ({"errors", "wire", "ndjson_body"}, {"flask", "jsonschema", "werkzeug"}),
    "ndjson_body": ({"wire"}, {"flask", "requests", "jsonschema", "werkzeug", "urllib3"}),
    "wire": ({"errors"}, {"flask", "requests", "jsonschema", "werkzeug", "urllib3"}),
    "stream": ({"errors", "wire"}, {"flask", "requests", "jsonschema", "werkzeug"}),
    "access": ({"errors"}, {"flask", "requests", "jsonschema", "werkzeug"}),
    "cors": (set(), {"flask", "requests", "jsonschema", "werkzeug"}),
    "store": ({"config"}, {"flask", "requests", "jsonschema", "werkzeug"}),
    "records": ({"errors", "store"}, {"flask", "requests", "jsonschema", "werkzeug"}),
}


def _imports(path):
    """Return (package modules imported, resolved from the package root; foreign roots)."""
    here = path.relative_to(PACKAGE).parent.parts  # ("translate",) inside the subpackage
    local, foreign = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - (node.level - 1)])
                names = [node.module] if node.module else [alias.name for alias in node.names]
                local.update(".".join(base + [name]) for name in names)
            else:
                foreign.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            foreign.update(alias.name.split(".")[0] for alias in node.names)
    return local, foreign


def _files(module):
    """Return the source files of a module or of every module of a subpackage."""
    package = PACKAGE / module
    return sorted(package.glob("*.py")) if package.is_dir() else [PACKAGE / (module + ".py")]


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_import_direction(module):
    allowed_local, forbidden = LAYERS[module]
    for path in _files(module):
        local, foreign = _imports(path)
        # A subpackage's modules may import each other.
        outside = {name for name in local if not name.startswith(module + ".")}
        assert outside <= allowed_local, "%s imports %s" % (path.name, outside - allowed_local)
        assert not foreign & forbidden, "%s imports %s" % (path.name, foreign & forbidden)


def test_translate_is_a_package_of_pure_modules():
    names = {path.stem for path in _files("translate")}
    assert {"__init__", "chat", "completions", "embeddings", "models"} <= names
    local, _ = _imports(PACKAGE / "translate" / "chat.py")
    assert "errors" in local  # resolved from the package root, not the subpackage


def test_library_never_imports_wsgi():
    for path in PACKAGE.rglob("*.py"):
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


def test_sources_run_on_python_38():
    """vermin finds nothing (syntax, stdlib calls, annotations) newer than 3.8."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())",
         "--target=3.8-", "--violations", "--eval-annotations",
         "--feature", "union-types", "--no-tips", "app", "schemas", "deploy", "tests"],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, result.stdout
