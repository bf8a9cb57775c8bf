import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HashdError } from "../../lib/errors.ts";
import { parseManifest } from "../../model/manifest.ts";
import { CREDENTIAL_SIZE_MAX, hashCredentials } from "./credentials.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-credentials-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string | Buffer = "value") => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content, { mode: 0o400 });
  return p;
};

const manifest = (credentials: string[]) =>
  parseManifest({ schema: 1, name: "api", exec: ["/bin/true"], credentials });

async function refusal(credentials: string[], map: Record<string, string> | undefined): Promise<HashdError> {
  try {
    await hashCredentials({ credentials: map ? { api: map } : {} }, manifest(credentials));
  } catch (e) {
    expect(e).toBeInstanceOf(HashdError);
    return e as HashdError;
  }
  throw new Error("accepted");
}

describe("the credentials of a hash, checked before anything starts", () => {
  test("a manifest naming a credential this host maps to nothing: refused, saying what to set", async () => {
    const e = await refusal(["db-url"], undefined);
    expect(e.code).toBe("missing_credential");
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain("service api");
    expect(e.message).toContain("db-url");
    expect(e.message).toContain("credentials.api.db-url");
    expect(e.details).toEqual({ service: "api", credential: "db-url" });
    // another credential of the same service mapped does not stand in for it
    expect((await refusal(["db-url"], { other: file("other") })).code).toBe("missing_credential");
  });

  test("a file that does not exist: refused, naming service, credential and path", async () => {
    const missing = path.join(dir, "nope");
    const e = await refusal(["db-url"], { "db-url": missing });
    expect(e.code).toBe("missing_credential");
    expect(e.message).toContain("api");
    expect(e.message).toContain("db-url");
    expect(e.message).toContain(missing);
    expect(e.details).toEqual({ service: "api", credential: "db-url", path: missing });
  });

  test("a dangling symlink, a directory, a FIFO: refused (systemd would load a directory as many)", async () => {
    const link = path.join(dir, "dangling");
    fs.symlinkSync(path.join(dir, "gone"), link);
    expect((await refusal(["a"], { a: link })).message).toContain(link);
    const sub = path.join(dir, "sub");
    fs.mkdirSync(sub);
    expect((await refusal(["a"], { a: sub })).message).toContain("not a regular file");
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expect((await refusal(["a"], { a: fifo })).message).toContain("not a regular file");
  });

  test("larger than systemd takes: refused (one file, and all of a hash's together)", async () => {
    const big = file("big", Buffer.alloc(CREDENTIAL_SIZE_MAX + 1));
    expect((await refusal(["a"], { a: big })).message).toContain(String(CREDENTIAL_SIZE_MAX));
    const half = file("half", Buffer.alloc(CREDENTIAL_SIZE_MAX / 2 + 1));
    const e = await refusal(["a", "b"], { a: half, b: half });
    expect(e.message).toContain("together");
  });

  test("present files: one per name, in the manifest's order; a symlink is followed; .cred is encrypted", async () => {
    const target = file("target");
    const link = path.join(dir, "link");
    fs.symlinkSync(target, link);
    const enc = file("stripe-key.cred", "Whxqht+dQJax1aZeCGLxmiAAAAABAAAADAAAABAAAAC");
    const got = await hashCredentials(
      { credentials: { api: { "db-url": link, "stripe-key": enc, unused: "/run/keys/unused" } } },
      manifest(["stripe-key", "db-url"]),
    );
    expect(got).toEqual([
      { name: "stripe-key", path: enc },
      { name: "db-url", path: link },
    ]);
    // a manifest without credentials needs nothing from the host
    expect(await hashCredentials({ credentials: {} }, manifest([]))).toEqual([]);
  });
});
