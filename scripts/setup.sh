# Sourced by run.sh and test.sh: a virtual environment with Herald installed.
# Needs python3 (3.11+), and for the local broker Java 17+ and Maven.
set -euo pipefail
for tool in python3 java mvn; do
  command -v "$tool" >/dev/null || { echo "herald: $tool is required" >&2; exit 1; }
done
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.herald-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
