// mfad account page. Plain browser JavaScript, no build step and no dependencies: the
// binary embeds this file. It is a client of the device dialect like any other, with
// the bearer token the user pastes:
//   GET    ../api/v1/mfa/status, ../api/v1/mfa/webauthn/devices   the factors
//   POST   ../api/v1/mfa/webauthn/register/options, …/verify      add a passkey
//   POST   ../api/v1/mfa/totp/setup, …/verify                     add an authenticator app
//   POST   ../api/v1/mfa/webauthn/authenticate/options, ../api/v1/mfa/verify   try a sign-in
//   DELETE ../api/v1/mfa/{totp|webauthn}/devices/{id}             remove one
//
// WebAuthn options travel as the JSON the server wrote, turned into the browser's
// objects by PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON,
// and the browser's answer goes back as credential.toJSON(): no base64 by hand.
//
// The token lives in sessionStorage and is never put in a URL. Everything received is
// written with textContent, never as markup.
'use strict';

(() => {
  const API = new URL('../api/v1/mfa/', document.baseURI);
  const TOKEN_KEY = 'mfad.account.token';
  const KIND_NAMES = { totp: 'Authenticator app', webauthn: 'Security key or passkey', sms: 'SMS', email: 'E-mail' };

  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let setupID = null; // the pending TOTP device being verified

  // call sends one request and answers {status, body}; status 0 is a network failure.
  async function call(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      const res = await fetch(new URL(path, API), init);
      let json = null;
      try { json = await res.json(); } catch (_) { /* no JSON body */ }
      return { status: res.status, body: json };
    } catch (_) {
      return { status: 0, body: null };
    }
  }

  // failure is the message of a refused answer, its code in data-code for scripts.
  function failure(r) {
    if (r.status === 0) return { code: 'NETWORK', text: 'The server cannot be reached.' };
    const e = r.body && r.body.error;
    if (e) return { code: e.code, text: e.message };
    return { code: String(r.status), text: 'The server answered ' + r.status + '.' };
  }

  function say(text) {
    $('error').hidden = true;
    $('error').dataset.code = '';
    $('status').textContent = text;
  }

  function complain(f) {
    $('status').textContent = '';
    $('error').hidden = false;
    $('error').dataset.code = f.code;
    $('error').textContent = f.text;
  }

  // ---- sign-in ---------------------------------------------------------------------

  function showSignIn(message) {
    $('account').hidden = true;
    $('signout').hidden = true;
    $('who').textContent = '';
    $('signin').hidden = false;
    $('signin-error').hidden = !message;
    $('signin-error').textContent = message || '';
    $('token').value = '';
    $('token').focus();
  }

  // subject reads the token's sub for display only; the server checks the token.
  function subject(jwt) {
    try {
      const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub || '';
    } catch (_) {
      return '';
    }
  }

  async function signIn(candidate) {
    token = candidate;
    const r = await call('GET', 'status');
    if (r.status !== 200) {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(r.status === 401 ? 'The token is invalid or has expired.' : failure(r).text);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('signin').hidden = true;
    $('account').hidden = false;
    $('signout').hidden = false;
    $('who').textContent = subject(token);
    await render(r.body.data);
  }

  function signOut() {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('factor-list').replaceChildren();
    $('backup').hidden = true;
    $('backup-codes').replaceChildren();
    say('');
    showSignIn();
  }

  // ---- the factors -----------------------------------------------------------------

  async function reload() {
    const r = await call('GET', 'status');
    if (r.status === 401) return showSignIn('Your token was refused; sign in again.');
    if (r.status !== 200) return complain(failure(r));
    await render(r.body.data);
  }

  const fmtDate = (s) => (s ? new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(s)) : '–');

  async function render(status) {
    const keys = {};
    const r = await call('GET', 'webauthn/devices');
    if (r.status === 200) for (const d of r.body.data.devices) keys[d.id] = d;
    const list = $('factor-list');
    list.replaceChildren();
    for (const m of status.methods) {
      const tr = document.createElement('tr');
      tr.dataset.kind = m.type;
      tr.dataset.id = String(m.id);
      const name = document.createElement('td');
      name.className = 'name';
      name.textContent = m.name || m.destination || '';
      const key = keys[m.id];
      if (key) {
        tr.dataset.flagged = String(key.flagged);
        if (key.flagged) badge(name, 'flagged', 'refused: its counter went backwards');
        if (key.backup_eligible) badge(name, 'synced', 'synced passkey');
        if (key.user_verified) badge(name, 'uv', 'verifies you');
      }
      const kind = document.createElement('td');
      kind.textContent = KIND_NAMES[m.type] || m.type;
      const added = document.createElement('td');
      added.textContent = fmtDate(m.created_at);
      const used = document.createElement('td');
      used.className = 'used';
      used.textContent = fmtDate(m.last_used_at);
      const act = document.createElement('td');
      if (m.type === 'totp' || m.type === 'webauthn') {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'remove';
        b.textContent = 'Remove';
        b.addEventListener('click', () => remove(m));
        act.append(b);
      }
      tr.append(name, kind, added, used, act);
      list.append(tr);
    }
    $('no-factors').hidden = status.methods.length > 0;
    $('summary').textContent = (status.enabled ? 'MFA sign-in is on.' : 'MFA sign-in is off.') +
      ' Backup codes left: ' + status.backup_codes_remaining + '.';
  }

  function badge(cell, cls, text) {
    const b = document.createElement('span');
    b.className = 'badge ' + cls;
    b.textContent = text;
    cell.append(b);
  }

  function showBackupCodes(codes) {
    const ul = $('backup-codes');
    ul.replaceChildren();
    for (const c of codes || []) {
      const li = document.createElement('li');
      li.textContent = c;
      ul.append(li);
    }
    $('backup').hidden = !codes || codes.length === 0;
  }

  async function remove(m) {
    const r = await call('DELETE', (m.type === 'totp' ? 'totp' : 'webauthn') + '/devices/' + m.id);
    if (r.status !== 200) return complain(failure(r));
    say('Removed ' + (m.name || KIND_NAMES[m.type]) + '.');
    await reload();
  }

  // ---- passkeys --------------------------------------------------------------------

  async function addPasskey() {
    const name = $('passkey-name').value.trim();
    const opts = await call('POST', 'webauthn/register/options', { device_name: name });
    if (opts.status !== 200) return complain(failure(opts));
    let cred;
    try {
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(opts.body.data.public_key);
      cred = await navigator.credentials.create({ publicKey });
    } catch (err) {
      return complain({ code: 'BROWSER_' + (err.name || 'ERROR'), text: 'The browser did not create a passkey: ' + err.message });
    }
    const r = await call('POST', 'webauthn/register/verify', { challenge_id: opts.body.data.challenge_id, credential: cred.toJSON() });
    if (r.status !== 200) return complain(failure(r));
    say('Added ' + r.body.data.device_name + '.');
    showBackupCodes(r.body.data.backup_codes);
    await reload();
  }

  async function trySignIn() {
    const out = $('signin-result');
    out.classList.remove('failed');
    out.textContent = '';
    out.dataset.code = '';
    const opts = await call('POST', 'webauthn/authenticate/options', {});
    const fail = (f) => {
      out.classList.add('failed');
      out.dataset.code = f.code;
      out.textContent = f.text;
    };
    if (opts.status !== 200) return fail(failure(opts));
    let cred;
    try {
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(opts.body.data.public_key);
      cred = await navigator.credentials.get({ publicKey });
    } catch (err) {
      return fail({ code: 'BROWSER_' + (err.name || 'ERROR'), text: 'The browser gave no assertion: ' + err.message });
    }
    const r = await call('POST', 'verify', { challenge_id: opts.body.data.challenge_id, webauthn: cred.toJSON() });
    if (r.status !== 200) {
      await reload();
      return fail(failure(r));
    }
    out.dataset.code = 'OK';
    out.textContent = 'Signed in with ' + r.body.data.method + (r.body.data.user_verified ? ' (you were verified).' : ' (presence only).');
    await reload();
  }

  // ---- authenticator apps ----------------------------------------------------------

  async function startTOTP() {
    const r = await call('POST', 'totp/setup', { device_name: $('totp-name').value.trim() });
    if (r.status !== 200) return complain(failure(r));
    setupID = r.body.data.device_id;
    $('totp-qr').src = r.body.data.qr_code; // a data: URL the server drew
    $('totp-secret').textContent = r.body.data.manual_entry_key;
    $('totp-setup').hidden = false;
    $('totp-code').focus();
  }

  async function verifyTOTP() {
    const r = await call('POST', 'totp/verify', { code: $('totp-code').value.trim(), device_id: setupID });
    if (r.status !== 200) return complain(failure(r));
    $('totp-setup').hidden = true;
    $('totp-code').value = '';
    say('Authenticator app added.');
    showBackupCodes(r.body.data.backup_codes);
    await reload();
  }

  // ---- wiring ----------------------------------------------------------------------

  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token').value.trim();
    if (!v) return showSignIn('Enter a token.');
    signIn(v);
  });
  $('signout').addEventListener('click', signOut);
  $('passkey-add').addEventListener('click', addPasskey);
  $('signin-test').addEventListener('click', trySignIn);
  $('totp-start').addEventListener('click', startTOTP);
  $('totp-verify').addEventListener('click', verifyTOTP);

  if (token) signIn(token);
  else showSignIn();
})();
