// Connection-rate client for bench/throughput.ts, run inside the lab's workstation
// namespace (directly, or as the allowed program of `tunnelgate run`):
//   node connrate-client.js HOST PORT SECONDS CONCURRENCY PATH
// Each request is a new TCP connection (connect, one HTTP/1.1 GET with `Connection: close`,
// read the answer, close), CONCURRENCY at a time, for SECONDS. Prints one JSON line.
import net from 'node:net';

const [host = '', portText = '80', secondsText = '2', concText = '4', reqPath = '/'] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const concurrency = Number(concText);

let ok = 0;
let errors = 0;
let firstError: string | undefined;
const latencies: number[] = [];

function once(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let head = '';
    let failure: string | undefined;
    const s = net.connect({ host, port });
    s.setNoDelay(true);
    s.setTimeout(3_000, () => s.destroy(new Error('timed out after 3 s')));
    s.on('connect', () => s.write(`GET ${reqPath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      if (head.length < 12) head += d.toString('latin1');
    });
    s.on('error', (e) => {
      failure = e.message;
    });
    s.on('close', () => {
      if (failure === undefined && head.startsWith('HTTP/1.1 200')) {
        ok++;
        latencies.push(performance.now() - t0);
      } else {
        errors++;
        firstError ??= failure ?? `unexpected answer ${JSON.stringify(head.slice(0, 12))}`;
      }
      resolve();
    });
  });
}

const t0 = performance.now();
const deadline = t0 + seconds * 1000;
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (performance.now() < deadline) await once();
}));
const elapsed = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
process.stdout.write(`${JSON.stringify({
  connections: ok,
  errors,
  firstError,
  seconds: elapsed,
  perSecond: ok / elapsed,
  latencyMedianMs: latencies[latencies.length >> 1] ?? null,
})}\n`);
