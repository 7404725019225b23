import process from 'node:process';
import { ConfigError } from '../config/config-error.ts';

/**
 * The head sampler, configured by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
 * (OpenTelemetry SDK environment variables). Decided once per call, at the
 * call's first request, so a call's trace is complete or absent.
 */
export interface Sampler {
  /** For a new root trace. */
  sampleRoot(traceId: string): boolean;
  /** For a trace continued from an inbound parent with the given sampled flag. */
  sampleChild(traceId: string, parentSampled: boolean): boolean;
  readonly description: string;
}

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

/**
 * An unknown sampler or a ratio outside [0, 1] is a configuration error at start, as an unknown
 * exporter is: the SDK's fallback (always on) would export every call of a process meant to sample.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? '').trim().toLowerCase() || 'parentbased_always_on';
  if (!SAMPLERS.includes(name))
    throw new ConfigError([
      { path: 'OTEL_TRACES_SAMPLER', message: `unknown sampler "${name}" (${SAMPLERS.join(', ')})` },
    ]);
  const argText = (env.OTEL_TRACES_SAMPLER_ARG ?? '').trim();
  const ratio = argText === '' ? 1 : Number(argText);
  if (name.endsWith('traceidratio') && !(ratio >= 0 && ratio <= 1))
    throw new ConfigError([
      {
        path: 'OTEL_TRACES_SAMPLER_ARG',
        message: `expected a sampling ratio from 0 to 1, got "${argText}"`,
      },
    ]);
  switch (name) {
    case 'always_on':
      return fixed(true, true, 'always_on');
    case 'always_off':
      return fixed(false, false, 'always_off');
    case 'traceidratio':
      return byRatio(ratio, false, `traceidratio{${ratio}}`);
    case 'parentbased_always_off':
      return fixed(false, null, 'parentbased_always_off');
    case 'parentbased_traceidratio':
      return byRatio(ratio, true, `parentbased_traceidratio{${ratio}}`);
    default:
      return fixed(true, null, 'parentbased_always_on');
  }
}

function fixed(root: boolean, child: boolean | null, description: string): Sampler {
  return {
    description,
    sampleRoot: () => root,
    sampleChild: (_t, parentSampled) => (child === null ? parentSampled : child),
  };
}

/** TraceIdRatioBased: the lower 56 bits of the trace id against ratio × 2^56 (the W3C random bits). */
function byRatio(ratio: number, parentBased: boolean, description: string): Sampler {
  const bound = Math.floor(ratio * 2 ** 32);
  const accept = (traceId: string) => ratio >= 1 || Number.parseInt(traceId.slice(24, 32), 16) < bound;
  return {
    description,
    sampleRoot: accept,
    sampleChild: (traceId, parentSampled) => (parentBased ? parentSampled : accept(traceId)),
  };
}
