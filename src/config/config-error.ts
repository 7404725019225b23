/** One problem in a configuration, with the path of the key it concerns (`routes[0].upstream`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** The configuration cannot be used. `problems` lists every fault found, not just the first. */
export class ConfigError extends Error {
  readonly code = 'SIPSPAN_ERR_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}
