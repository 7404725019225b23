/**
 * A consumer of observe events (spans, metrics, logs, the call store). Sinks
 * subscribe to diagnostics channels when started and never feed back into
 * forwarding. On shutdown the composition root flushes and stops them in
 * reverse order of start.
 */
export interface Sink {
  readonly name: string;
  /** Write out what is buffered; resolves when done or when the deadline passes. */
  flush(deadlineMs: number): Promise<void>;
  /** Unsubscribe and release resources (after flush). */
  shutdown(): Promise<void>;
}
