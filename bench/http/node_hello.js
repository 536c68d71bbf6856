// node_hello.js PORT: Node's http module with the hello route, for bench/http.sh.
const http = require('http');
const port = Number(process.argv[2] || 8080);
http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('hello\n');
}).listen(port, '127.0.0.1', () => console.log('listening'));
