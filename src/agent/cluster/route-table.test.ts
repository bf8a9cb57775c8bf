import { describe, expect, test } from "bun:test";
import type { Deployment, DeploymentState } from "../../model/deployment.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { Cluster, RemoteRunner } from "./cluster.ts";
import { AgentRouteTable } from "./route-table.ts";

const HASH = "0123456789abcdfghijklmnpqrsvwxyz";
const socketPath = `/run/hashd/sockets/${HASH}.sock`;

function table(opts: { busy: boolean; remote?: DeploymentState; local?: DeploymentState }) {
  const activator = {
    units: () => ({ socketPath }),
    isBusy: () => opts.busy,
  } as unknown as Activator;
  const runners: RemoteRunner[] = opts.remote
    ? [
        {
          member: "web2",
          ingress: "10.0.0.2:80",
          report: { hash: HASH, state: opts.remote, inFlight: 0, holds: 0, refs: [] },
        },
      ]
    : [];
  const cluster = { whoRuns: () => runners } as unknown as Cluster;
  const routes = new AgentRouteTable(activator, cluster);
  if (opts.local) routes.update({ hash: HASH, state: opts.local } as Deployment);
  return routes;
}

describe("AgentRouteTable", () => {
  test("a settled local copy is used even when a member has it ready", () => {
    expect(table({ busy: false, local: "draining", remote: "ready" }).resolveHash(HASH).kind).toBe("local");
  });

  test("a local copy that is starting or stopping yields to a member where the hash is ready", () => {
    const route = table({ busy: true, local: "activating", remote: "ready" }).resolveHash(HASH);
    expect(route).toEqual({ kind: "remote", hash: HASH, member: "web2", baseUrl: "http://10.0.0.2:80" });
  });

  test("a request a peer forwarded stays with the local copy, busy or not", () => {
    expect(table({ busy: true, local: "draining", remote: "ready" }).resolveHash(HASH, true).kind).toBe(
      "local",
    );
  });

  test("with no member where it is ready, a busy local copy is still the route (its socket is waited for)", () => {
    expect(table({ busy: true, local: "activating", remote: "idle" }).resolveHash(HASH).kind).toBe("local");
    expect(table({ busy: true, local: "activating" }).resolveHash(HASH).kind).toBe("local");
  });

  test("not here: a member that runs it, else none", () => {
    expect(table({ busy: false, remote: "idle" }).resolveHash(HASH).kind).toBe("remote");
    expect(table({ busy: false }).resolveHash(HASH)).toEqual({ kind: "none", hash: HASH });
    expect(table({ busy: false, local: "retired", remote: "failed" }).resolveHash(HASH).kind).toBe("none");
  });
});
