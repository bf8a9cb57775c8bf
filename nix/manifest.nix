# The service manifest, schema 1: the one place that turns mkService's arguments into the JSON the
# agent reads from <out>/hashd/service.json. It mirrors src/model/manifest.ts (zod) field for field
# and checks the same rules at evaluation time, so a bad manifest fails `nix build` with a message
# instead of failing `hashd activate` on a host. test/nix-lib.test.ts feeds its output to the zod
# schema, so the two can't drift apart silently.
let
  inherit (builtins) attrNames concatStringsSep filter isAttrs isInt isList isString length match stringLength toJSON typeOf;

  fail = name: message: throw "hashd.mkService (${name}): ${message}";

  # Strings, derivations, store paths and integers are accepted where the manifest wants a string;
  # derivations and path literals become store paths and keep their string context (a path literal
  # is copied into the store, as "${./file}" would be).
  coerce = name: where: value:
    if isString value then value
    else if isAttrs value && value ? outPath then "${value}"
    else if builtins.isPath value then "${value}"
    else if isInt value then toString value
    else fail name "${where} must be a string, a derivation or a path, got a ${typeOf value}";

  # No NUL (Nix strings can't hold one) and no newline: systemd's Environment=/ExecStart= parsing.
  checkLine = name: where: max: value:
    if stringLength value > max then fail name "${where} is longer than ${toString max} characters"
    else if match "[^\n]*" value == null then fail name "${where} must not contain a newline"
    else value;

  checkInt = name: field: min: max: value:
    if !(isInt value) then fail name "${field} must be an integer, got a ${typeOf value}"
    else if value < min || value > max then fail name "${field} must be from ${toString min} to ${toString max}, got ${toString value}"
    else value;

  checkSocket = name: socket:
    let type = socket.type or null; extra = filter (k: k != "type" && k != "port") (attrNames socket); in
    if !(isAttrs socket) then fail name "socket must be an attribute set such as { type = \"fd\"; }"
    else if extra != [ ] then fail name "socket has unknown fields: ${concatStringsSep ", " extra}"
    else if type == "fd" || type == "unix" then
      (if socket ? port then fail name "socket.port is only for { type = \"port\"; }" else { inherit type; })
    else if type == "port" then { inherit type; port = checkInt name "socket.port" 1 65535 (socket.port or null); }
    else fail name "socket.type must be \"fd\" (fd 3, LISTEN_FDS), \"unix\" ($HASHD_UPSTREAM) or \"port\" (127.0.0.1:$PORT)";

  checkReadiness = name: readiness:
    let type = readiness.type or null; extra = filter (k: k != "type" && k != "path") (attrNames readiness); in
    if !(isAttrs readiness) then fail name "readiness must be an attribute set such as { type = \"accept\"; }"
    else if extra != [ ] then fail name "readiness has unknown fields: ${concatStringsSep ", " extra}"
    else if type == "notify" || type == "accept" then
      (if readiness ? path then fail name "readiness.path is only for { type = \"http\"; }" else { inherit type; })
    else if type == "http" then
      let path = readiness.path or null; in
      if !(isString path) || match "/[^[:space:]]*" path == null || stringLength path > 1024 then
        fail name "readiness.path must be an absolute URL path without spaces, e.g. \"/healthz\""
      else { inherit type path; }
    else fail name "readiness.type must be \"notify\" (READY=1), \"http\" (GET path answers 2xx) or \"accept\"";

  checkExec = name: exec:
    let
      argv = if isList exec then exec else [ exec ];
      items = builtins.genList
        (i:
          let item = coerce name "exec[${toString i}]" (builtins.elemAt argv i); in
          if item == "" then fail name "exec[${toString i}] must not be empty"
          else checkLine name "exec[${toString i}]" 4096 item)
        (length argv);
    in
    if argv == [ ] then fail name "exec must have at least the program"
    else if length argv > 256 then fail name "exec has more than 256 items"
    else if builtins.substring 0 1 (builtins.head items) != "/" then
      fail name "exec[0] must be an absolute path (e.g. \"\${pkgs.python3}/bin/python3\"), got \"${builtins.head items}\""
    else items;

  checkEnvironment = name: environment:
    let names = attrNames environment; in
    if !(isAttrs environment) then fail name "environment must be an attribute set of strings"
    else if length names > 256 then fail name "environment has more than 256 variables"
    else builtins.listToAttrs (map
      (key:
        if match "[A-Za-z_][A-Za-z0-9_]*" key == null then fail name "environment variable name \"${key}\" must match [A-Za-z_][A-Za-z0-9_]*"
        else {
          name = key;
          value = checkLine name "environment.${key}" 4096 (coerce name "environment.${key}" environment.${key});
        })
      names);

  namePattern = "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}";
in
{
  inherit namePattern;

  # mkManifest { name, exec, socket?, readiness?, idleStopSec?, drainTimeoutSec?, startTimeoutSec?,
  #              environment? } -> the manifest as an attribute set (every field present).
  # Other attributes (version, files, system, ...) belong to mkService and are ignored here.
  mkManifest =
    { name
    , exec ? throw "hashd.mkService (${name}): exec is required: the program's argv, e.g. [ \"\${pkgs.hello}/bin/hello\" ]"
    , socket ? { type = "fd"; }
    , readiness ? { type = "accept"; }
    , idleStopSec ? 0
    , drainTimeoutSec ? 30
    , startTimeoutSec ? 60
    , environment ? { }
    , ...
    }:
    if !(isString name) || match namePattern name == null then
      throw "hashd.mkService: name \"${toString name}\" must be 1 to 64 letters, digits and . _ + - starting with a letter or digit"
    else {
      schema = 1;
      inherit name;
      exec = checkExec name exec;
      socket = checkSocket name socket;
      readiness = checkReadiness name readiness;
      idleStopSec = checkInt name "idleStopSec" 0 (86400 * 365) idleStopSec;
      drainTimeoutSec = checkInt name "drainTimeoutSec" 1 86400 drainTimeoutSec;
      startTimeoutSec = checkInt name "startTimeoutSec" 1 3600 startTimeoutSec;
      environment = checkEnvironment name environment;
    };

  # builtins.toJSON keeps the string context of every value, so the store paths named in exec and
  # environment stay inputs of the derivation that writes this text, and, since their hashes are in
  # the output, runtime references of the service closure.
  toJSON = manifest: toJSON manifest;
}
