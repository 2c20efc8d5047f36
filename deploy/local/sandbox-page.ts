/** The sandbox chat page: a minimal Telegram-like client over the Bot API fake's /_fake API. */
export const sandboxPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Respawn sandbox chat</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{margin:0;font-family:system-ui,sans-serif;background:#dfe7ee;display:flex;flex-direction:column;height:100vh}
header{background:#517da2;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}
header input{width:7rem}
#log{flex:1;overflow-y:auto;padding:1rem;display:flex;flex-direction:column;gap:.5rem}
.msg{max-width:70%;padding:.5rem .75rem;border-radius:.75rem;white-space:pre-wrap;box-shadow:0 1px 1px #0002}
.bot{background:#fff;align-self:flex-start}.user{background:#effdde;align-self:flex-end}
.kb{display:grid;gap:.25rem;margin-top:.4rem}.row{display:flex;gap:.25rem}
.row button,.row a{flex:1;padding:.35rem;border:0;border-radius:.4rem;background:#e6eef5;color:#2a5885;cursor:pointer;text-align:center;text-decoration:none;font:inherit}
form{display:flex;gap:.5rem;padding:.6rem;background:#fff}form input{flex:1;padding:.5rem}
</style></head>
<body>
<header><strong>Respawn bot (sandbox)</strong>
<label>your Telegram id <input id="uid" type="number" value="7001"></label>
<label>name <input id="name" value="Player"></label></header>
<div id="log" aria-live="polite"></div>
<form id="f"><input id="text" placeholder="Message, e.g. /start" autocomplete="off"><button>Send</button></form>
<script>
const log = document.getElementById('log');
const uid = () => Number(document.getElementById('uid').value);
const who = () => ({ firstName: document.getElementById('name').value });
let shown = '';
async function post(path, body) {
  await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...who(), ...body }) });
  refresh();
}
function render(messages) {
  const key = JSON.stringify(messages);
  if (key === shown) return;
  shown = key;
  log.replaceChildren();
  for (const m of messages) {
    if (m.deleted) continue;
    const div = document.createElement('div');
    div.className = 'msg ' + m.from;
    div.dataset.messageId = m.messageId;
    div.textContent = m.text;
    const rows = m.replyMarkup && m.replyMarkup.inline_keyboard;
    if (rows) {
      const kb = document.createElement('div');
      kb.className = 'kb';
      for (const r of rows) {
        const row = document.createElement('div');
        row.className = 'row';
        for (const b of r) {
          let el;
          if (b.url) { el = document.createElement('a'); el.href = b.url; el.target = '_blank'; }
          else {
            el = document.createElement('button');
            el.onclick = () => post('/_fake/chats/' + uid() + '/callback', { messageId: m.messageId, data: b.callback_data });
          }
          el.textContent = b.text;
          row.append(el);
        }
        kb.append(row);
      }
      div.append(kb);
    }
    log.append(div);
  }
  log.scrollTop = log.scrollHeight;
}
async function refresh() {
  try {
    const r = await fetch('/_fake/chats/' + uid() + '/messages');
    if (r.ok) render((await r.json()).messages);
  } catch {}
}
document.getElementById('f').onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  if (input.value.trim() === '') return;
  post('/_fake/chats/' + uid() + '/messages', { text: input.value });
  input.value = '';
};
setInterval(refresh, 700);
refresh();
</script></body></html>`;
