import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import process from 'node:process';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError, type ConfigProblem, closestKey, formatPath } from './config-error.ts';
import { describeHeapLimit, resolveHeapGuardLimits, v8HeapLimitMb } from './heap-limits.ts';
import { ownListenerUpstreams, portCollisions, socketsOf } from './port-collisions.ts';
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
  const { merged, origins, missing } = mergeSources(raw, overrides, env);
  // A value the file did not give is named as the user gave it: `--admin`, `admin (from SIPSPAN_ADMIN)`.
  const where = (path: string): string => origins.get(path) ?? path;

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    // A flag that needs another (--upstream without --listen) leaves a required key out: say which flag.
    const told = new Set(missing.map((p) => p.path));
    const schema = schemaProblems(parsed.error.issues).filter((p) => !told.has(p.path));
    throw configError([...missing, ...schema], where);
  }
  const cfg = parsed.data;
  const problems: ConfigProblem[] = [];

  // Cross-field rules the schema cannot state.
  const names = new Set<string>();
  cfg.routes.forEach((r, i) => {
    if (names.has(r.name))
      problems.push({ path: `routes[${i}].name`, message: `"${r.name}" is used by another route` });
    names.add(r.name);
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
  });
  problems.push(...ownListenerUpstreams(cfg));
  problems.push(...portCollisions(socketsOf(cfg), where));
  const heap = resolveHeapGuardLimits(cfg.limits, v8HeapLimitMb());
  if (heap.softMb >= heap.hardMb) {
    const { heap_soft_limit_mb: soft, heap_hard_limit_mb: hard } = cfg.limits;
    problems.push({
      path: 'limits.heap_soft_limit_mb',
      message: `must be below limits.heap_hard_limit_mb: ${describeHeapLimit(soft, heap.softMb)} against ${describeHeapLimit(hard, heap.hardMb)}`,
    });
  }
  if (problems.length > 0) throw configError(problems, where);

  return deepFreeze({ ...cfg, node: cfg.node ?? hostname() });
}

function configError(problems: readonly ConfigProblem[], where: (path: string) => string): ConfigError {
  return new ConfigError(problems.map((p) => ({ path: where(p.path), message: p.message })));
}

// ---- Sources: the file, then the environment, then flags ----

interface MergedSources {
  merged: Record<string, unknown>;
  /** Config paths whose value came from the environment or a flag, and how to name them to the user. */
  origins: Map<string, string>;
  /** Flags given without the one they need, as problems on the config path left unset. */
  missing: ConfigProblem[];
}

const ENV_KEYS: readonly [variable: string, path: string][] = [
  ['SIPSPAN_NODE', 'node'],
  ['SIPSPAN_ADMIN', 'admin'],
  ['SIPSPAN_LOG_LEVEL', 'logs.level'],
];
const FLAG_KEYS: readonly [option: 'node' | 'admin' | 'logLevel', flag: string, path: string][] = [
  ['node', '--node', 'node'],
  ['admin', '--admin', 'admin'],
  ['logLevel', '--log-level', 'logs.level'],
];

function mergeSources(
  raw: Record<string, unknown>,
  overrides: ConfigOverrides,
  env: NodeJS.ProcessEnv,
): MergedSources {
  const merged: Record<string, unknown> = { ...raw };
  const origins = new Map<string, string>();
  for (const [variable, path] of ENV_KEYS) {
    const value = env[variable];
    if (!value) continue; // set but empty counts as unset
    setKey(merged, path, value);
    origins.set(path, `${path} (from ${variable})`);
  }
  for (const [option, flag, path] of FLAG_KEYS) {
    const value = overrides[option];
    if (value === undefined) continue;
    setKey(merged, path, value);
    origins.set(path, flag);
  }
  const missing: ConfigProblem[] = [];
  if (overrides.upstream !== undefined || overrides.listen !== undefined) {
    merged.routes = [routeFromFlags(overrides, origins)];
    if (overrides.listen === undefined)
      missing.push({
        path: 'routes[0].listen',
        message: 'required with --upstream (give at least one listener URI)',
      });
    if (overrides.upstream === undefined)
      missing.push({ path: 'routes[0].upstream', message: 'required with --listen (give the upstream URI)' });
  }
  return { merged, origins, missing };
}

/** Set `key` or `section.key`; a section the file got wrong (not a mapping) is left for the schema to name. */
function setKey(target: Record<string, unknown>, path: string, value: string): void {
  const [section, key] = path.split('.');
  if (key === undefined) {
    target[section] = value;
    return;
  }
  const current = target[section];
  if (current === undefined || (typeof current === 'object' && current !== null && !Array.isArray(current)))
    target[section] = { ...current, [key]: value };
}

/** The one route that --listen, --upstream, --metrics and --name describe (it replaces the file's). */
function routeFromFlags(overrides: ConfigOverrides, origins: Map<string, string>): Record<string, unknown> {
  const route: Record<string, unknown> = { name: overrides.name ?? 'sip-service' };
  if (overrides.name !== undefined) origins.set('routes[0].name', '--name');
  origins.set('routes[0].listen', '--listen');
  origins.set('routes[0].upstream', '--upstream');
  const listen = overrides.listen;
  if (listen !== undefined) {
    route.listen = listen;
    // With several --listen, say which one.
    for (const [j, l] of listen.entries())
      origins.set(`routes[0].listen[${j}]`, listen.length > 1 ? `--listen ${l}` : '--listen');
  }
  if (overrides.upstream !== undefined) route.upstream = overrides.upstream;
  if (overrides.metrics !== undefined) {
    route.metrics = overrides.metrics;
    origins.set('routes[0].metrics', '--metrics');
  }
  return route;
}

// ---- Schema issues as problems ----

function schemaProblems(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  return issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code !== 'unrecognized_keys') return [{ path: formatPath(issue.path), message: issue.message }];
    // zod puts an unknown key on its parent's path; the user looks for the key itself, one per line.
    const known = knownKeysAt(issue.path);
    return issue.keys.map((key) => {
      const guess = closestKey(key, known);
      return {
        path: formatPath([...issue.path, key]),
        message: guess === undefined ? 'unknown key' : `unknown key (did you mean "${guess}"?)`,
      };
    });
  });
}

/** The keys the schema allows in the mapping at `path` (`['routes', 0]` → the route keys). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = configSchema;
  for (const key of path) {
    schema = unwrapped(schema);
    if (schema instanceof z.ZodArray) schema = schema.element;
    else if (schema instanceof z.ZodObject) schema = schema.shape[String(key)];
    else return [];
  }
  schema = unwrapped(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrapped(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault)
    s = s.unwrap();
  return s;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
