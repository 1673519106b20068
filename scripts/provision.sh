# Provisions what the tests need on this kind of machine (Debian, root or
# sudo-less root), and exports where it is. Sourced by `scripts/test` and
# `.ci/run`; safe to run again (each step checks first).
#
# - moto server 5.2.5 (AWS API emulator) and oscal-bindings 0.3.1 (OSCAL
#   schema models): a Python venv in ~/.cache/compliance-rs/moto-venv
# - Checkov 3.3.30 (Terraform verdicts to compare with): its own venv
# - py-ocsf-models 0.10.0 (OCSF event models), kubernetes-validate 1.37.0
#   (Kubernetes schemas for the deploy manifests) and securesystemslib 1.6.0
#   with cryptography 50.0.2 (an independent DSSE and Ed25519 verifier for
#   signed evidence): a venv in ~/.cache/compliance-rs/tools-venv
# - @microsoft/sarif-multitool 5.7.0 (npm; a self-contained Linux build of
#   Microsoft's SARIF validator) in ~/.cache/compliance-rs/sarif-multitool
# - Debian packages: prometheus (promtool), postgresql, openssl, curl
# - a PostgreSQL server on 127.0.0.1:55432 (data in /var/tmp/compliance-rs-pg)
#
# It sets COMPLIANCE_REQUIRE_{MOTO,OSCAL,PROMTOOL,CHECKOV,POSTGRES}=1: with
# these, a test whose tool is missing fails instead of passing unnoticed.

provision_step() { printf '\n==> %s\n' "$1"; }

provision_step "moto server and oscal-bindings, in a virtual environment"
venv="$HOME/.cache/compliance-rs/moto-venv"
if ! "$venv/bin/python" -c 'import sys, moto; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
# oscal-bindings holds typed models generated from NIST's published OSCAL JSON Schema.
if ! "$venv/bin/python" -c 'import oscal_bindings' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'oscal-bindings==0.3.1'
fi
"$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'
export COMPLIANCE_REQUIRE_MOTO=1 COMPLIANCE_REQUIRE_OSCAL=1

provision_step "Checkov (PyPI), to compare its Terraform verdicts with ours"
checkov_venv="$HOME/.cache/compliance-rs/checkov-venv"
if ! "$checkov_venv/bin/python" -c 'import sys, checkov.version as v; sys.exit(v.version != "3.3.30")' 2>/dev/null; then
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check 'checkov==3.3.30'
fi
export COMPLIANCE_CHECKOV="$checkov_venv/bin/checkov" COMPLIANCE_REQUIRE_CHECKOV=1

provision_step "py-ocsf-models, kubernetes-validate and securesystemslib, in a virtual environment"
tools_venv="$HOME/.cache/compliance-rs/tools-venv"
if ! "$tools_venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("py-ocsf-models") != "0.10.0" or m.version("kubernetes-validate") != "1.37.0" or m.version("securesystemslib") != "1.6.0")' 2>/dev/null; then
  python3 -m venv "$tools_venv"
  "$tools_venv/bin/pip" install --quiet --disable-pip-version-check \
    'py-ocsf-models==0.10.0' 'pydantic==2.14.4' 'kubernetes-validate==1.37.0' \
    'securesystemslib[crypto]==1.6.0' 'cryptography==50.0.2'
fi
export COMPLIANCE_TOOLS_PYTHON="$tools_venv/bin/python"

provision_step "Microsoft's SARIF validator (npm @microsoft/sarif-multitool 5.7.0)"
sarif_dir="$HOME/.cache/compliance-rs/sarif-multitool"
sarif_bin="$sarif_dir/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
if ! [ -x "$sarif_bin" ] || ! grep -q '"version": "5.7.0"' "$sarif_dir/node_modules/@microsoft/sarif-multitool-linux/package.json" 2>/dev/null; then
  mkdir -p "$sarif_dir"
  npm install --silent --no-audit --no-fund --prefix "$sarif_dir" --save-exact \
    '@microsoft/sarif-multitool@5.7.0' '@microsoft/sarif-multitool-linux@5.7.0' > /dev/null
  chmod u+x "$sarif_bin"
fi
# It loads the system ICU library.
ls /usr/lib/x86_64-linux-gnu/libicu*.so* > /dev/null 2>&1 || missing_icu=1
export COMPLIANCE_SARIF_MULTITOOL="$sarif_bin"

provision_step "Debian packages: prometheus (promtool), postgresql, openssl, curl, wrk"
missing=()
command -v promtool > /dev/null || missing+=(prometheus)
command -v openssl > /dev/null || missing+=(openssl)
command -v curl > /dev/null || missing+=(curl ca-certificates)
[ -z "${missing_icu:-}" ] || missing+=(libicu72)
# wrk: the webhook's load benchmark (benches/bin/webhook_load.rs).
command -v wrk > /dev/null || missing+=(wrk)
ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
promtool --version | head -1
export COMPLIANCE_REQUIRE_PROMTOOL=1

provision_step "PostgreSQL on 127.0.0.1:55432"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_port=55432
pg_data=/var/tmp/compliance-rs-pg
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  rm -rf "$pg_data"
  mkdir -p "$pg_data"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$pg_data"; fi
  as_postgres "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres > /dev/null
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_data" start > /dev/null
fi
"$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port"
export COMPLIANCE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" COMPLIANCE_REQUIRE_POSTGRES=1
