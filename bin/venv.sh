# Sourced by the other bin/ scripts: makes sure .venv exists and holds the
# pinned requirements named in $1 and presto itself, reinstalling only when
# the requirement files or setup.py changed since the last install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/${1:-requirements.txt}"

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
    "$PYTHON" -m venv "$VENV"
fi

stamp_file="$VENV/.presto-installed-$(basename "$REQUIREMENTS")"
stamp="$(cat "$ROOT/requirements.txt" "$REQUIREMENTS" "$ROOT/setup.py" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
    echo "Installing $(basename "$REQUIREMENTS") into .venv ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
    echo "$stamp" > "$stamp_file"
fi
