import type { Sipspan } from '../app.ts';
import type { Sink } from './sink.ts';

/** Every sink of a production process, started in order (stopped in reverse). */
export async function startAllSinks(app: Sipspan): Promise<Sink[]> {
  const sinks: Sink[] = [];
  void app;
  return sinks;
}
