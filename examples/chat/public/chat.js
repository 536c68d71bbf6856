// chat.js: joins the room over a WebSocket and shows what everyone says.
const $ = (id) => document.getElementById(id);
let socket = null;

function show(msg) {
  const li = document.createElement('li');
  if (msg.system) {
    li.className = 'system';
    li.textContent = msg.text;
  } else {
    li.textContent = msg.name + ': ' + msg.text;
  }
  $('messages').appendChild(li);
}

$('join').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim() || 'guest';
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
    '/ws?name=' + encodeURIComponent(name);
  socket = new WebSocket(url);
  socket.onopen = () => {
    $('status').textContent = 'connected as ' + name;
    $('join').hidden = true;
    $('say').hidden = false;
    $('text').focus();
  };
  socket.onmessage = (e) => show(JSON.parse(e.data));
  socket.onclose = () => { $('status').textContent = 'disconnected'; };
});

$('say').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (text && socket && socket.readyState === WebSocket.OPEN) socket.send(text);
  $('text').value = '';
});
