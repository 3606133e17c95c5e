"""The deployment files of the examples point at code that exists and install what it needs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from e2e.harness import EXAMPLES, base_env


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref``, ``!GetAtt``...) kept as plain values."""


_CfnLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        {suffix: loader.construct_scalar(node)}  # type: ignore[arg-type]
        if isinstance(node, yaml.ScalarNode)
        else {suffix: loader.construct_sequence(node)}
    ),  # type: ignore[arg-type]
)


def requirements(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_sam_template_runs_the_handler_with_botwire_settings() -> None:
    root = EXAMPLES / "aws_lambda"
    template: dict[str, Any] = yaml.load((root / "template.yaml").read_text(), Loader=_CfnLoader)
    fn = template["Resources"]["ChatFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = fn["Properties"]
    assert props["Runtime"] in ("python3.11", "python3.12")
    module, func = props["Handler"].split(".")
    tree = ast.parse((root / f"{module}.py").read_text())
    assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    env = props["Environment"]["Variables"]
    assert env["BOTWIRE_URL"] == {"Ref": "BotWireUrl"}
    assert env["BOTWIRE_TOKEN"] == {"Ref": "BotWireToken"}
    assert template["Parameters"]["BotWireToken"]["NoEcho"] is True
    assert requirements(root / "requirements.txt") == ["botwire-core==0.3.0"]


def test_lambda_handler_needs_nothing_but_botwire_core(tmp_path: Path) -> None:
    """Imported in a fresh process, the handler loads only the standard library and botwire."""
    code = (
        "import sys, json; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
        "import handler; new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(json.dumps(sorted(new - set(sys.stdlib_module_names))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "aws_lambda")],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout) == ["botwire", "handler"]


def test_vercel_config_names_the_function_file() -> None:
    root = EXAMPLES / "vercel"
    config = json.loads((root / "vercel.json").read_text())
    for path in config["functions"]:
        assert (root / path).is_file(), path
    source = (root / "api" / "chat.py").read_text()
    tree = ast.parse(source)
    assert "handler" in {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert requirements(root / "requirements.txt") == ["botwire[langchain]==0.3.0"]


def test_cloud_run_image_installs_the_async_client_and_serves_port() -> None:
    root = EXAMPLES / "cloud_run"
    assert "botwire[async]==0.3.0" in requirements(root / "requirements.txt")
    dockerfile = (root / "Dockerfile").read_text()
    assert "uvicorn main:app" in dockerfile and "${PORT" in dockerfile
    assert "COPY main.py" in dockerfile
