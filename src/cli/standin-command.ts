import process from 'node:process';
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../config/endpoint.ts';
import { B2buaStandin } from '../standins/b2bua-standin.ts';
import { ForwardStandin } from '../standins/forward-standin.ts';
import { UasStandin } from '../standins/uas-standin.ts';
import { NumberOptions, ratio } from './number-option.ts';

const USAGE = `usage: sipspan standin <uas|forward|b2bua> --listen URI [options]

  uas       a SIP service that answers 100, 180 after --ring-ms, then 200 after --answer-ms
            (--fail-ratio F answers --fail-status S instead; --bye-after-ms hangs up itself)
  forward   a stateless forwarding element: requests to --next URI, responses back by Via
            (--delay-ms adds processing time; --no-record-route leaves the dialog)
  b2bua     a back-to-back user agent: a new Call-ID toward --next URI
            (--copy-header NAME copies a header from leg A to leg B; repeatable)

--listen takes udp://host:port (the stand-in listens on UDP and TCP at that address).
`;

/** Built-in SIP stand-ins, for the demo and the compose stack. Runs until SIGTERM/SIGINT. */
export async function standinCommand(argv: string[]): Promise<number | null> {
  const [kind, ...rest] = argv;
  if (kind === '--help' || kind === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      listen: { type: 'string' },
      next: { type: 'string' },
      'ring-ms': { type: 'string' },
      'answer-ms': { type: 'string' },
      'jitter-ms': { type: 'string' },
      'fail-ratio': { type: 'string' },
      'fail-status': { type: 'string' },
      'bye-after-ms': { type: 'string' },
      'delay-ms': { type: 'string' },
      'no-record-route': { type: 'boolean' },
      'copy-header': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (kind === undefined || !['uas', 'forward', 'b2bua'].includes(kind)) {
    process.stderr.write(`sipspan standin: give uas, forward or b2bua\n${USAGE}`);
    return 2;
  }
  const listen = parseEndpoint(values.listen ?? '');
  if (typeof listen === 'string') {
    process.stderr.write(`--listen: ${listen}\n`);
    return 2;
  }
  const num = new NumberOptions();
  const ringMs = num.milliseconds('--ring-ms', values['ring-ms'], 80);
  const answerMs = num.milliseconds('--answer-ms', values['answer-ms'], 250);
  const jitterMs = num.milliseconds('--jitter-ms', values['jitter-ms'], 0);
  const byeAfterMs = num.milliseconds('--bye-after-ms', values['bye-after-ms'], 0);
  const delayMs = num.milliseconds('--delay-ms', values['delay-ms'], 0);
  const failRatio = num.read('--fail-ratio', values['fail-ratio'], 0, ratio, 'a ratio from 0 to 1');
  const failStatus = num.read(
    '--fail-status',
    values['fail-status'],
    486,
    (n) => Number.isInteger(n) && n >= 300 && n <= 699,
    'a final failure status from 300 to 699',
  );
  if (num.report()) return 2;
  let stop: () => Promise<void>;
  let describe: string;
  if (kind === 'uas') {
    const uas = await new UasStandin({
      host: listen.host,
      port: listen.port,
      ringMs,
      answerMs,
      jitterMs,
      failRatio,
      failStatus,
      byeAfterMs,
    }).start();
    stop = () => uas.stop();
    describe = `uas on ${listen.host}:${uas.port}`;
  } else {
    const next = parseEndpoint(values.next ?? '');
    if (typeof next === 'string') {
      process.stderr.write(`--next: ${next}\n`);
      return 2;
    }
    const target = await resolveEndpoint(next.host, next.port, next.transport);
    if (kind === 'forward') {
      const fw = await new ForwardStandin({
        host: listen.host,
        port: listen.port,
        next: target,
        delayMs,
        recordRoute: !values['no-record-route'],
      }).start();
      stop = () => fw.stop();
      describe = `forward on ${listen.host}:${fw.port} → ${values.next}`;
    } else {
      const b2b = await new B2buaStandin({
        host: listen.host,
        port: listen.port,
        next: target,
        copyHeaders: values['copy-header'] ?? [],
      }).start();
      stop = () => b2b.stop();
      describe = `b2bua on ${listen.host}:${b2b.port} → ${values.next}`;
    }
  }
  process.stderr.write(`sipspan standin: ${describe}\n`);
  const onSignal = () => {
    stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return null;
}

/** Stand-ins send to an address: resolve a compose service name once, retrying until it exists. */
async function resolveEndpoint(host: string, port: number, transport: 'udp' | 'tcp') {
  const { lookup } = await import('node:dns/promises');
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await lookup(host);
      return { transport, host: r.address, port };
    } catch (err) {
      if (attempt >= 30) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
