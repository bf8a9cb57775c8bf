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

  # Names only: the host maps each to a file (services.hashd.credentials.<service>.<name>), which
  # systemd hands the program as $CREDENTIALS_DIRECTORY/<name>. A value here would be in the store.
  checkCredentials = name: credentials:
    let
      checked = map
        (c:
          if !(isString c) then fail name "credential names must be strings, e.g. credentials = [ \"db-url\" ]"
          else if match credentialPattern c == null then
            fail name "credential name \"${c}\" must be 1 to 64 of a-z, 0-9 and _ . - starting with a letter or digit"
          else c)
        credentials;
      twice = filter (c: length (filter (x: x == c) checked) > 1) checked;
    in
    if !(isList credentials) then
      fail name "credentials must be a list of names, e.g. [ \"db-url\" ]: the host maps each name to a file (never put a value here: it would be in the Nix store)"
    else if length credentials > 32 then fail name "credentials has more than 32 credentials"
    else if twice != [ ] then fail name "credential ${builtins.head twice} is named twice"
    else checked;

  checkStateDirectory = name: value:
    if builtins.isBool value then value
    else fail name "stateDirectory must be true or false (the directory is /var/lib/hashd-state/<name>, at $STATE_DIRECTORY)";

  namePattern = "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}";
  # src/model/names.ts CREDENTIAL_NAME_SOURCE (test/name-patterns.test.ts compares them)
  credentialPattern = "[a-z0-9][a-z0-9_.-]{0,63}";
in
{
  inherit namePattern credentialPattern;

  # mkManifest { name, exec, socket?, readiness?, idleStopSec?, drainTimeoutSec?, startTimeoutSec?,
  #              environment?, credentials?, stateDirectory? } -> the manifest as an attribute set
  # (every field present, but credentials and stateDirectory only when used: a service that uses
  # neither keeps the manifest, and so the store hash, it had before they existed, and agents
  # before them still read it).
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
    , credentials ? [ ]
    , stateDirectory ? false
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
    }
    // (let c = checkCredentials name credentials; in if c == [ ] then { } else { credentials = c; })
    // (if checkStateDirectory name stateDirectory then { stateDirectory = true; } else { });

  # builtins.toJSON keeps the string context of every value, so the store paths named in exec and
  # environment stay inputs of the derivation that writes this text, and, since their hashes are in
  # the output, runtime references of the service closure.
  toJSON = manifest: toJSON manifest;
}
