import process from 'node:process';
import { parseArgs } from 'node:util';
import { Sipspan } from '../app.ts';
import { ConfigError } from '../config/config-error.ts';
import { type ConfigOverrides, loadConfig } from '../config/load-config.ts';
import type { Config } from '../config/schema.ts';
import { startAllSinks } from '../sinks/start-sinks.ts';
import { tracingEnvProblems } from '../sinks/tracing/tracing-sink.ts';

const USAGE = `usage: sipspan <command> [options]

commands:
  run        run the proxy: --config FILE, or one route from flags:
             --name NAME --listen URI (repeatable) --upstream URI [--metrics HOST:PORT]
             [--admin HOST:PORT] [--node NODE] [--log-level LEVEL]
  validate   check a configuration and the OTEL_* environment without binding anything: --config FILE
  demo       the embedded demo: stand-ins, two routes and a load generator (--help for flags)
  bench      place calls through sipspan toward a real service and report per hop (--help)
  standin    run a built-in SIP stand-in: uas | forward | b2bua (--help)

URIs are udp://host:port or tcp://host:port (IPv6 as udp://[::1]:5060).
`;

/** Runs a command; resolves to an exit code, or null when the command keeps running (servers). */
export async function runCommand(argv: string[]): Promise<number | null> {
  try {
    return await dispatch(argv);
  } catch (err) {
    // util.parseArgs: an unknown option, a missing value, a stray argument. A usage error, as for a
    // missing flag: exit 2 with the command's name.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sipspan ${argv[0]}: ${(err as Error).message} (--help lists the options)\n`);
      return 2;
    }
    throw err;
  }
}

async function dispatch(argv: string[]): Promise<number | null> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'validate':
      return validate(rest);
    case 'demo': {
      const { demoCommand } = await import('./demo-command.ts');
      return demoCommand(rest);
    }
    case 'bench': {
      const { benchCommand } = await import('./bench-command.ts');
      return benchCommand(rest);
    }
    case 'standin': {
      const { standinCommand } = await import('./standin-command.ts');
      return standinCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`sipspan: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

const RUN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  name: { type: 'string' },
  listen: { type: 'string', multiple: true },
  upstream: { type: 'string' },
  metrics: { type: 'string' },
  admin: { type: 'string' },
  node: { type: 'string' },
  'log-level': { type: 'string' },
  'reuse-port': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function overridesFrom(values: Record<string, unknown>): ConfigOverrides {
  return {
    name: values.name as string | undefined,
    listen: values.listen as string[] | undefined,
    upstream: values.upstream as string | undefined,
    metrics: values.metrics as string | undefined,
    admin: values.admin as string | undefined,
    node: values.node as string | undefined,
    logLevel: values['log-level'] as string | undefined,
  };
}

async function run(argv: string[]): Promise<number | null> {
  const { values } = parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.config === undefined && values.upstream === undefined) {
    process.stderr.write('sipspan run: give --config FILE, or --listen URI and --upstream URI\n');
    return 2;
  }
  let config: Config;
  try {
    config = await loadConfig(values.config, overridesFrom(values));
  } catch (err) {
    return reportConfigError(err);
  }
  const app = await Sipspan.start(config, { sinks: startAllSinks, reusePort: values['reuse-port'] ?? false });
  installSignalHandlers(app);
  const file = values.config;
  // SIGHUP: read the file again (with the same flags over it) and apply what can change while running.
  // Started from flags there is nothing to read, and a hangup must not stop the proxy (Node's default).
  process.on('SIGHUP', () => {
    if (file === undefined) {
      app.reloadIgnored('started from flags: no --config file to read again');
      return;
    }
    loadConfig(file, overridesFrom(values)).then(
      (next) => app.reload(next),
      (err: unknown) =>
        app.reloadFailed(err instanceof ConfigError ? err.problems : [{ path: '', message: String(err) }]),
    );
  });
  return null;
}

async function validate(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.config === undefined) {
    process.stderr.write('sipspan validate: give --config FILE\n');
    return 2;
  }
  try {
    const config = await loadConfig(values.config, overridesFrom(values));
    // The OTEL_* environment is read at start too: a start would refuse what is wrong there.
    const envProblems = tracingEnvProblems(process.env);
    if (envProblems.length > 0) throw new ConfigError(envProblems);
    process.stdout.write(
      `${values.config}: valid (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}: ${config.routes.map((r) => r.name).join(', ')})\n`,
    );
    return 0;
  } catch (err) {
    return reportConfigError(err);
  }
}

function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`${p.path === '' ? '' : `${p.path}: `}${p.message}\n`);
    return 1;
  }
  throw err;
}

/** SIGTERM/SIGINT: drain and exit 0; a second signal exits at once. */
export function installSignalHandlers(app: Sipspan, onStopped?: () => void): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.exit(130);
    }
    stopping = true;
    app.stop().then(
      () => {
        onStopped?.();
        process.exit(0);
      },
      () => process.exit(1),
    );
    void signal;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
