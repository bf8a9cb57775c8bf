/**
 * The hashd ingress with its TLS listener, in its own process so that its CPU can be read alone.
 *   bun bench/https/serve.ts <tlsPort> <socket> <hash> <cert> <key>
 * Prints "ready" once listening; runs until killed.
 */
import { startIngress } from "../../src/agent/ingress/index.ts";

const [portText, socketPath, hash, certificateFile, keyFile] = process.argv.slice(2);
startIngress({
  config: {
    hostname: "127.0.0.1",
    port: 0,
    zone: "bench.test",
    maxIdlePerUpstream: 1024,
    tls: {
      port: Number(portText),
      certificateFile: certificateFile as string,
      keyFile: keyFile as string,
      redirectHttp: false,
      checkSec: 10,
    },
  },
  routes: {
    resolveHash: (h) =>
      h === hash ? { kind: "local", hash: h, socketPath: socketPath as string } : { kind: "none", hash: h },
  },
  log: () => {},
});
console.log("ready");
