"""The README's Python RAG example runs as written (in a fresh process)."""
import os
import re
import subprocess
import sys

from conftest import REPO


def test_readme_rag_example_runs(tmp_path):
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- python-rag-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its python-rag-example block"
    script = tmp_path / "example.py"
    script.write_text(m.group(1))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "s3://library/spells/protego.md" in r.stdout
