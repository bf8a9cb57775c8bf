/**
 * Zones at every edge of src/model/names.ts's rule (labels of 1-63, no hyphen at either end, at most
 * 220 characters in all), for the tests that compare the Nix side with it.
 */
export const ZONE_PROBES: string[] = (() => {
  const l63 = "x".repeat(63);
  return [
    "localhost",
    "svc.example.org",
    "a",
    "0",
    "a-b.c-d",
    "xn--bcher-kva.example",
    "10.0.0.1",
    l63,
    `${l63}x`,
    `${l63}.${l63}`,
    `${l63}.${l63}.${l63}.${"y".repeat(28)}`, // 220
    `${l63}.${l63}.${l63}.${"y".repeat(29)}`, // 221
    `${l63}.${l63}.${l63}.${l63}.y`, // 255
    "",
    "-a",
    "a-",
    "a.-b",
    "a..b",
    ".a",
    "a.",
    "Bad_Zone",
    "Localhost",
    "a b",
    "a/b",
    "*.example.org",
  ];
})();
