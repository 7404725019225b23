/**
 * Validates deploy/: Prometheus configuration, rules and rule unit tests (promtool), Alertmanager
 * (amtool), Grafana dashboards against docs/telemetry-contract.md, the compose stack, the log
 * pipelines and the Kubernetes manifests. promtool and amtool are required: a missing tool fails
 * its test (Debian packages `prometheus` and `prometheus-alertmanager`).
 *
 *   node_modules/.bin/node --test test/deploy/deploy-configs.test.ts
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import YAML from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deploy = join(root, 'deploy');
const rulesDir = join(deploy, 'prometheus', 'rules');
const testsDir = join(deploy, 'prometheus', 'tests');
const dashboardsDir = join(deploy, 'grafana', 'dashboards');

// ---------------------------------------------------------------- helpers

/** Every file under `dir` (recursive), absolute paths, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out.sort();
}

function read(path: string): string {
  return readFileSync(path, 'utf8');
}

// biome-ignore lint/suspicious/noExplicitAny: parsed configuration files are untyped trees.
type Json = any;

function yamlFile(path: string): Json {
  return YAML.parse(read(path));
}

/** Runs a tool from the repository root; fails the test with its output unless it exits 0. */
function runTool(cmd: string, args: readonly string[], install: string): string {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  if (r.error !== undefined) {
    const code = (r.error as NodeJS.ErrnoException).code;
    assert.fail(code === 'ENOENT' ? `${cmd} is not installed (${install})` : `${cmd}: ${r.error.message}`);
  }
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited with ${r.status}:\n${output}`);
  return output;
}

const promtool = (...args: string[]): string => runTool('promtool', args, 'apt-get install prometheus');
const amtool = (...args: string[]): string =>
  runTool('amtool', args, 'apt-get install prometheus-alertmanager');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rulesOf(file: string): Rule[] {
  const doc = yamlFile(join(rulesDir, file));
  return doc.groups.flatMap((g: { rules: Rule[] }) => g.rules);
}

const recordingRules = rulesOf('sipspan-recording.yml');
const alertRules = rulesOf('sipspan-alerts.yml');

/** Names the telemetry contract defines: metric names and recording rule names (backticked). */
function contractNames(): { metrics: Set<string>; records: Set<string> } {
  const text = read(join(root, 'docs', 'telemetry-contract.md'));
  const metrics = new Set<string>();
  const records = new Set<string>();
  for (const m of text.matchAll(/`([^`\s]+)`/g)) {
    // A name alone, or with its labels: `sipspan_build_info{version,node}`.
    const metric = /^((?:sip|sipspan)_[a-z0-9_]+)(?:\{[^}]*\})?$/.exec(m[1]);
    if (metric !== null) metrics.add(metric[1]);
    else if (/^service:[a-z0-9_]+:[a-z0-9_]+$/.test(m[1])) records.add(m[1]);
  }
  return { metrics, records };
}

/** prom-client's default metric names (process_*, nodejs_*), from a scratch registry. */
async function promClientDefaultNames(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const names = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  registry.clear();
  return names;
}

interface Panel {
  id?: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

function dashboardFiles(): string[] {
  return readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(dashboardsDir, f));
}

/** Panels of a dashboard, rows' nested panels included. */
function panelsOf(dashboard: { panels: Panel[] }): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

const RECORD_NAME = /\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g;

/** Metric names used by a PromQL expression: recording rule names, then sip_/sipspan_/process_/nodejs_ names. */
function metricNamesOf(expr: string): { records: string[]; metrics: string[] } {
  const records = expr.match(RECORD_NAME) ?? [];
  const rest = expr.replace(RECORD_NAME, ' ');
  const metrics = (rest.match(/\b(?:sip|sipspan|process|nodejs)_\w+/g) ?? []).map((n) =>
    n.replace(/_(bucket|sum|count)$/, ''),
  );
  return { records, metrics };
}

// ---------------------------------------------------------------- Prometheus (promtool)

test('promtool check config deploy/prometheus/prometheus.yml', () => {
  const out = promtool('check', 'config', 'deploy/prometheus/prometheus.yml');
  assert.match(out, /SUCCESS: 2 rule files found/, out);
});

test('promtool check rules deploy/prometheus/rules/*.yml', () => {
  const files = readdirSync(rulesDir).map((f) => join('deploy/prometheus/rules', f));
  assert.ok(files.length >= 2);
  promtool('check', 'rules', ...files);
});

test('promtool test rules deploy/prometheus/tests/*.yml', () => {
  const files = readdirSync(testsDir)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => join('deploy/prometheus/tests', f));
  assert.ok(files.length >= 2);
  promtool('test', 'rules', ...files);
});

test('every PromQL expression of the dashboards parses (promtool)', (t) => {
  const rules: { record: string; expr: string }[] = [];
  for (const file of dashboardFiles()) {
    for (const p of panelsOf(JSON.parse(read(file)))) {
      for (const target of p.targets ?? []) {
        if ((target.datasource?.type ?? p.datasource?.type) !== 'prometheus' || !target.expr) continue;
        const expr = target.expr
          .replaceAll('$__rate_interval', '1m')
          .replaceAll('$__interval', '1m')
          .replace(/\$\{?(service|node)\}?/g, '.*');
        rules.push({ record: 'dashboard:check:expr', expr });
      }
    }
  }
  assert.ok(rules.length > 30, `only ${rules.length} expressions found`);
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-dashboards-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'exprs.yml');
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboards', rules }] }));
  promtool('check', 'rules', file);
});

test('the Kubernetes Prometheus example is a valid configuration (promtool)', (t) => {
  // Debian's promtool is built without Kubernetes service discovery: check the file with each
  // kubernetes_sd_configs block swapped for a static target, so everything else is still validated.
  const cfg = yamlFile(join(deploy, 'k8s', 'prometheus-remote-write.yml'));
  for (const sc of cfg.scrape_configs ?? []) {
    if (sc.kubernetes_sd_configs !== undefined) {
      delete sc.kubernetes_sd_configs;
      sc.static_configs = [{ targets: ['127.0.0.1:13000'] }];
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-k8s-prom-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, JSON.stringify(cfg));
  promtool('check', 'config', file);
});

test('prometheus.yml scrapes both route ports and the admin port and alerts to alertmanager:9093', () => {
  const cfg = yamlFile(join(deploy, 'prometheus', 'prometheus.yml'));
  const targets = cfg.scrape_configs.flatMap((s: Json) =>
    (s.static_configs ?? []).flatMap((c: Json) => c.targets),
  );
  for (const t of ['sipspan:13012', 'sipspan:13022', 'sipspan:13000']) assert.ok(targets.includes(t), t);
  assert.deepEqual(cfg.alerting.alertmanagers[0].static_configs[0].targets, ['alertmanager:9093']);
  assert.deepEqual(cfg.rule_files, ['rules/*.yml']);
});

test('recording rules are exactly the ones the contract names', () => {
  const { records } = contractNames();
  assert.deepEqual(recordingRules.map((r) => r.record).sort(), [...records].sort());
});

test('every alert has severity, summary, description and a runbook anchor that exists', () => {
  const readme = read(join(deploy, 'README.md'));
  const anchors = new Set(
    [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1]
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    ),
  );
  const expected = [
    'SipUpstreamRttHigh',
    'SipUpstreamNotAnswering',
    'SipServerErrorRatioHigh',
    'SipSessionEstablishmentRatioLow',
    'SipspanDroppingMessages',
    'SipspanUdpReceiveDrops',
    'SipspanHeapGuardSoft',
    'SipspanHeapGuardShedding',
    'SipspanSpanExportFailing',
    'SipspanDown',
  ];
  assert.deepEqual(alertRules.map((r) => r.alert).sort(), [...expected].sort());
  for (const r of alertRules) {
    assert.match(r.labels?.severity ?? '', /^(critical|warning)$/, `${r.alert}: severity`);
    for (const a of ['summary', 'description', 'runbook_url']) {
      assert.ok(r.annotations?.[a], `${r.alert}: annotation ${a}`);
    }
    const url = r.annotations?.runbook_url ?? '';
    assert.match(url, /^\.\.\/\.\.\/README\.md#/, `${r.alert}: runbook_url relative to the rules file`);
    const anchor = url.slice(url.indexOf('#') + 1);
    assert.ok(anchors.has(anchor), `${r.alert}: no section #${anchor} in deploy/README.md`);
  }
});

test('SipUpstreamRttHigh: p95 upstream RTT above 0.2 s for 1m', () => {
  const rule = alertRules.find((r) => r.alert === 'SipUpstreamRttHigh');
  assert.ok(rule);
  assert.equal(rule.expr.trim(), 'service:sip_upstream_rtt_seconds:p95_1m > 0.2');
  assert.equal(rule.for, '1m');
});

test('every rule is exercised by a promtool unit test', () => {
  const tests = readdirSync(testsDir)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => yamlFile(join(testsDir, f)));
  const exprs = new Set<string>();
  const alertnames = new Set<string>();
  for (const doc of tests) {
    for (const group of doc.tests) {
      for (const e of group.promql_expr_test ?? []) exprs.add(e.expr);
      for (const a of group.alert_rule_test ?? []) {
        // Only a test that expects the alert to fire shows the rule can fire.
        if ((a.exp_alerts ?? []).length > 0) alertnames.add(a.alertname);
      }
    }
  }
  const exprText = [...exprs].join('\n');
  for (const r of recordingRules) {
    assert.ok(exprText.includes(r.record ?? ''), `no promql_expr_test for ${r.record}`);
  }
  for (const r of alertRules)
    assert.ok(alertnames.has(r.alert ?? ''), `no firing alert_rule_test for ${r.alert}`);
});

// ---------------------------------------------------------------- Alertmanager (amtool)

test('amtool check-config deploy/alertmanager/alertmanager.yml', () => {
  amtool('check-config', 'deploy/alertmanager/alertmanager.yml');
});

test('alertmanager routes critical to PagerDuty, Slack and email, warning to Slack and email', () => {
  const cases: [string[], string][] = [
    [['severity=critical', 'alertname=SipspanDown'], 'pagerduty,slack,email'],
    [['severity=warning', 'alertname=SipUpstreamRttHigh'], 'slack,email'],
    [['alertname=Watchdog'], 'email'],
  ];
  for (const [labels, receivers] of cases) {
    amtool(
      'config',
      'routes',
      'test',
      '--config.file=deploy/alertmanager/alertmanager.yml',
      `--verify.receivers=${receivers}`,
      ...labels,
    );
  }
});

test('alertmanager: grouping, inhibition, and secrets only from files', () => {
  const text = read(join(deploy, 'alertmanager', 'alertmanager.yml'));
  const cfg = YAML.parse(text);
  assert.deepEqual(cfg.route.group_by, ['alertname', 'service']);
  assert.deepEqual(cfg.inhibit_rules, [
    {
      source_matchers: ['alertname="SipUpstreamNotAnswering"'],
      target_matchers: ['alertname="SipUpstreamRttHigh"'],
      equal: ['service'],
    },
    {
      source_matchers: ['alertname="SipspanHeapGuardShedding"'],
      target_matchers: ['alertname="SipspanHeapGuardSoft"'],
      equal: ['node', 'instance'],
    },
  ]);
  const byName = new Map<string, Json>(cfg.receivers.map((r: Json) => [r.name, r]));
  assert.match(byName.get('email').email_configs[0].auth_password_file, /^\/etc\/alertmanager\/secrets\//);
  assert.match(byName.get('slack').slack_configs[0].api_url_file, /^\/etc\/alertmanager\/secrets\//);
  assert.match(
    byName.get('pagerduty').pagerduty_configs[0].routing_key_file,
    /^\/etc\/alertmanager\/secrets\//,
  );
  // No inline secret anywhere.
  assert.doesNotMatch(
    text,
    /^\s*(auth_password|smtp_auth_password|api_url|slack_api_url|routing_key|service_key)\s*:/m,
  );
});

// ---------------------------------------------------------------- Grafana

test('dashboards: valid JSON, provisioned data sources, service and node variables', () => {
  const provisioned = yamlFile(join(deploy, 'grafana', 'datasources', 'datasources.yml'));
  const uids = new Set(provisioned.datasources.map((d: { uid: string }) => d.uid));
  assert.deepEqual([...uids].sort(), ['jaeger', 'loki', 'prometheus']);
  const files = dashboardFiles().map((f) => relative(dashboardsDir, f));
  assert.deepEqual(files.sort(), [
    'sipspan-call-kpis.json',
    'sipspan-errors.json',
    'sipspan-health.json',
    'sipspan-hop-latency.json',
  ]);
  const dashboardUids = new Set<string>();
  for (const file of dashboardFiles()) {
    const d = JSON.parse(read(file));
    const name = relative(root, file);
    assert.ok(d.schemaVersion >= 39, `${name}: schemaVersion ${d.schemaVersion}`);
    assert.ok(!dashboardUids.has(d.uid), `${name}: duplicate uid ${d.uid}`);
    dashboardUids.add(d.uid);
    const vars = d.templating.list.map((v: { name: string }) => v.name);
    assert.ok(vars.includes('service') && vars.includes('node'), `${name}: variables ${vars}`);
    for (const v of d.templating.list) assert.ok(uids.has(v.datasource.uid), `${name}: variable ${v.name}`);
    const ids = new Set<number>();
    for (const p of panelsOf(d)) {
      assert.ok(p.id !== undefined && !ids.has(p.id), `${name}: panel id ${p.id} of "${p.title}"`);
      ids.add(p.id);
      if (p.type === 'row') continue;
      assert.ok(p.datasource?.uid && uids.has(p.datasource.uid), `${name}: "${p.title}" data source`);
      assert.ok((p.targets ?? []).length > 0, `${name}: "${p.title}" has no query`);
      for (const t of p.targets ?? []) {
        if (t.datasource)
          assert.ok(uids.has(t.datasource.uid ?? ''), `${name}: "${p.title}" target data source`);
      }
    }
  }
});

test('dashboards query only metric names from the telemetry contract and prom-client defaults', async () => {
  const { metrics, records } = contractNames();
  const defaults = await promClientDefaultNames();
  assert.ok(defaults.has('process_cpu_seconds_total') && defaults.has('nodejs_eventloop_lag_p99_seconds'));
  let checked = 0;
  for (const file of dashboardFiles()) {
    const d = JSON.parse(read(file));
    const exprs: [string, string][] = [];
    for (const p of panelsOf(d)) {
      for (const t of p.targets ?? []) if (t.expr) exprs.push([p.title, t.expr]);
    }
    for (const v of d.templating.list) exprs.push([`variable ${v.name}`, v.definition ?? '']);
    for (const a of d.annotations?.list ?? []) if (a.expr) exprs.push([`annotation ${a.name}`, a.expr]);
    for (const [where, expr] of exprs) {
      const used = metricNamesOf(expr);
      for (const r of used.records) {
        assert.ok(
          records.has(r),
          `${relative(root, file)}: "${where}" uses ${r}, not a contract recording rule`,
        );
      }
      for (const m of used.metrics) {
        assert.ok(
          metrics.has(m) || defaults.has(m),
          `${relative(root, file)}: "${where}" uses ${m}, not in docs/telemetry-contract.md nor a prom-client default`,
        );
        checked++;
      }
    }
  }
  assert.ok(checked > 30, `only ${checked} metric references checked`);
});

test('the hop-latency dashboard draws the 0.2 s threshold on upstream RTT', () => {
  const d = JSON.parse(read(join(dashboardsDir, 'sipspan-hop-latency.json')));
  const rtt = panelsOf(d).filter((p: Json) =>
    (p.targets ?? []).some((t: Json) => /sip_upstream_rtt_seconds/.test(t.expr ?? '')),
  );
  const withLine = rtt.filter(
    (p: Json) =>
      p.fieldConfig?.defaults?.custom?.thresholdsStyle?.mode !== 'off' &&
      p.fieldConfig?.defaults?.thresholds?.steps?.some((s: Json) => s.value === 0.2),
  );
  assert.ok(withLine.length >= 2, 'RTT panels with a 0.2 s threshold line');
});

// ---------------------------------------------------------------- compose

test('docker-compose.yml: the whole stack, sipspan wired as specified', () => {
  const compose = yamlFile(join(deploy, 'compose', 'docker-compose.yml'));
  const services = compose.services;
  for (const s of [
    'sipspan',
    'sip-gateway',
    'sip-signaling',
    'prometheus',
    'alertmanager',
    'grafana',
    'loki',
    'alloy',
    'jaeger',
  ]) {
    assert.ok(services[s], `service ${s}`);
  }
  const sipspan = services.sipspan;
  assert.deepEqual(sipspan.command, ['run', '--config', '/etc/sipspan/sipspan.yaml']);
  assert.ok(sipspan.volumes.includes('./sipspan.yaml:/etc/sipspan/sipspan.yaml:ro'));
  assert.equal(sipspan.environment.OTEL_TRACES_EXPORTER, 'otlp');
  assert.equal(sipspan.environment.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318');
  assert.equal(sipspan.environment.OTEL_EXPORTER_OTLP_PROTOCOL, 'http/protobuf');
  assert.equal(sipspan.environment.OTEL_SERVICE_NAME, 'sipspan');
  for (const p of ['5060:5060/udp', '5060:5060/tcp', '13012:13012', '13022:13022']) {
    assert.ok(sipspan.ports.includes(p), `port ${p}`);
  }
  assert.match(sipspan.healthcheck.test.join(' '), /http:\/\/127\.0\.0\.1:13000\/healthz/);
  assert.equal(services['sip-gateway'].image, sipspan.image);
  assert.equal(services['sip-signaling'].image, sipspan.image);
  assert.deepEqual(services['sip-gateway'].command.slice(0, 2), ['standin', 'forward']);
  assert.deepEqual(services['sip-signaling'].command.slice(0, 2), ['standin', 'uas']);
  assert.match(services.jaeger.image, /^jaegertracing\/jaeger:2\./);
  for (const p of ['4317:4317', '4318:4318', '16686:16686']) {
    assert.ok(services.jaeger.ports.includes(p), `jaeger port ${p}`);
  }
});

test('compose sipspan.yaml: routes, ports and admin as in the contract', () => {
  const cfg = yamlFile(join(deploy, 'compose', 'sipspan.yaml'));
  assert.equal(typeof cfg.node, 'string');
  assert.doesNotMatch(cfg.node, /\$/, 'the config loader does not expand variables');
  assert.equal(cfg.admin, '0.0.0.0:13000');
  const routes = new Map<string, Json>(cfg.routes.map((r: Json) => [r.name, r]));
  assert.deepEqual([...routes.keys()], ['sip-gateway', 'sip-signaling']);
  assert.equal(routes.get('sip-gateway').metrics, '0.0.0.0:13012');
  assert.equal(routes.get('sip-gateway').upstream, 'udp://sip-gateway:5060');
  assert.equal(routes.get('sip-signaling').metrics, '0.0.0.0:13022');
  assert.equal(routes.get('sip-signaling').upstream, 'udp://sip-signaling:5060');
});

// ---------------------------------------------------------------- logs

test('log pipelines: labels service, node, level only; trace_id and call_id as structured metadata', () => {
  const alloy = read(join(deploy, 'logs', 'alloy', 'config.alloy'));
  const block = (name: string): string => {
    const start = alloy.indexOf(`${name} {`);
    assert.ok(start >= 0, name);
    return alloy.slice(start, alloy.indexOf('}', alloy.indexOf('{', start + name.length + 2) + 1) + 1);
  };
  const keys = (text: string): string[] => [...text.matchAll(/^\s*(\w+)\s*=\s*""/gm)].map((m) => m[1]);
  assert.deepEqual(keys(block('stage.labels')), ['service', 'node', 'level']);
  assert.deepEqual(keys(block('stage.structured_metadata')), ['trace_id', 'call_id']);
  assert.match(block('stage.label_keep'), /values\s*=\s*\["service", "node", "level"\]/);
  assert.match(alloy, /url\s*=\s*"http:\/\/loki:3100\/loki\/api\/v1\/push"/);
  assert.equal((alloy.match(/{/g) ?? []).length, (alloy.match(/}/g) ?? []).length, 'balanced braces');

  const fluentBit = yamlFile(join(deploy, 'logs', 'fluent-bit', 'fluent-bit.yaml'));
  const loki = fluentBit.pipeline.outputs.find((o: Json) => o.name === 'loki');
  assert.equal(loki.labels, 'service=$service, node=$node, level=$level');
  assert.equal(loki.structured_metadata, 'trace_id=$trace_id, call_id=$call_id');

  const lokiCfg = yamlFile(join(deploy, 'logs', 'loki', 'loki.yml'));
  assert.equal(lokiCfg.limits_config.allow_structured_metadata, true);
  assert.equal(lokiCfg.schema_config.configs.at(-1).schema, 'v13');
  assert.equal(lokiCfg.schema_config.configs.at(-1).store, 'tsdb');
});

// ---------------------------------------------------------------- Kubernetes

test('k8s DaemonSet: host network, node name from the downward API, probes, drain time', () => {
  const docs = YAML.parseAllDocuments(read(join(deploy, 'k8s', 'daemonset.yaml'))).map((d) => d.toJS());
  const ds = docs.find((d) => d.kind === 'DaemonSet');
  assert.ok(ds);
  const spec = ds.spec.template.spec;
  assert.equal(spec.hostNetwork, true);
  const c = spec.containers[0];
  const nodeEnv = c.env.find((e: Json) => e.name === 'SIPSPAN_NODE');
  assert.equal(nodeEnv.valueFrom.fieldRef.fieldPath, 'spec.nodeName');
  assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 13000]);
  assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 13000]);
  assert.equal(ds.spec.template.metadata.annotations['prometheus.io/scrape'], 'true');
  assert.equal(spec.volumes[0].configMap.name, 'sipspan-config');
  const cm = YAML.parse(read(join(deploy, 'k8s', 'configmap.yaml')));
  assert.equal(cm.metadata.name, 'sipspan-config');
  const drainMs = YAML.parse(cm.data['sipspan.yaml']).timers.drain_ms;
  assert.ok(spec.terminationGracePeriodSeconds * 1000 > drainMs, 'grace period above timers.drain_ms');
});

test('sipspan validate accepts the compose and Kubernetes sipspan configurations', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-configs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = [join(deploy, 'compose', 'sipspan.yaml')];
  for (const manifest of ['configmap.yaml', 'sidecar-example.yaml']) {
    for (const doc of YAML.parseAllDocuments(read(join(deploy, 'k8s', manifest)))) {
      const obj = doc.toJS();
      if (obj.kind !== 'ConfigMap' || obj.data?.['sipspan.yaml'] === undefined) continue;
      const file = join(dir, `${obj.metadata.name}.yaml`);
      writeFileSync(file, obj.data['sipspan.yaml']);
      files.push(file);
    }
  }
  assert.equal(files.length, 3);
  for (const file of files) runTool(join(root, 'bin', 'sipspan'), ['validate', '--config', file], 'npm ci');
});

// ---------------------------------------------------------------- every YAML and JSON file

test('every YAML and JSON file under deploy/ parses', () => {
  const files = filesUnder(deploy);
  const yamlFiles = files.filter((f) => /\.ya?ml$/.test(f));
  const jsonFiles = files.filter((f) => f.endsWith('.json'));
  assert.ok(yamlFiles.length >= 15 && jsonFiles.length >= 4);
  for (const f of yamlFiles) {
    // Compose files may hold ${VAR}: plain strings to a YAML parser.
    for (const doc of YAML.parseAllDocuments(read(f))) {
      assert.deepEqual(
        doc.errors.map((e) => e.message),
        [],
        relative(root, f),
      );
    }
  }
  for (const f of jsonFiles) assert.doesNotThrow(() => JSON.parse(read(f)), relative(root, f));
});
