export { type StatusAppOptions, statusApp } from "./app.ts";
export { AliasHistory, type GossipReads, gossipProviders } from "./gossip-providers.ts";
export { type StatusServer, type StatusServerConfig, startStatusServer } from "./server.ts";
export type { MemberLike, MemberReports, ReportLike, StatusProviders } from "./source.ts";
export { storeStatusSource } from "./source.ts";
export type * from "./types.ts";
