// The sipspan call view: the calls list (/) and one call (/calls/<trace_id>).
// Plain browser JavaScript, no build step and no dependencies. Data comes from
// the admin API: /api/capture/* (captured messages) and /api/traces/* (spans).
// Every text from the network is set with textContent, never parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

// ───────────────────────────── small helpers ─────────────────────────────

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (attrs === null || attrs === undefined) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function add(el, children) {
  for (const c of children.flat(4)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!res.ok) {
    const err = new Error(`${url}: HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const a = Math.abs(ms);
  if (a < 10) return `${ms.toFixed(2)} ms`;
  if (a < 100) return `${ms.toFixed(1)} ms`;
  if (a < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function fmtNum(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const a = Math.abs(ms);
  if (a < 10) return ms.toFixed(2);
  if (a < 100) return ms.toFixed(1);
  return String(Math.round(ms));
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

function fmtClock(epochMs) {
  const d = new Date(epochMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDate(epochMs) {
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(epochMs)}`;
}

function fmtOffset(ms) {
  return `+${ms.toFixed(3)}`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const OUTCOMES = [
  ['answered', 'answered'],
  ['failed', 'failed (any)'],
  ['failed_4xx', 'failed 4xx'],
  ['failed_5xx', 'failed 5xx'],
  ['failed_6xx', 'failed 6xx'],
  ['cancelled', 'cancelled'],
  ['redirected', 'redirected'],
  ['timeout', 'timeout'],
  ['in_progress', 'in progress'],
];

function outcomePill(outcome, status) {
  const text = outcome === 'in_progress' ? 'in progress' : outcome.replace('_', ' ');
  return h(
    'span',
    { class: `pill o-${outcome.startsWith('failed') ? 'failed' : outcome}` },
    status > 0 ? h('b', { text: String(status) }) : null,
    text,
  );
}

function statusClass(m) {
  if (m.is_request) return 'req';
  if (m.status < 200) return 's1';
  if (m.status < 300) return 's2';
  if (m.status < 400) return 's3';
  return 's4';
}

function setLive(state, text) {
  const el = document.getElementById('live');
  if (el === null) return;
  el.className = `live ${state}`;
  el.textContent = text;
}

function setCrumbs(...items) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(
    ...items.flatMap((it, i) => (i === 0 ? [it] : [h('span', { class: 'sep', text: '/' }), it])),
  );
}

function copyButton(value, label = 'copy') {
  return h('button', {
    class: 'mini',
    type: 'button',
    title: `copy ${value}`,
    text: label,
    onclick: (ev) => {
      ev.stopPropagation();
      navigator.clipboard?.writeText(value).then(
        () => {
          ev.target.textContent = 'copied';
          setTimeout(() => {
            ev.target.textContent = label;
          }, 1200);
        },
        () => {},
      );
    },
  });
}

// ───────────────────────────── events (SSE) ─────────────────────────────

function openEvents(onCall, onEvict, onHello) {
  const es = new EventSource('/api/capture/events');
  es.addEventListener('hello', (e) => {
    setLive('on', 'live');
    onHello?.(JSON.parse(e.data));
  });
  es.addEventListener('call', (e) => onCall(JSON.parse(e.data)));
  es.addEventListener('evict', (e) => onEvict?.(JSON.parse(e.data).trace_id));
  es.onerror = () => setLive('off', 'reconnecting');
  return es;
}

// ───────────────────────────── calls page ─────────────────────────────

function matches(s, f) {
  if (f.service && !s.hops.some((x) => x.name === f.service)) return false;
  if (f.outcome) {
    if (f.outcome === 'failed' ? !s.outcome.startsWith('failed_') : s.outcome !== f.outcome) return false;
  }
  if (f.min_setup_ms !== '' && f.min_setup_ms !== null) {
    const min = Number(f.min_setup_ms);
    if (Number.isFinite(min) && (s.setup_ms === null || s.setup_ms < min)) return false;
  }
  if (f.q) {
    const q = f.q.toLowerCase();
    const hit =
      s.trace_id.includes(q) ||
      s.call_ids.some((c) => c.toLowerCase().includes(q)) ||
      (s.from_user ?? '').toLowerCase().includes(q) ||
      (s.to_user ?? '').toLowerCase().includes(q);
    if (!hit) return false;
  }
  return true;
}

function sparkline(values, { width = 120, height = 26, cls = 'spark' } = {}) {
  const nums = values.map((v) => (v === null ? 0 : v));
  const max = Math.max(1e-9, ...nums);
  const step = width / Math.max(1, nums.length - 1);
  const pts = nums.map(
    (v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`,
  );
  return svg(
    'svg',
    { class: cls, width, height, viewBox: `0 0 ${width} ${height}`, 'aria-hidden': 'true' },
    svg('polyline', { points: `0,${height - 1} ${pts.join(' ')} ${width},${height - 1}`, class: 'area' }),
    svg('polyline', { points: pts.join(' '), class: 'line' }),
  );
}

function sum(a, from = 0) {
  let t = 0;
  for (let i = from; i < a.length; i++) t += a[i] ?? 0;
  return t;
}

function renderHealth(el, health) {
  const n = health.minutes.length;
  const windowMinutes = 5;
  const from = Math.max(0, n - windowMinutes);
  const seconds = (windowMinutes - 1) * 60 + Math.max(1, health.current_minute_seconds);
  const cards = health.hops.map((hop) => {
    const calls = sum(hop.calls, from);
    const outcomes = Object.entries(hop.outcomes).map(([o, series]) => [o, sum(series, from)]);
    const answered = outcomes.find(([o]) => o === 'answered')?.[1] ?? 0;
    let rttSum = 0;
    let rttN = 0;
    let rttMax = null;
    for (let i = from; i < n; i++) {
      const avg = hop.rtt_avg_ms[i];
      if (avg !== null) {
        rttSum += avg * (hop.transactions[i] || 1);
        rttN += hop.transactions[i] || 1;
      }
      const mx = hop.rtt_max_ms[i];
      if (mx !== null && (rttMax === null || mx > rttMax)) rttMax = mx;
    }
    const bar = h('div', { class: 'obar', title: 'outcomes, last 5 minutes' });
    for (const [o, c] of outcomes) {
      if (c === 0) continue;
      const seg = h('span', { class: `o-${o.startsWith('failed') ? 'failed' : o}`, title: `${o}: ${c}` });
      seg.style.flexGrow = String(c);
      bar.append(seg);
    }
    if (calls === 0) bar.append(h('span', { class: 'none' }));
    return h(
      'div',
      { class: 'hcard' },
      h('div', { class: 'hname', text: hop.name }),
      h(
        'div',
        { class: 'hrow' },
        h('span', { class: 'k', text: 'calls/s' }),
        h('span', { class: 'v', text: (calls / seconds).toFixed(2) }),
        sparkline(hop.calls),
      ),
      h(
        'div',
        { class: 'hrow' },
        h('span', { class: 'k', text: 'answered' }),
        h('span', { class: 'v', text: calls === 0 ? '–' : `${((answered / calls) * 100).toFixed(1)}%` }),
        bar,
      ),
      h(
        'div',
        { class: 'hrow' },
        h('span', { class: 'k', text: 'RTT avg' }),
        h('span', { class: 'v', text: rttN === 0 ? '–' : fmtMs(rttSum / rttN) }),
        sparkline(hop.rtt_avg_ms, { cls: 'spark rtt' }),
      ),
      h(
        'div',
        { class: 'hrow sub' },
        h('span', { class: 'k', text: 'RTT max' }),
        h('span', { class: 'v', text: fmtMs(rttMax) }),
        h('span', {
          class: 'muted',
          text: outcomes
            .filter(([o, c]) => o !== 'answered' && c > 0)
            .map(([o, c]) => `${o.replace('_', ' ')} ${c}`)
            .join(' · '),
        }),
      ),
    );
  });
  const st = health.store;
  cards.push(
    h(
      'div',
      { class: 'hcard store' },
      h('div', { class: 'hname', text: 'capture store' }),
      h(
        'div',
        { class: 'hrow' },
        h('span', { class: 'k', text: 'calls' }),
        h('span', { class: 'v', text: st.calls }),
      ),
      h(
        'div',
        { class: 'hrow' },
        h('span', { class: 'k', text: 'memory' }),
        h('span', { class: 'v', text: `${fmtBytes(st.bytes)} / ${fmtBytes(st.maxBytes)}` }),
      ),
      h(
        'div',
        { class: 'hrow sub' },
        h('span', { class: 'k', text: 'evicted' }),
        h('span', { class: 'v', text: st.evictedCalls }),
      ),
    ),
  );
  el.title =
    'rates, answer ratio and RTT over the last 5 minutes; sparklines over 15 minutes, one point a minute';
  el.replaceChildren(...cards);
}

async function callsPage(main) {
  document.title = 'sipspan · calls';
  setCrumbs(h('span', { text: 'Calls' }));
  const params = new URLSearchParams(location.search);
  const filter = {
    service: params.get('service') ?? '',
    outcome: params.get('outcome') ?? '',
    min_setup_ms: params.get('min_setup_ms') ?? '',
    q: params.get('q') ?? '',
  };
  const rows = new Map();
  const fresh = new Set();
  let info = { routes: [], node: '' };
  let paused = false;
  let matched = 0;
  let total = 0;
  try {
    info = await getJson('/api/capture/info');
  } catch (err) {
    main.replaceChildren(
      h('p', { class: 'empty error', text: `The capture store is not reachable: ${err.message}` }),
    );
    return;
  }
  document.getElementById('node').textContent = info.node;
  const routeNames = info.routes.map((r) => r.name);

  const healthEl = h('section', { class: 'health', 'aria-label': 'health' });
  const serviceSel = h(
    'select',
    { name: 'service', 'aria-label': 'service' },
    h('option', { value: '', text: 'all services' }),
    routeNames.map((n) => h('option', { value: n, text: n })),
  );
  const outcomeSel = h(
    'select',
    { name: 'outcome', 'aria-label': 'outcome' },
    h('option', { value: '', text: 'all outcomes' }),
    OUTCOMES.map(([v, t]) => h('option', { value: v, text: t })),
  );
  const minInput = h('input', {
    name: 'min_setup_ms',
    type: 'number',
    min: '0',
    step: '1',
    placeholder: 'min setup ms',
    'aria-label': 'minimum setup time in milliseconds',
  });
  const qInput = h('input', {
    name: 'q',
    type: 'search',
    placeholder: 'Call-ID, trace id or user',
    'aria-label': 'search',
    spellcheck: 'false',
  });
  serviceSel.value = filter.service;
  outcomeSel.value = filter.outcome;
  minInput.value = filter.min_setup_ms;
  qInput.value = filter.q;
  const countEl = h('span', { class: 'count' });
  const pauseBtn = h('button', { type: 'button', class: 'btn', text: 'Pause' });
  const bar = h(
    'form',
    { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    serviceSel,
    outcomeSel,
    minInput,
    qInput,
    h('button', {
      type: 'button',
      class: 'btn ghost',
      text: 'Clear',
      onclick: () => {
        serviceSel.value = '';
        outcomeSel.value = '';
        minInput.value = '';
        qInput.value = '';
        onFilter();
      },
    }),
    h('span', { class: 'spacer' }),
    countEl,
    pauseBtn,
  );

  const hopHeads = routeNames.map((n) =>
    h('th', { class: 'num hop', title: `setup time at the ${n} hop`, text: n }),
  );
  const tbody = h('tbody');
  const head = (text, cls = null) => h('th', { rowspan: '2', class: cls, text });
  const table = h(
    'table',
    { class: 'calls' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        head('Start'),
        head('From'),
        head('To'),
        head('Method'),
        head('Outcome'),
        h('th', { colspan: String(1 + routeNames.length), class: 'group', text: 'Setup (ms)' }),
        head('Duration (ms)', 'num'),
        head('Msgs', 'num'),
        head('Trace id'),
        head('Call-ID'),
      ),
      h('tr', { class: 'sub' }, h('th', { class: 'num', text: 'caller' }), hopHeads),
    ),
    tbody,
  );
  const emptyEl = h('p', { class: 'empty', text: 'No captured calls match.' });
  main.replaceChildren(
    healthEl,
    h('section', { class: 'panel list' }, bar, h('div', { class: 'tablewrap' }, table), emptyEl),
  );

  let scheduled = false;
  const render = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      const list = [...rows.values()]
        .filter((s) => matches(s, filter))
        .sort((a, b) => b.start_ms - a.start_ms);
      const shown = list.slice(0, 500);
      tbody.replaceChildren(...shown.map((s) => callRow(s, routeNames, fresh.has(s.trace_id))));
      fresh.clear();
      emptyEl.hidden = shown.length > 0;
      countEl.textContent = `${shown.length} shown · ${Math.max(matched, list.length)} matching · ${Math.max(total, rows.size)} stored`;
    });
  };

  const filterQuery = () => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== '') q.set(k, v);
    return q;
  };
  const load = async () => {
    const q = filterQuery();
    q.set('limit', '500');
    try {
      const data = await getJson(`/api/capture/calls?${q}`);
      rows.clear();
      for (const s of data.calls) rows.set(s.trace_id, s);
      matched = data.matched;
      total = data.total;
      render();
    } catch (err) {
      countEl.textContent = err.message;
    }
  };
  let debounce = 0;
  const onFilter = () => {
    filter.service = serviceSel.value;
    filter.outcome = outcomeSel.value;
    filter.min_setup_ms = minInput.value;
    filter.q = qInput.value.trim();
    // The URL and the rows already held follow at once; the server's answer (older calls too) follows.
    const q = filterQuery();
    history.replaceState(null, '', q.size > 0 ? `/?${q}` : '/');
    render();
    clearTimeout(debounce);
    debounce = setTimeout(load, 150);
  };
  for (const el of [serviceSel, outcomeSel, minInput, qInput]) el.addEventListener('input', onFilter);

  const buffered = [];
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('on', paused);
    setLive(paused ? 'paused' : 'on', paused ? 'paused' : 'live');
    if (!paused) {
      for (const s of buffered.splice(0)) upsert(s);
      render();
    }
  });
  const upsert = (s) => {
    if (!rows.has(s.trace_id)) {
      fresh.add(s.trace_id);
      total++;
      if (matches(s, filter)) matched++;
    }
    rows.set(s.trace_id, s);
  };
  let healthSoon = 0;
  openEvents(
    (s) => {
      if (paused) buffered.push(s);
      else {
        upsert(s);
        render();
      }
      // The store's figures follow the calls, at most every 2 s.
      if (healthSoon === 0)
        healthSoon = setTimeout(() => {
          healthSoon = 0;
          loadHealth();
        }, 2000);
    },
    (id) => {
      if (rows.delete(id)) {
        total = Math.max(0, total - 1);
        render();
      }
    },
  );
  const loadHealth = async () => {
    try {
      renderHealth(healthEl, await getJson('/api/capture/health'));
    } catch {
      // The panel keeps its last figures.
    }
  };
  await Promise.all([load(), loadHealth()]);
  setInterval(loadHealth, 5000);
  // Calls still ringing turn into timeouts without a new message: refresh now and then.
  setInterval(() => {
    if (!paused) load();
  }, 30_000);
}

function callRow(s, routeNames, isFresh) {
  const href = `/calls/${s.trace_id}`;
  const byName = new Map(s.hops.map((x) => [x.name, x]));
  const tr = h(
    'tr',
    {
      class: isFresh ? 'fresh' : null,
      dataset: { trace: s.trace_id },
      onclick: (e) => {
        if (e.target.closest('a,button') === null) location.href = href;
      },
    },
    h('td', { class: 'mono' }, h('a', { href, text: fmtClock(s.start_ms), title: fmtDate(s.start_ms) })),
    h('td', { class: 'user', text: s.from_user ?? '–', title: s.from_user ?? '' }),
    h('td', { class: 'user', text: s.to_user ?? '–', title: s.to_user ?? '' }),
    h('td', { class: 'method', text: s.method }),
    h('td', null, outcomePill(s.outcome, s.status)),
    h('td', { class: 'num strong', text: fmtNum(s.setup_ms) }),
    routeNames.map((n) => {
      const x = byName.get(n);
      return h('td', {
        class: 'num hop',
        text: x === undefined ? '' : fmtNum(x.setup_ms),
        title:
          x === undefined
            ? ''
            : `${n}: setup ${fmtMs(x.setup_ms)}, upstream ${fmtMs(x.client_ms)}, RTT ${fmtMs(x.rtt_ms)}`,
      });
    }),
    h('td', { class: 'num', text: fmtNum(s.duration_ms) }),
    h(
      'td',
      { class: 'num' },
      String(s.messages),
      s.retransmissions > 0
        ? h('span', { class: 'retx', title: 'retransmissions', text: ` ↻${s.retransmissions}` })
        : null,
    ),
    h('td', { class: 'mono id', title: s.trace_id, text: s.trace_id.slice(0, 12) }),
    h('td', { class: 'mono id callid', title: s.call_ids.join('\n'), text: s.call_ids.join(', ') }),
  );
  return tr;
}

// ───────────────────────────── spans ─────────────────────────────

/** Epoch milliseconds from the forms a span store may use: ms, µs or ns numbers, nanosecond strings, [s, ns], ISO. */
function toMs(v) {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v) && v.length === 2) return v[0] * 1000 + v[1] / 1e6;
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) {
      if (v.length >= 17) return Number(BigInt(v) / 1000n) / 1000;
      return toMs(Number(v));
    }
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  if (typeof v !== 'number') return null;
  if (v > 1e17) return v / 1e6;
  if (v > 1e14) return v / 1e3;
  return v;
}

function attrValue(v) {
  if (v === null || typeof v !== 'object') return v;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(attrValue);
  return JSON.stringify(v);
}

function attrsOf(a) {
  if (a === null || a === undefined) return {};
  if (Array.isArray(a)) return Object.fromEntries(a.map((kv) => [kv.key, attrValue(kv.value)]));
  return a;
}

const KIND_NAMES = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

function kindOf(k) {
  if (typeof k === 'number') return KIND_NAMES[k] ?? 'INTERNAL';
  if (typeof k === 'string') return k.replace(/^SPAN_KIND_/, '').toUpperCase();
  return 'INTERNAL';
}

function pick(o, ...keys) {
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) return o[k];
  return null;
}

/** Spans from /api/traces/<id> in one shape, whatever the store's field names. */
function normalizeSpans(json) {
  const list = Array.isArray(json) ? json : (json.spans ?? json.trace?.spans ?? []);
  return list.map((sp) => {
    const attributes = attrsOf(sp.attributes);
    const status = sp.status ?? {};
    const code = typeof status === 'string' ? status : (status.code ?? 'UNSET');
    return {
      id: String(pick(sp, 'spanId', 'span_id', 'id') ?? ''),
      parent: pick(sp, 'parentSpanId', 'parent_span_id', 'parentId', 'parent_id', 'parent'),
      name: sp.name ?? '',
      kind: kindOf(sp.kind),
      start: toMs(
        pick(
          sp,
          'start_ms',
          'startMs',
          'start',
          'startTime',
          'start_time',
          'startTimeUnixNano',
          'start_time_unix_nano',
        ),
      ),
      end: toMs(
        pick(sp, 'end_ms', 'endMs', 'end', 'endTime', 'end_time', 'endTimeUnixNano', 'end_time_unix_nano'),
      ),
      attributes,
      events: (sp.events ?? []).map((e) => ({
        name: e.name,
        time: toMs(pick(e, 'time_ms', 'timeMs', 'time', 'timestamp', 'timeUnixNano', 'time_unix_nano')),
        attributes: attrsOf(e.attributes),
      })),
      error: code === 2 || code === 'ERROR' || code === 'STATUS_CODE_ERROR',
      statusText: typeof status === 'object' ? (status.message ?? '') : '',
      service: String(
        pick(attributes, 'sipspan.route', 'sip.route', 'service', 'service.name', 'peer.service') ??
          pick(sp, 'service', 'serviceName', 'service_name') ??
          '',
      ),
      method: String(pick(attributes, 'sip.method', 'sip.request.method') ?? (sp.name ?? '').split(' ')[0]),
      derived: false,
    };
  });
}

/** Without a span store: SERVER (request in → final out) and CLIENT (request out → final in) per transaction per hop. */
function deriveSpans(detail) {
  const spans = [];
  const tx = new Map();
  for (const m of detail.messages) {
    const method = m.is_request ? m.method : m.cseq_method;
    if (method === 'ACK') continue;
    const key = `${m.hop}|${m.call_id}|${m.cseq}|${method}`;
    let t = tx.get(key);
    if (t === undefined) {
      t = {
        hop: m.hop,
        route: m.route,
        method,
        reqIn: null,
        reqOut: null,
        finIn: null,
        finOut: null,
        marks: [],
      };
      tx.set(key, t);
    }
    if (m.is_request) {
      if (m.direction === 'in' && t.reqIn === null) t.reqIn = m;
      if (m.direction === 'out' && t.reqOut === null) t.reqOut = m;
    } else if (m.status >= 200) {
      if (m.direction === 'in' && t.finIn === null) t.finIn = m;
      if (m.direction === 'out' && t.finOut === null) t.finOut = m;
    } else if (m.direction === 'in') t.marks.push(m);
  }
  let n = 0;
  const clients = [];
  // The request reached this hop from another hop when a CLIENT span of the same method there was still open.
  const parentOf = (t) => {
    let best = null;
    for (const c of clients) {
      if (c.hop === t.hop || c.method !== t.method || c.start > t.reqIn.t_ms || c.end < t.reqIn.t_ms)
        continue;
      if (best === null || c.start > best.start) best = c;
    }
    return best === null ? null : best.id;
  };
  const ordered = [...tx.values()]
    .filter((t) => t.reqIn !== null)
    .sort((a, b) => a.reqIn.t_ms - b.reqIn.t_ms);
  for (const t of ordered) {
    const sid = `d${n++}`;
    const parent = parentOf(t);
    const end = t.finOut ?? t.finIn ?? t.reqOut ?? t.reqIn;
    spans.push({
      id: sid,
      parent,
      name: `${t.method} ${t.route}`,
      kind: 'SERVER',
      start: t.reqIn.t_ms,
      end: end.t_ms,
      attributes: {
        'sip.method': t.method,
        'sipspan.route': t.route,
        'sip.status_code': t.finOut?.status ?? 0,
      },
      events: [],
      error: (t.finOut?.status ?? 0) >= 500,
      statusText: '',
      service: t.route,
      method: t.method,
      derived: true,
    });
    if (t.reqOut !== null) {
      const cid = `d${n++}`;
      const client = {
        id: cid,
        parent: sid,
        name: `${t.method} → upstream`,
        kind: 'CLIENT',
        start: t.reqOut.t_ms,
        end: (t.finIn ?? t.finOut ?? t.reqOut).t_ms,
        attributes: {
          'sip.method': t.method,
          'sipspan.route': t.route,
          'sip.status_code': t.finIn?.status ?? 0,
        },
        events: t.marks.map((m) => ({ name: m.label, time: m.t_ms, attributes: {} })),
        error: (t.finIn?.status ?? 0) >= 500,
        statusText: '',
        service: t.route,
        method: t.method,
        hop: t.hop,
        derived: true,
      };
      clients.push(client);
      spans.push(client);
    }
  }
  return spans;
}

/** Parents before children, siblings by start time; depth for indentation. */
function orderSpans(spans) {
  const byId = new Map(spans.map((s) => [s.id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent !== null && byId.has(s.parent)) {
      if (!children.has(s.parent)) children.set(s.parent, []);
      children.get(s.parent).push(s);
    } else roots.push(s);
  }
  const out = [];
  const visit = (s, depth) => {
    out.push({ span: s, depth });
    for (const c of (children.get(s.id) ?? []).sort((a, b) => a.start - b.start)) visit(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.start - b.start)) visit(r, 0);
  return out;
}

// ───────────────────────────── one call page ─────────────────────────────

async function callPage(main, id) {
  document.title = `sipspan · call ${id.slice(0, 12)}`;
  setCrumbs(h('a', { href: '/', text: 'Calls' }), h('span', { class: 'mono', text: id }));
  let detail;
  try {
    detail = await getJson(`/api/capture/calls/${encodeURIComponent(id)}`);
  } catch (err) {
    main.replaceChildren(
      h(
        'section',
        { class: 'panel' },
        h('p', {
          class: 'empty error',
          text:
            err.status === 404
              ? 'This call is not in the capture store (it was evicted, or never captured).'
              : `Could not load the call: ${err.message}`,
        }),
        h(
          'p',
          { class: 'empty' },
          h('a', { href: `/api/traces/${encodeURIComponent(id)}`, text: 'spans of this trace (JSON)' }),
        ),
      ),
    );
    return;
  }
  const view = new CallView(main, detail);
  await view.loadSpans();
  view.render();
  let timer = 0;
  openEvents((s) => {
    if (s.trace_id !== detail.summary.trace_id) return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        view.detail = await getJson(`/api/capture/calls/${encodeURIComponent(id)}`);
        await view.loadSpans();
        view.render();
      } catch {
        // Keep what is shown.
      }
    }, 600);
  });
}

const LADDER = {
  gutter: 118,
  head: 68,
  row: 24,
  pad: 14,
};

class CallView {
  constructor(main, detail) {
    this.main = main;
    this.detail = detail;
    this.spans = [];
    this.spanSource = 'none';
    this.selected = null;
    this.selectedSpan = null;
    this.arrows = new Map();
    this.cursor = null;
    this.ticks = new Map();
  }

  async loadSpans() {
    const traceId = this.detail.summary.trace_id;
    try {
      const json = await getJson(`/api/traces/${traceId}`);
      const spans = normalizeSpans(json).filter((s) => s.start !== null && s.end !== null);
      if (spans.length > 0) {
        this.spans = spans;
        this.spanSource = 'store';
        return;
      }
    } catch {
      // No span store on this process, or the trace is not (or no longer) in it.
    }
    this.spans = deriveSpans(this.detail);
    this.spanSource = 'derived';
  }

  render() {
    const d = this.detail;
    const s = d.summary;
    document.title = `sipspan · ${s.from_user ?? '?'} → ${s.to_user ?? '?'} · ${s.outcome}`;
    const first = this.selected === null ? this.defaultSelection() : this.selected.seq;
    this.selected = null;
    this.arrows.clear();
    this.ticks.clear();
    this.side = h('aside', { class: 'side panel' });
    this.wfTrack = null;
    this.main.replaceChildren(
      this.header(),
      this.breakdown(),
      h(
        'div',
        { class: 'split' },
        h(
          'section',
          { class: 'panel ladderpanel' },
          h(
            'div',
            { class: 'ptitle' },
            h('h2', { text: 'Ladder' }),
            h('span', {
              class: 'muted',
              text: `${d.messages.length} messages as received (in) and as forwarded (out) at each hop`,
            }),
          ),
          h('div', { class: 'ladderwrap' }, this.ladder()),
        ),
        this.side,
      ),
      this.waterfall(),
    );
    const seq = Number(location.hash.replace(/^#m/, '')) || first;
    this.select(seq, false);
  }

  defaultSelection() {
    const m =
      this.detail.messages.find((x) => x.direction === 'out' && x.is_request && x.method === 'INVITE') ??
      this.detail.messages[0];
    return m?.seq ?? 0;
  }

  header() {
    const s = this.detail.summary;
    const traceId = s.trace_id;
    return h(
      'section',
      { class: 'panel callhead' },
      h(
        'div',
        { class: 'who' },
        h('span', { class: 'user big', text: s.from_user ?? '?' }),
        h('span', { class: 'to', text: '→' }),
        h('span', { class: 'user big', text: s.to_user ?? '?' }),
        h('span', { class: 'mbadge', text: s.method }),
        outcomePill(s.outcome, s.status),
      ),
      h(
        'div',
        { class: 'hfacts' },
        hfact('started', fmtDate(s.start_ms)),
        hfact('setup', fmtMs(s.setup_ms)),
        hfact('duration', fmtMs(s.duration_ms)),
        hfact(
          'messages',
          `${s.messages}${s.retransmissions > 0 ? ` (${s.retransmissions} retransmitted)` : ''}`,
        ),
        hfact('trace id', h('span', { class: 'mono', text: traceId }), copyButton(traceId)),
        hfact(
          s.call_ids.length > 1 ? 'Call-IDs' : 'Call-ID',
          s.call_ids.map((c) => [h('span', { class: 'mono', text: c }), copyButton(c)]),
        ),
      ),
      h(
        'div',
        { class: 'actions' },
        h('a', {
          class: 'btn',
          href: `/api/capture/calls/${traceId}/pcap`,
          download: `sipspan-${traceId}.pcap`,
          text: 'pcap',
        }),
        h('a', { class: 'btn', href: `/api/capture/calls/${traceId}/otlp`, text: 'OTLP JSON' }),
        h('a', { class: 'btn ghost', href: `/api/capture/calls/${traceId}`, text: 'messages JSON' }),
        h('a', { class: 'btn ghost', href: `/api/traces/${traceId}`, text: 'spans JSON' }),
      ),
    );
  }

  /** Where the setup time went: each hop's own time (SERVER − CLIENT) and each service's (CLIENT − next SERVER). */
  breakdown() {
    const s = this.detail.summary;
    const hops = s.hops;
    const fromSpans = this.spanSource === 'store' ? this.hopTimesFromSpans(hops) : null;
    const times = fromSpans ?? hops.map((x) => ({ server: x.setup_ms, client: x.client_ms }));
    const segs = [];
    times.forEach((t, i) => {
      const name = hops[i].name;
      if (t.server !== null && t.client !== null)
        segs.push({ label: `sipspan ${name}`, ms: t.server - t.client, cls: 'own' });
      const next = times[i + 1];
      if (t.client !== null) {
        const ms = next !== undefined && next.server !== null ? t.client - next.server : t.client;
        segs.push({ label: name, ms, cls: `svc c${i % 6}` });
      }
    });
    const total = segs.reduce((a, b) => a + Math.max(0, b.ms), 0);
    const panel = h(
      'section',
      { class: 'panel breakdown' },
      h(
        'div',
        { class: 'ptitle' },
        h('h2', { text: 'Where the setup time went' }),
        h('span', {
          class: 'muted',
          text: `${s.method} received → final response sent back at the first hop: ${fmtMs(s.setup_ms)} · from ${fromSpans ? 'spans' : 'captured messages'}`,
        }),
      ),
    );
    if (segs.length === 0 || total <= 0) {
      panel.append(h('p', { class: 'empty', text: 'No complete initial transaction in this call.' }));
      return panel;
    }
    const bar = h('div', { class: 'stack' });
    const legend = h('div', { class: 'legend' });
    for (const g of segs) {
      const share = Math.max(0, g.ms) / total;
      const seg = h('span', { class: g.cls, title: `${g.label}: ${fmtMs(g.ms)}` });
      seg.style.flexGrow = String(Math.max(share, 0.004));
      if (share > 0.08) seg.textContent = `${g.label} ${fmtMs(g.ms)}`;
      bar.append(seg);
      legend.append(
        h(
          'span',
          { class: 'item' },
          h('i', { class: g.cls }),
          h('span', { class: 'name', text: g.label }),
          h('b', { text: fmtMs(g.ms) }),
          h('span', { class: 'muted', text: `${(share * 100).toFixed(1)}%` }),
        ),
      );
    }
    panel.append(bar, legend);
    return panel;
  }

  /**
   * The initial request's SERVER span at each hop and its CLIENT child. Spans are
   * matched to hops by their route attribute, or else by order: the request
   * reaches the hops one after the other, so the k-th earliest SERVER span of
   * that method is the k-th hop's.
   */
  hopTimesFromSpans(hops) {
    const method = this.detail.summary.method;
    const servers = this.spans
      .filter((x) => x.kind === 'SERVER' && (x.method === method || x.name.startsWith(method)))
      .sort((a, b) => a.start - b.start);
    const byOrder = hops.every((hop) => !servers.some((x) => x.service === hop.name));
    const out = [];
    for (let i = 0; i < hops.length; i++) {
      const server = byOrder ? servers[i] : servers.find((x) => x.service === hops[i].name);
      if (server === undefined) return null;
      const client = this.spans.find((x) => x.kind === 'CLIENT' && x.parent === server.id);
      out.push({
        server: server.end - server.start,
        client: client === undefined ? null : client.end - client.start,
      });
    }
    return out;
  }

  ladder() {
    const d = this.detail;
    const cols = d.columns;
    // Columns share the ladder panel's width (about 62% of the page beside the message panel), within bounds.
    const wide = window.innerWidth > 1100;
    const available = Math.max(600, this.main.clientWidth * (wide ? 0.62 : 1) - 40);
    const colWidth = Math.round(Math.min(220, Math.max(126, (available - LADDER.gutter) / cols.length)));
    const L = { ...LADDER, colWidth };
    const x = new Map(cols.map((c, i) => [c.id, L.gutter + L.colWidth * i + L.colWidth / 2]));
    const width = L.gutter + L.colWidth * cols.length + 8;
    const height = L.head + L.row * d.messages.length + L.pad;
    const root = svg('svg', {
      class: 'ladder',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': 'SIP ladder',
    });
    root.append(
      svg(
        'defs',
        null,
        ['req', 's1', 's2', 's3', 's4', 'sel'].map((k) =>
          svg(
            'marker',
            {
              id: `ah-${k}`,
              viewBox: '0 0 10 10',
              refX: '9',
              refY: '5',
              markerUnits: 'userSpaceOnUse',
              markerWidth: '9',
              markerHeight: '9',
              orient: 'auto-start-reverse',
            },
            svg('path', { d: 'M0,1 L10,5 L0,9 z', class: `ah ${k}` }),
          ),
        ),
      ),
    );
    // Lanes and heads.
    cols.forEach((c, i) => {
      const cx = x.get(c.id);
      const left = L.gutter + L.colWidth * i;
      if (c.kind === 'sipspan')
        root.append(
          svg('rect', { class: 'lane', x: cx - 9, y: L.head - 6, width: 18, height: height - L.head }),
        );
      root.append(svg('line', { class: `life ${c.kind}`, x1: cx, y1: L.head - 6, x2: cx, y2: height - 4 }));
      const kind = c.kind === 'service' && c.callee ? 'service · callee' : c.kind;
      const name =
        c.kind === 'sipspan'
          ? c.label.replace(/^sipspan /, '')
          : c.kind === 'caller'
            ? (d.summary.from_user ?? 'caller')
            : c.label;
      const g = svg('g', { class: `colhead ${c.kind}` });
      g.append(
        svg('rect', { x: left + 5, y: 3, width: L.colWidth - 10, height: 50, rx: 5 }),
        svg('text', { x: cx, y: 16, class: 'ckind', text: kind }),
        svg('text', { x: cx, y: 31, class: 'cname', text: name }),
        svg('text', { x: cx, y: 45, class: 'caddr', text: c.addresses[0] ?? '' }),
        svg('title', { text: `${c.label}${c.callee ? ' (callee)' : ''}\n${c.addresses.join('\n')}` }),
      );
      root.append(g);
    });
    root.append(svg('text', { x: 8, y: 45, class: 'gutterhead', text: 'time (ms)' }));
    let prev = null;
    d.messages.forEach((m, i) => {
      const y = L.head + L.row * i + L.row / 2 + 4;
      const x1 = x.get(m.from);
      const x2 = x.get(m.to);
      const cls = statusClass(m);
      const g = svg('g', {
        class: `arrow ${cls}${m.retransmission ? ' retx' : ''} ${m.direction}`,
        dataset: { seq: String(m.seq) },
        tabindex: '0',
        role: 'button',
        'aria-label': `${m.label} ${m.direction} ${m.route}`,
      });
      const delta = prev === null ? '' : `Δ${fmtNum(m.offset_ms - prev)}`;
      prev = m.offset_ms;
      g.append(
        svg('rect', { class: 'hit', x: 0, y: y - L.row / 2 - 4, width, height: L.row }),
        svg('text', { class: 'tofs', x: 8, y: y + 1, text: fmtOffset(m.offset_ms) }),
        svg('text', { class: 'tdelta', x: L.gutter - 10, y: y + 1, text: delta }),
        svg('line', {
          class: 'shaft',
          x1: x1 < x2 ? x1 + 2 : x1 - 2,
          y1: y,
          x2: x1 < x2 ? x2 - 3 : x2 + 3,
          y2: y,
          'marker-end': `url(#ah-${cls})`,
        }),
      );
      const mid = (x1 + x2) / 2;
      const label = svg('text', { class: 'label', x: mid, y: y - 5 });
      label.append(svg('tspan', { text: m.label.length > 28 ? `${m.label.slice(0, 27)}…` : m.label }));
      if (m.transport === 'tcp') label.append(svg('tspan', { class: 'tp', text: ' tcp' }));
      if (m.retransmission) label.append(svg('tspan', { class: 'rt', text: ' ↻ retx' }));
      if (m.edits.length > 0 && m.direction === 'out')
        label.append(svg('tspan', { class: 'ed', text: ' ✎' }));
      g.append(label);
      g.append(
        svg('title', {
          text: `${m.label} (${m.direction} at ${m.route})\n${m.transport} ${m.source} → ${m.destination}\n${fmtOffset(m.offset_ms)} ms · ${m.size} bytes${m.retransmission ? '\nretransmission' : ''}`,
        }),
      );
      g.addEventListener('click', () => this.select(m.seq, true));
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          this.select(m.seq, true);
        } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
          e.preventDefault();
          const k = d.messages.indexOf(m) + (e.key === 'ArrowDown' ? 1 : -1);
          const next = d.messages[k];
          if (next !== undefined) {
            this.select(next.seq, true);
            this.arrows.get(next.seq)?.focus();
          }
        }
      });
      this.arrows.set(m.seq, g);
      root.append(g);
    });
    return root;
  }

  select(seq, pushHash) {
    const m = this.detail.messages.find((x) => x.seq === seq) ?? this.detail.messages[0];
    if (m === undefined) return;
    if (this.selected !== null) this.arrows.get(this.selected.seq)?.classList.remove('sel');
    this.ticks.forEach((t) => {
      t.classList.remove('sel');
    });
    this.selected = m;
    this.arrows.get(m.seq)?.classList.add('sel');
    this.ticks.get(m.seq)?.classList.add('sel');
    if (pushHash) history.replaceState(null, '', `#m${m.seq}`);
    this.placeCursor(m.t_ms);
    this.showMessage(m);
  }

  showMessage(m) {
    const pair = m.pair === null ? null : this.detail.messages.find((x) => x.seq === m.pair);
    const from = this.detail.columns.find((c) => c.id === m.from);
    const to = this.detail.columns.find((c) => c.id === m.to);
    const added = m.edits.filter((e) => e.kind === 'added').length;
    const removed = m.edits.filter((e) => e.kind === 'removed').length;
    const note =
      m.direction === 'out'
        ? pair === undefined || pair === null
          ? 'as forwarded'
          : `as forwarded: ${added} edit${added === 1 ? '' : 's'} by sipspan highlighted`
        : pair === undefined || pair === null
          ? 'as received'
          : `as received: ${removed} part${removed === 1 ? '' : 's'} sipspan removed or replaced are struck through`;
    this.side.replaceChildren(
      h(
        'div',
        { class: 'ptitle' },
        h('h2', { class: `msgtitle ${statusClass(m)}`, text: m.label }),
        h('span', { class: `dir ${m.direction}`, text: m.direction === 'in' ? 'received' : 'forwarded' }),
        m.retransmission ? h('span', { class: 'tag retx', text: 'retransmission' }) : null,
      ),
      h(
        'dl',
        { class: 'facts tight' },
        fact('hop', `sipspan ${m.route}`),
        fact('path', `${from?.label ?? m.from} → ${to?.label ?? m.to}`),
        fact('wire', `${m.transport.toUpperCase()} ${m.source} → ${m.destination}`),
        fact('time', `${fmtOffset(m.offset_ms)} ms · ${fmtClock(m.t_ms)}`),
        fact('size', `${m.size} bytes`),
        fact('Call-ID', h('span', { class: 'mono', text: m.call_id })),
      ),
      h(
        'div',
        { class: 'rawbar' },
        h('span', { class: 'muted', text: note }),
        pair
          ? h('button', {
              type: 'button',
              class: 'mini',
              text: m.direction === 'out' ? 'show as received' : 'show as forwarded',
              onclick: () => this.select(pair.seq, true),
            })
          : null,
      ),
      rawView(m),
      h(
        'p',
        { class: 'legendline' },
        h('mark', { class: 'add', text: 'added by sipspan' }),
        ' ',
        h('del', { class: 'rm', text: 'removed by sipspan' }),
      ),
    );
  }

  waterfall() {
    const d = this.detail;
    const panel = h('section', { class: 'panel waterfall' });
    const rows = orderSpans(this.spans);
    const msgs = d.messages;
    let t0 = d.t0_ms;
    let t1 = msgs.length > 0 ? msgs[msgs.length - 1].t_ms : t0;
    for (const s of this.spans) {
      t0 = Math.min(t0, s.start);
      t1 = Math.max(t1, s.end);
    }
    const span = Math.max(1, t1 - t0);
    const pct = (t) => ((t - t0) / span) * 100;
    panel.append(
      h(
        'div',
        { class: 'ptitle' },
        h('h2', { text: 'Waterfall' }),
        h('span', {
          class: 'muted',
          text:
            this.spanSource === 'store'
              ? `${this.spans.length} spans from the span store · time from the call's first message`
              : `${this.spans.length} spans derived from captured messages (the span store has none for this trace)`,
        }),
      ),
    );
    const grid = h('div', { class: 'wf' });
    const axis = h(
      'div',
      { class: 'wfrow axis' },
      h('div', { class: 'wflabel muted', text: 'ms from first message' }),
    );
    const axisTrack = h('div', { class: 'wftrack' });
    const ticks = niceTicks(t0 - d.t0_ms, t1 - d.t0_ms, 8);
    const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    const decimals = Math.max(0, Math.min(3, -Math.floor(Math.log10(step))));
    for (const tick of ticks) {
      const el = h('span', { class: 'tick', text: tick.toFixed(decimals) });
      el.style.left = `${pct(d.t0_ms + tick)}%`;
      axisTrack.append(el);
    }
    axis.append(axisTrack);
    grid.append(axis);
    const msgRow = h('div', { class: 'wfrow msgs' }, h('div', { class: 'wflabel muted', text: 'messages' }));
    const msgTrack = h('div', { class: 'wftrack' });
    for (const m of msgs) {
      const t = h('button', {
        type: 'button',
        class: `mtick ${statusClass(m)}${m.retransmission ? ' retx' : ''}`,
        title: `${fmtOffset(m.offset_ms)} ms ${m.label} (${m.direction} ${m.route})`,
        'aria-label': `${m.label} ${m.direction} ${m.route}`,
        onclick: () => this.select(m.seq, true),
      });
      t.style.left = `${pct(m.t_ms)}%`;
      this.ticks.set(m.seq, t);
      msgTrack.append(t);
    }
    msgRow.append(msgTrack);
    grid.append(msgRow);
    for (const { span: s, depth } of rows) {
      const label = h('div', { class: 'wflabel', title: `${s.name}\n${s.kind}\n${s.service}` });
      label.style.paddingLeft = `${6 + depth * 14}px`;
      label.append(
        h('span', { class: `kind k-${s.kind.toLowerCase()}`, text: s.kind.slice(0, 1) }),
        h('span', { class: 'sname', text: s.name }),
      );
      const track = h('div', { class: 'wftrack' });
      const bar = h('div', { class: `bar k-${s.kind.toLowerCase()}${s.error ? ' err' : ''}` });
      bar.style.left = `${pct(s.start)}%`;
      bar.style.width = `${Math.max(0.15, pct(s.end) - pct(s.start))}%`;
      for (const e of s.events) {
        if (e.time === null) continue;
        const ev = h('span', { class: 'ev', title: `${e.name} at ${fmtOffset(e.time - d.t0_ms)} ms` });
        ev.style.left = `${((e.time - s.start) / Math.max(0.001, s.end - s.start)) * 100}%`;
        bar.append(ev);
      }
      const dur = h('span', { class: 'dur', text: fmtMs(s.end - s.start) });
      dur.style.left = `calc(${pct(s.end)}% + 4px)`;
      if (pct(s.end) > 88) {
        dur.style.left = 'auto';
        dur.style.right = `calc(${100 - pct(s.start)}% + 4px)`;
      }
      track.append(bar, dur);
      const row = h('div', {
        class: 'wfrow span',
        tabindex: '0',
        role: 'button',
        'aria-label': `span ${s.name}`,
        onclick: () => this.showSpan(s, d.t0_ms, row),
        onkeydown: (e) => {
          if (e.key === 'Enter') this.showSpan(s, d.t0_ms, row);
        },
      });
      row.append(label, track);
      grid.append(row);
    }
    this.cursor = h('div', { class: 'cursor' });
    this.wfGrid = grid;
    this.wfPct = pct;
    grid.append(this.cursor);
    panel.append(grid);
    if (rows.length === 0) panel.append(h('p', { class: 'empty', text: 'No spans.' }));
    return panel;
  }

  placeCursor(t) {
    if (this.cursor === null) return;
    this.cursor.style.setProperty('--at', String(Math.min(1, Math.max(0, this.wfPct(t) / 100))));
    this.cursor.hidden = false;
  }

  showSpan(s, t0, row) {
    for (const r of this.wfGrid.querySelectorAll('.wfrow.sel')) r.classList.remove('sel');
    row.classList.add('sel');
    this.placeCursor(s.start);
    const attrs = Object.entries(s.attributes).sort(([a], [b]) => a.localeCompare(b));
    this.side.replaceChildren(
      h(
        'div',
        { class: 'ptitle' },
        h('h2', { text: s.name }),
        h('span', { class: `kind k-${s.kind.toLowerCase()}`, text: s.kind }),
        s.error ? h('span', { class: 'tag err', text: s.statusText || 'error' }) : null,
      ),
      h(
        'dl',
        { class: 'facts tight' },
        fact('span id', h('span', { class: 'mono', text: s.id })),
        fact('parent', h('span', { class: 'mono', text: s.parent ?? '(root)' })),
        fact('start', `${fmtOffset(s.start - t0)} ms`),
        fact('duration', fmtMs(s.end - s.start)),
        s.derived ? fact('source', 'derived from captured messages') : null,
      ),
      h('h3', { text: 'Attributes' }),
      h(
        'table',
        { class: 'kv' },
        h(
          'tbody',
          null,
          attrs.map(([k, v]) =>
            h(
              'tr',
              null,
              h('th', { text: k }),
              h('td', { class: 'mono', text: typeof v === 'object' ? JSON.stringify(v) : String(v) }),
            ),
          ),
        ),
      ),
      s.events.length > 0 ? h('h3', { text: 'Events' }) : null,
      s.events.length > 0
        ? h(
            'table',
            { class: 'kv' },
            h(
              'tbody',
              null,
              s.events.map((e) =>
                h(
                  'tr',
                  null,
                  h('th', { class: 'mono', text: e.time === null ? '' : `${fmtOffset(e.time - t0)} ms` }),
                  h('td', { text: e.name }),
                ),
              ),
            ),
          )
        : null,
    );
  }
}

function hfact(k, ...v) {
  return h('div', { class: 'hfact' }, h('span', { class: 'k', text: k }), h('span', { class: 'v' }, v));
}

function fact(k, v) {
  return [h('dt', { text: k }), h('dd', null, v)];
}

/** The raw message with sipspan's edits marked: <mark class="add"> for added bytes, <del class="rm"> for removed. */
function rawView(m) {
  const pre = h('pre', { class: 'raw', tabindex: '0', 'aria-label': 'raw message' });
  const raw = m.raw;
  let p = 0;
  for (const e of [...m.edits].sort((a, b) => a.start - b.start)) {
    if (e.start < p) continue;
    if (e.start > p) pre.append(raw.slice(p, e.start));
    pre.append(
      h(e.kind === 'added' ? 'mark' : 'del', {
        class: e.kind === 'added' ? 'add' : 'rm',
        title: `${e.kind} by sipspan (bytes ${e.byte_start}–${e.byte_end})`,
        text: raw.slice(e.start, e.end),
      }),
    );
    p = e.end;
  }
  if (p < raw.length) pre.append(raw.slice(p));
  return pre;
}

function niceTicks(lo, hi, count) {
  const span = Math.max(1e-6, hi - lo);
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Math.round(t * 1e6) / 1e6);
  return out;
}

// ───────────────────────────── start ─────────────────────────────

const main = document.getElementById('main');
const path = location.pathname;
const callMatch = /^\/calls\/([^/]+)\/?$/.exec(path);
if (callMatch !== null) {
  callPage(main, decodeURIComponent(callMatch[1]));
} else {
  callsPage(main);
}
getJson('/api/capture/info')
  .then((info) => {
    document.getElementById('node').textContent = info.node;
  })
  .catch(() => {});
