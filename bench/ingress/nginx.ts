import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

/**
 * Our own nginx instances (never the machine's service): each with its own config, pid file, logs
 * and temp paths under the bench's temp dir, in the foreground so that killing the child stops it.
 * One worker each, like the single-threaded ingress.
 */
export interface Nginx {
  proc: Subprocess;
  /** the worker's pid: the process that does the work, for CPU and memory readings */
  workerPid: number;
  stop(): Promise<void>;
}

function common(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  return `
worker_processes 1;
worker_rlimit_nofile 30000;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
daemon off;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
`;
}

/** The trivial service: a fixed 20-byte answer on a unix socket and, for the direct baseline, on TCP. */
export function upstreamConfig(dir: string, socketPath: string, tcpPort: number, bigFile: string): string {
  return `${common(dir, "upstream")}
  server {
    listen unix:${socketPath};
    listen 127.0.0.1:${tcpPort};
    location = /big { alias ${bigFile}; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "hello from upstream\\n"; }
  }
}
`;
}

/**
 * nginx as the reverse proxy to compare with: keep-alive pool to the same unix socket. With `tls`
 * it terminates TLS as the ingress's HTTPS listener does: the same protocols, ALPN http/1.1.
 */
export function proxyConfig(
  dir: string,
  socketPath: string,
  port: number,
  tls?: { cert: string; key: string },
): string {
  const listen = tls
    ? `listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;`
    : `listen 127.0.0.1:${port};`;
  const proto = tls ? "\n      proxy_set_header X-Forwarded-Proto $scheme;" : "";
  return `${common(dir, "proxy")}
  upstream service { server unix:${socketPath}; keepalive 256; }
  server {
    ${listen}
    location / {
      proxy_pass http://service;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;${proto}
      proxy_buffering off;
    }
  }
}
`;
}

export async function startNginx(dir: string, name: string, config: string): Promise<Nginx> {
  const path = join(dir, `${name}.conf`);
  await Bun.write(path, config);
  const proc = Bun.spawn(["/usr/sbin/nginx", "-c", path, "-p", dir], { stdout: "ignore", stderr: "inherit" });
  let workerPid = 0;
  for (let i = 0; i < 100 && workerPid === 0; i++) {
    await Bun.sleep(20);
    const children = await Bun.file(`/proc/${proc.pid}/task/${proc.pid}/children`)
      .text()
      .catch(() => "");
    workerPid = Number(children.trim().split(/\s+/)[0] ?? 0);
  }
  if (workerPid === 0) throw new Error(`nginx ${name} did not start; see ${dir}/${name}-error.log`);
  return {
    proc,
    workerPid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}
