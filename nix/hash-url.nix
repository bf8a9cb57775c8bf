# Store hashes and hash URLs, with the string context kept.
#
# `hashOf service` is the 32 characters after /nix/store/ (the store hash, src/model/names.ts). It
# is taken with builtins.substring, which keeps the service's string context, so wherever the hash
# lands in another derivation's output, Nix records the service as a runtime reference of that
# derivation (the reference scanner looks for the hash part of every input path, nix manual
# "Derivations"). That is what makes the dependency graph between service closures the Nix reference
# graph.
let
  storePrefix = builtins.storeDir + "/";
  prefixLength = builtins.stringLength storePrefix;

  # nix-base32 omits e, o, u and t (STORE_HASH_SOURCE of src/model/names.ts; test/name-patterns.test.ts)
  hashPattern = "[0-9a-df-np-sv-z]{32}";

  describe = value:
    if builtins.isString value then ''"${value}"''
    else if builtins.isAttrs value then "an attribute set without outPath"
    else "a ${builtins.typeOf value}";

  # A derivation, a store path string or a Nix path literal, as a string with context.
  toStorePathString = value:
    if builtins.isAttrs value && value ? outPath then "${value}"
    else if builtins.isString value then value
    else if builtins.isPath value then "${value}"
    else throw "hashd.hashOf: expected a derivation or a store path, got ${describe value}";

  hashOf = service:
    let
      path = toStorePathString service;
      hash = builtins.substring prefixLength 32 path;
    in
    if builtins.substring 0 prefixLength path != storePrefix then
      throw "hashd.hashOf: ${describe path} is not in ${builtins.storeDir}"
    else if builtins.match hashPattern hash == null || builtins.substring (prefixLength + 32) 1 path != "-" then
      throw "hashd.hashOf: ${describe path} is not a store path (${storePrefix}<32-character nix-base32 hash>-<name>)"
    else
      hash;

  # RFC 1123 host name labels, lower case: the zone ends up in a Host header and in DNS. At most 220
  # characters, so that `<hash>.<zone>` is a DNS name of at most 253. The zone of src/model/names.ts
  # (ZONE_SOURCE, ZONE_MAX_LENGTH), as in the NixOS module; test/name-patterns.test.ts compares them.
  zonePattern = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*";
  zoneMaxLength = 220;

  urlFor = { service, zone ? "localhost", port ? null, scheme ? "http" }:
    if builtins.match zonePattern zone == null || builtins.stringLength zone > zoneMaxLength then
      throw "hashd.mkHashUrl: zone \"${zone}\" is not a DNS name (lower-case labels of 1-63 characters separated by dots, at most 220 in all, e.g. \"localhost\" or \"svc.example.org\")"
    else if port != null && !(builtins.isInt port && port >= 1 && port <= 65535) then
      throw "hashd.mkHashUrl: port must be null or an integer from 1 to 65535"
    else if scheme != "http" && scheme != "https" then
      throw "hashd.mkHashUrl: scheme must be \"http\" or \"https\""
    else
      "${scheme}://${hashOf service}.${zone}${if port == null then "" else ":${toString port}"}/";

  # Options form `{ service, zone?, port?, scheme? }`, told apart from a derivation by its `service`.
  isOptions = arg: builtins.isAttrs arg && arg ? service && !(arg ? outPath);
in
{
  inherit hashOf hashPattern;

  # mkHashUrl backend                                   -> "http://<hash>.localhost/"
  # mkHashUrl { service = backend; zone = "svc.example.org"; port = 8080; }
  #
  # The default zone is "localhost": names under .localhost resolve to the loopback address
  # (RFC 6761 section 6.3), where every host's own agent runs the ingress, so a service that calls
  # its dependency through the local agent needs no DNS and no knowledge of the cluster's zone.
  mkHashUrl = arg: if isOptions arg then urlFor arg else urlFor { service = arg; };

  # mkHashUrlIn "svc.example.org" backend
  mkHashUrlIn = zone: service: urlFor { inherit service zone; };
}
