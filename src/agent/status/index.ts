export { type StatusAppOptions, statusApp } from "./app.ts";
export { type AliasReads, aliasProviders, type ClusterReads, clusterProviders } from "./gossip-providers.ts";
export { type StatusServer, type StatusServerConfig, startStatusServer } from "./server.ts";
export type { MemberLike, MemberReports, ReportLike, StatusProviders } from "./source.ts";
export { storeStatusSource } from "./source.ts";
export type * from "./types.ts";
