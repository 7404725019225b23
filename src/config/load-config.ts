import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError, type ConfigProblem, formatPath } from './config-error.ts';
import { formatEndpoint } from './endpoint.ts';
import { type Config, configSchema } from './schema.ts';

/** Flags of `sipspan run` that stand for a single-route config, or override the file. */
export interface ConfigOverrides {
  name?: string;
  listen?: string[];
  upstream?: string;
  metrics?: string;
  admin?: string;
  node?: string;
  logLevel?: string;
}

/**
 * Build the configuration: file < environment (SIPSPAN_NODE, SIPSPAN_ADMIN,
 * SIPSPAN_LOG_LEVEL) < flags. Validated once against the schema; the result is
 * frozen. Throws ConfigError listing every problem.
 */
export async function loadConfig(
  file: string | undefined,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }]);
    }
    raw = parseConfigText(text, file);
  }
  return buildConfig(raw, overrides, env);
}

export function parseConfigText(text: string, source = 'config'): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new ConfigError([
      { path: '', message: `${source} is not valid YAML${where}: ${(err as Error).message}` },
    ]);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError([{ path: '', message: `${source} must be a mapping of keys to values` }]);
  }
  return doc as Record<string, unknown>;
}

export function buildConfig(
  raw: Record<string, unknown>,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const merged: Record<string, unknown> = { ...raw };
  if (env.SIPSPAN_NODE) merged.node = env.SIPSPAN_NODE;
  if (env.SIPSPAN_ADMIN) merged.admin = env.SIPSPAN_ADMIN;
  if (env.SIPSPAN_LOG_LEVEL) merged.logs = { ...(merged.logs as object), level: env.SIPSPAN_LOG_LEVEL };
  if (overrides.node !== undefined) merged.node = overrides.node;
  if (overrides.admin !== undefined) merged.admin = overrides.admin;
  if (overrides.logLevel !== undefined)
    merged.logs = { ...(merged.logs as object), level: overrides.logLevel };
  if (overrides.upstream !== undefined || overrides.listen !== undefined) {
    const route: Record<string, unknown> = { name: overrides.name ?? 'sip-service' };
    if (overrides.listen !== undefined) route.listen = overrides.listen;
    if (overrides.upstream !== undefined) route.upstream = overrides.upstream;
    if (overrides.metrics !== undefined) route.metrics = overrides.metrics;
    merged.routes = [route];
  }

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })));
  }
  const cfg = parsed.data;
  const problems: ConfigProblem[] = [];

  // Cross-field rules the schema cannot state.
  const names = new Set<string>();
  const listeners = new Map<string, string>();
  const httpPorts = new Map<string, string>([[`${cfg.admin.host}:${cfg.admin.port}`, 'admin']]);
  cfg.routes.forEach((r, i) => {
    if (names.has(r.name))
      problems.push({ path: `routes[${i}].name`, message: `"${r.name}" is used by another route` });
    names.add(r.name);
    r.listen.forEach((l, j) => {
      if (l.port === 0) return; // any free port: each listener is given its own
      const key = formatEndpoint(l);
      const other = listeners.get(key);
      if (other !== undefined)
        problems.push({ path: `routes[${i}].listen[${j}]`, message: `${key} is already used by ${other}` });
      listeners.set(key, `routes[${i}]`);
    });
    // A route sends UDP from the socket it listens on (peers see replies come from where they sent).
    const up = r.upstream;
    if (
      up.transport === 'udp' &&
      !r.listen.some(
        (l) => l.transport === 'udp' && (up.family === 0 || l.family === 0 || l.family === up.family),
      )
    ) {
      const kind = up.family === 0 ? 'a UDP listener' : `a UDP listener of IPv${up.family}`;
      problems.push({
        path: `routes[${i}].upstream`,
        message: `a UDP upstream needs ${kind} on the route: sipspan sends from the address it listens on`,
      });
    }
    if (r.metrics !== undefined && r.metrics.port !== 0) {
      const key = `${r.metrics.host}:${r.metrics.port}`;
      const other = httpPorts.get(key);
      if (other !== undefined)
        problems.push({ path: `routes[${i}].metrics`, message: `${key} is already used by ${other}` });
      httpPorts.set(key, `routes[${i}].metrics`);
    }
  });
  if (cfg.limits.heap_soft_limit_mb >= cfg.limits.heap_hard_limit_mb) {
    problems.push({ path: 'limits.heap_soft_limit_mb', message: 'must be below limits.heap_hard_limit_mb' });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({ ...cfg, node: cfg.node ?? hostname() });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
