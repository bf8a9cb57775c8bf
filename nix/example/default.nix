# The example chain: a backend, and a frontend that calls it by its hash URL.
#
#   nix-build nix/example -A frontend                       # v1 (builds the backend too)
#   nix-build nix/example -A frontend --argstr version 2    # v2 frontend and v2 backend
#   nix-build nix/example -A frontend --argstr version 2 --argstr backendVersion 1
#                                                           # new frontend, same backend hash
#
# A host that runs the backend maps its credential to a file: services.hashd.credentials
# .example-backend.signing-key = "/run/keys/example-signing-key" (any content; the backend shows a
# fingerprint of it). Without it, activating the backend is refused (exit code 3).
#
# Without nixpkgs the servers run on the host's /usr/bin/python3 (the Debian test hosts); flake.nix
# passes the nixpkgs lib and "${pkgs.python3}/bin/python3" instead.
#
# The frontend calls BACKEND_URL through the ingress at $HASHD_INGRESS ("address:port") when that is
# set, else at the URL's own host and port (port 80 for the default http://<hash>.localhost/). For an
# ingress on another port, build with --arg ingressPort 8480 (the port goes into the URL, and so
# into the frontend's hash) or have the agent set HASHD_INGRESS in the service's environment.
{ hashd ? import ../lib.nix { }
, python3 ? "/usr/bin/python3"
, version ? "1"
, backendVersion ? version
, zone ? "localhost"
, ingressPort ? null
, system ? null
}:
let
  # Each closure carries its program: app/serve.py plus its own script, which imports serve.py
  # from its directory. `placeholder "out"` becomes the closure's own store path at build time.
  app = script: {
    exec = [ python3 "${placeholder "out"}/app/${script}" ];
    files = {
      "app/serve.py" = builtins.readFile ./serve.py;
      "app/${script}" = builtins.readFile (./. + "/${script}");
    };
  } // (if system == null then { } else { inherit system; });
in
rec {
  # The backend reads a credential (a host maps it: services.hashd.credentials.example-backend.signing-key)
  # and keeps state shared by its versions ($STATE_DIRECTORY); backend.py says how.
  backend = hashd.mkService (app "backend.py" // {
    name = "example-backend";
    version = backendVersion;
    environment.VERSION = backendVersion;
    credentials = [ "signing-key" ];
    stateDirectory = true;
  });

  frontend = hashd.mkService (app "frontend.py" // {
    name = "example-frontend";
    inherit version;
    readiness = { type = "http"; path = "/healthz"; };
    environment = {
      VERSION = version;
      BACKEND_URL = hashd.mkHashUrl { service = backend; inherit zone; port = ingressPort; };
    };
  });
}
