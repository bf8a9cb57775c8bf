# Which files of the repository the hashd package is built from: package.json, bun.lock,
# bunfig.toml, tsconfig.json and src/ without its tests, so that editing tests, simulators, docs or
# benchmarks does not change the package's hash. A plain `path: type: bool` filter (for
# lib.cleanSourceWith), not lib.fileset, so that Nix 2.8 can evaluate it: test/architecture.test.ts
# runs it over every file of the repository.
{ lib }:
root: path: type:
let
  rel = lib.removePrefix "${toString root}/" (toString path);
in
lib.elem rel [ "package.json" "bun.lock" "bunfig.toml" "tsconfig.json" "src" ]
|| (lib.hasPrefix "src/" rel && !(lib.hasSuffix ".test.ts" rel))
