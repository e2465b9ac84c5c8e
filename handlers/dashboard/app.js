// mfad dashboard. Plain browser JavaScript, no build step and no dependencies: the
// binary embeds this file and the page must work on a machine without internet.
//
// Data comes from two admin endpoints, both called with the bearer token the user
// signs in with:
//   GET ../api/v1/dashboard/stats   counters, adoption, lockouts, outbox (every 5 s)
//   GET ../api/v1/dashboard/events  the live feed, text/event-stream
//
// Why fetch() and not EventSource for the feed: EventSource cannot send request
// headers, so the token would have to travel in the URL (where access logs, proxies
// and browser history keep it) or in a cookie (which the API does not use and which
// would open it to cross-site requests). fetch() sends the Authorization header, and
// this file parses the event stream itself and reconnects the way EventSource would,
// sending Last-Event-ID so that nothing is missed or repeated.
//
// The token lives in sessionStorage: it is gone when the tab closes and is never put
// in a URL. Everything received is written with textContent, never as markup.
'use strict';

(() => {
  const API = new URL('../api/v1/dashboard/', document.baseURI);
  const TOKEN_KEY = 'mfad.dashboard.token';
  const LANG_KEY = 'mfad.dashboard.lang';
  const STATS_EVERY = 5000; // ms between stats refreshes
  const STATS_SOON = 400; // ms from a live event to the stats refresh it causes
  const FEED_MAX = 200; // rows kept in the feed
  const SILENCE = 50000; // ms without a byte (heartbeats come every 15 s) = dead stream
  const RETRY_MAX = 30000; // longest pause between reconnections

  const I18N = {
    en: {
      title: 'MFA dashboard',
      language: 'Language',
      signIn: 'Sign in',
      signOut: 'Sign out',
      signInTitle: 'Sign in to the MFA dashboard',
      signInHelp: 'Paste an access token with the mfa:admin scope. Without one the page shows no audit data.',
      tokenLabel: 'Admin bearer token',
      tokenNote: 'The token stays in this browser tab only (sessionStorage) and is sent in the Authorization header, never in a URL. Closing the tab forgets it.',
      errEmpty: 'Enter a token.',
      errInvalid: 'The token is invalid or has expired.',
      errNotAdmin: 'This token does not have the mfa:admin scope.',
      errNetwork: 'The server cannot be reached.',
      errServer: 'The server answered {0}.',
      expired: 'Your token was refused; sign in again.',
      connSignedOut: 'Signed out',
      connConnecting: 'Connecting…',
      connLive: 'Live',
      connReconnecting: 'Reconnecting in {0} s…',
      connOffline: 'Feed unavailable, retrying in {0} s',
      eventsHour: 'Events, last hour',
      eventsWindow: '{0} – {1}',
      refusedCodes: 'Refused codes: {0}',
      adoption: 'MFA adoption',
      adoptText: '{0} of {1} users have MFA sign-in on; {2} have a verified method.',
      kindTotp: 'TOTP',
      kindSms: 'SMS',
      kindEmail: 'E-mail',
      kindWebAuthn: 'Passkeys',
      lockouts: 'Locked out now',
      lockNone: 'Nobody is locked out.',
      lockUntil: 'until {0}',
      lockMore: '… and {0} more',
      outbox: 'Outbox backlog',
      auditUnpublished: 'Events not yet published',
      notifQueued: 'Notifications queued',
      outOldest: 'Oldest waiting: {0}',
      outClear: 'Nothing waiting.',
      chartTitle: 'Events per type, last hour',
      chartLabel: 'Bar chart of the events of the last hour by type',
      updated: 'Updated {0}',
      stale: 'Not updated since {0}',
      feedTitle: 'Live feed',
      feedEmpty: 'No events yet. New ones appear here as they happen.',
      feedCount: '{0} shown',
      colTime: 'Time',
      colType: 'Event',
      colUser: 'User',
      colActor: 'Actor',
      colSummary: 'Summary',
      footer: 'Counters refresh every 5 seconds; the feed is live (server-sent events from MFA_EVENTS).',
    },
    es: {
      title: 'Panel de MFA',
      language: 'Idioma',
      signIn: 'Entrar',
      signOut: 'Salir',
      signInTitle: 'Entrar en el panel de MFA',
      signInHelp: 'Pegue un token de acceso con el ámbito mfa:admin. Sin él, la página no muestra datos de auditoría.',
      tokenLabel: 'Token bearer de administrador',
      tokenNote: 'El token se guarda solo en esta pestaña del navegador (sessionStorage) y se envía en la cabecera Authorization, nunca en una URL. Al cerrar la pestaña se olvida.',
      errEmpty: 'Introduzca un token.',
      errInvalid: 'El token no es válido o ha caducado.',
      errNotAdmin: 'Este token no tiene el ámbito mfa:admin.',
      errNetwork: 'No se puede contactar con el servidor.',
      errServer: 'El servidor respondió {0}.',
      expired: 'Su token ha sido rechazado; vuelva a entrar.',
      connSignedOut: 'Sin sesión',
      connConnecting: 'Conectando…',
      connLive: 'En directo',
      connReconnecting: 'Reconectando en {0} s…',
      connOffline: 'Feed no disponible, reintento en {0} s',
      eventsHour: 'Eventos, última hora',
      eventsWindow: '{0} – {1}',
      refusedCodes: 'Códigos rechazados: {0}',
      adoption: 'Adopción de MFA',
      adoptText: '{0} de {1} usuarios tienen activado el inicio de sesión con MFA; {2} tienen un método verificado.',
      kindTotp: 'TOTP',
      kindSms: 'SMS',
      kindEmail: 'Correo',
      kindWebAuthn: 'Llaves',
      lockouts: 'Bloqueados ahora',
      lockNone: 'No hay nadie bloqueado.',
      lockUntil: 'hasta las {0}',
      lockMore: '… y {0} más',
      outbox: 'Pendientes de envío',
      auditUnpublished: 'Eventos sin publicar',
      notifQueued: 'Notificaciones en cola',
      outOldest: 'El más antiguo: {0}',
      outClear: 'No hay nada pendiente.',
      chartTitle: 'Eventos por tipo, última hora',
      chartLabel: 'Gráfico de barras de los eventos de la última hora por tipo',
      updated: 'Actualizado a las {0}',
      stale: 'Sin actualizar desde las {0}',
      feedTitle: 'Eventos en directo',
      feedEmpty: 'Todavía no hay eventos. Los nuevos aparecerán aquí en cuanto ocurran.',
      feedCount: '{0} mostrados',
      colTime: 'Hora',
      colType: 'Evento',
      colUser: 'Usuario',
      colActor: 'Autor',
      colSummary: 'Resumen',
      footer: 'Los contadores se actualizan cada 5 segundos; los eventos llegan en directo (server-sent events de MFA_EVENTS).',
    },
  };

  // Every type of the event catalogue (mfa.EventCatalogue), by language. A Go test
  // checks that this list keeps up with the catalogue.
  const EVENT_NAMES = {
    en: {
      'totp.device_set_up': 'TOTP setup started',
      'totp.device_verified': 'TOTP device verified',
      'totp.device_removed': 'TOTP device removed',
      'totp.secret_removed': 'Pending TOTP secret discarded',
      'channel.registered': 'Channel registered',
      'channel.verified': 'Channel validated',
      'channel.deleted': 'Channel deleted',
      'channel.code_sent': 'Code sent',
      'signin.enabled': 'MFA sign-in turned on',
      'signin.disabled': 'MFA sign-in turned off',
      'backup_codes.generated': 'Backup codes issued',
      'backup_codes.used': 'Backup code used',
      'backup_codes.revoked': 'Backup codes revoked',
      'verify.succeeded': 'Code accepted',
      'verify.failed': 'Wrong code',
      'verify.replayed': 'Code reused',
      'verify.locked': 'Refused: locked out',
      'admin.reset': 'Reset by an admin',
      'activity.rejected': 'Activity rejected',
      'webauthn.credential_registered': 'Security key or passkey added',
      'webauthn.credential_removed': 'Security key or passkey removed',
      'webauthn.credential_flagged': 'Security key flagged (cloned?)',
    },
    es: {
      'totp.device_set_up': 'Configuración TOTP iniciada',
      'totp.device_verified': 'Dispositivo TOTP verificado',
      'totp.device_removed': 'Dispositivo TOTP eliminado',
      'totp.secret_removed': 'Secreto TOTP pendiente descartado',
      'channel.registered': 'Canal registrado',
      'channel.verified': 'Canal validado',
      'channel.deleted': 'Canal eliminado',
      'channel.code_sent': 'Código enviado',
      'signin.enabled': 'Inicio con MFA activado',
      'signin.disabled': 'Inicio con MFA desactivado',
      'backup_codes.generated': 'Códigos de respaldo emitidos',
      'backup_codes.used': 'Código de respaldo usado',
      'backup_codes.revoked': 'Códigos de respaldo revocados',
      'verify.succeeded': 'Código aceptado',
      'verify.failed': 'Código incorrecto',
      'verify.replayed': 'Código reutilizado',
      'verify.locked': 'Rechazado: bloqueado',
      'admin.reset': 'Restablecido por un admin',
      'activity.rejected': 'Actividad rechazada',
      'webauthn.credential_registered': 'Llave de seguridad o de acceso añadida',
      'webauthn.credential_removed': 'Llave de seguridad o de acceso eliminada',
      'webauthn.credential_flagged': 'Llave de seguridad marcada (¿clonada?)',
    },
  };

  // Code checks that were refused: the first sign of someone guessing.
  const REFUSALS = new Set(['verify.failed', 'verify.replayed', 'verify.locked']);

  // Events a security team looks at twice.
  const ALARMS = new Set(['verify.failed', 'verify.replayed', 'verify.locked', 'activity.rejected', 'admin.reset',
    'webauthn.credential_flagged']);

  const $ = (id) => document.getElementById(id);

  let lang = initialLang();
  let token = sessionStorage.getItem(TOKEN_KEY);
  let session = null; // the signed-in state: timers and the stream's AbortController
  let stats = null; // the last stats answer, re-rendered on a language switch
  let statsAt = null; // when it arrived
  let statsFailing = false;
  const feed = []; // newest first: {seq, type, body}
  let lastEventId = null; // the SSE resume point, a decimal string
  let replayUntil = 0; // events before this instant are the opening tail: no highlight
  let conn = { state: 'signedout', arg: '' };

  // ---- language ------------------------------------------------------------------

  function initialLang() {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === 'en' || saved === 'es') return saved;
    const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const p of prefs) {
      const primary = String(p).toLowerCase().split('-')[0];
      if (primary === 'es' || primary === 'en') return primary;
    }
    return 'en';
  }

  function t(key, ...args) {
    let s = I18N[lang][key];
    if (s === undefined) {
      console.warn('missing translation', lang, key);
      s = I18N.en[key] !== undefined ? I18N.en[key] : key;
    }
    return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
  }

  function eventName(type) {
    const names = EVENT_NAMES[lang];
    if (Object.prototype.hasOwnProperty.call(names, type)) return names[type];
    return type; // a type newer than this page: show its code
  }

  function setLang(l) {
    lang = l;
    localStorage.setItem(LANG_KEY, l);
    applyLang();
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.title = 'mfad · ' + t('title');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
    $('lang-en').setAttribute('aria-pressed', String(lang === 'en'));
    $('lang-es').setAttribute('aria-pressed', String(lang === 'es'));
    $('chart').setAttribute('aria-label', t('chartLabel'));
    renderConn();
    if (stats) renderStats();
    renderFeed();
  }

  const fmtNum = (n) => new Intl.NumberFormat(lang).format(n);
  const fmtTime = (d) => new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(d);
  const fmtFull = (d) => new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'medium' }).format(d);

  function fmtAgo(d) {
    const secs = Math.round((d.getTime() - Date.now()) / 1000);
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto', style: 'short' });
    const abs = Math.abs(secs);
    if (abs < 60) return rtf.format(secs, 'second');
    if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
    return rtf.format(Math.round(secs / 3600), 'hour');
  }

  // ---- connection indicator --------------------------------------------------------

  function setConn(state, arg) {
    conn = { state, arg: arg === undefined ? '' : arg };
    renderConn();
  }

  function renderConn() {
    const keys = { signedout: 'connSignedOut', connecting: 'connConnecting', live: 'connLive', reconnecting: 'connReconnecting', offline: 'connOffline' };
    $('conn').dataset.state = conn.state;
    $('conn-text').textContent = t(keys[conn.state], conn.arg);
  }

  // ---- API -------------------------------------------------------------------------

  function headers(extra) {
    return Object.assign({ Authorization: 'Bearer ' + token, 'Accept-Language': lang }, extra || {});
  }

  // getStats answers {status, body}; status 0 is a network failure.
  async function getStats(signal) {
    try {
      const res = await fetch(new URL('stats', API), { headers: headers({ Accept: 'application/json' }), cache: 'no-store', signal });
      let body = null;
      try { body = await res.json(); } catch (_) { /* an error page without JSON */ }
      return { status: res.status, body };
    } catch (err) {
      if (signal && signal.aborted) throw err;
      return { status: 0, body: null };
    }
  }

  // ---- sign-in -----------------------------------------------------------------------

  function showSignIn(message) {
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    const err = $('signin-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token').value = '';
    $('token').focus();
    setConn('signedout');
  }

  async function signIn(candidate) {
    token = candidate;
    const submit = $('signin-submit');
    submit.disabled = true;
    try {
      const r = await getStats();
      if (r.status === 200 && r.body && r.body.success) {
        sessionStorage.setItem(TOKEN_KEY, token);
        start(r.body.data);
        return;
      }
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(refusal(r.status));
    } finally {
      submit.disabled = false;
    }
  }

  function refusal(status) {
    switch (status) {
      case 0: return t('errNetwork');
      case 401: return t('errInvalid');
      case 403: return t('errNotAdmin');
      default: return t('errServer', status);
    }
  }

  function signOut(message) {
    if (session) {
      session.active = false;
      clearInterval(session.timer);
      clearTimeout(session.soon);
      session.abort.abort();
      session = null;
    }
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    stats = null;
    feed.length = 0;
    lastEventId = null;
    renderFeed();
    showSignIn(message);
  }

  function start(firstStats) {
    $('signin').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = false;
    session = { active: true, abort: new AbortController(), timer: 0, soon: 0 };
    acceptStats(firstStats);
    const s = session;
    s.timer = setInterval(() => refreshStats(s), STATS_EVERY);
    streamLoop(s);
  }

  // ---- stats -------------------------------------------------------------------------

  async function refreshStats(s) {
    if (document.hidden) return; // nobody is looking; the next visible tick catches up
    let r;
    try {
      r = await getStats(s.abort.signal);
    } catch (_) {
      return; // signed out meanwhile
    }
    if (!s.active) return;
    if (r.status === 401 || r.status === 403) {
      signOut(t('expired'));
      return;
    }
    if (r.status === 200 && r.body && r.body.success) {
      acceptStats(r.body.data);
      return;
    }
    statsFailing = true;
    renderUpdated();
  }

  function acceptStats(data) {
    stats = data;
    statsAt = new Date();
    statsFailing = false;
    renderStats();
  }

  function renderUpdated() {
    const el = $('stats-updated');
    if (!statsAt) { el.textContent = ''; return; }
    el.textContent = statsFailing ? t('stale', fmtTime(statsAt)) : t('updated', fmtTime(statsAt));
    el.classList.toggle('error', statsFailing);
  }

  function renderStats() {
    const s = stats;
    $('events-total').textContent = fmtNum(s.events_total);
    $('events-window').textContent = t('eventsWindow', fmtTime(new Date(s.window.from)), fmtTime(new Date(s.window.to)));
    const refused = s.events.filter((e) => REFUSALS.has(e.type)).reduce((n, e) => n + e.count, 0);
    $('events-refused').textContent = t('refusedCodes', fmtNum(refused));
    $('tile-events').dataset.alert = String(refused > 0);

    const a = s.adoption;
    const pct = a.users_seen ? Math.round((100 * a.signin_enabled) / a.users_seen) : 0;
    $('adopt-pct').textContent = pct + ' %';
    $('adopt-bar').style.width = pct + '%';
    $('adopt-text').textContent = t('adoptText', fmtNum(a.signin_enabled), fmtNum(a.users_seen), fmtNum(a.users_with_method));
    const kinds = $('adopt-kinds');
    kinds.replaceChildren();
    for (const [kind, key] of [['totp', 'kindTotp'], ['sms', 'kindSms'], ['email', 'kindEmail'], ['webauthn', 'kindWebAuthn']]) {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = t(key);
      const dd = document.createElement('dd');
      dd.textContent = fmtNum((a.methods && a.methods[kind]) || 0);
      dd.id = 'kind-' + kind;
      div.append(dt, dd);
      kinds.append(div);
    }

    const l = s.lockouts;
    $('lock-count').textContent = fmtNum(l.count);
    $('tile-lockouts').dataset.alert = String(l.count > 0);
    const list = $('lock-list');
    list.replaceChildren();
    if (l.count === 0) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = t('lockNone');
      list.append(li);
    }
    for (const u of l.users) {
      const li = document.createElement('li');
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = u.user_id;
      const until = document.createElement('span');
      const end = new Date(u.locked_until);
      until.className = 'muted';
      until.textContent = t('lockUntil', fmtTime(end));
      until.title = fmtAgo(end);
      li.append(who, until);
      list.append(li);
    }
    if (l.count > l.users.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = t('lockMore', fmtNum(l.count - l.users.length));
      list.append(li);
    }

    const o = s.outbox;
    $('out-audit').textContent = fmtNum(o.audit_unpublished);
    $('out-notif').textContent = fmtNum(o.notifications_queued);
    const oldest = [o.audit_oldest, o.notifications_oldest].filter(Boolean).map((v) => new Date(v)).sort((x, y) => x - y)[0];
    $('out-oldest').textContent = oldest ? t('outOldest', fmtAgo(oldest)) : t('outClear');
    $('tile-outbox').dataset.alert = String(o.audit_unpublished + o.notifications_queued > 0);

    renderChart(s.events);
    renderUpdated();
  }

  // ---- chart -------------------------------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';

  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // renderChart draws one horizontal bar per event type: a bar chart needs no library.
  // The label column is as wide as the longest name in the current language.
  function renderChart(events) {
    const chart = $('chart');
    const row = 21;
    const barW = 220;
    chart.replaceChildren();
    const rows = events.map((e, i) => {
      const y = i * row + 2;
      const cls = [areaClass(e.type)];
      if (e.count === 0) cls.push('zero');
      if (ALARMS.has(e.type)) cls.push('alarm');
      const g = svg('g', { class: cls.join(' '), 'data-type': e.type });
      g.append(svg('title', {}, `${eventName(e.type)} (${e.type}): ${fmtNum(e.count)}`));
      const label = svg('text', { class: 'label', x: 0, y: y + 14, 'text-anchor': 'end' }, eventName(e.type));
      g.append(label);
      chart.append(g);
      return { e, g, y, label };
    });
    let labelW = 0;
    for (const r of rows) labelW = Math.max(labelW, r.label.getComputedTextLength());
    labelW = Math.ceil(labelW) || 200; // 0 while the page is hidden
    const barX = labelW + 8;
    const max = Math.max(1, ...events.map((e) => e.count));
    for (const { e, g, y, label } of rows) {
      label.setAttribute('x', String(labelW));
      g.append(svg('rect', { class: 'track', x: barX, y: y + 4, width: barW, height: 12, rx: 3 }));
      const w = e.count === 0 ? 0 : Math.max(3, Math.round((barW * e.count) / max));
      g.append(svg('rect', { class: 'bar', x: barX, y: y + 4, width: w, height: 12, rx: 3 }));
      g.append(svg('text', { x: barX + w + 6, y: y + 14 }, fmtNum(e.count)));
    }
    chart.setAttribute('viewBox', `0 0 ${barX + barW + 44} ${events.length * row + 4}`);
  }

  function areaClass(type) {
    const area = String(type).split('.')[0];
    return /^[a-z_]+$/.test(area) ? 'area-' + area : '';
  }

  // ---- live feed -----------------------------------------------------------------------

  function addEvent(id, type, data) {
    if (lastEventId !== null && /^\d+$/.test(id) && BigInt(id) <= BigInt(lastEventId)) return; // already shown
    let body;
    try {
      body = JSON.parse(data);
    } catch (_) {
      body = {};
    }
    if (id) lastEventId = id;
    feed.unshift({ seq: id, type, body, fresh: Date.now() >= replayUntil });
    if (feed.length > FEED_MAX) feed.length = FEED_MAX;
    const tbody = $('feed-body');
    tbody.prepend(feedRow(feed[0]));
    while (tbody.rows.length > FEED_MAX) tbody.deleteRow(-1);
    feed[0].fresh = false;
    renderFeedMeta();
    if (session) soonStats(session);
  }

  // soonStats refreshes the counters shortly after live events, so the tiles agree
  // with the feed without waiting for the next tick; a burst costs one request.
  function soonStats(s) {
    if (s.soon) return;
    s.soon = setTimeout(() => {
      s.soon = 0;
      if (s.active) refreshStats(s);
    }, STATS_SOON);
  }

  function renderFeed() {
    const tbody = $('feed-body');
    tbody.replaceChildren(...feed.map(feedRow));
    renderFeedMeta();
  }

  function renderFeedMeta() {
    $('feed-empty').hidden = feed.length > 0;
    $('feed-count').textContent = feed.length ? t('feedCount', fmtNum(feed.length)) : '';
  }

  function cell(tr, cls, text, title) {
    const td = tr.insertCell();
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    if (title) td.title = title;
    return td;
  }

  function feedRow(ev) {
    const b = ev.body || {};
    const tr = document.createElement('tr');
    tr.dataset.type = ev.type;
    tr.dataset.seq = ev.seq;
    if (ev.fresh) tr.className = 'fresh';
    const when = b.published ? new Date(b.published) : null;
    cell(tr, 'time', when ? fmtTime(when) : '', when ? fmtFull(when) : '');
    const typeCell = cell(tr, 'type');
    const badge = document.createElement('span');
    badge.className = 'badge ' + areaClass(ev.type) + (ALARMS.has(ev.type) ? ' alarm' : '');
    badge.textContent = ev.type;
    const what = document.createElement('span');
    what.className = 'what';
    what.textContent = eventName(ev.type);
    typeCell.append(badge, what);
    const user = typeof b['mfa:user'] === 'string' ? b['mfa:user'] : '';
    const actor = b.actor && typeof b.actor.id === 'string' ? b.actor.id : '';
    cell(tr, 'who user', user, user);
    cell(tr, 'who actor', actor, actor);
    cell(tr, 'summary', typeof b.summary === 'string' ? b.summary : '');
    return tr;
  }

  // ---- server-sent events over fetch --------------------------------------------------------

  // streamLoop keeps one stream open while s is signed in, reconnecting like
  // EventSource: after the server's retry delay when a stream ends normally (the
  // server ends each one after a few minutes so the token is checked again), with a
  // growing pause while connections fail.
  async function streamLoop(s) {
    let retry = 2000;
    let failures = 0;
    while (s.active) {
      setConn(failures ? 'reconnecting' : 'connecting', Math.round(retry / 1000));
      const ctrl = new AbortController();
      const stop = () => ctrl.abort();
      s.abort.signal.addEventListener('abort', stop);
      let live = false;
      let offline = false;
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (lastEventId !== null) h['Last-Event-ID'] = lastEventId;
        const res = await fetch(new URL('events', API), { headers: h, cache: 'no-store', signal: ctrl.signal });
        if (res.status === 401 || res.status === 403) {
          if (s.active) signOut(t('expired'));
          return;
        }
        if (!res.ok || !res.body) {
          offline = res.status === 503;
          throw new Error('HTTP ' + res.status);
        }
        live = true;
        failures = 0;
        // A first connection opens with the last events: they are history, not news,
        // and are not highlighted. A resumed one only brings what the page missed.
        if (lastEventId === null) replayUntil = Date.now() + 1000;
        setConn('live');
        await readEvents(res.body, ctrl, (ms) => { retry = ms; });
      } catch (_) {
        // network error, abort or a failed answer: reconnect below
      } finally {
        s.abort.signal.removeEventListener('abort', stop);
      }
      if (!s.active) return;
      if (!live) failures++;
      const wait = live ? retry : Math.min(retry * 2 ** (failures - 1), RETRY_MAX);
      setConn(offline ? 'offline' : 'reconnecting', Math.round(wait / 1000));
      await sleep(wait, s.abort.signal);
    }
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const id = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(id); resolve(); }, { once: true });
    });
  }

  // readEvents parses a text/event-stream body (the WHATWG HTML "server-sent events"
  // rules: lines end in CR, LF or CRLF; a blank line dispatches; ":" starts a comment;
  // one space after the colon is dropped) until the stream ends. A stream silent for
  // longer than three heartbeats is treated as dead and aborted.
  async function readEvents(body, ctrl, setRetry) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog = setTimeout(() => ctrl.abort(), SILENCE);
    let buf = '';
    let data = [];
    let type = '';
    let id = null;
    const line = (l) => {
      if (l === '') {
        if (data.length) addEvent(id === null ? '' : id, type || 'message', data.join('\n'));
        data = [];
        type = '';
        id = null;
        return;
      }
      if (l[0] === ':') return; // comment: the heartbeat
      const colon = l.indexOf(':');
      const field = colon < 0 ? l : l.slice(0, colon);
      let value = colon < 0 ? '' : l.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
      switch (field) {
        case 'data': data.push(value); break;
        case 'event': type = value; break;
        case 'id': if (!value.includes('\0')) id = value; break;
        case 'retry': if (/^\d+$/.test(value)) setRetry(Number(value)); break;
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctrl.abort(), SILENCE);
        buf += value;
        let m;
        const eol = /\r\n|\r|\n/g;
        let from = 0;
        while ((m = eol.exec(buf)) !== null) {
          // A CR that ends the buffer may be the first half of a CRLF: wait for more.
          if (m[0] === '\r' && m.index === buf.length - 1) break;
          line(buf.slice(from, m.index));
          from = eol.lastIndex;
        }
        buf = buf.slice(from);
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function init() {
    $('lang-en').addEventListener('click', () => setLang('en'));
    $('lang-es').addEventListener('click', () => setLang('es'));
    $('signout').addEventListener('click', () => signOut(''));
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('token').value.trim().replace(/^Bearer\s+/i, '');
      if (!v) {
        showSignIn(t('errEmpty'));
        return;
      }
      signIn(v);
    });
    applyLang();
    if (token) {
      signIn(token);
    } else {
      showSignIn('');
    }
  }

  init();
})();
