import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/**
 * A small HTTP listener with a closed list of path handlers (exact paths, or
 * prefixes ending in "/"). Used for the admin listener and each route's
 * /metrics listener. Every path is read-only: GET and HEAD (Node sends no body
 * for HEAD), anything else 405 with Allow. Handler errors become 500s, never crashes.
 */
export class HttpListener {
  private readonly server: Server;
  private readonly exact = new Map<string, HttpHandler>();
  private readonly prefixes: [string, HttpHandler][] = [];
  readonly host: string;
  port: number;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
    this.server = createServer((req, res) => this.dispatch(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  handle(path: string, handler: HttpHandler): void {
    if (path.endsWith('/') && path.length > 1) this.prefixes.push([path, handler]);
    else this.exact.set(path, handler);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        if (typeof a === 'object' && a !== null) this.port = a.port;
        this.server.on('error', () => {});
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      sendText(res, 400, 'bad request\n');
      return;
    }
    let handler = this.exact.get(url.pathname);
    if (handler === undefined) {
      for (const [prefix, h] of this.prefixes) {
        if (url.pathname.startsWith(prefix)) {
          handler = h;
          break;
        }
      }
    }
    if (handler === undefined) {
      sendText(res, 404, 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // RFC 9110 §15.5.6: a 405 names the methods the resource has.
      res.setHeader('allow', 'GET, HEAD');
      sendText(res, 405, 'method not allowed\n');
      return;
    }
    try {
      const r = handler(req, res, url);
      if (r instanceof Promise) r.catch((err: Error) => fail(res, err));
    } catch (err) {
      fail(res, err as Error);
    }
  }
}

function fail(res: ServerResponse, err: Error): void {
  if (!res.headersSent) sendText(res, 500, `error: ${err.message}\n`);
  else res.end();
}

export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, `${JSON.stringify(value)}\n`, 'application/json');
}
