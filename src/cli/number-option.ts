/**
 * Number options of the commands that place or answer calls. A typo must never become endless or
 * unbounded load on a real service, nor an invalid SIP status on the wire: each value is checked and
 * a wrong one is a usage error naming the flag.
 */

import process from 'node:process';
export class NumberOptions {
  readonly problems: string[] = [];

  /** The option's value, or `fallback` when absent (and when wrong: the problem is kept). */
  read(
    flag: string,
    text: string | undefined,
    fallback: number,
    valid: (n: number) => boolean,
    expected: string,
  ): number {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() !== '' && Number.isFinite(n) && valid(n)) return n;
    this.problems.push(`${flag}: expected ${expected}, got "${text}"`);
    return fallback;
  }

  /** A duration in milliseconds, 0 or more. */
  milliseconds(flag: string, text: string | undefined, fallback: number): number {
    return this.read(flag, text, fallback, atLeast0, 'a number of ms, 0 or more');
  }

  /** Print the problems; true when there were any (the command exits 2). */
  report(): boolean {
    for (const p of this.problems) process.stderr.write(`${p}\n`);
    return this.problems.length > 0;
  }
}

export const above0 = (n: number) => n > 0;
const atLeast0 = (n: number) => n >= 0;
export const wholeFrom1 = (n: number) => Number.isInteger(n) && n >= 1;
export const ratio = (n: number) => n >= 0 && n <= 1;
