import type { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import { zodProblems } from "../../lib/zod-problems.ts";

/** Parses a JSON request body against a schema; every problem is named in one 400. */
export async function readJson<T>(req: Request, schema: z.ZodType<T>): Promise<T> {
  let json: unknown;
  try {
    json = await req.json();
  } catch {
    throw new HashdError("bad_request", "request body is not JSON");
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const problems = zodProblems(r.error, "(body)");
    throw new HashdError("bad_request", `invalid request: ${problems.join("; ")}`);
  }
  return r.data;
}
