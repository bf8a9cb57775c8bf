# The runtime node_modules of hashd, made from bun.lock alone. One script for the two places that
# must agree byte for byte: the flake's fixed-output derivation (flake.nix, nodeModules) and
# scripts/node-modules-hash.ts, which computes that derivation's hash.
#
#   sh nix/node-modules.sh OUT      (in a directory with package.json, bun.lock and bunfig.toml)
#
# writes OUT/node_modules. Needs bun and the npm registry; uses a private HOME and an empty cache.
set -eu
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home"
unset XDG_CONFIG_HOME XDG_CACHE_HOME BUN_INSTALL_CACHE_DIR || true

# Runtime dependencies only: the dev tools carry per-platform binaries, the runtime ones are plain
# JavaScript, so one hash serves every system. Hoisted, copied files, no lifecycle scripts.
bun install --frozen-lockfile --production --ignore-scripts --no-progress \
  --linker=hoisted --backend=copyfile --cache-dir="$work/cache"

# Only the packages' own files, so that another bun version writes the same tree: drop what a
# package manager adds beside them (.bin links, caches, lockfile copies: names starting with a dot
# directly in a node_modules), and every executable bit (nothing here is run; bun build bundles it).
find node_modules -path '*/node_modules/.*' -prune -exec rm -rf {} +
find node_modules -type f -exec chmod a-x {} +

mkdir -p "$out"
cp -R node_modules "$out/"
