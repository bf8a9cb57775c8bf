import type { z } from "zod";

/**
 * One line per problem zod found, `<path>: <message>` with the path dotted (`gossip.port`), and
 * `whole` in place of the path when the problem is the value itself ("(top level)" of a file,
 * "(body)" of a request).
 */
export function zodProblems(error: z.ZodError, whole: string): string[] {
  return error.issues.map((i) => `${i.path.join(".") || whole}: ${i.message}`);
}
