import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { breakdown, kindOf, parseSamples, placeOf } from '../../bench/lib/perf-samples.ts';

/** `perf script -F comm,pid,tid,time,event,ip,sym,dso` of a few samples, as perf writes them. */
const SCRIPT = `MainThread 100/100 80088.290047: cpu-clock:ppp: 
	    7f54782d5d1c JS:*'scanMessage file:///srv/sipspan/src/wire/scan.ts:57:28 (/tmp/perf-100.map)
	    7f547825db26 JS:*'onBatch file:///srv/sipspan/src/transport/udp-listener.ts:202:18 (/tmp/perf-100.map)
	         163221c Builtins_JSEntryTrampoline (/srv/sipspan/node_modules/node/bin/node)
	            3749 on_readable (/srv/sipspan/build/udp-io.node)

MainThread 100/100 80088.290549: cpu-clock:ppp: 
	ffffffff8204291d __ip_select_ident ([kernel.kallsyms])
	ffffffff8209cad7 udp_sendmsg ([kernel.kallsyms])
	ffffffff81f5c1a0 ____sys_sendmsg ([kernel.kallsyms])
	    7f5478f6a4d0 __libc_sendmsg (/usr/lib/x86_64-linux-gnu/libc.so.6)

MainThread 100/100 80088.291049: cpu-clock:ppp: 
	         0a22df1 v8::internal::JSTypedArray::GetBuffer (/srv/sipspan/node_modules/node/bin/node)
	    7f547826a225 JS:*'toString node:buffer:918:46 (/tmp/perf-100.map)
	    7f547826a999 JS:*'readVia file:///srv/sipspan/src/wire/read-via.ts:39:24 (/tmp/perf-100.map)

MainThread 100/100 80088.291549: cpu-clock:ppp: 
	    7f547826a225 [unknown] (/tmp/perf-100.map)
	    7f547826a999 JS:+'handleRequest file:///srv/sipspan/src/proxy/proxy-engine.ts:264:24 (/tmp/perf-100.map)

V8Worker 100/104 80088.292049: cpu-clock:ppp: 
	         0a22df1 v8::internal::compiler::GraphReducer::ReduceTop (/srv/sipspan/node_modules/node/bin/node)

node 200/200 80088.292549: cpu-clock:ppp: 
	ffffffff8204291d do_epoll_wait ([kernel.kallsyms])
	    7f5478f6a4d0 epoll_pwait (/usr/lib/x86_64-linux-gnu/libc.so.6)

node 200/200 80088.293049: cpu-clock:ppp: 
	    7f5478f6a4d0 __memmove_avx512_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)
	    7f54782d5d1c JS:*'onMessage file:///srv/sipspan/bench/relay/dgram-relay.ts:40:3 (/tmp/perf-200.map)
`;

describe('perf samples', () => {
  test('a perf script is read as samples: thread, pid, tid, time and the stack innermost first', () => {
    const samples = parseSamples(SCRIPT);
    assert.equal(samples.length, 7);
    assert.deepEqual(
      samples.map((s) => [s.thread, s.pid, s.tid, s.frames.length]),
      [
        ['MainThread', 100, 100, 4],
        ['MainThread', 100, 100, 4],
        ['MainThread', 100, 100, 3],
        ['MainThread', 100, 100, 2],
        ['V8Worker', 100, 104, 1],
        ['node', 200, 200, 2],
        ['node', 200, 200, 2],
      ],
    );
    assert.equal(samples[0].time, 80088.290047);
    assert.deepEqual(samples[1].frames[3], {
      symbol: '__libc_sendmsg',
      dso: '/usr/lib/x86_64-linux-gnu/libc.so.6',
    });
  });

  test('each sample is one kind: JavaScript, the runtime under it, the kernel by path, libc, other threads', () => {
    assert.deepEqual(parseSamples(SCRIPT).map(kindOf), [
      'javascript',
      'kernel: send',
      'node and V8 runtime',
      'javascript',
      'other threads',
      'kernel: epoll',
      'libc',
    ]);
  });

  test('a JavaScript frame is placed in its sipspan layer, Node, or another script', () => {
    const cases: [string, string, string][] = [
      ["JS:*'scanMessage file:///x/src/wire/scan.ts:57:28", 'wire', 'scanMessage'],
      ['JS:^pump file:///x/src/sinks/logs/bounded-writer.ts:172:15', 'sinks', 'pump'],
      ["JS:*'toString node:buffer:918:46", 'node:', 'toString'],
      ["JS:*'onMessage file:///x/bench/relay/dgram-relay.ts:40:3", 'other', 'onMessage'],
    ];
    for (const [symbol, layer, fn] of cases)
      assert.deepEqual(placeOf({ symbol, dso: '' }), { layer, fn }, symbol);
    assert.equal(placeOf({ symbol: '[unknown]', dso: '/tmp/perf-1.map' }), null);
  });

  test('the breakdown counts kinds over all threads, places over the main thread in user space, by the innermost named frame', () => {
    const b = breakdown(parseSamples(SCRIPT));
    assert.equal(b.samples, 7);
    assert.equal(b.kinds.javascript, 2);
    assert.equal(b.kinds['other threads'], 1);
    assert.equal(
      Object.values(b.kinds).reduce((x, y) => x + y, 0),
      7,
    );
    // Buffer#toString counts for readVia, which called it; an unnamed frame defers to the next one.
    // The kernel's samples (a send, epoll) are kinds of their own, in no layer.
    assert.deepEqual(b.layers, { wire: 2, proxy: 1, other: 1 });
    assert.deepEqual(b.functions, {
      'wire:scanMessage': 1,
      'wire:readVia': 1,
      'proxy:handleRequest': 1,
      'other:onMessage': 1,
    });
    // A stack of Node's JavaScript alone is Node's.
    const timers = parseSamples(`node 1/1 1.0: cpu-clock:ppp: 
	    7f5 JS:*'listOnTimeout node:internal/timers:623:25 (/tmp/perf-1.map)
`);
    assert.deepEqual(breakdown(timers).layers, { 'node:': 1 });
  });

  test("a stream's send is a kind apart from a datagram's", () => {
    const sends = parseSamples(`node 1/1 1.0: cpu-clock:ppp: 
	ffffffff8204291d tcp_sendmsg_locked ([kernel.kallsyms])
	ffffffff8209cad7 tcp_sendmsg ([kernel.kallsyms])
	ffffffff81f5c1a0 sock_write_iter ([kernel.kallsyms])
	    7f5478f6a4d0 writev (/usr/lib/x86_64-linux-gnu/libc.so.6)

node 1/1 1.1: cpu-clock:ppp: 
	ffffffff8209cad7 udp_sendmsg ([kernel.kallsyms])
	    7f5478f6a4d0 __libc_sendmsg (/usr/lib/x86_64-linux-gnu/libc.so.6)
`);
    assert.deepEqual(sends.map(kindOf), ['kernel: TCP send', 'kernel: send']);
  });

  test("a process that is not Node.js (Kamailio, the reference) is its program's; Node's own unwound nowhere is still Node's", () => {
    const samples = parseSamples(`kamailio 300/300 1.0: cpu-clock:ppp: 
	    5f1 parse_via (/usr/sbin/kamailio)
	    5f2 receive_msg (/usr/sbin/kamailio)

kamailio 300/300 1.1: cpu-clock:ppp: 
	    7f1 loose_route_mode (/usr/lib/x86_64-linux-gnu/kamailio/modules/rr.so)

kamailio 300/300 1.2: cpu-clock:ppp: 
	    7f5 __strncasecmp_l_evex (/usr/lib/x86_64-linux-gnu/libc.so.6)

node 1/1 1.3: cpu-clock:ppp: 
	    7f5 v8::internal::Heap::AllocateRaw (/x/node)
	    7f8 JS:*'readVia file:///x/src/wire/read-via.ts:39:24 (/tmp/perf-1.map)

node 1/1 1.4: cpu-clock:ppp: 
	    7f9 [unknown] ([unknown])
`);
    assert.deepEqual(samples.map(kindOf), [
      'program (not Node.js)',
      'program (not Node.js)',
      'libc',
      'node and V8 runtime',
      'program (not Node.js)',
    ]);
    const b = breakdown(samples);
    assert.equal(b.kinds['program (not Node.js)'], 2);
    assert.equal(b.kinds['node and V8 runtime'], 2);
  });

  test("a sample in one of V8's collectors is garbage collection, whatever allocated", () => {
    const gc = parseSamples(`node 1/1 1.0: cpu-clock:ppp: 
	    7f5 v8::internal::Scavenger::ScavengePage(v8::internal::MutablePageMetadata*) (/x/node)
	    7f6 v8::internal::ScavengerCollector::CollectGarbage() (/x/node)
	    7f7 v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace) (/x/node)
	    7f8 JS:*'readVia file:///x/src/wire/read-via.ts:39:24 (/tmp/perf-1.map)

node 1/1 1.1: cpu-clock:ppp: 
	    7f5 v8::internal::Heap::AllocateRaw (/x/node)
	    7f8 JS:*'readVia file:///x/src/wire/read-via.ts:39:24 (/tmp/perf-1.map)
`);
    assert.deepEqual(gc.map(kindOf), ['V8 garbage collection', 'node and V8 runtime']);
    assert.deepEqual(breakdown(gc).functions, { 'wire:readVia': 2 });
  });

  test('samples with no JavaScript on the stack are counted by their innermost symbol and library', () => {
    const loop = parseSamples(`node 1/1 1.0: cpu-clock:ppp: 
	    7f5 uv__io_poll (/srv/sipspan/node_modules/node/bin/node)
	    7f6 uv_run (/srv/sipspan/node_modules/node/bin/node)

node 1/1 1.1: cpu-clock:ppp: 
	    7f5 index_headers (/srv/sipspan/build/udp-io.node)
	    7f6 on_readable (/srv/sipspan/build/udp-io.node)

node 1/1 1.2: cpu-clock:ppp: 
	    7f5 uv__io_poll (/srv/sipspan/node_modules/node/bin/node)
`);
    const b = breakdown(loop);
    assert.deepEqual(b.layers, { '(no JavaScript)': 3 });
    assert.deepEqual(b.outsideJavaScript, { 'uv__io_poll (node)': 2, 'index_headers (udp-io.node)': 1 });
    assert.deepEqual(breakdown(parseSamples(SCRIPT)).outsideJavaScript, {});
  });
});
