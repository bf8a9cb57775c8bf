import { describe, expect, test } from "bun:test";
import { HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import { GONE_ALIASES_MAX, type GoneInfo, goneBody } from "./gone.ts";

const info: GoneInfo = {
  hash: HASH_A,
  retiredAt: Date.UTC(2024, 4, 1, 12, 0, 0),
  byHand: false,
  aliases: [
    { name: "prod", hash: HASH_B },
    { name: "old", hash: null },
  ],
};

describe("the 410 body", () => {
  test("text: when, and where each alias points now", () => {
    const body = goneBody(info, "example.org", undefined);
    expect(body.contentType).toBe("text/plain; charset=utf-8");
    expect(body.text).toBe(
      `hash ${HASH_A} was retired at 2024-05-01T12:00:00.000Z.\n` +
        `alias prod pointed at it; http://prod.example.org/ is now http://${HASH_B}.example.org/\n` +
        "alias old pointed at it; it no longer exists.\n",
    );
    expect(goneBody({ ...info, byHand: true, aliases: [] }, "z", "*/*").text).toBe(
      `hash ${HASH_A} was deactivated at 2024-05-01T12:00:00.000Z.\n`,
    );
  });

  test("JSON when Accept asks for it", () => {
    for (const accept of ["application/json", "text/html, Application/JSON;q=0.9"]) {
      const body = goneBody(info, "example.org", accept);
      expect(body.contentType).toBe("application/json");
      expect(JSON.parse(body.text)).toEqual({
        error: "gone",
        hash: HASH_A,
        retiredAt: "2024-05-01T12:00:00.000Z",
        reason: "retired",
        aliases: [
          {
            name: "prod",
            url: "http://prod.example.org/",
            hash: HASH_B,
            hashUrl: `http://${HASH_B}.example.org/`,
          },
          { name: "old", url: "http://old.example.org/", hash: null, hashUrl: null },
        ],
      });
    }
  });

  test("small: at most GONE_ALIASES_MAX aliases", () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ name: `a${i}`, hash: HASH_B }));
    const body = goneBody({ ...info, aliases: many }, "example.org", "application/json");
    expect(JSON.parse(body.text).aliases).toHaveLength(GONE_ALIASES_MAX);
    expect(body.text.length).toBeLessThan(2048);
  });
});
