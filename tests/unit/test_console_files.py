"""The console's files as shipped: the vendored library is the published one, no file needs
an inline script, inline style or eval (the CSP forbids them), and the package ships them all."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"


def web_files() -> list[Path]:
    return [p for p in WEB.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_vendored_files_match_their_recorded_checksums() -> None:
    lines = (WEB / "vendor" / "SHA256SUMS").read_text().splitlines()
    assert lines
    for line in lines:
        digest, name = line.split()
        actual = hashlib.sha256((WEB / "vendor" / name).read_bytes()).hexdigest()
        assert actual == digest, name


def test_no_inline_script_or_style_in_the_page() -> None:
    page = (WEB / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all("src=" in tag for tag in scripts)
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)  # inline event handlers are inline script


def test_no_module_of_ours_uses_eval_or_inline_styles() -> None:
    for path in WEB.glob("**/*.js"):
        if "vendor" in path.parts:
            continue
        text = path.read_text()
        assert "eval(" not in text and "new Function" not in text, path
        assert not re.search(r"\sstyle=", text), path
        assert "innerHTML" not in text and "dangerouslySetInnerHTML" not in text, path
        assert "sessionStorage" not in text, path


def test_local_storage_holds_only_the_signed_in_hint_never_a_token() -> None:
    users = [p.name for p in WEB.glob("**/*.js") if "localStorage" in p.read_text()]
    assert users == ["api.js"]
    keys = re.findall(r"localStorage\.\w+\(([^,)]+)", (WEB / "api.js").read_text())
    assert keys and set(keys) == {"SIGNED_IN_HINT"}


def test_the_package_data_ships_every_console_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["web"]
    assert "web*" in config["packages"]["find"]["include"]
    for path in web_files():
        relative = path.relative_to(WEB).as_posix()
        if relative == "__init__.py":
            continue
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative
