"""The example deployment in deploy/ and docs/DEPLOY.md names only commands and settings that exist.

Each `minsheng …` command line (compose services, systemd ExecStart, the commands DEPLOY.md cites) is parsed by
the real Typer app without running it, so an unknown command or option, or a bad value, fails here; every
`MINSHENG_*` variable must be a field of the settings the processes read; the nginx sites pass `nginx -t` when
nginx is installed.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from minsheng.cli.main import app
from minsheng.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "DEPLOY.md"
UNITS = sorted(p for p in (DEPLOY / "systemd").iterdir() if p.suffix in (".service", ".target", ".timer"))
NGINX_SITES = sorted((DEPLOY / "nginx").glob("*.conf"))
SETTING = re.compile(r"\bMINSHENG_([A-Z0-9_]*[A-Z0-9])\b")
# In DEPLOY.md, `minsheng` in a command's position: `minsheng db upgrade`, …/bin/minsheng serve, a && minsheng-admin
# users add, docker compose run --rm api minsheng …; not as an argument (install minsheng-admin minsheng-backup).
CITED = re.compile(
    r"(?:^|&&|;|\||\$\(|bin/|run --rm \S+ |exec (?:-T )?\S+ )\s*minsheng(?:-admin)?((?:[ \t]+[a-z][a-z-]*)+)"
)


def settings_classes() -> list[type[BaseSettings]]:
    """What the processes read MINSHENG_* into."""
    return [Settings]


def settings_fields() -> set[str]:
    return {name for cls in settings_classes() for name in cls.model_fields}


def is_group(cmd: Any) -> bool:
    return hasattr(cmd, "get_command")  # Typer's groups (its own vendored click: no click.Group to test for)


def subcommand(group: Any, name: str) -> Any:
    return group.get_command(typer.Context(group), name)


def parse_cli(argv: list[str]) -> Any:
    """Resolve `minsheng ARGV…` to its command and parse the arguments (types, ranges) without running it."""
    cmd = typer.main.get_command(app)
    words = list(argv)
    path = ["minsheng"]
    while is_group(cmd):
        assert words, f"`{' '.join(path)}` needs a subcommand"
        name = words.pop(0)
        sub = subcommand(cmd, name)
        assert sub is not None, f"`{' '.join(path)}` has no command {name!r}"
        path.append(name)
        cmd = sub
    try:
        cmd.make_context(" ".join(path), words)
    except typer.TyperException as e:  # the CLI's usage errors: unknown option, bad value
        pytest.fail(f"`{' '.join([*path, *words])}`: {e}")
    return cmd


def command_words(argv: list[str]) -> list[str]:
    """The leading words of a command line that name the (sub)command: `serve`, `worker run`, `db upgrade`."""
    out = []
    for word in argv:
        if word.startswith("-"):
            break
        out.append(word)
    return out


def help_exits_zero(words: list[str]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"`minsheng {' '.join(words)} --help`: {result.output}"


def minsheng_argv(exec_line: str) -> list[str] | None:
    """The arguments after the `minsheng` executable in a command line, or None when it runs something else."""
    argv = shlex.split(exec_line.lstrip("-@:+!"))
    if not argv or Path(argv[0]).name != "minsheng":
        return None
    return argv[1:]


# ------------------------------------------------------------------------------------------------- compose
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def resolved(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} with a stand-in value."""
    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}", lambda m: f"x{m.group(1).lower()}", value)


def test_compose_parses_with_the_expected_services() -> None:
    services = compose()["services"]
    assert {"postgres", "migrate", "api", "worker", "nginx"} <= set(services)
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_services_run_existing_commands() -> None:
    used = set()
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command is None or (isinstance(command, list) and command[0] != "minsheng"):
            continue
        argv = command if isinstance(command, list) else shlex.split(command)
        assert argv[0] == "minsheng", f"service {name}: {argv}"
        parse_cli(argv[1:])
        help_exits_zero(command_words(argv[1:]))
        used.add(" ".join(command_words(argv[1:])))
    assert {"serve", "worker run", "db upgrade"} <= used


def test_compose_settings_are_valid_and_production_like() -> None:
    services = compose()["services"]
    for name in ("migrate", "api", "worker"):
        env = {k: resolved(str(v)) for k, v in services[name]["environment"].items()}
        values = {k[len("MINSHENG_") :].lower(): v for k, v in env.items() if k.startswith("MINSHENG_")}
        settings = Settings(**values)  # validates every value, refuses the default secret in production
        assert settings.environment == "production"
        assert settings.cookie_secure
        assert settings.database_url.startswith("postgresql://")
    api_env = services["api"]["environment"]
    assert str(api_env["MINSHENG_EMBEDDED_WORKER"]).lower() == "false"
    assert "${" in api_env["MINSHENG_SECRET_KEY"], "the secret comes from deploy/.env, not the file"


def test_compose_build_copies_files_that_exist() -> None:
    build = compose()["x-minsheng"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file()
    ignore = (
        (dockerfile.parent / (dockerfile.name + ".dockerignore")).read_text(encoding="utf-8").splitlines()
    )
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
                assert f"!{source}" in ignore or f"!{source}/" in ignore, (
                    f"{source} is left out of the context"
                )
    for volume in compose()["services"]["nginx"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./nginx/"):
            assert (DEPLOY / source).is_file(), volume


# ------------------------------------------------------------------------------------------------- systemd
def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def test_systemd_units_parse() -> None:
    names = {p.name for p in UNITS}
    assert {"minsheng-api@.service", "minsheng-worker.service"} <= names
    for path in UNITS:
        parsed = unit(path)
        assert "Unit" in parsed, path.name
        kind = path.suffix.lstrip(".").capitalize()
        if kind in ("Service", "Timer"):
            assert kind in parsed, f"{path.name} has no [{kind}] section"


def test_systemd_units_run_existing_commands() -> None:
    used = set()
    for path in (p for p in UNITS if p.suffix == ".service"):
        for key, line in unit(path)["Service"].items():
            if not key.startswith("Exec"):
                continue
            argv = minsheng_argv(line.replace("%i", "8001"))
            if argv is None:
                continue
            parse_cli(argv)
            help_exits_zero(command_words(argv))
            used.add(" ".join(command_words(argv)))
    assert {"serve", "worker run"} <= used


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: units checked by configparser only")
    names = []
    for path in UNITS:
        text = re.sub(r"^(Exec\w+=)\S+", r"\1/bin/true", path.read_text(encoding="utf-8"), flags=re.M)
        name = path.name.replace("@.", "@8001.")  # an instance of the template
        (tmp_path / name).write_text(text, encoding="utf-8")
        names.append(f"./{name}")
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    # Unknown keys and bad values are only warned about: any line naming one of the units is a finding.
    findings = [line for line in done.stderr.splitlines() if any(n[2:] in line for n in names)]
    assert not findings, "\n".join(findings)


def test_the_api_unit_leaves_background_work_to_the_worker() -> None:
    service = unit(DEPLOY / "systemd" / "minsheng-api@.service")["Service"]
    assert service["Environment"] == "MINSHENG_EMBEDDED_WORKER=false"
    assert "--port %i" in service["ExecStart"]


def test_the_admin_helper_runs_the_units_executable_with_their_environment() -> None:
    helper = (DEPLOY / "systemd" / "minsheng-admin").read_text(encoding="utf-8")
    api = unit(DEPLOY / "systemd" / "minsheng-api@.service")["Service"]
    assert f"BIN={shlex.split(api['ExecStart'])[0]}" in helper
    assert f"ENV_FILE={api['EnvironmentFile']}" in helper


def test_the_backup_script_backs_up_through_minsheng_db_backup() -> None:
    """The nightly job uses the project's own command (both stores, the services' settings), not pg_dump."""
    script = (DEPLOY / "systemd" / "minsheng-backup").read_text(encoding="utf-8")
    code = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert not [line for line in code if re.search(r"\bpg_(dump|restore)\b", line)], "calls pg_dump itself"
    calls = [line for line in code if line.startswith('"$MINSHENG" ')]
    assert calls, "the script does not run minsheng"
    used = set()
    for line in calls:
        argv = shlex.split(line.replace('"$day/', '"/backup/minsheng/2026-12-01/'))[1:]
        parse_cli(argv)
        help_exits_zero(command_words(argv))
        used.add(" ".join(command_words(argv)))
    assert used == {"db backup"}
    # The executable and the settings are the services': the same binary, the same environment file.
    api = unit(DEPLOY / "systemd" / "minsheng-api@.service")["Service"]
    assert f"MINSHENG=${{MINSHENG:-{shlex.split(api['ExecStart'])[0]}}}" in script
    backup = unit(DEPLOY / "systemd" / "minsheng-backup.service")["Service"]
    assert backup["EnvironmentFile"] == api["EnvironmentFile"]
    assert backup["ExecStart"] == "/usr/local/bin/minsheng-backup"
    assert "DATA_DIR=${MINSHENG_DATA_DIR:-" in script


def test_environment_example_is_valid() -> None:
    values: dict[str, str] = {}
    for line in (DEPLOY / "systemd" / "minsheng.env.example").read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"#?MINSHENG_([A-Z0-9_]+)=(.*)", line.strip())
        if m and m.group(2):
            values[m.group(1).lower()] = m.group(2)
    assert values["environment"] == "production"
    assert Settings(**values).embedded_worker is False
    for cls in settings_classes():
        cls(**values)  # every value parses as its field's type


# ------------------------------------------------------------------------------------------------- settings
def test_every_minsheng_variable_named_is_a_setting() -> None:
    fields = settings_fields()
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [DOC]
    unknown = {}
    for path in files:
        for m in SETTING.finditer(path.read_text(encoding="utf-8")):
            name = m.group(1).lower()
            # DEPLOY.md names groups of settings by their prefix: MINSHENG_SMTP_*, MINSHENG_DINGTALK_*
            grouped = path.read_text(encoding="utf-8")[m.end() : m.end() + 2] == "_*"
            if name not in fields and not (grouped and any(f.startswith(name + "_") for f in fields)):
                unknown.setdefault(f"MINSHENG_{m.group(1)}", set()).add(str(path.relative_to(ROOT)))
    assert not unknown, f"not fields of the settings: {unknown}"


# -------------------------------------------------------------------------------------------------- docs
def test_commands_cited_in_the_deploy_doc_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]+)`", text)
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    lines = spans + [line for block in blocks for line in block.splitlines()]
    cited = set()
    group = typer.main.get_command(app)
    for line in lines:
        for m in CITED.finditer(line):
            words = m.group(1).split()
            cmd = group
            path: list[str] = []
            for word in words:
                if not is_group(cmd):
                    break
                sub = subcommand(cmd, word)
                assert sub is not None, (
                    f"DEPLOY.md cites `minsheng {' '.join([*path, word])}`: no such command"
                )
                path.append(word)
                cmd = sub
            assert not is_group(cmd), f"DEPLOY.md cites `minsheng {' '.join(path)}`, which needs a subcommand"
            cited.add(" ".join(path))
    assert {"serve", "worker run", "db upgrade", "db check"} <= cited


def test_deploy_doc_is_linked_from_the_readme() -> None:
    assert "docs/DEPLOY.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# -------------------------------------------------------------------------------------------------- locks
def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]).lower() for r in requirements}


def test_lock_files_pin_every_requirement_and_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    full, runtime = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-runtime.lock")
    extras = project["optional-dependencies"]
    assert requirement_names(project["dependencies"] + extras["test"] + extras["dev"]) <= set(full), (
        "pyproject.toml names a package requirements.lock does not pin: run `make lock`"
    )
    assert requirement_names(project["dependencies"]) <= set(runtime)
    assert {k: full.get(k) for k in runtime} == runtime, "the runtime lock is not a part of requirements.lock"
    assert "--hash=sha256:" in (ROOT / "requirements-runtime.lock").read_text(encoding="utf-8")


# -------------------------------------------------------------------------------------------------- nginx
def test_nginx_sites_stream_events_unbuffered_and_take_attachments() -> None:
    limit = Settings().max_attachment_bytes
    for site in NGINX_SITES:
        text = site.read_text(encoding="utf-8")
        events = re.search(r"location = /screen/events \{(.*?)\}", text, flags=re.S)
        assert events and "proxy_buffering off;" in events.group(1), site.name
        size = re.search(r"client_max_body_size (\d+)m;", text)
        assert size and int(size.group(1)) * 1024 * 1024 > limit, site.name
        assert "X-Forwarded-Proto $scheme" in text and "ssl_certificate " in text


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


@pytest.mark.parametrize("site", NGINX_SITES, ids=lambda p: p.name)
def test_nginx_site_passes_nginx_t(site: Path, tmp_path: Path) -> None:
    nginx, openssl = _nginx(), shutil.which("openssl")
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light): config not checked by nginx -t")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to run nginx -t with")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = site.read_text(encoding="utf-8")
    text = text.replace("/etc/ssl/minsheng/fullchain.pem", str(cert))
    text = text.replace("/etc/ssl/minsheng/privkey.pem", str(key))
    text = text.replace("/var/log/nginx/", f"{tmp_path}/")
    # The compose site's upstream is a service name that resolves only on the compose network.
    text = text.replace("server api:8000", "server 127.0.0.1:8000")
    (tmp_path / "site.conf").write_text(text, encoding="utf-8")
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log {tmp_path}/access.log;\n  {temp}\n"
        f"  uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;\n"
        f"  include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-t", "-p", tmp_path, "-e", tmp_path / "error.log", "-c", tmp_path / "nginx.conf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
