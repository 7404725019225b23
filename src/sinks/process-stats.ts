/**
 * Counters that sinks keep about themselves (spans dropped, log lines
 * dropped...). They are process-wide, so the metrics sink exposes them on the
 * admin listener; the other sinks only increment them.
 */
export const processStats = {
  spansExported: 0,
  spansDropped: 0,
  spanExportFailures: 0,
  logLinesWritten: 0,
  logLinesDropped: 0,
};
