/**
 * The sandbox chat page: a minimal Telegram-like client over the Bot API fake's /_fake API.
 * Messages are kept by id and updated in place when the bot edits them (as Telegram shows an
 * edit), the view follows new messages only when the reader is at the bottom, and anything that
 * fails (the fake unreachable, a refused press) is said in the status line instead of nothing.
 */
export const sandboxPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Respawn sandbox chat</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{margin:0;font-family:system-ui,sans-serif;background:#dfe7ee;display:flex;flex-direction:column;height:100vh}
header{background:#517da2;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header input{width:7rem}
#log{flex:1;overflow-y:auto;padding:1rem;display:flex;flex-direction:column;gap:.5rem}
.msg{max-width:70%;padding:.5rem .75rem;border-radius:.75rem;box-shadow:0 1px 1px #0002}
.msg .text{white-space:pre-wrap}
.msg .meta{font-size:.7rem;color:#7a8a99;text-align:right;margin-top:.2rem}
.bot{background:#fff;align-self:flex-start}.user{background:#effdde;align-self:flex-end}
.kb{display:grid;gap:.25rem;margin-top:.4rem}.row{display:flex;gap:.25rem}
.row button,.row a{flex:1;padding:.35rem;border:0;border-radius:.4rem;background:#e6eef5;color:#2a5885;cursor:pointer;text-align:center;text-decoration:none;font:inherit}
.row button:disabled{opacity:.6;cursor:progress}
#status{min-height:1.2rem;padding:.2rem 1rem;font-size:.85rem;color:#555;background:#f4f6f8}
#status.error{color:#fff;background:#c0392b}
form{display:flex;gap:.5rem;padding:.6rem;background:#fff}form input{flex:1;padding:.5rem}
</style></head>
<body>
<header><strong>Respawn bot (sandbox)</strong>
<label>your Telegram id <input id="uid" type="number" value="7001"></label>
<label>name <input id="name" value="Player"></label></header>
<div id="log" aria-live="polite"></div>
<div id="status" role="status"></div>
<form id="f"><input id="text" placeholder="Message, e.g. /start" autocomplete="off" aria-label="message"><button>Send</button></form>
<script>
const log = document.getElementById('log');
const statusLine = document.getElementById('status');
const uidInput = document.getElementById('uid');
const uid = () => Number(uidInput.value);
const who = () => ({ firstName: document.getElementById('name').value });
/** messageId → { el, key }: what is on screen, and the version of the message it shows. */
let shown = new Map();
let shownFor;
let refreshing = false;
let again = false;
/** The person just sent or pressed something: bring the answer into view. */
let follow = false;

function say(text, error) {
  statusLine.textContent = text;
  statusLine.className = error ? 'error' : '';
}

async function post(path, body) {
  follow = true;
  try {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...who(), ...body }) });
    if (!r.ok) {
      const detail = await r.text().catch(() => '');
      say('Not delivered to the bot (HTTP ' + r.status + ') ' + detail, true);
      return false;
    }
    say('');
    return true;
  } catch (e) {
    say('The sandbox server is unreachable: ' + e.message, true);
    return false;
  } finally {
    refresh();
  }
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function keyboard(m) {
  const rows = m.replyMarkup && m.replyMarkup.inline_keyboard;
  if (!rows || rows.length === 0) return undefined;
  const kb = document.createElement('div');
  kb.className = 'kb';
  for (const r of rows) {
    const row = document.createElement('div');
    row.className = 'row';
    for (const b of r) {
      let el;
      if (b.url) {
        el = document.createElement('a');
        el.href = b.url;
        el.target = '_blank';
        el.rel = 'noopener';
      } else {
        el = document.createElement('button');
        el.type = 'button';
        el.onclick = async () => {
          el.disabled = true;
          await post('/_fake/chats/' + uid() + '/callback', { messageId: m.messageId, data: b.callback_data });
          el.disabled = false;
        };
      }
      el.textContent = b.text;
      row.append(el);
    }
    kb.append(row);
  }
  return kb;
}

function fill(el, m) {
  el.className = 'msg ' + m.from;
  el.dataset.messageId = m.messageId;
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = m.text;
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = (m.editedAt ? 'edited ' + clock(m.editedAt) : clock(m.sentAt));
  const kb = keyboard(m);
  el.replaceChildren(...(kb ? [text, kb, meta] : [text, meta]));
}

function render(messages) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  let added = false;
  const alive = new Set();
  for (const m of messages) {
    if (m.deleted) continue;
    alive.add(m.messageId);
    const version = JSON.stringify([m.text, m.replyMarkup, m.editedAt]);
    let entry = shown.get(m.messageId);
    if (entry === undefined) {
      entry = { el: document.createElement('div'), version: '' };
      shown.set(m.messageId, entry);
      log.append(entry.el);
      added = true;
    }
    if (entry.version !== version) {
      fill(entry.el, m);
      entry.version = version;
    }
  }
  for (const [id, entry] of shown) {
    if (!alive.has(id)) {
      entry.el.remove();
      shown.delete(id);
    }
  }
  if (added && (atBottom || follow)) {
    log.scrollTop = log.scrollHeight;
    follow = false;
  }
}

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  const chat = uid();
  try {
    const r = await fetch('/_fake/chats/' + chat + '/messages');
    if (!r.ok) {
      say('Could not read the chat (HTTP ' + r.status + ')', true);
      return;
    }
    const body = await r.json();
    if (chat !== uid()) return;
    if (shownFor !== chat) {
      shown = new Map();
      log.replaceChildren();
      shownFor = chat;
    }
    render(body.messages);
    if (statusLine.textContent.startsWith('Could not read')) say('');
  } catch (e) {
    say('Could not read the chat: ' + e.message, true);
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

document.getElementById('f').onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  if (input.value.trim() === '') return;
  post('/_fake/chats/' + uid() + '/messages', { text: input.value });
  input.value = '';
};
uidInput.onchange = () => refresh();
setInterval(refresh, 700);
refresh();
</script></body></html>`;
