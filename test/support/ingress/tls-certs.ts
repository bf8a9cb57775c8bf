import { writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Test certificates made with openssl at test time: a CA, and wildcard certificates for a zone
 * (*.<zone> and <zone>) signed by it, each as <name>.pem (leaf then CA: a "fullchain") and <name>.key.
 */
export interface TestPki {
  dir: string;
  caFile: string;
  /** writes <name>.pem and <name>.key for *.<zone> and <zone>; returns their paths */
  wildcard(name: string, zone: string, keyType?: "ec" | "rsa"): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  const run = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${run.stderr.toString()}`);
}

const KEY_ARGS = {
  ec: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  rsa: ["-newkey", "rsa:2048"],
};

export function testPki(dir: string): TestPki {
  openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS.ec,
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=hashd test CA",
    ],
    dir,
  );
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    wildcard(name, zone, keyType = "ec") {
      openssl(
        [
          "req",
          ...KEY_ARGS[keyType],
          "-nodes",
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.csr`,
          "-subj",
          `/CN=${name}.${zone}`,
        ],
        dir,
      );
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:*.${zone},DNS:${zone}\n`);
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          `${name}.leaf`,
          "-days",
          "2",
          "-extfile",
          `${name}.ext`,
        ],
        dir,
      );
      const chain = Bun.spawnSync(["sh", "-c", `cat ${name}.leaf ca.pem > ${name}.pem`], { cwd: dir });
      if (chain.exitCode !== 0) throw new Error("cannot write the chain");
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
  };
}

/** Runs a command without blocking the event loop (an in-process server must keep answering). */
export async function run(
  cmd: string[],
  timeoutMs = 10_000,
): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill(), timeoutMs);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out, err };
}

/** What `openssl s_client` saw: the leaf's subject, the protocol and ALPN, or the failure. */
export async function sClient(port: number, serverName: string, extra: string[] = []): Promise<string> {
  const r = await run(
    ["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", serverName, ...extra],
    10_000,
  );
  return r.out + r.err;
}
