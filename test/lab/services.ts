// The lab's far-end services (HTTP + UDP echo), run by lab.ts inside the corp namespace as
//   nsenter --net=/var/run/netns/<corp> -- node --input-type=module -e SERVICES_SOURCE -- CONFIG_JSON
// The code is a plain-JS string rather than a module file so that the lab behaves the same
// from vitest (TypeScript sources, no dist/) and from the built dist/ (bench, demo).

/** One HTTP listener. `label` starts every response body, so a test can tell who answered. */
export interface HttpServiceSpec {
  readonly label: string;
  readonly host: string;
  readonly port: number;
}

/** One UDP echo socket: every datagram is sent back, unchanged, to its sender. */
export interface UdpEchoSpec {
  readonly host: string;
  readonly port: number;
}

export interface ServicesConfig {
  readonly http: readonly HttpServiceSpec[];
  readonly udpEcho: readonly UdpEchoSpec[];
}

/** The line the services process prints on stdout once every socket listens. */
export const SERVICES_READY_LINE = 'tunnelgate-lab-services-ready';

/**
 * HTTP responses:
 *   any path       -> 200, body "<label> <host>:<port> <METHOD> <path>\n"
 *   /bytes/N       -> 200, N bytes of 'x' (N <= 1 GiB), for throughput checks
 * The process exits when its stdin closes, so it cannot outlive a lab owner that was
 * SIGKILLed (no exit handler runs then); lab.ts keeps that pipe open.
 */
export const SERVICES_SOURCE = String.raw`
import http from 'node:http';
import dgram from 'node:dgram';

const cfg = JSON.parse(process.argv[process.argv.length - 1]);
const fail = (what, err) => {
  process.stderr.write('services: ' + what + ': ' + (err && err.message ? err.message : String(err)) + '\n');
  process.exit(1);
};
const isV6 = (host) => host.includes(':');
const chunk = Buffer.alloc(64 * 1024, 'x');

function serveHttp(spec) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const m = /^\/bytes\/(\d+)$/.exec(req.url || '');
      if (m) {
        let left = Math.min(Number(m[1]), 1024 * 1024 * 1024);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { res.once('drain', pump); return; }
          }
          res.end();
        };
        pump();
        return;
      }
      const body = spec.label + ' ' + spec.host + ':' + spec.port + ' ' + req.method + ' ' + req.url + '\n';
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    server.once('error', (err) => fail('http ' + spec.host + ':' + spec.port, err));
    server.listen({ host: spec.host, port: spec.port, ipv6Only: isV6(spec.host) }, resolve);
  });
}

function serveUdpEcho(spec) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: isV6(spec.host) ? 'udp6' : 'udp4', ipv6Only: isV6(spec.host) });
    sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
    sock.once('error', (err) => fail('udp echo ' + spec.host + ':' + spec.port, err));
    sock.bind({ address: spec.host, port: spec.port, exclusive: true }, resolve);
  });
}

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

await Promise.all([...cfg.http.map(serveHttp), ...cfg.udpEcho.map(serveUdpEcho)]);
process.stdout.write('${SERVICES_READY_LINE}\n');
`;
