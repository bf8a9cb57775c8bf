# mkService: a derivation whose output is a service closure:
#
#   $out/hashd/service.json   the manifest (nix/manifest.nix), read by the agent at activation
#   $out/<path>               each entry of `files`, e.g. the program itself
#
# The builder is a few lines of POSIX sh using mkdir, cp and chmod, so one derivation serves both
# variants of nix/lib.nix: without nixpkgs (the host's /bin/sh and /usr/bin:/bin, as on the Debian
# test hosts) and with nixpkgs (bash and coreutils from the store, for NixOS and its build sandbox).
# Texts go in through passAsFile, which keeps their string context (so the store paths they name are
# inputs, then runtime references) and lets `placeholder "out"` in them become the output path.
{ builder, toolPath, defaultSystem }:

args@{ name
, version ? null
, files ? { }
, system ? defaultSystem
, ...
}:
let
  inherit (builtins) attrNames concatStringsSep genList isAttrs isString length listToAttrs match;

  manifestLib = import ./manifest.nix;
  manifest = manifestLib.mkManifest (removeAttrs args [ "version" "files" "system" ]);

  fail = message: throw "hashd.mkService (${name}): ${message}";

  # Plain relative paths only: they are spliced into the build script, and must stay inside $out.
  relPattern = "[A-Za-z0-9_+-][A-Za-z0-9._+-]*(/[A-Za-z0-9_+-][A-Za-z0-9._+-]*)*";
  checkRel = rel:
    if match relPattern rel == null then
      fail "files.\"${rel}\": use a relative path of letters, digits and . _ + - (no leading dot, no ..)"
    else if rel == "hashd" || match "hashd/.*" rel != null then
      fail "files.\"${rel}\": hashd/ is where mkService writes the manifest"
    else rel;

  fileSpec = rel: value:
    if isString value then { text = value; executable = false; }
    else if isAttrs value && value ? text then { inherit (value) text; executable = value.executable or false; }
    else fail "files.\"${rel}\" must be a string or { text = ...; executable = true; }";

  rels = map checkRel (attrNames files);
  specs = map (rel: fileSpec rel files.${rel}) rels;
  fileVar = i: "hashdFile${toString i}";
  dirOf' = rel: let d = builtins.dirOf rel; in if d == "." then "" else "/${d}";

  copyFiles = concatStringsSep "\n" (genList
    (i:
      let rel = builtins.elemAt rels i; spec = builtins.elemAt specs i; in
      ''
        mkdir -p "$out${dirOf' rel}"
        cp "''$${fileVar i}Path" "$out/${rel}"
        chmod ${if spec.executable then "0555" else "0444"} "$out/${rel}"'')
    (length rels));

  script = ''
    export PATH=${toolPath}
    set -eu
    mkdir -p "$out/hashd"
    cp "$manifestPath" "$out/hashd/service.json"
    chmod 0444 "$out/hashd/service.json"
    ${copyFiles}
  '';

  drv = builtins.derivation ({
    name = if version == null then name else "${name}-${toString version}";
    inherit system builder;
    args = [ "-c" script ];
    manifest = manifestLib.toJSON manifest;
    passAsFile = [ "manifest" ] ++ genList fileVar (length rels);
    # Trivial to build: cheaper than asking a binary cache.
    preferLocalBuild = true;
    allowSubstitutes = false;
  } // listToAttrs (genList (i: { name = fileVar i; value = (builtins.elemAt specs i).text; }) (length rels)));
in
# The manifest as data, for tests and for other Nix code (e.g. frontend.hashdManifest.environment).
drv // { hashdManifest = manifest; }
