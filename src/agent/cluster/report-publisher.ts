import type { HashReport } from "../../model/reports.ts";
import type { Cluster } from "./cluster.ts";

/**
 * What peers learn about this host: its hashes (state, in-flight, holds, refs) and its ingress
 * address. Offered to gossip on every change of a deployment (soon) and by a timer (in-flight
 * counts and holds change without one); a report equal to the last one is not sent again, so
 * an idle host sends no new state version.
 */
export class ReportPublisher {
  private last = "";

  constructor(
    private readonly cluster: Cluster,
    private readonly report: () => HashReport[],
    private readonly ingress: string,
  ) {}

  publish(): void {
    const state = { hashes: this.report(), ingress: this.ingress };
    const text = JSON.stringify(state);
    if (text === this.last) return;
    this.last = text;
    this.cluster.publish(state);
  }

  /** After the current task: several changes in one tick make one report. */
  soon(): void {
    queueMicrotask(() => this.publish());
  }
}
