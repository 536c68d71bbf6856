// node_fetch.mjs: Node's side of bench/fetch.sh: N GETs of URL, C at a
// time, with the built-in fetch; prints the seconds taken.
const [url, n = "10000", c = "100"] = process.argv.slice(2);
const total = Number(n), conc = Number(c);
let next = 0;
async function worker() {
  while (next < total) {
    next++;
    const res = await fetch(url);
    if (res.status !== 200) throw new Error("status " + res.status);
    await res.text();
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: conc }, worker));
console.log(((performance.now() - t0) / 1000).toFixed(3));
