/* global document, window, EventSource, fetch */
// runner-fleet dashboard client. Renders what the controller pushes on /dashboard/v1/stream; every value goes
// into the page as text (textContent), never as markup. No external request of any kind.

const SVG_NS = 'http://www.w3.org/2000/svg';
// Line colours with at least 3:1 contrast on the chart background; a dash pattern per set too, so the lines
// are told apart without relying on colour.
const COLORS = ['#1f5fbf', '#b3261e', '#1e7b34', '#7a3eb1', '#8a5a00', '#006d77', '#4d4d4d', '#c2185b'];
const DASHES = ['', '7 4', '2 3', '9 3 2 3', '4 4', '1 2', '12 4', '6 2 2 2'];
const CHART = { width: 600, height: 220, left: 46, right: 12, top: 12, bottom: 30 };

const state = {
  snapshot: null,
  history: { intervalMs: 2000, windowMs: 600000, points: [] },
  order: [],
  announce: true,
};

const byId = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'className') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs ?? {})) node.setAttribute(key, String(value));
  return node;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

function formatTime(at) {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

function formatNumber(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

function labelList(labels) {
  const td = el('td', { className: 'wrap' });
  for (const label of labels) td.append(el('span', { className: 'label', text: label }));
  return td;
}

function td(text, className) {
  return el('td', { className, text });
}

function replaceRows(tbody, rows, columns, emptyText) {
  const fragment = document.createDocumentFragment();
  if (rows.length === 0) {
    fragment.append(el('tr', null, el('td', { colspan: columns, className: 'empty', text: emptyText })));
  } else {
    for (const row of rows) fragment.append(row);
  }
  tbody.replaceChildren(fragment);
}

function setText(node, value) {
  const text = String(value);
  if (node && node.textContent !== text) node.textContent = text;
}

function renderCounters(s) {
  for (const dd of document.querySelectorAll('dd[data-counter]')) {
    setText(dd, formatNumber(s.totals[dd.dataset.counter]));
  }
  setText(byId('count-api-calls'), s.budget ? formatNumber(s.budget.calls) : 'not reported');
  setText(
    byId('count-rate-limit'),
    s.budget && s.budget.rateLimitRemaining !== null
      ? formatNumber(s.budget.rateLimitRemaining)
      : 'not reported',
  );
}

function capacityCell(active, max) {
  const pct = max > 0 ? Math.min(100, Math.round((active / max) * 100)) : 0;
  const fill = el('span');
  // Through the CSSOM: the page's CSP forbids inline style attributes.
  fill.style.width = `${pct}%`;
  const bar = el('span', { className: 'bar', 'aria-hidden': 'true' }, fill);
  return el('td', null, el('span', { className: 'capacity' }, bar, `${active} / ${max}`));
}

function renderScaleSets(s) {
  const rows = s.scaleSets.map((set) => {
    const r = set.runners;
    const mode = `${set.provider}, ${set.ephemeral ? 'ephemeral' : 'persistent'} ${set.registration}`;
    return el(
      'tr',
      null,
      el('th', { scope: 'row', text: set.name }),
      td(mode),
      labelList(set.labels),
      td(set.minIdle, 'num'),
      td(set.max, 'num'),
      capacityCell(set.activeRunners, set.max),
      td(r.requested + r.creating + r.starting, 'num'),
      td(r.idle, 'num'),
      td(r.busy, 'num'),
      td(r.finished, 'num'),
      td(r.failed + r['bootstrap-timeout'], 'num'),
      td(set.queuedJobs, 'num'),
      td(set.inProgressJobs, 'num'),
      td(formatDuration(set.oldestQueuedMs), 'num'),
    );
  });
  replaceRows(byId('scale-sets-body'), rows, 14, 'No scale sets configured.');
  const notes = s.scaleSets
    .filter((set) => set.failures > 0)
    .map((set) => {
      const until = set.backoffUntil ? `; backing off until ${formatTime(set.backoffUntil)}` : '';
      const why = set.lastFailure ? `; last failure: ${set.lastFailure}` : '';
      return `${set.name}: ${set.failures} failed runner${set.failures === 1 ? '' : 's'}${why}${until}.`;
    });
  for (const set of s.scaleSets) {
    const p = set.pacing;
    if (!p || p.waiting === 0) continue;
    const paused = p.pausedUntil ? `; GitHub refused one, paused until ${formatTime(p.pausedUntil)}` : '';
    notes.push(
      `${set.name}: ${p.waiting} runner${p.waiting === 1 ? '' : 's'} waiting for GitHub's rate budget ` +
        `(${p.perMinute} a minute), oldest ${formatDuration(p.oldestWaitMs)}${paused}.`,
    );
  }
  setText(byId('backoff-notes'), notes.join(' '));
}

function renderQueued(s) {
  const rows = s.queued.map((job) =>
    el(
      'tr',
      null,
      el('th', { scope: 'row', text: `#${job.id}` }),
      td(job.repository),
      labelList(job.labels),
      td(job.scaleSet ?? '–'),
      td(formatDuration(job.waitMs), 'num'),
    ),
  );
  replaceRows(byId('queued-body'), rows, 5, 'No job is waiting.');
  const shown = s.queued.length < s.queuedTotal ? ` (showing ${s.queued.length})` : '';
  setText(byId('queued-count'), `${s.queuedTotal}${shown}`);
}

function renderRunners(s) {
  const rows = s.runners.map((runner) => {
    const instance = runner.instance
      ? `${runner.instance.state}${runner.instance.providerId ? ` (${runner.instance.providerId})` : ''}`
      : 'none';
    const github = runner.github
      ? `${runner.github.status}${runner.github.busy ? ', busy' : ''}`
      : 'not in last list';
    return el(
      'tr',
      null,
      el('th', { scope: 'row', text: runner.name }),
      td(runner.scaleSet),
      el('td', null, el('span', { className: `state state-${runner.state}`, text: runner.state })),
      td(formatDuration(runner.ageMs), 'num'),
      td(formatDuration(runner.stateAgeMs), 'num'),
      td(instance),
      td(github),
      td(runner.jobId === null ? '–' : `#${runner.jobId}`),
      td(runner.reason ?? '', 'wrap'),
    );
  });
  replaceRows(byId('runners-body'), rows, 9, 'No runners right now.');
  const shown = s.runners.length < s.runnersTotal ? ` (showing ${s.runners.length})` : '';
  setText(byId('runners-count'), `${s.runnersTotal}${shown}`);
}

function renderUnroutable(s) {
  const rows = s.unroutable.map((job) =>
    el(
      'tr',
      null,
      el('th', { scope: 'row', text: `#${job.id}` }),
      td(job.repository),
      labelList(job.labels),
      td(job.status),
      td(formatDuration(job.waitMs), 'num'),
    ),
  );
  replaceRows(byId('unroutable-body'), rows, 5, 'Every job has a scale set.');
  setText(byId('unroutable-count'), String(s.unroutable.length));
}

function renderEvents(s) {
  const rows = s.events.map((e) =>
    el(
      'tr',
      null,
      td(formatTime(e.at)),
      el('td', null, el('span', { className: `ev-${e.event}`, text: `${e.kind} ${e.event}` })),
      td(e.scaleSet ?? '–'),
      td(e.runner ?? '–'),
      td(e.jobId === null ? '–' : `#${e.jobId}`),
      td(e.reason ?? '', 'wrap'),
    ),
  );
  replaceRows(byId('events-body'), rows, 6, 'No events yet.');
}

function setOrder() {
  const names = new Set(state.snapshot ? state.snapshot.scaleSets.map((set) => set.name) : []);
  for (const point of state.history.points) for (const name of Object.keys(point.sets)) names.add(name);
  state.order = [...names];
}

/** Top of the y axis: four equal steps of 1, 2, 2.5 or 5 times a power of ten, so the tick labels stay round. */
function niceMax(value) {
  if (value <= 0) return 4;
  const raw = value / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= raw) return 4 * step * power;
  return 40 * power;
}

function drawChart(container, desc, metric, scale, unit) {
  const points = state.history.points;
  const { width, height, left, right, top, bottom } = CHART;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, 'aria-hidden': 'true', focusable: 'false' });
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const end = points.length > 0 ? points[points.length - 1].at : Date.now();
  const span = Math.max(60000, points.length > 0 ? end - points[0].at : 0);
  const start = end - span;
  let max = 0;
  for (const p of points) for (const v of Object.values(p.sets)) max = Math.max(max, v[metric] * scale);
  // Runner counts: at least 0..4, so every tick is a whole runner.
  const yMax = niceMax(unit === 's' ? max : Math.max(4, max));
  const x = (at) => left + ((at - start) / span) * plotW;
  const y = (v) => top + plotH - (v / yMax) * plotH;

  for (let i = 0; i <= 4; i++) {
    const v = (yMax / 4) * i;
    root.append(svg('line', { x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: '#d9dde3' }));
    const label = svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = String(Math.round(v * 100) / 100);
    root.append(label);
  }
  // Ticks every 15 s, 30 s or minute, depending on how much history there is.
  const step = span <= 90000 ? 15000 : span <= 180000 ? 30000 : 60000;
  for (let ago = 0; ago <= span; ago += step) {
    const at = end - ago;
    root.append(
      svg('line', { x1: x(at), x2: x(at), y1: top + plotH, y2: top + plotH + 4, stroke: '#4a5361' }),
    );
    const label = svg('text', { x: x(at), y: height - 10, 'text-anchor': ago === 0 ? 'end' : 'middle' });
    label.textContent = ago === 0 ? 'now' : step < 60000 ? `-${ago / 1000} s` : `-${ago / 60000} min`;
    root.append(label);
  }
  root.append(
    svg('line', { x1: left, x2: width - right, y1: top + plotH, y2: top + plotH, stroke: '#4a5361' }),
  );

  const parts = [];
  state.order.forEach((name, index) => {
    const coords = [];
    let now = null;
    let peak = 0;
    for (const p of points) {
      const v = p.sets[name];
      if (!v) continue;
      const value = v[metric] * scale;
      coords.push(`${x(p.at).toFixed(1)},${y(value).toFixed(1)}`);
      now = value;
      peak = Math.max(peak, value);
    }
    if (coords.length === 0) return;
    root.append(
      svg('polyline', {
        points: coords.join(' '),
        fill: 'none',
        stroke: COLORS[index % COLORS.length],
        'stroke-width': 2,
        'stroke-dasharray': DASHES[index % DASHES.length],
        'stroke-linejoin': 'round',
      }),
    );
    const fmt = (v) => (unit === 's' ? `${v.toFixed(1)} s` : String(Math.round(v)));
    parts.push(`${name}: now ${fmt(now)}, peak ${fmt(peak)}`);
  });
  container.replaceChildren(root);
  const over =
    span < 120000
      ? `over the last ${Math.round(span / 1000)} s`
      : `over the last ${Math.round(span / 60000)} min`;
  setText(desc, parts.length > 0 ? `${parts.join('; ')} (${over}).` : 'No samples yet.');
}

function renderLegend() {
  const list = byId('chart-legend');
  const items = state.order.map((name, index) => {
    const swatch = svg('svg', { width: 28, height: 10, 'aria-hidden': 'true', focusable: 'false' });
    swatch.append(
      svg('line', {
        x1: 0,
        x2: 28,
        y1: 5,
        y2: 5,
        stroke: COLORS[index % COLORS.length],
        'stroke-width': 3,
        'stroke-dasharray': DASHES[index % DASHES.length],
      }),
    );
    return el('li', null, swatch, name);
  });
  list.replaceChildren(...items);
}

function renderCharts() {
  setOrder();
  drawChart(
    document.querySelector('#chart-runners .chart-svg'),
    byId('chart-runners-desc'),
    'runners',
    1,
    'count',
  );
  drawChart(
    document.querySelector('#chart-queue .chart-svg'),
    byId('chart-queue-desc'),
    'queueMs',
    0.001,
    's',
  );
  renderLegend();
}

function render(snapshot) {
  state.snapshot = snapshot;
  setText(byId('fleet-title'), snapshot.title);
  document.title = `${snapshot.title} dashboard`;
  renderCounters(snapshot);
  renderScaleSets(snapshot);
  renderQueued(snapshot);
  renderRunners(snapshot);
  renderUnroutable(snapshot);
  renderEvents(snapshot);
  setText(byId('updated'), `updated ${formatTime(snapshot.at)}`);
  if (state.order.length === 0) renderCharts();
}

function setConnection(kind, text) {
  const badge = byId('connection');
  badge.className = `badge badge-${kind}`;
  setText(badge, text);
}

function addSample(point) {
  const h = state.history;
  h.points.push(point);
  const keep = Math.max(1, Math.ceil(h.windowMs / h.intervalMs));
  if (h.points.length > keep) h.points.splice(0, h.points.length - keep);
  renderCharts();
}

function connect() {
  const source = new EventSource('/dashboard/v1/stream');
  source.addEventListener('open', () => setConnection('live', 'live'));
  source.addEventListener('error', () =>
    setConnection(source.readyState === EventSource.CLOSED ? 'down' : 'wait', 'reconnecting…'),
  );
  source.addEventListener('snapshot', (event) => {
    setConnection('live', 'live');
    render(JSON.parse(event.data));
  });
  source.addEventListener('history', (event) => {
    state.history = JSON.parse(event.data);
    renderCharts();
  });
  source.addEventListener('sample', (event) => addSample(JSON.parse(event.data)));
}

function setupAnnouncements() {
  const button = byId('announce');
  button.addEventListener('click', () => {
    state.announce = !state.announce;
    byId('counters').setAttribute('aria-live', state.announce ? 'polite' : 'off');
    button.setAttribute('aria-pressed', String(state.announce));
    setText(button, `Announce changes: ${state.announce ? 'on' : 'off'}`);
  });
}

function start() {
  setupAnnouncements();
  fetch('/dashboard/v1/snapshot', { headers: { accept: 'application/json' } })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status)))))
    .then((body) => {
      state.history = body.history;
      render(body.snapshot);
      renderCharts();
    })
    .catch(() => setConnection('wait', 'waiting for the controller…'));
  connect();
}

if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
