// A WebSocket client built on the npm `ws` package, for tests/spec/ws_spec.lua:
// an independent peer for eddy's WebSocket server.
//
//   node tests/node/ws_client.js URL SCENARIO
//
// It runs one scenario against URL (an echo route unless the scenario says
// otherwise) and prints what it saw, one line each, for the spec to match.
// Every scenario ends with a line "close CODE REASON" (the close event) or
// "error ..." and the process exits 0 unless something threw.
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');

const [url, scenario] = process.argv.slice(2);
if (!url || !scenario) {
  console.error('usage: ws_client.js URL SCENARIO');
  process.exit(2);
}

const out = (line) => process.stdout.write(line + '\n');
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// A safety net: no scenario should take this long.
setTimeout(() => { out('error: scenario timed out'); process.exit(3); }, 15000).unref();

const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
ws.on('error', (err) => out('error ' + err.message));
ws.on('unexpected-response', (req, res) => {
  out('refused ' + res.statusCode);
  process.exit(0);
});
ws.on('close', (code, reason) => {
  out(`close ${code} ${reason.toString()}`);
  process.exit(0);
});

// The next n messages, as [data, isBinary] pairs.
function take(n) {
  return new Promise((resolve) => {
    const got = [];
    const on = (data, isBinary) => {
      got.push([data, isBinary]);
      if (got.length === n) {
        ws.off('message', on);
        resolve(got);
      }
    };
    ws.on('message', on);
  });
}

const scenarios = {
  // One echo, then waits for the server to close (a graceful stop).
  async wait() {
    const p = take(1);
    ws.send('ready');
    const [[data]] = await p;
    out(`echo ${data.toString('utf8')}`);
  },

  // Text, ASCII and not, round trip.
  async text() {
    const words = ['hello', 'héllo wörld ✓ 日本語 🎉', ''];
    const p = take(words.length);
    for (const w of words) ws.send(w);
    for (const [data, bin] of await p) {
      out(`text ${bin ? 'binary' : 'text'} ${JSON.stringify(data.toString('utf8'))}`);
    }
    ws.close(1000, 'done');
  },

  // 70 KB of binary: a 64-bit length on the wire.
  async binary() {
    const buf = Buffer.alloc(70 * 1024);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 31 + 7) & 0xff;
    const p = take(1);
    ws.send(buf);
    const [[data, bin]] = await p;
    out(`binary ${bin ? 'binary' : 'text'} ${data.length} ${sha(data) === sha(buf) ? 'same' : 'different'}`);
    ws.close(1000);
  },

  // Many messages in a burst, back in order.
  async many() {
    const n = 2000;
    const p = take(n);
    for (let i = 1; i <= n; i++) ws.send('m' + i);
    const got = await p;
    let inOrder = true;
    got.forEach(([data], i) => { if (data.toString() !== 'm' + (i + 1)) inOrder = false; });
    out(`many ${got.length} ${inOrder ? 'in order' : 'out of order'}`);
    ws.close(1000);
  },

  // A ping with data: the pong carries it back.
  async ping() {
    ws.on('pong', (data) => {
      out('pong ' + data.toString());
      ws.close(1000);
    });
    ws.ping('are you there');
  },

  // The client closes with a code and reason; the close event shows the
  // server's answer.
  async close() {
    ws.close(4001, 'bye now');
  },

  // Fragmented messages: text split inside a UTF-8 sequence, binary in
  // three pieces, and a ping between fragments.
  async fragments() {
    const p = take(2);
    const text = Buffer.from('frag: é and 🎉', 'utf8');
    const cut = text.indexOf(0xa9); // inside é (c3 a9)
    ws.send(text.subarray(0, cut), { fin: false, binary: false });
    ws.ping('mid');
    ws.send(text.subarray(cut), { fin: true, binary: false });
    const bin = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    ws.send(bin.subarray(0, 3), { fin: false, binary: true });
    ws.send(bin.subarray(3, 6), { fin: false, binary: true });
    ws.send(bin.subarray(6), { fin: true, binary: true });
    const [[t, tbin], [b, bbin]] = await p;
    out(`fragments ${tbin ? 'binary' : 'text'} ${JSON.stringify(t.toString('utf8'))}`);
    out(`fragments ${bbin ? 'binary' : 'text'} ${b.toString('hex')}`);
    ws.close(1000);
  },

  // The server speaks first and closes: print what came, then the close.
  async server_close() {
    ws.on('message', (data, bin) => out(`message ${bin ? 'binary' : 'text'} ${data.toString()}`));
  },

  // Text that is not UTF-8: the server must fail the connection (1007).
  async bad_utf8() {
    ws.send(Buffer.from([0x61, 0xff, 0x62]), { binary: false });
  },

  // A message larger than the server's limit (the route allows 1000
  // bytes): 1009.
  async too_big() {
    ws.send(Buffer.alloc(1001, 0x41), { binary: true });
  },

  // The same, assembled from fragments that are each small enough.
  async too_big_fragments() {
    for (let i = 0; i < 3; i++) ws.send(Buffer.alloc(400, 0x41), { fin: i === 2, binary: true });
  },
};

ws.on('open', () => {
  const run = scenarios[scenario];
  if (!run) {
    out('error: no scenario ' + scenario);
    process.exit(2);
  }
  out('open');
  run().catch((err) => { out('error ' + err.stack); process.exit(1); });
});
