// The engine's dashboard: renders what /api/stream (server-sent events) pushes every
// refresh interval, falling back to polling /api/dashboard; controls ask for a
// confirmation (and the API token, kept for this tab only) before they POST.
(function () {
  "use strict";
  const refreshMs = Number(document.body.dataset.refreshMs || 1000);
  const tokenRequired = document.body.dataset.tokenRequired === "true";
  const $ = (id) => document.getElementById(id);
  const money = (v) => (v === null || v === undefined ? "—" :
    (v < 0 ? "-$" : "$") + Math.abs(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  const signed = (v) => (v === null || v === undefined ? "—" : (v >= 0 ? "+" : "") + money(v).replace("$-", "-$"));
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(2) + "%");
  const num = (v, d = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
  const esc = (s) => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const short = (t) => (t ? String(t).replace("T00:00:00+00:00", "").replace("+00:00", "Z") : "—");
  const versions = (v) => (v && Object.keys(v).length ? Object.entries(v).map(([k, x]) => k.replace(/_.*/, "") + " v" + x).join(", ") : "—");
  let chart = null;

  function rows(tbodyParent, items, render) {
    const body = $(tbodyParent).querySelector("tbody");
    body.innerHTML = items.map(render).join("") || '<tr><td colspan="12" class="muted">none</td></tr>';
  }
  function list(id, items, render) {
    $(id).innerHTML = items.map((x) => "<li>" + render(x) + "</li>").join("") || '<li class="muted">none</li>';
  }

  function render(data) {
    if (!data) return;
    const s = data.status;
    const state = $("state");
    state.textContent = s.state;
    state.className = "badge " + s.state;
    $("decides").textContent = s.decides;
    $("clock").textContent = s.exchange ? short(s.exchange.clock) + (s.exchange.is_open ? " (open)" : " (closed)") : "—";
    $("heartbeat").textContent = num(s.heartbeat_age_seconds, 1) + " s";
    $("updated").textContent = new Date().toLocaleTimeString();
    $("equity").textContent = money(s.equity);
    $("cash").textContent = "cash " + money(s.cash) + " · buying power " + money(s.buying_power);
    const day = $("day-pnl");
    day.textContent = signed(s.day_pnl) + " (" + pct(s.day_pnl_pct) + ")";
    day.className = "big " + (s.day_pnl < 0 ? "bad" : "good");
    $("baseline").textContent = "from " + money(s.baseline_equity) + (s.baseline_source ? " (" + s.baseline_source + ")" : "") + " · session " + (s.session || "—");
    const halt = $("halt");
    halt.textContent = s.halted ? "HALTED" : "armed";
    halt.className = "big " + (s.halted ? "bad" : "good");
    $("halt-reason").textContent = s.halted ? s.halt_reason : "trips at -" + pct(s.daily_loss_limit_pct) + " on the day";
    const m = s.model_service;
    const health = $("model-health");
    if (!m.endpoint) { health.textContent = "fixed rules"; health.className = "big"; }
    else if (m.healthy) { health.textContent = "healthy"; health.className = "big good"; }
    else { health.textContent = "DOWN · fallback " + (m.fallback === "rules" ? "rules" : "no entries"); health.className = "big bad"; }
    $("model-detail").textContent = (m.endpoint || "no model service") + " · breaker " + m.breaker +
      (m.arms && m.arms.champion ? " · champion " + versions(m.arms.champion) : "") +
      (m.arms && m.arms.challenger ? " · challenger " + versions(m.arms.challenger) : "") +
      (m.last_error && !m.healthy ? " · " + m.last_error : "");
    const r = data.lifecycle.retrain;
    $("retrain").textContent = r.since_last + " / " + r.every;
    $("retrain-detail").textContent = r.closed_trades + " closed · next at " + r.next_at + (r.runs.length ? " · last run " + r.runs[0].run_id.slice(0, 8) + " (" + r.runs[0].state + ")" : "") + (r.last_error ? " · " + r.last_error : "");

    rows("positions", data.positions, (p) => "<tr data-symbol='" + esc(p.symbol) + "'><td>" + esc(p.symbol) + "</td><td>" + esc(p.side) + "</td><td>" + num(p.qty, 0) +
      "</td><td>" + num(p.entry_price) + "</td><td>" + num(p.last_price) + "</td><td>" + num(p.stop_price) + "</td><td>" + num(p.take_profit_price) +
      "</td><td class='" + (p.unrealized_pnl < 0 ? "bad" : "good") + "'>" + signed(p.unrealized_pnl) + "</td><td>" + esc(p.strategy || "unmanaged") +
      "</td><td>" + (p.entry_decision ? (p.entry_decision.win_probability === null ? "" : "p " + num(p.entry_decision.win_probability) + " · ") + esc(p.entry_decision.arm) + (p.entry_decision.source !== p.entry_decision.arm ? " · " + esc(p.entry_decision.source) : "") : "—") +
      "</td><td><button data-close='" + esc(p.symbol) + "'>Close</button></td></tr>");
    rows("orders", data.orders, (o) => "<tr><td>" + esc(o.client_order_id) + "</td><td>" + esc(o.symbol) + "</td><td>" + esc(o.side) + "</td><td>" + num(o.qty, 0) +
      "</td><td>" + esc(o.type) + "</td><td>" + num(o.stop_price) + "</td><td>" + num(o.limit_price) + "</td><td>" + esc(o.status) + "</td></tr>");
    rows("decisions", data.decisions, (d) => "<tr data-reason='" + esc(d.reason) + "'><td>" + short(d.signal_time) + "</td><td>" + esc(d.symbol) + "</td><td>" + esc(d.strategy) +
      "</td><td>" + esc(d.action) + "</td><td><b>" + esc(d.reason || "—") + "</b></td><td>" + num(d.win_probability) + "</td><td>" + esc(d.arm) + "</td><td>" + esc(versions(d.model_versions)) +
      "</td><td class='detail'>" + esc(d.detail) + "</td></tr>");
    rows("strategies", data.performance.by_strategy, (x) => "<tr><td>" + esc(x.strategy) + "</td><td>" + x.trades + "</td><td>" + pct(x.win_rate) +
      "</td><td>" + num(x.profit_factor) + "</td><td>" + signed(x.pnl) + "</td></tr>");
    rows("arms", data.ab, (a) => "<tr><td>" + esc(a.arm) + "</td><td>" + esc(versions(a.model_versions)) + "</td><td>" + a.decisions + "</td><td>" + a.trades +
      "</td><td>" + pct(a.win_rate) + "</td><td>" + signed(a.pnl) + "</td></tr>");
    list("lifecycle", data.lifecycle.retrain.runs.map((x) => ({ at: x.at, message: "retrain run " + x.run_id + " started after " + x.closed_trades + " trades (" + x.state + ")" }))
      .concat(data.lifecycle.events), (e) => short(e.at) + " " + esc(e.message));
    list("alerts", data.alerts, (a) => "<span class='p" + a.priority_level + "'>P" + a.priority_level + "</span> " + short(a.created_at) + " <b>" + esc(a.title) + "</b> " + esc(a.message));
    list("events", data.events, (e) => esc(e.message));
    list("control-journal", data.controls, (c) => short(c.at) + " <b>" + esc(c.action) + "</b> " + esc(c.target) + " from " + esc(c.origin) + ": " + esc(c.outcome) + " — " + esc(c.detail));
    drawEquity(data.equity, s);
  }

  function drawEquity(points, s) {
    const xs = points.map((p) => Date.parse(p.timestamp) / 1000);
    const ys = points.map((p) => p.equity);
    if (s.equity !== null && (!xs.length || Date.parse(s.engine_time) / 1000 > xs[xs.length - 1])) {
      xs.push(Date.parse(s.engine_time) / 1000); ys.push(s.equity);
    }
    const target = $("equity-chart");
    const width = Math.max(300, target.clientWidth - 10);
    if (!window.uPlot) return;
    if (!chart) {
      chart = new window.uPlot({ width: width, height: 220, series: [{}, { label: "equity", stroke: "#58a6ff", width: 2 }],
        axes: [{ stroke: "#8b98a5" }, { stroke: "#8b98a5", size: 70 }], scales: { x: { time: true } } }, [xs, ys], target);
    } else {
      chart.setData([xs, ys]);
    }
  }

  function token() {
    return sessionStorage.getItem("tradewind-token") || "";
  }

  function confirmThen(title, text, act) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-token-row").style.display = tokenRequired && !token() ? "" : "none";
    $("confirm-token").value = "";
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue !== "ok") { $("control-result").textContent = title + ": not confirmed"; return; }
      const given = $("confirm-token").value.trim();
      if (given) sessionStorage.setItem("tradewind-token", given);
      act();
    };
    dialog.showModal();
  }

  async function post(path, body) {
    const answer = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token(), "X-Tradewind-Client": "dashboard" },
      body: JSON.stringify(body || {}) });
    const data = await answer.json().catch(() => ({}));
    if (answer.status === 401) sessionStorage.removeItem("tradewind-token");
    $("control-result").textContent = answer.ok ? data.action + ": " + data.outcome + " — " + data.detail : "refused (" + answer.status + "): " + (data.message || data.detail || "");
    if (answer.ok && data.status) refreshNow();
  }

  const actions = {
    pause: ["Pause new entries?", "No new entry until you resume. Exits and stops keep working.", "/api/pause"],
    resume: ["Resume entries?", "New signals may open positions again.", "/api/resume"],
    cancel: ["Cancel every open order?", "Stop and target orders protecting positions are canceled too.", "/api/orders/cancel"],
    flatten: ["Flatten everything?", "Every open order is canceled and every position is closed at the market.", "/api/flatten"],
  };
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.action) {
      const [title, text, path] = actions[button.dataset.action];
      confirmThen(title, text, () => post(path));
    } else if (button.dataset.close) {
      const symbol = button.dataset.close;
      confirmThen("Close " + symbol + "?", "The position is closed at the market (its stop and target are canceled).", () => post("/api/positions/" + encodeURIComponent(symbol) + "/close"));
    } else if (button.id === "signin-button") {
      fetch("/api/session", { method: "POST", headers: { "Authorization": "Bearer " + $("signin-token").value.trim() } })
        .then((a) => { if (a.ok) { sessionStorage.setItem("tradewind-token", $("signin-token").value.trim()); location.reload(); } });
    }
  });

  async function refreshNow() {
    const answer = await fetch("/api/dashboard", { headers: { "Accept": "application/json" } });
    if (answer.ok) render(await answer.json());
  }

  function follow() {
    if (!window.EventSource) { setInterval(refreshNow, refreshMs); return; }
    const source = new EventSource("/api/stream");
    source.addEventListener("dashboard", (event) => render(JSON.parse(event.data)));
    source.onerror = () => { source.close(); setTimeout(follow, refreshMs); refreshNow(); };
  }

  const initial = JSON.parse($("initial-data").textContent || "null");
  if (initial) { render(initial); follow(); }
})();
