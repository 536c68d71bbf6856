// A WebSocket echo server built on the npm `ws` package, for
// tests/spec/ws_spec.lua: an independent peer for eddy's WebSocket client.
//
//   node tests/node/ws_server.js PORT SECONDS
//
// Listens on 127.0.0.1:PORT (0: any free port), prints "ready PORT", and
// exits after SECONDS. Every message comes back as it came (text or
// binary), except a few text commands:
//   "close-me"   the server closes with 4002 "as asked"
//   "frag"       the server answers with a text message in three fragments
//   "big N"      the server sends N bytes of binary (byte i is i*7 mod 256)
//   "headers"    the server answers with the upgrade request's x-test header
// A ping is answered by the library with a pong and also reported with a
// text message "ping:DATA". The server prints "closed CODE REASON" when a
// client's connection ends.
'use strict';
const WebSocket = require('ws');

const port = Number(process.argv[2] || 0);
const seconds = Number(process.argv[3] || 20);

const wss = new WebSocket.Server({ host: '127.0.0.1', port, maxPayload: 64 * 1024 * 1024 });

wss.on('listening', () => {
  process.stdout.write(`ready ${wss.address().port}\n`);
});

wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text === 'close-me') return ws.close(4002, 'as asked');
      if (text === 'frag') {
        ws.send('one ', { fin: false });
        ws.send('two ', { fin: false });
        ws.send('three', { fin: true });
        return;
      }
      if (text === 'headers') return ws.send('x-test=' + (req.headers['x-test'] || ''));
      const big = text.match(/^big (\d+)$/);
      if (big) {
        const buf = Buffer.alloc(Number(big[1]));
        for (let i = 0; i < buf.length; i++) buf[i] = (i * 7) & 0xff;
        return ws.send(buf);
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('ping', (data) => ws.send('ping:' + data.toString()));
  ws.on('close', (code, reason) => {
    process.stdout.write(`closed ${code} ${reason.toString()}\n`);
  });
  ws.on('error', (err) => process.stdout.write(`error ${err.message}\n`));
});

setTimeout(() => process.exit(0), seconds * 1000).unref();
// Keep running until then even with nothing to do.
setInterval(() => {}, 1000);
