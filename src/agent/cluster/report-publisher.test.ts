import { expect, test } from "bun:test";
import type { HashReport, MemberAppState } from "../../model/reports.ts";
import type { Cluster } from "./cluster.ts";
import { ReportPublisher } from "./report-publisher.ts";

test("publishes a report once per change, and coalesces changes of one tick", async () => {
  const sent: MemberAppState[] = [];
  const cluster = { publish: (state: MemberAppState) => sent.push(state) } as unknown as Cluster;
  let hashes: HashReport[] = [];
  const publisher = new ReportPublisher(cluster, () => hashes, "10.0.0.1:8480");
  publisher.publish();
  publisher.publish();
  expect(sent).toEqual([{ hashes: [], ingress: "10.0.0.1:8480" }]);

  const report = {
    hash: "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6",
    state: "ready",
    inFlight: 2,
  } as unknown as HashReport;
  hashes = [report];
  publisher.soon();
  publisher.soon();
  expect(sent).toHaveLength(1); // not before the current task ends
  await Promise.resolve();
  expect(sent).toHaveLength(2);
  expect(sent[1]).toEqual({ hashes: [report], ingress: "10.0.0.1:8480" });
});
