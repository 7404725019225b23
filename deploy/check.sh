#!/usr/bin/env bash
# Validates everything under deploy/ that can be checked without Docker.
# One line per check (ok / FAIL / skip); the output of a failed check follows
# its line. Exits 1 if any check failed.
#
#   bash deploy/check.sh
#
# Needs promtool (Debian: prometheus) and node (node_modules/.bin/node or PATH)
# with the project's node_modules; amtool (Debian: prometheus-alertmanager) and
# Docker Compose are used when installed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: runs CMD, prints "ok NAME" or "FAIL NAME" and its output.
run() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    printf 'ok   %s\n' "$name"
  else
    printf 'FAIL %s\n' "$name"
    sed 's/^/     | /' "$tmp/out"
    failures=$((failures + 1))
  fi
}

skip() {
  printf 'skip %s: %s\n' "$1" "$2"
}

fail() {
  printf 'FAIL %s: %s\n' "$1" "$2"
  failures=$((failures + 1))
}

node_bin=node
if [ -x node_modules/.bin/node ]; then node_bin=node_modules/.bin/node; fi

# ---------------------------------------------------------------- Prometheus
if command -v promtool >/dev/null 2>&1; then
  # rule_files in prometheus.yml are relative to that file, so they resolve
  # from here too.
  run "promtool check config deploy/prometheus/prometheus.yml" \
    promtool check config deploy/prometheus/prometheus.yml
  run "promtool check rules deploy/prometheus/rules/*.yml" \
    promtool check rules deploy/prometheus/rules/*.yml
  run "promtool test rules deploy/prometheus/tests/*.yml" \
    promtool test rules deploy/prometheus/tests/*.yml

  # Kubernetes example: Debian's promtool is built without Kubernetes service
  # discovery and rejects kubernetes_sd_configs; upstream builds accept it.
  if promtool check config deploy/k8s/prometheus-remote-write.yml >"$tmp/out" 2>&1; then
    printf 'ok   %s\n' "promtool check config deploy/k8s/prometheus-remote-write.yml"
  elif grep -q 'field kubernetes_sd_configs not found' "$tmp/out"; then
    skip "promtool check config deploy/k8s/prometheus-remote-write.yml" \
      "this promtool build has no Kubernetes service discovery"
  else
    printf 'FAIL %s\n' "promtool check config deploy/k8s/prometheus-remote-write.yml"
    sed 's/^/     | /' "$tmp/out"
    failures=$((failures + 1))
  fi

  # Every PromQL expression of the dashboards, as recording rules in a
  # scratch file, so promtool parses them. Grafana variables are replaced
  # by values of the right type first.
  if "$node_bin" -e '
    const fs = require("node:fs");
    const dir = "deploy/grafana/dashboards";
    const rules = [];
    const walk = (panels) => {
      for (const p of panels ?? []) {
        walk(p.panels);
        for (const t of p.targets ?? []) {
          if ((t.datasource?.type ?? p.datasource?.type) !== "prometheus" || !t.expr) continue;
          const expr = t.expr.replaceAll("$__rate_interval", "1m").replaceAll("$__interval", "1m")
            .replace(/\$\{?(service|node)\}?/g, ".*");
          rules.push({ record: "dashboard:check:expr", expr, labels: { panel: `${p.title}` } });
        }
      }
    };
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
      walk(JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8")).panels);
    }
    // JSON is YAML: promtool reads this file as a rule file.
    fs.writeFileSync(process.argv[1], JSON.stringify({ groups: [{ name: "dashboards", rules }] }));
  ' "$tmp/dashboard-exprs.yml" >"$tmp/out" 2>&1; then
    run "promtool: PromQL of deploy/grafana/dashboards/*.json parses" \
      promtool check rules "$tmp/dashboard-exprs.yml"
  else
    fail "promtool: PromQL of deploy/grafana/dashboards/*.json parses" "$(cat "$tmp/out")"
  fi
else
  fail "promtool" "not installed (apt-get install prometheus)"
fi

# ---------------------------------------------------------------- Alertmanager
if command -v amtool >/dev/null 2>&1; then
  # The *_file secrets are read when a notification is sent, not when the
  # configuration is loaded: the check needs no secret files.
  run "amtool check-config deploy/alertmanager/alertmanager.yml" \
    amtool check-config deploy/alertmanager/alertmanager.yml
  am_route() {
    run "amtool route: $1 -> $2" amtool config routes test \
      --config.file=deploy/alertmanager/alertmanager.yml --verify.receivers="$2" $1
  }
  am_route "severity=critical alertname=SipspanDown" "pagerduty,slack,email"
  am_route "severity=warning alertname=SipUpstreamRttHigh" "slack,email"
  am_route "alertname=Watchdog" "email"
else
  skip "amtool" "not installed (apt-get install prometheus-alertmanager)"
fi

# ---------------------------------------------------------------- JSON and YAML
# Every .json parses; every .yml/.yaml parses (all documents of a multi-document
# file), with the yaml package of node_modules.
run "every JSON file under deploy/ parses" "$node_bin" -e '
  const fs = require("node:fs");
  const { execFileSync } = require("node:child_process");
  const files = execFileSync("find", ["deploy", "-name", "*.json", "-type", "f"], { encoding: "utf8" })
    .split("\n").filter(Boolean);
  if (files.length === 0) throw new Error("no JSON files found");
  for (const f of files) {
    try { JSON.parse(fs.readFileSync(f, "utf8")); } catch (e) { console.error(`${f}: ${e.message}`); process.exitCode = 1; }
  }
'

run "every YAML file under deploy/ parses" "$node_bin" -e '
  const fs = require("node:fs");
  const { execFileSync } = require("node:child_process");
  const YAML = require("yaml");
  const files = execFileSync("find", ["deploy", "-type", "f", "(", "-name", "*.yml", "-o", "-name", "*.yaml", ")"],
    { encoding: "utf8" }).split("\n").filter(Boolean);
  if (files.length === 0) throw new Error("no YAML files found");
  for (const f of files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
      for (const e of doc.errors) { console.error(`${f}: ${e.message}`); process.exitCode = 1; }
    }
  }
'

# ---------------------------------------------------------------- sipspan configurations
# The compose configuration and the ones inside the Kubernetes ConfigMaps,
# against sipspan's own schema (`sipspan validate` binds nothing).
if "$node_bin" -e '
  const fs = require("node:fs");
  const YAML = require("yaml");
  for (const f of ["deploy/k8s/configmap.yaml", "deploy/k8s/sidecar-example.yaml"]) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
      const o = doc.toJS();
      if (o?.kind === "ConfigMap" && o.data?.["sipspan.yaml"] !== undefined) {
        fs.writeFileSync(`${process.argv[1]}/${o.metadata.name}.yaml`, o.data["sipspan.yaml"]);
      }
    }
  }
' "$tmp" >"$tmp/out" 2>&1; then
  run "sipspan validate deploy/compose/sipspan.yaml" bin/sipspan validate --config deploy/compose/sipspan.yaml
  for cm in sipspan-config sip-signaling-sipspan; do
    run "sipspan validate (ConfigMap $cm in deploy/k8s/)" bin/sipspan validate --config "$tmp/$cm.yaml"
  done
else
  fail "sipspan validate" "could not extract the ConfigMap configurations: $(cat "$tmp/out")"
fi

# ---------------------------------------------------------------- Compose
compose_file=deploy/compose/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  run "docker compose config ($compose_file)" docker compose -f "$compose_file" config -q
elif command -v docker-compose >/dev/null 2>&1; then
  # Compose v1 predates the top-level `name:`; check the rest of the file.
  grep -v '^name:' "$compose_file" >"$tmp/docker-compose.yml"
  run "docker-compose (v1) config ($compose_file, without name:)" \
    docker-compose --project-directory deploy/compose -f "$tmp/docker-compose.yml" config -q
else
  skip "docker compose config" "Docker Compose not installed"
fi

if [ "$failures" -gt 0 ]; then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
printf 'all checks passed\n'
